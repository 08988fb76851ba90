"""Floating IPs: an address of an external network, mapped to a fixed IP of a port reachable
through a router with its gateway on that network; and port forwardings on them."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, ports, query, standard
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, invalid_input, not_found
from nimbus.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    PortForwarding,
    Router,
    RouterPort,
)
from nimbus.web.errors import NotFound

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

SPEC = {
    "floating_network_id": v.Attr(v.check_uuid, put=False, required=True),
    "floating_ip_address": v.Attr(v.nullable(lambda x, f: str(v.ip(x))), put=False),
    "subnet_id": v.Attr(v.uuid_or_none, put=False),
    "port_id": v.Attr(v.uuid_or_none),
    "fixed_ip_address": v.Attr(v.nullable(lambda x, f: str(v.ip(x)))),
    "description": v.Attr(v.name255),
    "dns_name": v.Attr(v.name255, put=False), "dns_domain": v.Attr(v.name255, put=False),
    "qos_policy_id": v.Attr(v.uuid_or_none),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}
COLUMNS: query.Columns = {
    "id": FloatingIP.id, "description": FloatingIP.description,
    "project_id": FloatingIP.project_id,
    "floating_network_id": FloatingIP.floating_network_id,
    "floating_ip_address": FloatingIP.floating_ip_address,
    "port_id": FloatingIP.fixed_port_id, "fixed_ip_address": FloatingIP.fixed_ip_address,
    "router_id": FloatingIP.router_id, "status": FloatingIP.status,
    "revision_number": FloatingIP.revision_number, "created_at": FloatingIP.created_at,
    "updated_at": FloatingIP.updated_at,
}


async def get(session: AsyncSession, ctx: RequestContext, fip_id: str) -> FloatingIP:
    q = access.restrict(select(FloatingIP).where(FloatingIP.id == fip_id),
                        access.visible(ctx, FloatingIP))
    fip = (await session.scalars(q)).first()
    if fip is None:
        raise not_found("floatingip", fip_id)
    return fip


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[FloatingIP], bool]:
    q = access.restrict(select(FloatingIP), access.visible(ctx, FloatingIP))
    q = query.apply_filters(q, COLUMNS, params)
    q = query.apply_tags(q, FloatingIP.id, params)
    return await query.paginate(session, q, FloatingIP, COLUMNS, params)


async def create(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 data: dict[str, Any], project_id: str) -> FloatingIP:
    net = await session.get(Network, data["floating_network_id"])
    if net is None:
        raise not_found("network", data["floating_network_id"])
    if not net.external:
        raise bad_request(f"Bad floatingip request: Network {net.id} is not a valid external "
                          "network.")
    fip_id = new_uuid()
    port = Port(id=new_uuid(), project_id="", name="", description="", network_id=net.id,
                mac_address=ports.new_mac(svc.settings.base_mac), admin_state_up=True,
                status="N/A", device_id=fip_id, device_owner="network:floatingip",
                port_security_enabled=False, binding_host_id="", binding_vnic_type="normal",
                binding_profile={}, binding_vif_type="unbound", binding_vif_details={},
                dns_name="", allowed_address_pairs=[], extra_dhcp_opts=[],
                propagate_uplink_status=False, revision_number=0)
    session.add(port)
    await session.flush()
    wanted: list[dict[str, str]] | None = None
    if data.get("floating_ip_address"):
        wanted = [{"ip_address": data["floating_ip_address"]}]
        if data.get("subnet_id"):
            wanted[0]["subnet_id"] = data["subnet_id"]
    elif data.get("subnet_id"):
        wanted = [{"subnet_id": data["subnet_id"]}]
    else:
        from nimbus.network.models import Subnet

        v4 = (await session.scalars(select(Subnet.id).where(
            Subnet.network_id == net.id, Subnet.ip_version == 4))).all()
        if not v4:
            raise bad_request(f"Bad floatingip request: Network {net.id} does not contain any "
                              "IPv4 subnet")
    await ports.allocate_ips(session, net, port, wanted)
    address = await session.scalar(select(IPAllocation.ip_address).where(
        IPAllocation.port_id == port.id))
    assert address is not None
    fip = FloatingIP(id=fip_id, project_id=project_id, floating_network_id=net.id,
                     floating_ip_address=address, floating_port_id=port.id,
                     description=data.get("description", ""), status="DOWN",
                     dns_name=data.get("dns_name", ""), dns_domain=data.get("dns_domain", ""),
                     revision_number=0)
    session.add(fip)
    await session.flush()
    if data.get("port_id"):
        await associate(session, ctx, fip, data["port_id"], data.get("fixed_ip_address"))
    if data.get("tags"):
        await standard.set_tags(session, fip.id, data["tags"])
    return fip


async def associate(session: AsyncSession, ctx: RequestContext, fip: FloatingIP,
                    port_id: str | None, fixed_ip: str | None) -> None:
    if port_id is None:
        fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
        fip.status = "DOWN"
        return
    port = await ports.get(session, ctx, port_id)
    if not ctx.is_admin and port.project_id != fip.project_id:
        raise not_found("port", port_id)
    if await session.scalar(select(PortForwarding.id).where(
            PortForwarding.floatingip_id == fip.id).limit(1)):
        raise conflict(f"Floating IP {fip.id} has port forwardings; it cannot be associated "
                       "with a port.",
                       "FloatingIPPortForwardingInUse")
    ips = (await session.execute(select(IPAllocation.ip_address, IPAllocation.subnet_id).where(
        IPAllocation.port_id == port.id))).all()
    v4 = [(ip, sid) for ip, sid in ips if ipaddress.ip_address(ip).version == 4]
    if fixed_ip is not None:
        chosen = next(((ip, sid) for ip, sid in v4 if ip == fixed_ip), None)
        if chosen is None:
            raise bad_request(f"Port {port.id} does not have fixed ip {fixed_ip}")
    else:
        if not v4:
            raise bad_request(f"Bad floatingip request: Port {port.id} does not have any IPv4 "
                              "address.")
        if len(v4) > 1:
            raise bad_request(f"Port {port.id} has multiple fixed IPv4 addresses. Must provide "
                              "a specific IPv4 address when assigning a floating IP")
        chosen = v4[0]
    router_id = await _router_for(session, chosen[1], fip.floating_network_id)
    if router_id is None:
        raise NotFound(f"External network {fip.floating_network_id} is not reachable from "
                       f"subnet {chosen[1]}.  Therefore, cannot associate Port {port.id} "
                       "with a Floating IP.", error_type="ExternalGatewayForFloatingIPNotFound")
    taken = await session.scalar(select(FloatingIP.id).where(
        FloatingIP.fixed_port_id == port.id, FloatingIP.fixed_ip_address == chosen[0],
        FloatingIP.id != fip.id).limit(1))
    if taken:
        raise conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) "
                       f"with port {port.id} using fixed IP {chosen[0]}, as that fixed IP "
                       f"already has a floating IP on external network "
                       f"{fip.floating_network_id}.", "FloatingIPPortAlreadyAssociated")
    fip.fixed_port_id, fip.fixed_ip_address, fip.router_id = port.id, chosen[0], router_id
    fip.status = "ACTIVE"
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise conflict(f"Cannot associate floating IP {fip.floating_ip_address} with port "
                       f"{port.id}: it already has one.",
                       "FloatingIPPortAlreadyAssociated") from None


async def _router_for(session: AsyncSession, subnet_id: str, ext_net: str) -> str | None:
    """A router with an interface on the subnet and its gateway on the external network."""
    rows = (await session.execute(select(Router.id).join(
        RouterPort, RouterPort.router_id == Router.id).join(
        IPAllocation, IPAllocation.port_id == RouterPort.port_id).where(
        IPAllocation.subnet_id == subnet_id, RouterPort.port_type == "network:router_interface",
        Router.gw_network_id == ext_net))).first()
    return rows[0] if rows else None


async def update(session: AsyncSession, ctx: RequestContext, fip: FloatingIP,
                 data: dict[str, Any]) -> None:
    if "description" in data:
        fip.description = data["description"] or ""
    if "port_id" in data:
        await associate(session, ctx, fip, data["port_id"], data.get("fixed_ip_address"))
    elif "fixed_ip_address" in data:
        if fip.fixed_port_id is None:
            raise invalid_input("fixed_ip_address cannot be specified without a port_id")
        await associate(session, ctx, fip, fip.fixed_port_id, data["fixed_ip_address"])
    standard.bump(fip)


async def delete_fip(session: AsyncSession, fip: FloatingIP) -> None:
    port = await session.get(Port, fip.floating_port_id)
    await standard.drop_tags(session, fip.id)
    await session.delete(fip)
    await session.flush()
    if port is not None:
        await ports.delete_port(session, port, internal=True)


async def render_many(session: AsyncSession, fips: Sequence[FloatingIP]) -> list[dict[str, Any]]:
    ids = [f.id for f in fips]
    tags = await standard.tags_of(session, ids)
    port_ids = [f.fixed_port_id for f in fips if f.fixed_port_id]
    details = {}
    if port_ids:
        for p in (await session.scalars(select(Port).where(Port.id.in_(port_ids)))).all():
            details[p.id] = {"name": p.name, "network_id": p.network_id,
                             "mac_address": p.mac_address, "admin_state_up": p.admin_state_up,
                             "status": p.status, "device_id": p.device_id,
                             "device_owner": p.device_owner}
    forwardings: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for pf in (await session.scalars(select(PortForwarding).where(
                PortForwarding.floatingip_id.in_(ids)))).all():
            forwardings.setdefault(pf.floatingip_id, []).append(render_pf(pf, short=True))
    out = []
    for f in fips:
        body = standard.standard(f)
        body.update({
            "floating_ip_address": f.floating_ip_address,
            "floating_network_id": f.floating_network_id,
            "router_id": f.router_id, "port_id": f.fixed_port_id,
            "fixed_ip_address": f.fixed_ip_address, "status": f.status,
            "port_details": details.get(f.fixed_port_id or ""),
            "port_forwardings": forwardings.get(f.id, []),
            "dns_name": f.dns_name, "dns_domain": f.dns_domain,
            "qos_policy_id": None, "tags": tags.get(f.id, []),
        })
        out.append(body)
    return out


# -- port forwardings --------------------------------------------------------------------------
def _proto(value: Any, field: str) -> str:
    if value not in ("tcp", "udp"):
        raise invalid_input(f"'{value}' is not in ['tcp', 'udp']")
    return str(value)


def _l4port(value: Any, field: str) -> int:
    return v.integer(value, field, 1, 65535)


PF_SPEC = {
    "internal_port_id": v.Attr(v.check_uuid, required=True),
    "internal_ip_address": v.Attr(lambda x, f: str(v.ip(x)), required=True),
    "internal_port": v.Attr(_l4port, required=True),
    "external_port": v.Attr(_l4port, required=True),
    "protocol": v.Attr(_proto, required=True),
    "description": v.Attr(v.name255),
}
PF_COLUMNS: query.Columns = {
    "id": PortForwarding.id, "internal_port_id": PortForwarding.internal_port_id,
    "internal_ip_address": PortForwarding.internal_ip_address,
    "internal_port": PortForwarding.internal_port,
    "external_port": PortForwarding.external_port, "protocol": PortForwarding.protocol,
    "description": PortForwarding.description,
}


async def _check_pf(session: AsyncSession, ctx: RequestContext, fip: FloatingIP,
                    pf: PortForwarding) -> None:
    if fip.fixed_port_id:
        raise conflict(f"Floating IP {fip.id} is associated with port {fip.fixed_port_id}; "
                       "it cannot have port forwardings.", "FloatingIPPortForwardingInUse")
    port = await ports.get(session, ctx, pf.internal_port_id)
    ips = (await session.execute(select(IPAllocation.ip_address, IPAllocation.subnet_id).where(
        IPAllocation.port_id == port.id))).all()
    match = next((sid for ip, sid in ips if ip == pf.internal_ip_address), None)
    if match is None:
        raise bad_request(f"The internal IP {pf.internal_ip_address} is not an address of port "
                          f"{port.id}.")
    if await _router_for(session, match, fip.floating_network_id) is None:
        raise NotFound(f"External network {fip.floating_network_id} is not reachable from "
                       f"subnet {match}.", error_type="ExternalGatewayForFloatingIPNotFound")
    others = (await session.scalars(select(PortForwarding).where(
        PortForwarding.floatingip_id == fip.id, PortForwarding.id != pf.id))).all()
    for other in others:
        if other.protocol == pf.protocol and other.external_port == pf.external_port:
            raise bad_request(f"A port forwarding of floating IP {fip.id} already uses "
                              f"{pf.protocol} port {pf.external_port}.")
    internal = await session.scalar(select(PortForwarding.id).where(
        PortForwarding.internal_port_id == pf.internal_port_id,
        PortForwarding.internal_ip_address == pf.internal_ip_address,
        PortForwarding.internal_port == pf.internal_port,
        PortForwarding.protocol == pf.protocol, PortForwarding.id != pf.id).limit(1))
    if internal:
        raise bad_request(f"{pf.internal_ip_address}:{pf.internal_port}/{pf.protocol} is "
                          "already forwarded.")
    fip.router_id = fip.router_id or await _router_for(session, match,
                                                        fip.floating_network_id)


async def create_pf(session: AsyncSession, ctx: RequestContext, fip: FloatingIP,
                    data: dict[str, Any]) -> PortForwarding:
    pf = PortForwarding(id=new_uuid(), floatingip_id=fip.id, **{
        k: data[k] for k in ("internal_port_id", "internal_ip_address", "internal_port",
                             "external_port", "protocol")},
        description=data.get("description", ""))
    await _check_pf(session, ctx, fip, pf)
    session.add(pf)
    fip.status = "ACTIVE"
    standard.bump(fip)
    await session.flush()
    return pf


async def get_pf(session: AsyncSession, fip: FloatingIP, pf_id: str) -> PortForwarding:
    pf = await session.get(PortForwarding, pf_id)
    if pf is None or pf.floatingip_id != fip.id:
        raise not_found("port_forwarding", pf_id)
    return pf


async def update_pf(session: AsyncSession, ctx: RequestContext, fip: FloatingIP,
                    pf: PortForwarding, data: dict[str, Any]) -> None:
    for key, value in data.items():
        setattr(pf, key, value)
    await _check_pf(session, ctx, fip, pf)
    standard.bump(fip)


async def delete_pf(session: AsyncSession, fip: FloatingIP, pf: PortForwarding) -> None:
    await session.delete(pf)
    await session.flush()
    if not await session.scalar(select(PortForwarding.id).where(
            PortForwarding.floatingip_id == fip.id).limit(1)):
        fip.router_id = None
        fip.status = "DOWN"
    standard.bump(fip)


def render_pf(pf: PortForwarding, short: bool = False) -> dict[str, Any]:
    body = {"id": pf.id, "internal_port_id": pf.internal_port_id,
            "internal_ip_address": pf.internal_ip_address, "internal_port": pf.internal_port,
            "external_port": pf.external_port, "protocol": pf.protocol,
            "description": pf.description}
    if short:
        body.pop("id")
    return body
