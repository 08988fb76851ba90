"""Routers: external gateway (network, SNAT, external fixed IPs), interfaces by subnet or
port, static routes."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
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
    Router,
    RouterPort,
    Subnet,
)

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

GW = "network:router_gateway"
IFACE = "network:router_interface"
MAX_ROUTES = 30


def _gateway_info(value: Any, field: str) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise invalid_input(f"'{value}' is not a dictionary")
    allowed = {"network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"}
    extra = set(value) - allowed
    if extra:
        raise invalid_input(f"Unexpected keys supplied: {', '.join(sorted(extra))}")
    if "network_id" not in value:
        raise invalid_input("Validation of dictionary's keys failed. Expected keys: "
                            "{'network_id'} Provided keys: " + str(set(value)))
    out: dict[str, Any] = {"network_id": v.check_uuid(value["network_id"], "network_id")}
    if "enable_snat" in value:
        out["enable_snat"] = v.boolean(value["enable_snat"], "enable_snat")
    if "external_fixed_ips" in value:
        from nimbus.network.port_attrs import fixed_ips

        out["external_fixed_ips"] = fixed_ips(value["external_fixed_ips"], field)
    return out


def routes(value: Any, field: str) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"Invalid format for routes: {value}", "InvalidRoutes")
    out: list[dict[str, str]] = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise bad_request(f"Invalid format for routes: {value}", "InvalidRoutes")
        clean = {"destination": str(v.cidr(route["destination"], strict=False)),
                 "nexthop": str(v.ip(route["nexthop"]))}
        if clean not in out:
            out.append(clean)
    if len(out) > MAX_ROUTES:
        raise bad_request(f"Unable to complete operation for router. The number of routes "
                          f"exceeds the maximum {MAX_ROUTES}.", "RoutesExhausted")
    return out


SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "admin_state_up": v.Attr(v.boolean),
    "external_gateway_info": v.Attr(_gateway_info),
    "routes": v.Attr(routes, post=False),
    "distributed": v.Attr(v.boolean), "ha": v.Attr(v.boolean),
    "availability_zone_hints": v.Attr(v.string_list, put=False),
    "flavor_id": v.Attr(v.uuid_or_none, put=False),
    "enable_ndp_proxy": v.Attr(v.boolean),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}
COLUMNS: query.Columns = {
    "id": Router.id, "name": Router.name, "description": Router.description,
    "project_id": Router.project_id, "admin_state_up": Router.admin_state_up,
    "status": Router.status, "distributed": Router.distributed, "ha": Router.ha,
    "revision_number": Router.revision_number, "created_at": Router.created_at,
    "updated_at": Router.updated_at,
}


async def get(session: AsyncSession, ctx: RequestContext, router_id: str) -> Router:
    q = access.restrict(select(Router).where(Router.id == router_id),
                        access.visible(ctx, Router))
    router = (await session.scalars(q)).first()
    if router is None:
        raise not_found("router", router_id)
    return router


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[Router], bool]:
    q = access.restrict(select(Router), access.visible(ctx, Router))
    q = query.apply_filters(q, COLUMNS, params)
    q = query.apply_tags(q, Router.id, params)
    return await query.paginate(session, q, Router, COLUMNS, params)


async def create(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 data: dict[str, Any], project_id: str) -> Router:
    router = Router(id=new_uuid(), project_id=project_id, name=data.get("name", ""),
                    description=data.get("description", ""),
                    admin_state_up=data.get("admin_state_up", True), status="ACTIVE",
                    enable_snat=True, routes=[], distributed=data.get("distributed", False),
                    ha=data.get("ha", False),
                    availability_zone_hints=data.get("availability_zone_hints", []),
                    revision_number=0)
    session.add(router)
    await session.flush()
    if data.get("external_gateway_info"):
        await set_gateway(session, svc, ctx, router, data["external_gateway_info"])
    if data.get("tags"):
        await standard.set_tags(session, router.id, data["tags"])
    return router


async def _external_network(session: AsyncSession, ctx: RequestContext,
                            network_id: str) -> Network:
    net = await session.get(Network, network_id)
    if net is None:
        raise not_found("network", network_id)
    if not net.external:
        raise bad_request(f"Network {network_id} is not a valid external network")
    return net


async def set_gateway(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                      router: Router, info: dict[str, Any] | None) -> None:
    current = await _gw_port(session, router)
    if info is None:
        if current is not None:
            await _check_gateway_unused(session, router)
            await ports.delete_port(session, current, internal=True)
            await session.flush()
        router.gw_network_id = None
        router.gw_port_id = None
        router.enable_snat = True
        return
    net = await _external_network(session, ctx, info["network_id"])
    router.enable_snat = info.get("enable_snat", True if router.gw_port_id is None
                                  else router.enable_snat)
    wanted_ips = info.get("external_fixed_ips")
    if current is not None and current.network_id == net.id:
        if wanted_ips is not None:
            await ports._reallocate(session, net, current, wanted_ips)  # noqa: SLF001
            standard.bump(current)
        return
    if current is not None:
        await _check_gateway_unused(session, router)
        await ports.delete_port(session, current, internal=True)
        await session.flush()
    port = Port(id=new_uuid(), project_id="", name="", description="", network_id=net.id,
                mac_address=ports.new_mac(svc.settings.base_mac), admin_state_up=True,
                status="ACTIVE", device_id=router.id, device_owner=GW,
                port_security_enabled=False, binding_host_id="", binding_vnic_type="normal",
                binding_profile={}, dns_name="", allowed_address_pairs=[],
                extra_dhcp_opts=[], propagate_uplink_status=False, revision_number=0)
    ports.bind(port, net)
    session.add(port)
    await session.flush()
    subnets = list((await session.scalars(select(Subnet).where(
        Subnet.network_id == net.id, Subnet.ip_version == 4).order_by(Subnet.created_at)))
        .all())
    if wanted_ips is None and not subnets:
        raise bad_request(f"Network {net.id} has no IPv4 subnet for the router gateway.")
    await ports.allocate_ips(session, net, port, wanted_ips)
    session.add(RouterPort(router_id=router.id, port_id=port.id, port_type=GW))
    router.gw_network_id = net.id
    router.gw_port_id = port.id


async def _check_gateway_unused(session: AsyncSession, router: Router) -> None:
    used = await session.scalar(select(FloatingIP.id).where(
        FloatingIP.router_id == router.id).limit(1))
    if used:
        raise conflict(f"Gateway cannot be updated for router {router.id}, since a gateway "
                       f"to external network {router.gw_network_id} is required by one or "
                       "more floating IPs.", "RouterExternalGatewayInUseByFloatingIp")


async def _gw_port(session: AsyncSession, router: Router) -> Port | None:
    if not router.gw_port_id:
        return None
    return await session.get(Port, router.gw_port_id)


async def interface_ports(session: AsyncSession, router_id: str) -> list[Port]:
    return list((await session.scalars(select(Port).join(
        RouterPort, RouterPort.port_id == Port.id).where(
        RouterPort.router_id == router_id, RouterPort.port_type == IFACE))).all())


async def _interface_subnets(session: AsyncSession, router_id: str) -> list[tuple[str, str,
                                                                                 str]]:
    """(port_id, subnet_id, cidr) of every interface address."""
    rows = (await session.execute(select(IPAllocation.port_id, Subnet.id, Subnet.cidr).join(
        Subnet, Subnet.id == IPAllocation.subnet_id).join(
        RouterPort, RouterPort.port_id == IPAllocation.port_id).where(
        RouterPort.router_id == router_id, RouterPort.port_type == IFACE))).all()
    return [(p, s, c) for p, s, c in rows]


async def update(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 router: Router, data: dict[str, Any]) -> None:
    for key in ("name", "description", "admin_state_up"):
        if key in data:
            setattr(router, key, data[key] if data[key] is not None else "")
    for key in ("distributed", "ha"):
        if key in data and data[key] != getattr(router, key):
            if router.admin_state_up:
                raise bad_request(f"Cannot update read-only attribute {key}: the router must "
                                  "be administratively down first.")
            setattr(router, key, data[key])
    if "external_gateway_info" in data:
        await set_gateway(session, svc, ctx, router, data["external_gateway_info"])
    if "routes" in data:
        await _check_routes(session, router, data["routes"])
        router.routes = data["routes"]
    standard.bump(router)


async def _check_routes(session: AsyncSession, router: Router,
                        wanted: list[dict[str, str]]) -> None:
    cidrs = [ipaddress.ip_network(c) for _, _, c in await _interface_subnets(session,
                                                                                router.id)]
    gw = await _gw_port(session, router)
    if gw is not None:
        for sub in (await session.scalars(select(Subnet.cidr).where(
                Subnet.network_id == gw.network_id))).all():
            cidrs.append(ipaddress.ip_network(sub))
    own_ips = {a for a in (await session.scalars(select(IPAllocation.ip_address).join(
        RouterPort, RouterPort.port_id == IPAllocation.port_id).where(
        RouterPort.router_id == router.id))).all()}
    for route in wanted:
        hop = ipaddress.ip_address(route["nexthop"])
        if not any(hop in c for c in cidrs):
            raise bad_request(f"Invalid format for routes: {wanted}, the nexthop is not "
                              "connected with router", "InvalidRoutes")
        if route["nexthop"] in own_ips:
            raise bad_request(f"Invalid format for routes: {wanted}, the nexthop is used by "
                              "router", "InvalidRoutes")


async def change_routes(session: AsyncSession, router: Router, add: list[dict[str, str]],
                        remove: list[dict[str, str]]) -> None:
    current = [r for r in router.routes or [] if r not in remove]
    for r in add:
        if r not in current:
            current.append(r)
    await _check_routes(session, router, [r for r in current if r in add])
    router.routes = current
    standard.bump(router)


async def add_interface(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                        router: Router, info: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(info, dict) or not ({"subnet_id", "port_id"} & set(info)):
        raise bad_request("Either subnet_id or port_id must be specified")
    if "subnet_id" in info and "port_id" in info:
        raise bad_request("Cannot specify both subnet-id and port-id")
    existing = await _interface_subnets(session, router.id)
    if "port_id" in info:
        port = await ports.get(session, ctx, v.check_uuid(info["port_id"], "port_id"))
        if port.device_id or port.device_owner:
            raise conflict(f"Unable to complete operation on port {port.id} for network "
                           f"{port.network_id}. Port already has an attached device "
                           f"{port.device_id}.", "PortInUse")
        ips = (await session.execute(select(IPAllocation.subnet_id, Subnet.cidr).join(
            Subnet, Subnet.id == IPAllocation.subnet_id).where(
            IPAllocation.port_id == port.id))).all()
        if not ips:
            raise bad_request("Router port must have at least one fixed IP")
        for sid, cidr in ips:
            _check_overlap(existing, sid, cidr)
        port.device_id, port.device_owner = router.id, IFACE
        port.port_security_enabled = False
        from sqlalchemy import delete as sql_delete

        from nimbus.network.models import PortSecurityGroup

        await session.execute(sql_delete(PortSecurityGroup).where(
            PortSecurityGroup.port_id == port.id))
        standard.bump(port)
        subnet_ids = [sid for sid, _ in ips]
    else:
        subnet = await session.get(Subnet, v.check_uuid(info["subnet_id"], "subnet_id"))
        if subnet is None:
            raise not_found("subnet", info["subnet_id"])
        net = await session.get(Network, subnet.network_id)
        assert net is not None
        if not (ctx.is_admin or subnet.project_id == access.project_of(ctx) or
                net.project_id == access.project_of(ctx) or net.shared):
            raise not_found("subnet", subnet.id)
        if not subnet.gateway_ip:
            raise bad_request(f"Bad router request: Subnet {subnet.id} does not have a "
                              "gateway IP.")
        if any(sid == subnet.id for _, sid, _ in existing):
            raise bad_request(f"Router already has a port on subnet {subnet.id}.")
        _check_overlap(existing, subnet.id, subnet.cidr)
        port = Port(id=new_uuid(), project_id=router.project_id, name="", description="",
                    network_id=net.id, mac_address=ports.new_mac(svc.settings.base_mac),
                    admin_state_up=True, status="ACTIVE", device_id=router.id,
                    device_owner=IFACE, port_security_enabled=False, binding_host_id="",
                    binding_vnic_type="normal", binding_profile={}, dns_name="",
                    allowed_address_pairs=[], extra_dhcp_opts=[],
                    propagate_uplink_status=False, revision_number=0)
        ports.bind(port, net)
        session.add(port)
        await session.flush()
        await ports.allocate_ips(session, net, port, [{"subnet_id": subnet.id,
                                                       "ip_address": subnet.gateway_ip}])
        subnet_ids = [subnet.id]
    session.add(RouterPort(router_id=router.id, port_id=port.id, port_type=IFACE))
    standard.bump(router)
    await session.flush()
    return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
            "port_id": port.id, "network_id": port.network_id, "subnet_id": subnet_ids[0],
            "subnet_ids": subnet_ids}


def _check_overlap(existing: Sequence[tuple[str, str, str]], subnet_id: str, cidr: str) -> None:
    new = ipaddress.ip_network(cidr)
    for _, sid, other in existing:
        if sid != subnet_id and ipaddress.ip_network(other).overlaps(new):
            raise bad_request(f"Bad router request: Cidr {cidr} of subnet {subnet_id} overlaps "
                              f"with cidr {other} of subnet {sid}.")


async def remove_interface(session: AsyncSession, ctx: RequestContext, router: Router,
                           info: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(info, dict) or not ({"subnet_id", "port_id"} & set(info)):
        raise bad_request("Either subnet_id or port_id must be specified")
    interfaces = await _interface_subnets(session, router.id)
    if "port_id" in info:
        matches = [(p, s, c) for p, s, c in interfaces if p == info["port_id"]]
        if "subnet_id" in info:
            matches = [m for m in matches if m[1] == info["subnet_id"]]
        if not matches:
            raise ApiNotFound(f"Router {router.id} does not have an interface with id "
                              f"{info['port_id']}", "RouterInterfaceNotFound")
    else:
        matches = [(p, s, c) for p, s, c in interfaces if s == info["subnet_id"]]
        if not matches:
            raise ApiNotFound(f"Router {router.id} has no interface on subnet "
                              f"{info['subnet_id']}", "RouterInterfaceNotFoundForSubnet")
    port_id, subnet_id, cidr = matches[0]
    for sid in {m[1] for m in matches}:
        await _check_interface_unused(session, router, sid, cidr)
    port = await session.get(Port, port_id)
    assert port is not None
    out = {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
           "port_id": port.id, "network_id": port.network_id, "subnet_id": subnet_id,
           "subnet_ids": [m[1] for m in matches]}
    await ports.delete_port(session, port, internal=True)
    standard.bump(router)
    return out


def ApiNotFound(message: str, kind: str) -> Exception:  # noqa: N802
    from nimbus.web.errors import NotFound

    return NotFound(message, error_type=kind)


async def _check_interface_unused(session: AsyncSession, router: Router, subnet_id: str,
                                  cidr: str) -> None:
    net = ipaddress.ip_network(cidr)
    for route in router.routes or []:
        if ipaddress.ip_address(route["nexthop"]) in net:
            raise conflict(f"Router interface for subnet {subnet_id} on router {router.id} "
                           f"cannot be deleted, as it is required by one or more routes.",
                           "RouterInterfaceInUseByRoute")
    fips = (await session.execute(select(FloatingIP.id).join(
        IPAllocation, IPAllocation.port_id == FloatingIP.fixed_port_id).where(
        FloatingIP.router_id == router.id, IPAllocation.subnet_id == subnet_id))).first()
    if fips:
        raise conflict(f"Router interface for subnet {subnet_id} on router {router.id} cannot "
                       "be deleted, as it is required by one or more floating IPs.",
                       "RouterInterfaceInUseByFloatingIP")


async def delete_router(session: AsyncSession, router: Router) -> None:
    if await interface_ports(session, router.id):
        raise conflict(f"Router {router.id} still has ports", "RouterInUse")
    gw = await _gw_port(session, router)
    if gw is not None:
        await _check_gateway_unused(session, router)
        await ports.delete_port(session, gw, internal=True)
    await standard.drop_tags(session, router.id)
    await session.delete(router)


async def bootstrap_router(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                           project_id: str, name: str, public: Network | None,
                           subnet: Subnet) -> Router:
    router = await create(session, svc, ctx, {"name": name}, project_id)
    if public is not None:
        await set_gateway(session, svc, ctx, router, {"network_id": public.id})
    await add_interface(session, svc, ctx, router, {"subnet_id": subnet.id})
    return router


# -- rendering ---------------------------------------------------------------------------------
async def render_many(session: AsyncSession, routers: Sequence[Router],
                      hidden: Any = ()) -> list[dict[str, Any]]:
    ids = [r.id for r in routers]
    tags = await standard.tags_of(session, ids)
    gw_ips: dict[str, list[dict[str, str]]] = {}
    gw_ports = [r.gw_port_id for r in routers if r.gw_port_id]
    if gw_ports:
        for pid, sid, ip in (await session.execute(select(
                IPAllocation.port_id, IPAllocation.subnet_id, IPAllocation.ip_address).where(
                IPAllocation.port_id.in_(gw_ports)))).all():
            gw_ips.setdefault(pid, []).append({"subnet_id": sid, "ip_address": ip})
    out = []
    for r in routers:
        body = standard.standard(r)
        gateway = None
        if r.gw_network_id:
            gateway = {"network_id": r.gw_network_id, "enable_snat": r.enable_snat,
                       "external_fixed_ips": gw_ips.get(r.gw_port_id or "", [])}
        body.update({
            "name": r.name, "status": r.status, "admin_state_up": r.admin_state_up,
            "external_gateway_info": gateway, "routes": list(r.routes or []),
            "distributed": r.distributed, "ha": r.ha,
            "availability_zone_hints": list(r.availability_zone_hints or []),
            "availability_zones": ["nova"], "flavor_id": None, "tags": tags.get(r.id, []),
        })
        for key in hidden:
            body.pop(key, None)
        out.append(body)
    return out
