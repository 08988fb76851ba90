"""The agent boundary over the bus.

Server side (topic "network-server"): agents report their state (heartbeats), report a
port's status once wired, and ask for everything their host must wire (resync).

Agent side (topic "network-agent", one server name per host): the server casts
`port_update` (with the computed wiring) and `port_delete` to the host a port is bound to,
and fans out `security_groups_updated` so agents refresh their rules.

Compute: when a compute-owned port goes ACTIVE, the server casts `external_instance_event`
with a `network-vif-plugged` event to topic "compute" (upstream's boot handshake), and
`network-vif-unplugged` when it goes DOWN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.bus import Server, Target
from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import aware, utcnow
from nimbus.network import l2pop, standard, wiring
from nimbus.network.models import Agent, Port

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

LOG = logging.getLogger(__name__)

SERVER_TOPIC = "network-server"
AGENT_TOPIC = "network-agent"
COMPUTE_TOPIC = "compute"
AGENT_TYPES = {"l2": "Linux bridge agent", "dhcp": "DHCP agent", "l3": "L3 agent",
               "metadata": "Metadata agent"}


def is_alive(svc: NetworkService, agent: Agent) -> bool:
    limit = timedelta(seconds=svc.settings.agent_down_time)
    return utcnow() - aware(agent.heartbeat_timestamp) <= limit


class ServerEndpoint:
    """What agents call on the server."""

    version = "1.0"

    def __init__(self, svc: NetworkService) -> None:
        self.svc = svc

    async def report_state(self, context: dict[str, Any], agent: dict[str, Any]) -> str:
        """Register or refresh an agent: {agent_type, binary, host, topic, configurations,
        availability_zone, start_flag}."""
        now = utcnow()
        async with self.svc.db.transaction() as session:
            row = (await session.scalars(select(Agent).where(
                Agent.agent_type == agent["agent_type"], Agent.host == agent["host"]))).first()
            if row is None:
                row = Agent(id=new_uuid(), agent_type=agent["agent_type"],
                            binary=agent.get("binary", ""), topic=agent.get("topic", ""),
                            host=agent["host"], admin_state_up=True, description="",
                            availability_zone=agent.get("availability_zone"),
                            configurations=agent.get("configurations", {}),
                            created_at=now, started_at=now, heartbeat_timestamp=now)
                session.add(row)
            else:
                row.heartbeat_timestamp = now
                row.configurations = agent.get("configurations", row.configurations)
                if agent.get("start_flag"):
                    row.started_at = now
            agent_id = row.id
        if agent["agent_type"] == "DHCP agent":
            self.svc.dhcp_hosts.clear()
        if agent["agent_type"] == AGENT_TYPES["l2"] and agent.get("start_flag"):
            self.svc.after(l2pop.agent_started(self.svc, agent["host"]))
        return agent_id

    async def update_port_status(self, context: dict[str, Any], port_id: str, status: str,
                                 host: str | None = None, reason: str | None = None,
                                 agent: str | None = None) -> bool:
        """`reason`: why an agent reports ERROR (logged and put in the notification);
        `agent`: the kind of agent reporting ("dhcp" may clear a DHCP port's ERROR)."""
        if reason:
            LOG.warning("agent on %s reports port %s %s: %s", host, port_id, status, reason)
        return await port_status(self.svc, port_id, status, host, reason, agent=agent)

    async def get_host_wiring(self, context: dict[str, Any], host: str) -> list[dict[str, Any]]:
        async with self.svc.db.session() as session:
            return await wiring.for_host(session, host)

    async def get_network_dhcp(self, context: dict[str, Any],
                               network_id: str) -> dict[str, Any]:
        from nimbus.network.dhcp_ports import network_payload

        async with self.svc.db.session() as session:
            return await network_payload(session, self.svc, network_id)

    async def get_dhcp_networks(self, context: dict[str, Any], host: str) -> list[str]:
        """The ids of the networks the DHCP agent on `host` serves (its resync)."""
        from nimbus.network.agent_state import dhcp_networks_for_host

        async with self.svc.db.transaction() as session:
            return await dhcp_networks_for_host(session, self.svc, host)

    async def get_routers(self, context: dict[str, Any], host: str,
                          router_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Everything the L3 agent on `host` must build (its resync), or those of its
        routers in `router_ids`."""
        from nimbus.network import l3wiring

        return await l3wiring.resync(self.svc, host, router_ids)

    async def get_dhcp_port(self, context: dict[str, Any], network_id: str,
                            host: str) -> dict[str, Any]:
        """The DHCP port of the DHCP agent on `host` for a network, made on first ask."""
        from nimbus.network.dhcp_ports import ensure

        return await ensure(self.svc, network_id, host)


async def serve(svc: NetworkService) -> list[Server]:
    return [await svc.cloud.bus.serve(Target(SERVER_TOPIC), ServerEndpoint(svc))]


async def port_status(svc: NetworkService, port_id: str, status: str,
                      host: str | None, reason: str | None = None, *,
                      agent: str | None = None) -> bool:
    if status not in ("ACTIVE", "DOWN", "BUILD", "ERROR"):
        return False
    async with svc.db.transaction() as session:
        port = await session.get(Port, port_id)
        if port is None or (host and port.binding_host_id and host != port.binding_host_id):
            return False
        if port.status == status:
            return True
        if port.status == "ERROR" and port.device_owner == "network:dhcp" and agent != "dhcp":
            return True  # its dnsmasq failed: only the DHCP agent clears that
        port.status = status
        standard.bump(port)
        device_id, owner = port.device_id, port.device_owner
        body = {"id": port.id, "status": status, "network_id": port.network_id,
                "device_id": device_id, "device_owner": owner}
        if reason:
            body["status_reason"] = reason
    await svc.notify("port.update.end", {"port": body})
    if owner.startswith("compute:") and device_id and status in ("ACTIVE", "DOWN"):
        name = "network-vif-plugged" if status == "ACTIVE" else "network-vif-unplugged"
        event = {"name": name, "server_uuid": device_id, "tag": port_id,
                 "status": "completed"}
        try:
            await svc.cloud.bus.cast(Target(COMPUTE_TOPIC), "external_instance_event",
                                     events=[event])
        except Exception:
            LOG.exception("could not send %s for port %s", name, port_id)
    return True


async def send_port_updates(svc: NetworkService, port_ids: list[str],
                            old_host: str | None = None,
                            old_migrating_to: str | None = None) -> None:
    """Wire the ports where they are bound, and also on the host a live migration moves
    them to (binding:profile migrating_to), so the guest's new tap is on its bridge before
    the switch-over; unwire them where they no longer belong."""
    async with svc.db.session() as session:
        ports = (await session.scalars(select(Port).where(Port.id.in_(port_ids)))).all()
        migrating = {p.id: (p.binding_profile or {}).get("migrating_to") for p in ports}
        wired = await wiring.for_ports(session, ports)
    for item in wired:
        targets = {h for h in (item["host"], migrating.get(item["port_id"])) if h}
        for gone in {old_host, old_migrating_to} - targets:
            if gone:
                await _cast(svc, gone, "port_delete", port_id=item["port_id"],
                            network_id=item["network"]["id"])
        for host in sorted(targets):
            await _cast(svc, host, "port_update", port=item)
    await _l2pop(l2pop.ports_updated(svc, wired, old_host))
    await send_members_updated(svc)


async def send_port_delete(svc: NetworkService, port_id: str, network_id: str,
                           host: str) -> None:
    if host:
        await _cast(svc, host, "port_delete", port_id=port_id, network_id=network_id)
        await _l2pop(l2pop.port_removed(svc, port_id, network_id, host))
    await send_members_updated(svc)


async def send_members_updated(svc: NetworkService) -> None:
    """Ports came, went or changed: the hosts whose rules list the addresses of remote
    groups hear `security_groups_updated` with no group named ("members changed")."""
    try:
        async with svc.db.session() as session:
            hosts = await wiring.hosts_with_remote_rules(session)
    except Exception:
        LOG.exception("could not find the hosts with remote group rules")
        return
    for host in hosts:
        await _cast(svc, host, "security_groups_updated", security_groups=[])


async def _l2pop(work: Coroutine[Any, Any, None]) -> None:
    """Forwarding entries for the other hosts of a tunneled network (nimbus/network/l2pop)."""
    try:
        await work
    except Exception:
        LOG.exception("could not update forwarding entries")


async def send_security_groups_updated(svc: NetworkService, sg_ids: list[str]) -> None:
    try:
        await svc.cloud.bus.fanout(AGENT_TOPIC, "security_groups_updated",
                                   security_groups=sg_ids)
    except Exception:
        LOG.exception("could not announce security group changes")


async def _cast(svc: NetworkService, host: str, method: str, **kwargs: Any) -> None:
    try:
        await svc.cloud.bus.cast(Target(AGENT_TOPIC, server=host), method, **kwargs)
    except Exception:
        LOG.exception("could not cast %s to the agent on %s", method, host)


DHCP_TOPIC = "dhcp-agent"
# How long this process trusts "no DHCP agent serves that network" without asking again.
# Scheduling done in this process forgets it at once; agents resync on their own too.
DHCP_CACHE_SECONDS = 5.0


async def schedule_and_send_dhcp(svc: NetworkService, network_id: str) -> None:
    """A subnet changed: make sure live DHCP agents serve the network, then update them."""
    from nimbus.network.agent_state import schedule_network

    async with svc.db.transaction() as session:
        await schedule_network(session, svc, network_id)
    svc.dhcp_hosts.clear()
    await send_dhcp_update(svc, network_ids=[network_id])


async def send_dhcp_update(svc: NetworkService, network_ids: list[str]) -> None:
    from nimbus.network.agent_state import agents_for

    for network_id in set(network_ids):
        cached = svc.dhcp_hosts.get(network_id)
        if cached is not None and cached[0] > time.monotonic() and not cached[1]:
            continue  # no DHCP agent serves it (checked within DHCP_CACHE_SECONDS)
        async with svc.db.session() as session:
            hosts = [a.host for a in await agents_for(session, network_id, "dhcp")]
            svc.dhcp_hosts[network_id] = (time.monotonic() + DHCP_CACHE_SECONDS, hosts)
            if not hosts:
                continue
            from nimbus.network.dhcp_ports import network_payload

            payload = await network_payload(session, svc, network_id)
        for host in hosts:
            try:
                await svc.cloud.bus.cast(Target(DHCP_TOPIC, server=host), "network_update",
                                         network=payload)
            except Exception:
                LOG.exception("could not update the DHCP agent on %s", host)


L3_TOPIC = "l3-agent"


async def send_router_update(svc: NetworkService, router_ids: list[str]) -> None:
    """A router (or one of its floating IPs) changed: schedule it, then update its agents."""
    from nimbus.network import l3wiring
    from nimbus.network.models import Router

    for router_id in set(router_ids):
        async with svc.db.transaction() as session:
            hosts = await l3wiring.schedule(session, svc, router_id)
            moved = await l3wiring.bind_ports(session, router_id, hosts[0]) if hosts else []
        await l3wiring.announce_bound(svc, moved)
        if not hosts:
            continue
        async with svc.db.session() as session:
            router = await session.get(Router, router_id)
            payload = (await l3wiring.for_routers(session, [router]))[0] if router else None
        if payload is None:
            from sqlalchemy import delete

            from nimbus.network.models import NetworkAgentBinding

            async with svc.db.transaction() as session:
                await session.execute(delete(NetworkAgentBinding).where(
                    NetworkAgentBinding.resource_id == router_id,
                    NetworkAgentBinding.kind == "l3"))
        for host in hosts:
            try:
                if payload is None:
                    await svc.cloud.bus.cast(Target(L3_TOPIC, server=host), "router_deleted",
                                             router_id=router_id)
                else:
                    await svc.cloud.bus.cast(Target(L3_TOPIC, server=host), "router_update",
                                             router=payload)
            except Exception:
                LOG.exception("could not update the L3 agent on %s", host)
