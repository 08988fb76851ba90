"""Agents as the server knows them (registered by their heartbeats over the bus), the
networks and routers scheduled to them, availability zones and IP availability."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.timeutils import aware
from nimbus.network import ipam, query
from nimbus.network.errors import bad_request, conflict, not_found
from nimbus.network.models import Agent, IPAllocation, Network, NetworkAgentBinding, Subnet

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

COLUMNS: query.Columns = {
    "id": Agent.id, "agent_type": Agent.agent_type, "binary": Agent.binary,
    "host": Agent.host, "topic": Agent.topic, "admin_state_up": Agent.admin_state_up,
    "availability_zone": Agent.availability_zone, "description": Agent.description,
}
DHCP = "DHCP agent"
L3 = "L3 agent"


def _time(value: Any) -> str:
    return aware(value).strftime("%Y-%m-%d %H:%M:%S")


def render(svc: NetworkService, agent: Agent) -> dict[str, Any]:
    from nimbus.network.rpc import is_alive

    return {"id": agent.id, "agent_type": agent.agent_type, "binary": agent.binary,
            "host": agent.host, "topic": agent.topic, "admin_state_up": agent.admin_state_up,
            "alive": is_alive(svc, agent), "availability_zone": agent.availability_zone,
            "configurations": agent.configurations or {},
            "created_at": _time(agent.created_at), "started_at": _time(agent.started_at),
            "heartbeat_timestamp": _time(agent.heartbeat_timestamp),
            "description": agent.description or None,
            "resources_synced": agent.resources_synced, "resource_versions": {}}


async def get(session: AsyncSession, agent_id: str) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise not_found("agent", agent_id)
    return agent


async def listing(session: AsyncSession, params: query.ListParams) -> tuple[list[Agent], bool]:
    q = query.apply_filters(select(Agent), COLUMNS, params, skip=("alive",))
    return await query.paginate(session, q, Agent, COLUMNS, params)


async def delete_agent(session: AsyncSession, agent: Agent) -> None:
    await session.execute(delete(NetworkAgentBinding).where(
        NetworkAgentBinding.agent_id == agent.id))
    await session.delete(agent)


async def bind(session: AsyncSession, agent: Agent, resource_id: str, kind: str) -> None:
    wanted = DHCP if kind == "dhcp" else L3
    if agent.agent_type != wanted:
        raise conflict(f"Agent {agent.id} is not a {wanted} or has been disabled",
                       "InvalidDHCPAgent" if kind == "dhcp" else "InvalidL3Agent")
    if await session.get(NetworkAgentBinding, (agent.id, resource_id)) is not None:
        if kind == "dhcp":
            raise conflict(f"The network {resource_id} has been already hosted by the DHCP "
                           f"Agent {agent.id}.", "NetworkHostedByDHCPAgent")
        raise conflict(f"The router {resource_id} has been already hosted by the L3 Agent "
                       f"{agent.id}.", "RouterHostedByL3Agent")
    session.add(NetworkAgentBinding(agent_id=agent.id, resource_id=resource_id, kind=kind))


async def unbind(session: AsyncSession, agent: Agent, resource_id: str, kind: str) -> None:
    row = await session.get(NetworkAgentBinding, (agent.id, resource_id))
    if row is None or row.kind != kind:
        if kind == "dhcp":
            raise conflict(f"The network {resource_id} is not hosted by the DHCP agent "
                           f"{agent.id}.", "NetworkNotHostedByDhcpAgent")
        raise conflict(f"The router {resource_id} is not hosted by L3 agent {agent.id}.",
                       "RouterNotHostedByL3Agent")
    await session.delete(row)


async def bound_ids(session: AsyncSession, agent_id: str, kind: str) -> list[str]:
    return list((await session.scalars(select(NetworkAgentBinding.resource_id).where(
        NetworkAgentBinding.agent_id == agent_id, NetworkAgentBinding.kind == kind))).all())


async def agents_for(session: AsyncSession, resource_id: str, kind: str) -> list[Agent]:
    return list((await session.scalars(select(Agent).join(
        NetworkAgentBinding, NetworkAgentBinding.agent_id == Agent.id).where(
        NetworkAgentBinding.resource_id == resource_id,
        NetworkAgentBinding.kind == kind))).all())


async def schedule_network(session: AsyncSession, svc: NetworkService, network_id: str) -> None:
    """A network with a DHCP-enabled subnet goes to every live DHCP agent not serving it."""
    from nimbus.network.rpc import is_alive

    dhcp_agents = (await session.scalars(select(Agent).where(
        Agent.agent_type == DHCP, Agent.admin_state_up.is_(True)))).all()
    for agent in dhcp_agents:
        if is_alive(svc, agent) and await session.get(
                NetworkAgentBinding, (agent.id, network_id)) is None:
            session.add(NetworkAgentBinding(agent_id=agent.id, resource_id=network_id,
                                            kind="dhcp"))


async def dhcp_networks_for_host(session: AsyncSession, svc: NetworkService,
                                 host: str) -> list[str]:
    """The networks the DHCP agent on `host` serves (its resync). Networks with a
    DHCP-enabled subnet that no DHCP agent serves go to it first, as upstream's automatic
    scheduling does (the bootstrap network exists before any agent does)."""
    from nimbus.network.rpc import is_alive

    agent = (await session.scalars(select(Agent).where(
        Agent.agent_type == DHCP, Agent.host == host))).first()
    if agent is None:
        return []
    if agent.admin_state_up and is_alive(svc, agent):
        served = select(NetworkAgentBinding.resource_id).where(
            NetworkAgentBinding.kind == "dhcp")
        for network_id in (await session.scalars(select(Subnet.network_id).where(
                Subnet.enable_dhcp.is_(True), Subnet.network_id.not_in(served))
                .distinct())).all():
            session.add(NetworkAgentBinding(agent_id=agent.id, resource_id=network_id,
                                            kind="dhcp"))
        await session.flush()
    return await bound_ids(session, agent.id, "dhcp")


# -- IP availability ---------------------------------------------------------------------------
def _total(subnet: Subnet) -> int:
    if subnet.ip_version == 6 and ipam.is_auto_address(subnet):
        return ipaddress.ip_network(subnet.cidr).num_addresses - 1
    return ipam.pool_size(subnet)


async def ip_availability(session: AsyncSession, nets: list[Network]) -> list[dict[str, Any]]:
    ids = [n.id for n in nets]
    subnets = (await session.scalars(select(Subnet).where(Subnet.network_id.in_(ids)))).all() \
        if ids else []
    used = dict((await session.execute(select(IPAllocation.subnet_id, func.count()).where(
        IPAllocation.network_id.in_(ids)).group_by(IPAllocation.subnet_id))).all()) if ids \
        else {}
    out = []
    for net in nets:
        rows: list[dict[str, Any]] = [{"subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr,
                 "ip_version": s.ip_version, "total_ips": _total(s),
                 "used_ips": int(used.get(s.id, 0))} for s in subnets if s.network_id == net.id]
        out.append({"network_id": net.id, "network_name": net.name,
                    "project_id": net.project_id, "tenant_id": net.project_id,
                    "total_ips": sum(int(r["total_ips"]) for r in rows),
                    "used_ips": sum(int(r["used_ips"]) for r in rows),
                    "subnet_ip_availability": rows})
    return out


def check_agent_update(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) - {"admin_state_up", "description"}:
        raise bad_request("Only admin_state_up and description of an agent can be updated.")
    return data
