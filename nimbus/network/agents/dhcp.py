"""The DHCP agent of a node: dnsmasq per network in a `qdhcp-<network>` namespace.

Each network it serves gets a namespace, the agent's DHCP port as a veth (`tap<port>` in the
node namespace, which the L2 agent puts on the network's bridge; `ns-<port>` in the qdhcp
namespace with the port's MAC and addresses, plus 169.254.169.254 when a metadata proxy runs)
and a dnsmasq (nimbus.network.dataplane.dnsmasq). Casts from the server (`network_update` on
topic "dhcp-agent", server=<host>) and network/subnet deletions (notifications) only say which
network changed: the agent asks the server for the network's current state, one network at a
time, the latest request winning. Stopping the agent leaves dnsmasq running; a restarted agent
adopts it through its pid file. A dnsmasq that will not start puts the DHCP port in ERROR with
dnsmasq's message; the next update (or heartbeat) tries again."""

from __future__ import annotations

import ipaddress
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus.bus import Bus, RemoteError, Subscription
from nimbus.common import netns
from nimbus.network.agents.common import KeyedAgent
from nimbus.network.dataplane import dnsmasq, ip

if TYPE_CHECKING:
    from nimbus.common.settings import DataplaneSettings, NodeSettings
    from nimbus.network.agents.metadata import MetadataProxy

LOG = logging.getLogger(__name__)
TOPIC = "dhcp-agent"
AGENT_TYPE = "DHCP agent"


class _Endpoint:
    """What the server casts to this agent (only these methods are reachable on the bus)."""

    version = "1.0"

    def __init__(self, agent: DhcpAgent) -> None:
        self.agent = agent

    async def network_update(self, context: dict[str, Any], network: dict[str, Any]) -> None:
        self.agent.work.submit(network["network_id"])

    async def network_delete(self, context: dict[str, Any], network_id: str) -> None:
        self.agent.work.submit(network_id)


