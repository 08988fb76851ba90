"""Subnets: CIDR (or a prefix from a subnet pool), gateway, allocation pools, DNS servers,
host routes, IPv6 address modes."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, ipam, networks, query, segments, standard, subnetpools
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, in_use, invalid_input, not_found
from nimbus.network.models import IPAllocation, Network, Port, Subnet

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

V6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
MAX_DNS = 5
MAX_ROUTES = 20


def _version(value: Any, field: str) -> int:
    number = v.integer(value, field)
    if number not in (4, 6):
        raise invalid_input(f"{value} is not in [4, 6]")
    return number


def _mode(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if value not in V6_MODES:
        raise invalid_input(f"'{value}' is not in {list(V6_MODES)}")
    return str(value)


def _pools(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid_input(f"Invalid data format for IP pool: '{value}'")
    out = []
    for pool in value:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise invalid_input(f"Invalid data format for IP pool: '{pool}'")
        out.append({"start": str(v.ip(pool["start"])), "end": str(v.ip(pool["end"]))})
    return out


def _nameservers(value: Any, field: str) -> list[str]:
    if not isinstance(value, list):
        raise invalid_input(f"Invalid data format for nameserver: '{value}'")
    seen: list[str] = []
    for item in value:
        text = str(v.ip(item))
        if text in seen:
            raise invalid_input(f"Duplicate nameserver '{item}'")
        seen.append(text)
    return seen


def _routes(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid_input(f"Invalid data format for hostroute: '{value}'")
    out: list[dict[str, str]] = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise invalid_input(f"Invalid data format for hostroute: '{route}'")
        clean = {"destination": str(v.cidr(route["destination"], strict=False)),
                 "nexthop": str(v.ip(route["nexthop"]))}
        if clean in out:
            raise invalid_input(f"Duplicate hostroute '{route}'")
        out.append(clean)
    return out


def _gateway(value: Any, field: str) -> str | None:
    if value is None:
        return None
    return str(v.ip(value))


def _cidr(value: Any, field: str) -> str:
    return str(v.cidr(value, field, strict=False))


SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "network_id": v.Attr(v.check_uuid, put=False, required=True),
    "ip_version": v.Attr(_version, put=False, required=True),
    "cidr": v.Attr(v.nullable(_cidr), put=False),
    "prefixlen": v.Attr(lambda x, f: v.integer(x, f, 0, 128), put=False),
    "subnetpool_id": v.Attr(v.nullable(v.name255), put=False),
    "use_default_subnetpool": v.Attr(v.boolean, put=False),
    "gateway_ip": v.Attr(_gateway), "enable_dhcp": v.Attr(v.boolean),
    "ipv6_ra_mode": v.Attr(_mode, put=False), "ipv6_address_mode": v.Attr(_mode, put=False),
    "allocation_pools": v.Attr(_pools), "dns_nameservers": v.Attr(_nameservers),
    "host_routes": v.Attr(_routes),
    "service_types": v.Attr(v.string_list), "segment_id": v.Attr(v.uuid_or_none),
    "dns_publish_fixed_ip": v.Attr(v.boolean),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}

COLUMNS: query.Columns = {
    "id": Subnet.id, "name": Subnet.name, "description": Subnet.description,
    "project_id": Subnet.project_id, "network_id": Subnet.network_id,
    "ip_version": Subnet.ip_version, "cidr": Subnet.cidr, "gateway_ip": Subnet.gateway_ip,
    "enable_dhcp": Subnet.enable_dhcp, "ipv6_ra_mode": Subnet.ipv6_ra_mode,
    "ipv6_address_mode": Subnet.ipv6_address_mode, "subnetpool_id": Subnet.subnetpool_id,
    "segment_id": Subnet.segment_id, "revision_number": Subnet.revision_number,
    "created_at": Subnet.created_at, "updated_at": Subnet.updated_at,
}


def visibility(ctx: RequestContext) -> Any:
    """A subnet is visible with its network."""
    if ctx.is_admin:
        return None
    shared = access.visible(ctx, Network, "network", ("access_as_shared",), Network.shared)
    return (Subnet.project_id == access.project_of(ctx)) | Subnet.network_id.in_(
        select(Network.id).where(shared))


async def get(session: AsyncSession, ctx: RequestContext, subnet_id: str) -> Subnet:
    q = access.restrict(select(Subnet).where(Subnet.id == subnet_id), visibility(ctx))
    subnet = (await session.scalars(q)).first()
    if subnet is None:
        raise not_found("subnet", subnet_id)
    return subnet


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[Subnet], bool]:
    q = access.restrict(select(Subnet), visibility(ctx))
    q = query.apply_filters(q, COLUMNS, params)
    q = query.apply_tags(q, Subnet.id, params)
    return await query.paginate(session, q, Subnet, COLUMNS, params)


async def create(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 net: Network, data: dict[str, Any], project_id: str) -> Subnet:
    version: int = data["ip_version"]
    pool = await subnetpools.for_subnet(session, ctx, data, version)
    if pool is not None:
        cidr = await subnetpools.allocate_cidr(session, pool, data.get("cidr"),
                                               data.get("prefixlen"), project_id)
    else:
        if not data.get("cidr"):
            raise bad_request("Bad subnets request: a cidr must be specified in the absence "
                              "of a subnet pool")
        if "prefixlen" in data:
            raise bad_request("Bad subnets request: prefixlen requires a subnetpool_id.")
        cidr = data["cidr"]
    net_cidr = ipaddress.ip_network(cidr)
    if net_cidr.version != version:
        raise invalid_input("Cidr and IP version mismatch")
    if version == 4 and net_cidr.prefixlen == 32 or version == 6 and net_cidr.prefixlen == 128:
        raise invalid_input(f"'{cidr}' isn't a valid subnet: the prefix is too long")
    if str(net_cidr) != str(ipaddress.ip_network(cidr, strict=False)):
        raise invalid_input(f"'{cidr}' isn't a recommended CIDR")
    _check_v6_modes(data, version, net_cidr, data.get("enable_dhcp", True))
    gateway = _default_gateway(net_cidr) if "gateway_ip" not in data else data["gateway_ip"]
    if gateway is not None:
        _check_gateway(net_cidr, gateway)
    await _check_overlap(session, net.id, net_cidr, None)
    pools = data.get("allocation_pools") or ipam.default_pools(str(net_cidr), gateway)
    if data.get("allocation_pools"):
        _check_pools(net_cidr, pools, gateway)
    _check_lists(data)
    await segments.check_subnet_segment(session, net.id, data.get("segment_id"))
    subnet = Subnet(
        id=new_uuid(), project_id=project_id, name=data.get("name", ""),
        description=data.get("description", ""), network_id=net.id, ip_version=version,
        cidr=str(net_cidr), gateway_ip=gateway, enable_dhcp=data.get("enable_dhcp", True),
        ipv6_ra_mode=data.get("ipv6_ra_mode"), ipv6_address_mode=data.get("ipv6_address_mode"),
        subnetpool_id=pool.id if pool is not None else None, segment_id=data.get("segment_id"),
        dns_nameservers=data.get("dns_nameservers", []),
        host_routes=data.get("host_routes", []), allocation_pools=pools,
        service_types=data.get("service_types", []),
        dns_publish_fixed_ip=data.get("dns_publish_fixed_ip", False), revision_number=0)
    session.add(subnet)
    await session.flush()
    if data.get("tags"):
        await standard.set_tags(session, subnet.id, data["tags"])
    if ipam.is_auto_address(subnet):
        await _address_existing_ports(session, subnet)
    return subnet


async def _address_existing_ports(session: AsyncSession, subnet: Subnet) -> None:
    """A new SLAAC subnet gives its EUI-64 address to the ports already on the network, as
    their guests will configure it from the router advertisements anyway."""
    rows = (await session.execute(select(Port.id, Port.mac_address).where(
        Port.network_id == subnet.network_id,
        Port.device_owner.not_like("network:router%")))).all()
    for port_id, mac in rows:
        await ipam.allocate_specific(session, subnet, ipam.eui64(subnet.cidr, mac), port_id)


def _default_gateway(net: Any) -> str | None:
    if net.num_addresses < 2:
        return None
    return str(net.network_address + 1)


def _check_gateway(net: Any, gateway: str) -> None:
    ip = ipaddress.ip_address(gateway)
    if ip.version != net.version or ip not in net:
        raise invalid_input(f"Gateway IP {gateway} conflicts with subnet {net}: it is "
                            "outside the subnet")
    if net.version == 4 and net.prefixlen < 31 and ip in (net.network_address,
                                                          net.broadcast_address):
        raise invalid_input(f"Gateway is not valid on subnet: {gateway} is the network or "
                            "broadcast address")


def _check_v6_modes(data: dict[str, Any], version: int, net: Any, dhcp: bool) -> None:
    ra, addr = data.get("ipv6_ra_mode"), data.get("ipv6_address_mode")
    if version == 4 and (ra or addr):
        raise invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version "
                            "is 4")
    if not (ra or addr):
        return
    if not dhcp:
        raise invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when "
                            "enable_dhcp is set to False")
    if ra and addr and ra != addr:
        raise invalid_input(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                            f"'{addr}' is not valid. If both attributes are set, they must "
                            "be the same value")
    if (ra in ipam.SLAAC_MODES or addr in ipam.SLAAC_MODES) and net.prefixlen != 64:
        raise invalid_input("Invalid CIDR for IPv6 address mode. OpenStack uses the EUI-64 "
                            "address format, which requires the prefix to be /64")


def _check_pools(net: Any, pools: list[dict[str, str]], gateway: str | None) -> None:
    ranges = []
    for pool in pools:
        start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        if start.version != net.version or end.version != net.version or \
                start not in net or end not in net:
            raise bad_request(f"The allocation pool {pool['start']}-{pool['end']} spans beyond "
                              f"the subnet cidr {net}.", "OutOfBoundsAllocationPool")
        if int(start) > int(end):
            raise bad_request(f"The allocation pool {pool['start']}-{pool['end']} is not valid "
                              "(its start is after its end).", "InvalidAllocationPool")
        if net.version == 4 and net.prefixlen < 31 and (
                start == net.network_address or end == net.broadcast_address):
            raise bad_request(f"The allocation pool {pool['start']}-{pool['end']} includes the "
                              "network or broadcast address.", "InvalidAllocationPool")
        ranges.append((int(start), int(end), pool))
    ranges.sort(key=lambda r: r[0])
    for (_a0, a1, pa), (b0, _b1, pb) in zip(ranges, ranges[1:], strict=False):
        if b0 <= a1:
            raise bad_request(f"Found overlapping allocation pools: {pa['start']}-{pa['end']} "
                              f"and {pb['start']}-{pb['end']}", "OverlappingAllocationPools")
    if gateway is not None:
        g = int(ipaddress.ip_address(gateway))
        for low, high, pool in ranges:
            if low <= g <= high:
                raise conflict(f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{pool['start']}-{pool['end']}",
                               "GatewayConflictWithAllocationPools")


def _check_lists(data: dict[str, Any]) -> None:
    if len(data.get("dns_nameservers") or []) > MAX_DNS:
        raise bad_request(f"Unable to complete operation for subnet. The number of DNS "
                          f"nameservers exceeds the limit {MAX_DNS}.", "DNSNameServersExhausted")
    if len(data.get("host_routes") or []) > MAX_ROUTES:
        raise bad_request(f"Unable to complete operation for subnet. The number of host routes "
                          f"exceeds the limit {MAX_ROUTES}.", "HostRoutesExhausted")


async def _check_overlap(session: AsyncSession, network_id: str, net: Any,
                         skip: str | None) -> None:
    others = (await session.execute(select(Subnet.id, Subnet.cidr).where(
        Subnet.network_id == network_id))).all()
    for sid, cidr in others:
        if sid != skip and ipaddress.ip_network(cidr).overlaps(net):
            raise invalid_input(f"Requested subnet with cidr: {net} for network: {network_id} "
                                "overlaps with another subnet")


async def update(session: AsyncSession, subnet: Subnet, data: dict[str, Any]) -> None:
    net = ipaddress.ip_network(subnet.cidr)
    for key in ("name", "description", "enable_dhcp", "dns_publish_fixed_ip"):
        if key in data:
            setattr(subnet, key, data[key] if data[key] is not None else "")
    if data.get("enable_dhcp") is False and (subnet.ipv6_address_mode or subnet.ipv6_ra_mode):
        raise invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp "
                            "is set to False")
    _check_lists(data)
    if "dns_nameservers" in data:
        subnet.dns_nameservers = data["dns_nameservers"]
    if "host_routes" in data:
        subnet.host_routes = data["host_routes"]
    if "service_types" in data:
        subnet.service_types = data["service_types"]
    gateway = data.get("gateway_ip", subnet.gateway_ip)
    if "gateway_ip" in data and gateway is not None:
        _check_gateway(net, gateway)
        holder = await session.scalar(select(IPAllocation.port_id).where(
            IPAllocation.subnet_id == subnet.id, IPAllocation.ip_address == gateway))
        owner = await session.scalar(select(Port.device_owner).where(Port.id == holder)) \
            if holder else None
        if holder and not (owner or "").startswith("network:router_interface"):
            raise conflict(f"Gateway ip {gateway} conflicts with an allocated address.",
                           "GatewayIpInUse")
    if "allocation_pools" in data:
        _check_pools(net, data["allocation_pools"], gateway)
        subnet.allocation_pools = data["allocation_pools"]
    elif "gateway_ip" in data:
        _check_pools(net, subnet.allocation_pools, gateway)
    subnet.gateway_ip = gateway
    standard.bump(subnet)


async def delete_subnet(session: AsyncSession, subnet: Subnet) -> None:
    rows = (await session.execute(select(IPAllocation.port_id, Port.device_owner).join(
        Port, Port.id == IPAllocation.port_id).where(IPAllocation.subnet_id == subnet.id))).all()
    # Automatic (SLAAC) addresses are taken back from ports; router interfaces still block.
    allowed: tuple[str, ...] = networks.OWNED_PORTS
    if ipam.is_auto_address(subnet):
        allowed = tuple({owner for _, owner in rows
                         if not owner.startswith("network:router_interface")}) + allowed
    if any(owner not in allowed for _, owner in rows):
        raise in_use("subnet", subnet.id)
    await session.execute(delete(IPAllocation).where(IPAllocation.subnet_id == subnet.id))
    await standard.drop_tags(session, subnet.id)
    await session.delete(subnet)


def render(subnet: Subnet, tags: dict[str, list[str]]) -> dict[str, Any]:
    body = standard.standard(subnet)
    body.update({
        "name": subnet.name,
        "network_id": subnet.network_id,
        "ip_version": subnet.ip_version,
        "cidr": subnet.cidr,
        "gateway_ip": subnet.gateway_ip,
        "enable_dhcp": subnet.enable_dhcp,
        "ipv6_ra_mode": subnet.ipv6_ra_mode,
        "ipv6_address_mode": subnet.ipv6_address_mode,
        "allocation_pools": list(subnet.allocation_pools or []),
        "host_routes": list(subnet.host_routes or []),
        "dns_nameservers": list(subnet.dns_nameservers or []),
        "subnetpool_id": subnet.subnetpool_id,
        "segment_id": subnet.segment_id,
        "service_types": list(subnet.service_types or []),
        "dns_publish_fixed_ip": subnet.dns_publish_fixed_ip,
        "tags": tags.get(subnet.id, []),
    })
    return body


async def render_many(session: AsyncSession, rows: Sequence[Subnet]) -> list[dict[str, Any]]:
    tags = await standard.tags_of(session, [s.id for s in rows])
    return [render(s, tags) for s in rows]
