"""Layer 2 population (upstream's l2pop, findings §5): the server tells each L2 agent where
the ports of its tunneled networks live, so VXLAN needs neither multicast nor learning.

An entry is one bound port of a tunneled network on some host:
  {"port_id", "network_id", "host", "tunnel_ip", "mac_address", "ip_addresses"}
where tunnel_ip is the `configurations.tunneling_ip` the host's L2 agent reported. The
`port_update` payload carries the entries of the port's network on every other host
(`wiring.for_ports`, key "fdb"); when a port is bound, moved or deleted, the L2 agents of
the other hosts with ports on that network get `fdb_update(network_id, add=[entry...],
remove=[port_id...])`. An agent keeps an all-zero flood entry per remote tunnel endpoint and
one entry per remote MAC.

"vlan" networks count as tunneled: the Linux bridge agent carries them as VXLAN (this
kernel has no 8021q; see nimbus/network/dataplane/bridges.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.bus import Target
from nimbus.network.models import Agent, IPAllocation, Network, Port

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

LOG = logging.getLogger(__name__)

L2_AGENT = "Linux bridge agent"
AGENT_TOPIC = "network-agent"
TUNNELED = ("vxlan", "vlan")


async def tunnel_ips(session: AsyncSession) -> dict[str, str]:
    """host -> tunnel IP of its L2 agent (hosts whose agent reports none are left out)."""
    rows = (await session.execute(select(Agent.host, Agent.configurations).where(
        Agent.agent_type == L2_AGENT))).all()
    return {host: str(conf["tunneling_ip"]) for host, conf in rows
            if isinstance(conf, dict) and conf.get("tunneling_ip")}


async def tunneled(session: AsyncSession, network_ids: Iterable[str]) -> set[str]:
    ids = list(set(network_ids))
    if not ids:
        return set()
    return set((await session.scalars(select(Network.id).where(
        Network.id.in_(ids), Network.network_type.in_(TUNNELED)))).all())


async def entries(session: AsyncSession, network_ids: Iterable[str], *,
                  host: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """network id -> an entry per bound port (on `host` only, when given) of the tunneled
    networks among these, on hosts with a known tunnel IP."""
    nets = await tunneled(session, network_ids)
    if not nets:
        return {}
    tips = await tunnel_ips(session)
    if not tips:  # no L2 agent has a tunnel endpoint: no entries
        return {}
    q = select(Port.id, Port.network_id, Port.binding_host_id, Port.mac_address).where(
        Port.network_id.in_(nets), Port.binding_host_id != "")
    if host is not None:
        q = q.where(Port.binding_host_id == host)
    ports = [row for row in (await session.execute(q)).all() if row[2] in tips]
    if not ports:
        return {}
    addresses: dict[str, list[str]] = defaultdict(list)
    for port_id, address in (await session.execute(select(
            IPAllocation.port_id, IPAllocation.ip_address).where(
            IPAllocation.port_id.in_([p[0] for p in ports])))).all():
        addresses[port_id].append(address)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for port_id, network_id, port_host, mac in ports:
        out[network_id].append({
            "port_id": port_id, "network_id": network_id, "host": port_host,
            "tunnel_ip": tips[port_host], "mac_address": mac,
            "ip_addresses": sorted(addresses.get(port_id, []))})
    return dict(out)


async def _hosts_on(session: AsyncSession, network_ids: Iterable[str]) -> dict[str, set[str]]:
    """network id -> hosts with bound ports on it."""
    ids = list(set(network_ids))
    out: dict[str, set[str]] = defaultdict(set)
    if ids:
        for network_id, host in (await session.execute(select(
                Port.network_id, Port.binding_host_id).where(
                Port.network_id.in_(ids), Port.binding_host_id != "").distinct())).all():
            out[network_id].add(host)
    return out


Updates = dict[tuple[str, str], dict[str, list[Any]]]  # (host, network) -> add/remove


def _queue(updates: Updates, host: str, network_id: str, kind: str, value: Any) -> None:
    updates.setdefault((host, network_id), {"add": [], "remove": []})[kind].append(value)


async def _send(svc: NetworkService, updates: Updates) -> None:
    for (host, network_id), change in updates.items():
        try:
            await svc.cloud.bus.cast(Target(AGENT_TOPIC, server=host), "fdb_update",
                                     network_id=network_id, add=change["add"],
                                     remove=change["remove"])
        except Exception:
            LOG.exception("could not send forwarding entries to the L2 agent on %s", host)


async def ports_updated(svc: NetworkService, wired: list[dict[str, Any]],
                        old_host: str | None = None) -> None:
    """After `port_update` casts (port payloads from wiring.for_ports): the other hosts on
    each port's network learn where it is now (or that it left a tunnel endpoint)."""
    items = [w for w in wired if w["network"]["network_type"] in TUNNELED]
    if not items:
        return
    async with svc.db.session() as session:
        tips = await tunnel_ips(session)
        if not tips:  # every entry and every target needs a tunnel endpoint
            return
        hosts_on = await _hosts_on(session, [w["network"]["id"] for w in items])
    updates: Updates = {}
    for item in items:
        net, host = item["network"]["id"], item.get("host") or ""
        targets = sorted(h for h in hosts_on.get(net, ()) if h != host and h in tips)
        if host in tips:
            entry = {"port_id": item["port_id"], "network_id": net, "host": host,
                     "tunnel_ip": tips[host], "mac_address": item["mac_address"],
                     "ip_addresses": sorted(ip["ip_address"] for ip in item["fixed_ips"])}
            for target in targets:
                _queue(updates, target, net, "add", entry)
        elif old_host and old_host in tips:
            for target in targets:
                _queue(updates, target, net, "remove", item["port_id"])
    await _send(svc, updates)


async def port_removed(svc: NetworkService, port_id: str, network_id: str, host: str) -> None:
    """A port bound to `host` is gone: the other hosts on its network forget it."""
    if not host:
        return
    async with svc.db.session() as session:
        if not await tunneled(session, [network_id]):
            return
        tips = await tunnel_ips(session)
        if host not in tips:
            return
        hosts_on = await _hosts_on(session, [network_id])
    updates: Updates = {}
    for target in sorted(hosts_on.get(network_id, ())):
        if target != host and target in tips:
            _queue(updates, target, network_id, "remove", port_id)
    await _send(svc, updates)


async def agent_started(svc: NetworkService, host: str) -> None:
    """An L2 agent (re)started, maybe with a new tunnel IP: the other hosts on its networks
    get its ports again."""
    async with svc.db.session() as session:
        nets = (await session.scalars(select(Port.network_id).where(
            Port.binding_host_id == host).distinct())).all()
        local = await entries(session, nets, host=host)
        tips = await tunnel_ips(session)
        hosts_on = await _hosts_on(session, local)
    updates: Updates = {}
    for net, items in local.items():
        for target in sorted(hosts_on.get(net, ())):
            if target != host and target in tips:
                for entry in items:
                    _queue(updates, target, net, "add", entry)
    await _send(svc, updates)