class DhcpAgent(KeyedAgent):
    kind = "dhcp"
    topic = TOPIC

    def __init__(self, bus: Bus, host: str, node: NodeSettings, dataplane: DataplaneSettings,
                 metadata: MetadataProxy | None = None, *, state_dir: Path | None = None,
                 report_interval: float = 30.0) -> None:
        super().__init__(bus, host, node, dataplane, state_dir=state_dir,
                         report_interval=report_interval)
        self.metadata = metadata
        self.served: dict[str, str] = {}  # network id -> DHCP port id
        self._metadata_on: set[str] = set()
        self._subs: list[Subscription] = []

    def namespace(self, network_id: str) -> str:
        return f"{self.dataplane.namespace_prefix}qdhcp-{network_id}"

    def _state(self) -> dict[str, Any]:
        return {"agent_type": AGENT_TYPE, "binary": "nimbus-dhcp-agent", "host": self.host,
                "topic": TOPIC, "availability_zone": "nova",
                "configurations": {"dhcp_driver": "dnsmasq", "networks": len(self.served),
                                   "namespace_prefix": self.dataplane.namespace_prefix,
                                   "dhcp_errors": dict(self.errors)}}

    def _endpoint(self) -> object:
        return _Endpoint(self)

    def current(self) -> set[str]:
        return set(self.served)

    # -- life cycle (KeyedAgent: start, stop leave dnsmasq serving; purge kills it) ---------
    async def _listen(self) -> None:
        self._subs = [await self.bus.subscribe("network.delete.end", self._on_deleted),
                      await self.bus.subscribe("subnet.delete.end", self._on_deleted)]

    async def _unlisten(self) -> None:
        for sub in self._subs:
            await sub.stop()
        self._subs = []

    async def resync(self) -> None:
        """Serve what the server says this host serves; tear down what it no longer does."""
        wanted = set(await self._call("get_dhcp_networks", host=self.host))
        for network_id in wanted | self.on_disk() | set(self.errors):
            self.work.submit(network_id)

    async def _on_deleted(self, message: dict[str, Any]) -> None:
        payload = message.get("payload") or {}
        if "network" in payload:
            network_id = (payload["network"] or {}).get("id")
        else:
            network_id = (payload.get("subnet") or {}).get("network_id")
        if network_id and (network_id in self.served or network_id in self.errors):
            self.work.submit(network_id)

    # -- one network ---------------------------------------------------------------------------
    async def _sync(self, network_id: str) -> None:
        payload = await self._call("get_network_dhcp", network_id=network_id)
        served_here = network_id in set(await self._call("get_dhcp_networks", host=self.host))
        if not payload.get("exists", True) or not payload["subnets"] or not served_here:
            await self._teardown(network_id)
            return
        try:
            port = await self._call("get_dhcp_port", network_id=network_id, host=self.host)
        except RemoteError as exc:  # the network went away meanwhile
            LOG.info("no DHCP port for network %s: %s", network_id, exc)
            await self._teardown(network_id)
            return
        await self._build(network_id, payload, port)

    async def _build(self, network_id: str, payload: dict[str, Any],
                     port: dict[str, Any]) -> None:
        ns = self.namespace(network_id)
        short = port["id"][:11]
        tap, dev = "tap" + short, "ns-" + short
        await netns.ensure(ns)
        # A DHCP port made anew (another id) leaves an old device behind.
        for name in await ip.links(ns):
            if name.startswith("ns-") and name != dev:
                await ip.delete_link(ns, name)
        await ip.plug_veth(self.node.namespace, tap, ns, dev, mac=port["mac_address"],
                           mtu=payload.get("mtu") or None)
        cidrs = {s["id"]: s["cidr"] for s in payload["subnets"]}
        dhcp_ips: dict[str, str] = {}
        wanted: set[str] = set()
        for fixed in port["fixed_ips"]:
            cidr = cidrs.get(fixed["subnet_id"])
            if cidr is None:
                continue
            dhcp_ips[fixed["subnet_id"]] = fixed["ip_address"]
            wanted.add(f"{fixed['ip_address']}/{ipaddress.ip_network(cidr).prefixlen}")
        if self.metadata is not None:
            wanted.add(f"{dnsmasq.METADATA_IP}/32")
        have = set(await ip.addresses(ns, dev))
        for cidr in have - wanted:
            await ip.del_addr(ns, dev, cidr)
        for cidr in sorted(wanted - have):
            await ip.add_addr(ns, dev, cidr)
        proc = dnsmasq.Dnsmasq(self.directory / network_id, ns, dev)
        hosts = dnsmasq.hosts_file(payload)
        opts = dnsmasq.opts_file(payload, dhcp_ips, metadata=self.metadata is not None)
        try:
            outcome = await proc.apply(payload["subnets"], hosts, opts)
        except (netns.CommandError, OSError) as exc:
            reason = f"dnsmasq did not start: {getattr(exc, 'stderr', '') or exc}"
            LOG.warning("network %s: %s", network_id, reason)
            self.errors[network_id] = reason
            self.served.pop(network_id, None)
            await self._port_status(port["id"], "ERROR", reason)
            await self._report()
            return
        self.served[network_id] = port["id"]
        if outcome != "unchanged":
            LOG.info("dnsmasq for network %s %s", network_id, outcome)
        if network_id in self.errors:
            del self.errors[network_id]
            links = await ip.links(self.node.namespace)
            plugged = bool(links.get(tap, {}).get("master"))
            await self._port_status(port["id"], "ACTIVE" if plugged else "DOWN", None)
            await self._report()
        if self.metadata is not None and network_id not in self._metadata_on:
            await self.metadata.add(network_id, ns)
            self._metadata_on.add(network_id)

    async def _port_status(self, port_id: str, status: str, reason: str | None) -> None:
        try:
            await self._call("update_port_status", port_id=port_id, status=status,
                             host=self.host, reason=reason, agent="dhcp")
        except Exception:
            LOG.exception("could not report port %s %s", port_id, status)

    async def _report(self) -> None:
        """Heartbeat now: the agent's configurations show the DHCP errors."""
        try:
            await self.heartbeat.report()
        except Exception:
            LOG.exception("could not report the DHCP agent's state")

    async def _teardown(self, network_id: str) -> None:
        directory = self.directory / network_id
        if self.metadata is not None and network_id in self._metadata_on:
            try:
                await self.metadata.remove(network_id)
            except Exception:
                LOG.exception("metadata proxy of network %s did not stop", network_id)
            self._metadata_on.discard(network_id)
        await dnsmasq.Dnsmasq(directory, "", "").stop()
        port_id = self.served.pop(network_id, None)
        self.errors.pop(network_id, None)
        await netns.delete(self.namespace(network_id))
        if port_id:  # the tap went with the namespace (veth); be sure
            await ip.delete_link(self.node.namespace, "tap" + port_id[:11])
        shutil.rmtree(directory, ignore_errors=True)
