"""What an L3 agent must build for a router (qrouter namespace, SNAT, floating-IP DNAT, port
forwardings, static routes), computed by the server; and L3 agent scheduling.

A scheduled router's ports (interfaces and gateway) are bound to its agent's host, so that
the L2 agent there puts their taps on the networks' bridges (and reports them ACTIVE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.network.models import (
    Agent,
    FloatingIP,
    IPAllocation,
    Network,
    NetworkAgentBinding,
    Port,
    PortForwarding,
    Router,
    RouterPort,
    Subnet,
)

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

L3 = "L3 agent"


async def _ports(session: AsyncSession, router_id: str) -> list[dict[str, Any]]:
    rows = (await session.execute(
        select(Port, RouterPort.port_type, IPAllocation.ip_address, Subnet, Network.mtu).join(
            RouterPort, RouterPort.port_id == Port.id).join(
            IPAllocation, IPAllocation.port_id == Port.id).join(
            Subnet, Subnet.id == IPAllocation.subnet_id).join(
            Network, Network.id == Port.network_id).where(
            RouterPort.router_id == router_id))).all()
    ports: dict[str, dict[str, Any]] = {}
    for port, kind, ip, subnet, mtu in rows:
        entry = ports.setdefault(port.id, {
            "port_id": port.id, "kind": kind, "mac_address": port.mac_address, "mtu": mtu,
            "network_id": port.network_id, "device": "qr-" + port.id[:11]
            if kind != "network:router_gateway" else "qg-" + port.id[:11],
            "fixed_ips": []})
        entry["fixed_ips"].append({"ip_address": ip, "subnet_id": subnet.id,
                                   "cidr": subnet.cidr, "gateway_ip": subnet.gateway_ip,
                                   "ip_version": subnet.ip_version})
    return list(ports.values())


async def for_routers(session: AsyncSession, routers: Sequence[Router]) -> list[dict[str, Any]]:
    out = []
    for router in routers:
        ports = await _ports(session, router.id)
        fips = (await session.scalars(select(FloatingIP).where(
            FloatingIP.router_id == router.id))).all()
        forwardings = (await session.scalars(select(PortForwarding).where(
            PortForwarding.floatingip_id.in_([f.id for f in fips])))).all() if fips else []
        out.append({
            "id": router.id, "name": router.name, "admin_state_up": router.admin_state_up,
            "namespace": "qrouter-" + router.id, "enable_snat": router.enable_snat,
            "gateway": next((p for p in ports if p["kind"] == "network:router_gateway"), None),
            "interfaces": [p for p in ports if p["kind"] != "network:router_gateway"],
            "routes": list(router.routes or []),
            "floating_ips": [{"id": f.id, "floating_ip_address": f.floating_ip_address,
                              "fixed_ip_address": f.fixed_ip_address,
                              "port_id": f.fixed_port_id} for f in fips if f.fixed_port_id],
            "port_forwardings": [{"floating_ip_address": next(
                f.floating_ip_address for f in fips if f.id == pf.floatingip_id),
                "external_port": pf.external_port, "protocol": pf.protocol,
                "internal_ip_address": pf.internal_ip_address,
                "internal_port": pf.internal_port} for pf in forwardings],
        })
    return out


async def hosts_of(session: AsyncSession, router_id: str) -> list[str]:
    return list((await session.scalars(select(Agent.host).join(
        NetworkAgentBinding, NetworkAgentBinding.agent_id == Agent.id).where(
        NetworkAgentBinding.resource_id == router_id,
        NetworkAgentBinding.kind == "l3"))).all())


async def schedule(session: AsyncSession, svc: NetworkService, router_id: str) -> list[str]:
    """Routers not yet hosted go to the live L3 agent hosting the fewest."""
    from nimbus.network.rpc import is_alive

    hosts = await hosts_of(session, router_id)
    if hosts:
        return hosts
    agents = [a for a in (await session.scalars(select(Agent).where(
        Agent.agent_type == L3, Agent.admin_state_up.is_(True)))).all() if is_alive(svc, a)]
    if not agents:
        return []
    loads = {a.id: 0 for a in agents}
    for agent_id in (await session.scalars(select(NetworkAgentBinding.agent_id).where(
            NetworkAgentBinding.kind == "l3",
            NetworkAgentBinding.agent_id.in_(list(loads))))).all():
        loads[agent_id] += 1
    chosen = min(agents, key=lambda a: (loads[a.id], a.host))
    session.add(NetworkAgentBinding(agent_id=chosen.id, resource_id=router_id, kind="l3"))
    return [chosen.host]


async def routers_for_host(session: AsyncSession, host: str,
                           router_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    ids = await _hosted(session, host)
    if router_ids is not None:
        ids = [i for i in ids if i in set(router_ids)]
    routers = (await session.scalars(select(Router).where(Router.id.in_(list(ids))))).all()
    return await for_routers(session, routers)


async def _hosted(session: AsyncSession, host: str) -> list[str]:
    return list((await session.scalars(select(NetworkAgentBinding.resource_id).join(
        Agent, Agent.id == NetworkAgentBinding.agent_id).where(
        Agent.host == host, NetworkAgentBinding.kind == "l3"))).all())


async def bind_ports(session: AsyncSession, router_id: str, host: str) -> list[tuple[str, str]]:
    """Bind the router's ports to `host`; returns (port id, previous host) of those moved."""
    from nimbus.network import ports as port_logic
    from nimbus.network import standard

    moved = []
    for port in (await session.scalars(select(Port).join(
            RouterPort, RouterPort.port_id == Port.id).where(
            RouterPort.router_id == router_id))).all():
        if port.binding_host_id == host:
            continue
        net = await session.get(Network, port.network_id)
        if net is None:
            continue
        moved.append((port.id, port.binding_host_id or ""))
        port.binding_host_id = host
        port_logic.bind(port, net)
        standard.bump(port)
    return moved


async def announce_bound(svc: NetworkService, moved: Sequence[tuple[str, str]]) -> None:
    """Tell the L2 agents of the new (and any previous) hosts of moved router ports."""
    from nimbus.network.rpc import send_port_updates

    by_old: dict[str, list[str]] = {}
    for port_id, old in moved:
        by_old.setdefault(old, []).append(port_id)
    for old, ids in by_old.items():
        await send_port_updates(svc, ids, old or None)


async def resync(svc: NetworkService, host: str,
                 router_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """What the L3 agent on `host` must build. A full resync (router_ids None) first gives
    it the routers no agent hosts (those made before any agent ran), as upstream's automatic
    scheduling does; the ports of its routers are bound to it."""
    from nimbus.network.rpc import is_alive

    async with svc.db.transaction() as session:
        if router_ids is None:
            agent = (await session.scalars(select(Agent).where(
                Agent.agent_type == L3, Agent.host == host))).first()
            if agent is not None and agent.admin_state_up and is_alive(svc, agent):
                hosted = select(NetworkAgentBinding.resource_id).where(
                    NetworkAgentBinding.kind == "l3")
                for rid in (await session.scalars(select(Router.id).where(
                        Router.id.not_in(hosted)))).all():
                    session.add(NetworkAgentBinding(agent_id=agent.id, resource_id=rid,
                                                    kind="l3"))
                await session.flush()
        ids = await _hosted(session, host)
        if router_ids is not None:
            ids = [i for i in ids if i in set(router_ids)]
        moved = []
        for rid in ids:
            moved += await bind_ports(session, rid, host)
    await announce_bound(svc, moved)
    async with svc.db.session() as session:
        return await routers_for_host(session, host, ids)
