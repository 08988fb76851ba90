"""Ports: MAC and fixed IPs, security groups, port security, address pairs, DHCP options,
binding to a host, DNS name; status stays DOWN until an agent reports the port wired."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, insert, literal, select, union_all
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, ipam, networks, query, security_groups, standard
from nimbus.network.errors import bad_request, conflict, invalid_input, not_found
from nimbus.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Subnet,
    Tag,
)

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

COLUMNS: query.Columns = {
    "id": Port.id, "name": Port.name, "description": Port.description,
    "project_id": Port.project_id, "network_id": Port.network_id,
    "mac_address": Port.mac_address, "admin_state_up": Port.admin_state_up,
    "status": Port.status, "device_id": Port.device_id, "device_owner": Port.device_owner,
    "port_security_enabled": Port.port_security_enabled,
    "binding:host_id": Port.binding_host_id, "binding:vnic_type": Port.binding_vnic_type,
    "binding:vif_type": Port.binding_vif_type, "dns_name": Port.dns_name,
    "revision_number": Port.revision_number, "created_at": Port.created_at,
    "updated_at": Port.updated_at,
}
_PORT_GROUPS = cast(Table, PortSecurityGroup.__table__)
# Ports whose life the network service runs itself: no security groups, no direct delete.
SERVICE_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
                  "network:router_interface_distributed", "network:ha_router_replicated_interface",
                  "network:router_centralized_snat")


def visibility(ctx: RequestContext) -> Any:
    if ctx.is_admin:
        return None
    return (Port.project_id == access.project_of(ctx)) | Port.network_id.in_(
        select(Network.id).where(Network.project_id == access.project_of(ctx)))


async def get(session: AsyncSession, ctx: RequestContext, port_id: str) -> Port:
    q = access.restrict(select(Port).where(Port.id == port_id), visibility(ctx))
    port = (await session.scalars(q)).first()
    if port is None:
        raise not_found("port", port_id)
    return port


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[Port], bool]:
    q = access.restrict(select(Port), visibility(ctx))
    q = query.apply_filters(q, COLUMNS, params)
    for text in params.filters.get("fixed_ips", []):
        key, _, value = text.partition("=")
        if key == "ip_address":
            q = q.where(Port.id.in_(select(IPAllocation.port_id).where(
                IPAllocation.ip_address == value)))
        elif key == "subnet_id":
            q = q.where(Port.id.in_(select(IPAllocation.port_id).where(
                IPAllocation.subnet_id == value)))
        elif key == "ip_address_substr":
            q = q.where(Port.id.in_(select(IPAllocation.port_id).where(
                IPAllocation.ip_address.contains(value))))
    if params.filters.get("security_groups"):
        q = q.where(Port.id.in_(select(PortSecurityGroup.port_id).where(
            PortSecurityGroup.security_group_id.in_(params.filters["security_groups"]))))
    q = query.apply_tags(q, Port.id, params)
    return await query.paginate(session, q, Port, COLUMNS, params)


def new_mac(base: str) -> str:
    prefix = base.split(":")[:3]
    tail = [f"{random.randrange(256):02x}" for _ in range(3)]
    return ":".join([*prefix, *tail])


async def network_and_subnets(session: AsyncSession, ctx: RequestContext,
                              network_id: str) -> tuple[Network, list[Subnet]]:
    """The network (as the caller may see it) and its subnets, in one query."""
    q = select(Network, Subnet).outerjoin(Subnet, Subnet.network_id == Network.id).where(
        Network.id == network_id).order_by(Subnet.created_at, Subnet.id)
    q = access.restrict(q, networks.visibility(ctx))
    rows = (await session.execute(q)).all()
    if not rows:
        raise not_found("network", network_id)
    return rows[0][0], [s for _, s in rows if s is not None]


async def _subnets(session: AsyncSession, network_id: str) -> list[Subnet]:
    return list((await session.scalars(select(Subnet).where(
        Subnet.network_id == network_id).order_by(Subnet.created_at, Subnet.id))).all())


async def allocate_ips(session: AsyncSession, net: Network, port: Port,
                       requested: list[dict[str, str]] | None,
                       subnets: list[Subnet] | None = None,
                       sparse: frozenset[str] = frozenset()) -> list[dict[str, str]]:
    """Fixed IPs: the requested ones, or one IPv4 address and the IPv6 ones upstream gives."""
    subnets = subnets if subnets is not None else await _subnets(session, net.id)
    by_id = {s.id: s for s in subnets}
    plan: list[tuple[Subnet, str | None]] = []
    done: list[dict[str, str]] = []
    if requested is None:
        v4 = [s for s in subnets if s.ip_version == 4]
        v6 = [s for s in subnets if s.ip_version == 6]
        router_port = port.device_owner.startswith("network:router")
        auto6 = [s for s in v6 if ipam.is_auto_address(s) and not router_port]
        stateful6 = [s for s in v6 if not ipam.is_auto_address(s)]
        if v4:
            await ipam.lock_subnets(session, [s.id for s in v4])
            for i, candidate in enumerate(v4):
                try:
                    done.append({"subnet_id": candidate.id, "ip_address":
                                 await ipam.allocate_any(session, candidate, port.id,
                                                         blind=candidate.id in sparse)})
                    break
                except Exception as exc:
                    if i == len(v4) - 1 or getattr(exc, "error_type", "") != \
                            "IpAddressGenerationFailure":
                        raise
        plan += [(s, None) for s in auto6]
        plan += [(s, None) for s in stateful6[:1]]
    else:
        for entry in requested:
            subnet: Subnet | None = by_id.get(entry.get("subnet_id", "")) \
                if "subnet_id" in entry else None
            if "subnet_id" in entry and subnet is None:
                raise invalid_input(f"Failed to create port on network {net.id}, because "
                                    f"fixed_ips included invalid subnet {entry['subnet_id']}")
            address = entry.get("ip_address")
            if subnet is None and address is not None:
                ip = ipaddress.ip_address(address)
                subnet = next((s for s in subnets if ip in ipaddress.ip_network(s.cidr)), None)
                if subnet is None:
                    raise bad_request(f"IP address {address} is not a valid IP for any of the "
                                      "subnets on the specified network.", "InvalidIpForNetwork")
            assert subnet is not None
            if address is None and ipam.is_auto_address(subnet) and \
                    not port.device_owner.startswith("network:router"):
                plan.append((subnet, None))
            else:
                plan.append((subnet, address))
    await ipam.lock_subnets(session, [s.id for s, _ in plan])
    for subnet, address in plan:
        if address is None:
            address = await ipam.allocate_any(session, subnet, port.id, port.mac_address,
                                              blind=subnet.id in sparse)
        else:
            address = await ipam.allocate_specific(session, subnet, address, port.id)
        done.append({"subnet_id": subnet.id, "ip_address": address})
    return done


async def _check_security_groups(session: AsyncSession, svc: NetworkService,
                                 ctx: RequestContext, project_id: str,
                                 groups: list[str]) -> list[str]:
    found = await security_groups.visible_ids(session, ctx, project_id, groups)
    for sg in groups:
        if sg not in found:
            raise not_found("security_group", sg)
    return groups


async def create(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 net: Network, data: dict[str, Any], project_id: str,
                 subnets: list[Subnet] | None = None,
                 sparse: frozenset[str] = frozenset()) -> Port:
    """A new port. Given `subnets` (read before the write transaction), a generated MAC is
    not looked up first: the unique constraint catches the rare clash and the caller
    retries (see api.ports)."""
    owner = data.get("device_owner", "")
    security = data.get("port_security_enabled", net.port_security_enabled)
    pairs = data.get("allowed_address_pairs") or []
    if not security and pairs:
        raise conflict("Port Security must be enabled in order to have allowed address "
                       "pairs on a port.", "AddressPairAndPortSecurityRequired")
    groups: list[str] = []
    if "security_groups" in data:
        groups = data["security_groups"]
        if groups and not security:
            raise bad_request("Port security must be enabled and port must have an IP "
                              "address in order to use security groups.",
                              "PortSecurityAndIPRequiredForSecurityGroups")
        groups = await _check_security_groups(session, svc, ctx, project_id, groups)
    elif security and not owner.startswith("network:"):
        groups = [await security_groups.ensure_default(session, svc, project_id)]
    port = Port(
        id=new_uuid(), project_id=project_id, name=data.get("name", ""),
        description=data.get("description", ""), network_id=net.id,
        admin_state_up=data.get("admin_state_up", True),
        status="N/A" if owner == "network:floatingip" else "DOWN",
        device_id=data.get("device_id", ""), device_owner=owner,
        port_security_enabled=security, binding_host_id=data.get("binding:host_id", ""),
        binding_vnic_type=data.get("binding:vnic_type", "normal"),
        binding_profile=data.get("binding:profile", {}), dns_name=data.get("dns_name", ""),
        allowed_address_pairs=_fill_pair_macs(pairs, ""),
        extra_dhcp_opts=data.get("extra_dhcp_opts") or [],
        propagate_uplink_status=data.get("propagate_uplink_status", False), revision_number=0)
    if subnets is None or data.get("mac_address"):
        port.mac_address = await _free_mac(session, svc, net.id, data.get("mac_address"))
    else:
        port.mac_address = new_mac(svc.settings.base_mac)
    port.allowed_address_pairs = _fill_pair_macs(pairs, port.mac_address)
    bind(port, net)
    await insert_row(session, port)  # the port row first: its addresses and groups refer to it
    ips = await allocate_ips(session, net, port, data.get("fixed_ips"), subnets, sparse)
    if groups:
        await session.execute(insert(_PORT_GROUPS), [
            {"port_id": port.id, "security_group_id": sg} for sg in groups])
    if data.get("tags"):
        await standard.set_tags(session, port.id, data["tags"])
    # What rendering the new port needs, known without asking the database again.
    port.fresh = {"ips": ips, "groups": groups, "tags": list(data.get("tags") or [])}
    return port


async def insert_row(session: AsyncSession, row: Any) -> None:
    """INSERT a new ORM object at once, without a flush of the unit of work (a third of a
    port create's CPU), and keep it in the session as persistent and clean: later changes to
    it are flushed as UPDATEs as usual. Every column gets its value (the column default when
    unset) on the object too, so that nothing is left to load lazily."""
    values: dict[str, Any] = {}
    state = row.__dict__
    for prop in sa_inspect(type(row)).column_attrs:
        column = prop.columns[0]
        if prop.key in state:
            value = state[prop.key]
        elif column.default is not None and column.default.is_callable:
            value = column.default.arg(None)  # type: ignore[attr-defined]
            setattr(row, prop.key, value)
        else:
            value = getattr(column.default, "arg", None)
            setattr(row, prop.key, value)
        values[column.key] = value
    await session.execute(insert(type(row).__table__), [values])
    make_transient_to_detached(row)
    session.add(row)


async def _free_mac(session: AsyncSession, svc: NetworkService, network_id: str,
                    wanted: str | None) -> str:
    """The requested MAC if unused on the network, else a new random one that is."""
    for _ in range(8):
        mac = wanted or new_mac(svc.settings.base_mac)
        taken = await session.scalar(select(Port.id).where(
            Port.network_id == network_id, Port.mac_address == mac).limit(1))
        if not taken:
            return mac
        if wanted:
            break
    raise conflict(f"Unable to complete operation for network {network_id}. The mac address "
                   f"{wanted or 'generated'} is in use.", "MacAddressInUse")


def _fill_pair_macs(pairs: list[dict[str, str]], mac: str) -> list[dict[str, str]]:
    return [{"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
            for p in pairs]


def bind(port: Port, net: Network) -> None:
    """Binding to a host: our L2 is a Linux bridge per network on every host."""
    if not port.binding_host_id:
        port.binding_vif_type = "unbound"
        port.binding_vif_details = {}
        return
    port.binding_vif_type = "bridge"
    port.binding_vif_details = {"port_filter": True, "connectivity": "l2",
                                "bridge_name": "brq" + net.id[:11]}


async def update(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 port: Port, net: Network, data: dict[str, Any]) -> dict[str, Any]:
    """Apply a change; returns what the agent boundary must know (old host and state)."""
    before = {"host": port.binding_host_id, "status": port.status,
              "migrating_to": (port.binding_profile or {}).get("migrating_to")}
    for key in ("name", "description", "admin_state_up", "device_id", "device_owner",
                "dns_name", "propagate_uplink_status"):
        if key in data:
            setattr(port, key, data[key] if data[key] is not None else "")
    if "mac_address" in data and data["mac_address"] != port.mac_address:
        if port.binding_host_id and port.status == "ACTIVE":
            raise conflict(f"Port {port.id} is bound: its MAC address cannot be changed.",
                           "PortBound")
        taken = await session.scalar(select(Port.id).where(
            Port.network_id == net.id, Port.mac_address == data["mac_address"]).limit(1))
        if taken:
            raise conflict(f"Unable to complete operation for network {net.id}. The mac "
                           f"address {data['mac_address']} is in use.", "MacAddressInUse")
        port.mac_address = data["mac_address"]
    security = data.get("port_security_enabled", port.port_security_enabled)
    current_groups = list((await session.scalars(select(PortSecurityGroup.security_group_id)
                                                 .where(PortSecurityGroup.port_id == port.id)))
                          .all())
    groups = data.get("security_groups", current_groups)
    pairs = data.get("allowed_address_pairs")
    if pairs is None and "allowed_address_pairs" not in data:
        pairs = port.allowed_address_pairs
    pairs = pairs or []
    if not security:
        if groups and "security_groups" in data:
            raise bad_request("Port security must be enabled and port must have an IP "
                              "address in order to use security groups.",
                              "PortSecurityAndIPRequiredForSecurityGroups")
        if groups:
            raise conflict("Port has security group associated. Cannot disable port security "
                           "or ip address until security group is removed",
                           "PortSecurityPortHasSecurityGroup")
        if pairs:
            raise conflict("Port Security must be enabled in order to have allowed address "
                           "pairs on a port.", "AddressPairAndPortSecurityRequired")
    port.port_security_enabled = security
    if "security_groups" in data:
        await _check_security_groups(session, svc, ctx, port.project_id, groups)
        await session.execute(delete(PortSecurityGroup).where(
            PortSecurityGroup.port_id == port.id))
        for sg in groups:
            session.add(PortSecurityGroup(port_id=port.id, security_group_id=sg))
    port.allowed_address_pairs = _fill_pair_macs(pairs, port.mac_address)
    if "extra_dhcp_opts" in data:
        port.extra_dhcp_opts = _merge_dhcp_opts(port.extra_dhcp_opts, data["extra_dhcp_opts"])
    if "binding:vnic_type" in data:
        port.binding_vnic_type = data["binding:vnic_type"]
    if "binding:profile" in data:
        port.binding_profile = data["binding:profile"]
    if "binding:host_id" in data and data["binding:host_id"] != port.binding_host_id:
        port.binding_host_id = data["binding:host_id"] or ""
        if port.status == "ACTIVE":
            port.status = "DOWN"
        bind(port, net)
    if "fixed_ips" in data:
        await _reallocate(session, net, port, data["fixed_ips"])
    standard.bump(port)
    return before


def _merge_dhcp_opts(current: list[dict[str, Any]],
                     changes: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Options named again replace the old value; a null value removes the option."""
    if changes is None:
        return []
    out = {(o["opt_name"], o.get("ip_version", 4)): o for o in current or []}
    for opt in changes:
        key = (opt["opt_name"], opt.get("ip_version", 4))
        if opt.get("opt_value") is None:
            out.pop(key, None)
        else:
            out[key] = opt
    return list(out.values())


async def _reallocate(session: AsyncSession, net: Network, port: Port,
                      wanted: list[dict[str, str]]) -> None:
    current = (await session.scalars(select(IPAllocation).where(
        IPAllocation.port_id == port.id))).all()
    keep: set[tuple[str, str]] = set()
    new: list[dict[str, str]] = []
    subnets = await _subnets(session, net.id)
    by_id = {s.id: s for s in subnets}
    for entry in wanted:
        match = next((a for a in current if a.ip_address == entry.get("ip_address") and
                      entry.get("subnet_id", a.subnet_id) == a.subnet_id), None)
        if match is None and "ip_address" not in entry:
            match = next((a for a in current if a.subnet_id == entry["subnet_id"] and
                          (a.subnet_id, a.ip_address) not in keep), None)
        if match is not None:
            keep.add((match.subnet_id, match.ip_address))
        else:
            if "subnet_id" in entry and entry["subnet_id"] not in by_id:
                raise invalid_input(f"Failed to update port {port.id}, because fixed_ips "
                                    f"included invalid subnet {entry['subnet_id']}")
            new.append(entry)
    for alloc in current:
        if (alloc.subnet_id, alloc.ip_address) not in keep:
            await session.delete(alloc)
    await session.flush()
    if new:
        await allocate_ips(session, net, port, new, subnets)


async def delete_port(session: AsyncSession, port: Port, *, internal: bool = False) -> None:
    if not internal and port.device_owner in SERVICE_OWNERS[:2]:
        raise conflict(f"Port {port.id} cannot be deleted directly via the port API: has "
                       f"device owner {port.device_owner}.", "ServicePortInUse")
    if not internal and port.device_owner == "network:floatingip":
        raise conflict(f"Port {port.id} cannot be deleted directly via the port API: has "
                       "device owner network:floatingip.", "ServicePortInUse")
    for fip in (await session.scalars(select(FloatingIP).where(
            FloatingIP.fixed_port_id == port.id))).all():
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        standard.bump(fip)
    await session.execute(delete(IPAllocation).where(IPAllocation.port_id == port.id))
    await session.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
    await standard.drop_tags(session, port.id)
    await session.delete(port)


# -- rendering ---------------------------------------------------------------------------------
class Extras:
    def __init__(self) -> None:
        self.ips: dict[str, list[dict[str, str]]] = {}
        self.groups: dict[str, list[str]] = {}
        self.tags: dict[str, list[str]] = {}
        self.dns_domain = ""


def fresh_extras(ports: Sequence[Port], dns_domain: str = "") -> Extras:
    """Extras of ports this request has just created (see create)."""
    out = Extras()
    out.dns_domain = dns_domain
    for port in ports:
        fresh = port.fresh
        out.ips[port.id] = list(fresh["ips"])
        out.groups[port.id] = list(fresh["groups"])
        out.tags[port.id] = list(fresh["tags"])
    return out


async def extras(session: AsyncSession, ports: Sequence[Port], dns_domain: str = "") -> Extras:
    out = Extras()
    out.dns_domain = dns_domain
    ids = [p.id for p in ports]
    out.tags = {i: [] for i in ids}
    for start in range(0, len(ids), 300):
        chunk = ids[start:start + 300]
        # Addresses, groups and tags of the page in one round trip.
        rows = (await session.execute(union_all(
            select(literal("ip").label("kind"), IPAllocation.port_id.label("pid"),
                   IPAllocation.subnet_id.label("a"), IPAllocation.ip_address.label("b"))
            .where(IPAllocation.port_id.in_(chunk)),
            select(literal("sg"), PortSecurityGroup.port_id,
                   PortSecurityGroup.security_group_id, literal(""))
            .where(PortSecurityGroup.port_id.in_(chunk)),
            select(literal("tag"), Tag.resource_id, Tag.tag, literal(""))
            .where(Tag.resource_id.in_(chunk))))).all()
        for kind, pid, a, b in rows:
            if kind == "ip":
                out.ips.setdefault(pid, []).append({"subnet_id": a, "ip_address": b})
            elif kind == "sg":
                out.groups.setdefault(pid, []).append(a)
            else:
                out.tags[pid].append(a)
    for tags in out.tags.values():
        tags.sort()
    return out


def _ip_key(entry: dict[str, str]) -> tuple[int, int]:
    ip = ipaddress.ip_address(entry["ip_address"])
    return ip.version, int(ip)


def render(port: Port, ex: Extras, hidden: Any = ()) -> dict[str, Any]:
    body = standard.standard(port)
    ips = sorted(ex.ips.get(port.id, []), key=_ip_key)
    body.update({
        "name": port.name,
        "network_id": port.network_id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "status": port.status,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "fixed_ips": ips,
        "security_groups": sorted(ex.groups.get(port.id, [])),
        "port_security_enabled": port.port_security_enabled,
        "allowed_address_pairs": list(port.allowed_address_pairs or []),
        "extra_dhcp_opts": list(port.extra_dhcp_opts or []),
        "binding:host_id": port.binding_host_id,
        "binding:vnic_type": port.binding_vnic_type,
        "binding:profile": port.binding_profile or {},
        "binding:vif_type": port.binding_vif_type,
        "binding:vif_details": port.binding_vif_details or {},
        "dns_name": port.dns_name,
        "dns_assignment": [_dns(port, ip["ip_address"], ex.dns_domain) for ip in ips],
        "propagate_uplink_status": port.propagate_uplink_status,
        "ip_allocation": "immediate",
        "resource_request": None,
        "tags": ex.tags.get(port.id, []),
    })
    for key in hidden:
        body.pop(key, None)
    return body


def _dns(port: Port, ip: str, domain: str) -> dict[str, str]:
    hostname = port.dns_name or "host-" + ip.replace(".", "-").replace(":", "-")
    return {"hostname": hostname, "ip_address": ip,
            "fqdn": f"{hostname}.{domain}" if domain else hostname}

