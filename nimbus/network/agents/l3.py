"""The L3 agent of a node: each router it hosts is a `qrouter-<router>` namespace.

In it: IPv4 forwarding; each interface as a veth (`tap<port>` in the node namespace, which the
L2 agent puts on the network's bridge, `qr-<port>` in the router with the port's MAC and
addresses); the gateway as `tap<port>`/`qg-<port>` with the external addresses, the floating
IPs as /32 addresses and a default route through the external subnet's gateway; static
routes; and the NAT table (nimbus.network.dataplane.nat) applied in one step. Casts from the
server (`router_update`, `router_deleted` on topic "l3-agent", server=<host>) say which router
changed; the agent asks for its current state, one router at a time, the latest request
winning, and removes whatever is no longer in it. Stopping the agent leaves the routers
working; a restarted agent re-applies them."""

from __future__ import annotations

import ipaddress
import logging
import shutil
from pathlib import Path
from typing import Any

from nimbus.bus import Bus
from nimbus.common import netns
from nimbus.common.settings import DataplaneSettings, NodeSettings
from nimbus.network.agents.common import KeyedAgent
from nimbus.network.dataplane import ip, nat

LOG = logging.getLogger(__name__)
TOPIC = "l3-agent"
AGENT_TYPE = "L3 agent"


class _Endpoint:
    """What the server casts to this agent (only these methods are reachable on the bus)."""

    version = "1.0"

    def __init__(self, agent: L3Agent) -> None:
        self.agent = agent

    async def router_update(self, context: dict[str, Any], router: dict[str, Any]) -> None:
        self.agent.work.submit(router["id"])

    async def router_deleted(self, context: dict[str, Any], router_id: str) -> None:
        self.agent.work.submit(router_id)


def _prefixed(address: str, cidr: str) -> str:
    return f"{address}/{ipaddress.ip_network(cidr, strict=False).prefixlen}"


def _net(dest: str) -> str:
    return str(ipaddress.ip_network(dest, strict=False))


class L3Agent(KeyedAgent):
    kind = "l3"
    topic = TOPIC

    def __init__(self, bus: Bus, host: str, node: NodeSettings, dataplane: DataplaneSettings,
                 *, state_dir: Path | None = None, report_interval: float = 30.0) -> None:
        super().__init__(bus, host, node, dataplane, state_dir=state_dir,
                         report_interval=report_interval)
        self.routers: dict[str, dict[str, Any]] = {}  # router id -> last applied payload
        self._nat: dict[str, str] = {}  # router id -> nat table applied
        self._given: dict[str, dict[str, Any]] = {}  # fresh payloads from a resync

    def namespace(self, router_id: str) -> str:
        return f"{self.dataplane.namespace_prefix}qrouter-{router_id}"

    def _state(self) -> dict[str, Any]:
        return {"agent_type": AGENT_TYPE, "binary": "nimbus-l3-agent", "host": self.host,
                "topic": TOPIC, "availability_zone": "nova",
                "configurations": {"agent_mode": "legacy", "routers": len(self.routers),
                                   "floating_ips": sum(len(r["floating_ips"])
                                                       for r in self.routers.values()),
                                   "namespace_prefix": self.dataplane.namespace_prefix,
                                   "router_errors": dict(self.errors)}}

    def _endpoint(self) -> object:
        return _Endpoint(self)

    def current(self) -> set[str]:
        return set(self.routers)

    # -- life cycle (KeyedAgent: stop leaves the routers forwarding; purge removes them) ----
    async def resync(self) -> None:
        routers = await self._call("get_routers", host=self.host)
        for router in routers:
            self._given[router["id"]] = router
        for router_id in {r["id"] for r in routers} | self.on_disk() | set(self.routers):
            self.work.submit(router_id)

    # -- one router ----------------------------------------------------------------------------
    async def _sync(self, router_id: str) -> None:
        router = self._given.pop(router_id, None)
        if router is None:
            found = await self._call("get_routers", host=self.host, router_ids=[router_id])
            router = found[0] if found else None
        if router is None or not router["admin_state_up"]:
            await self._teardown(router_id)
            return
        try:
            await self._build(router)
        except netns.CommandError as exc:
            self.errors[router_id] = str(exc)
            LOG.warning("router %s: %s", router_id, exc)
            return
        self.errors.pop(router_id, None)
        self.routers[router_id] = router

    async def _build(self, router: dict[str, Any]) -> None:
        router_id = router["id"]
        ns = self.namespace(router_id)
        (self.directory / router_id).mkdir(parents=True, exist_ok=True)
        await netns.ensure(ns)
        await ip.sysctl(ns, "net.ipv4.ip_forward", "1")
        await ip.sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
        gateway = router.get("gateway")
        ports = [*router.get("interfaces", []), *([gateway] if gateway else [])]
        wanted_devices = {p["device"] for p in ports}
        for name in await ip.links(ns):
            if name.startswith(("qr-", "qg-")) and name not in wanted_devices:
                await ip.delete_link(ns, name)
        extra = self._floating_addresses(router)
        for port in ports:
            await ip.plug_veth(self.node.namespace, "tap" + port["port_id"][:11], ns,
                               port["device"], mac=port["mac_address"],
                               mtu=port.get("mtu") or None)
            wanted = {_prefixed(f["ip_address"], f["cidr"]) for f in port["fixed_ips"]}
            if port is gateway:
                wanted |= extra
            await self._addresses(ns, port["device"], wanted)
        await self._routes(ns, router, gateway)
        table = nat.table(router, gateway["device"] if gateway else None)
        if self._nat.get(router_id) != table:
            await nat.apply(ns, table)
            self._nat[router_id] = table

    @staticmethod
    def _floating_addresses(router: dict[str, Any]) -> set[str]:
        fips = {f["floating_ip_address"] for f in router.get("floating_ips") or []}
        fips |= {pf["floating_ip_address"] for pf in router.get("port_forwardings") or []}
        return {f"{a}/{32 if ipaddress.ip_address(a).version == 4 else 128}" for a in fips}

    @staticmethod
    async def _addresses(ns: str, device: str, wanted: set[str]) -> None:
        have = set(await ip.addresses(ns, device))
        for cidr in have - wanted:
            await ip.del_addr(ns, device, cidr)
        for cidr in sorted(wanted - have):
            await ip.add_addr(ns, device, cidr)

    async def _routes(self, ns: str, router: dict[str, Any],
                      gateway: dict[str, Any] | None) -> None:
        wanted: dict[tuple[str, str], str | None] = {}
        for fixed in (gateway or {}).get("fixed_ips", []):
            if fixed.get("gateway_ip"):
                default = "0.0.0.0/0" if fixed["ip_version"] == 4 else "::/0"
                wanted[(default, fixed["gateway_ip"])] = gateway["device"] if gateway else None
        for route in router.get("routes") or []:
            wanted[(_net(route["destination"]), route["nexthop"])] = None
        have = {(_net(d), via) for d, via in await ip.gateway_routes(ns)}
        for dest, via in have - set(wanted):
            await ip.del_route(ns, dest, via)
        for (dest, via), dev in wanted.items():
            if (dest, via) in have:
                continue
            try:
                await ip.replace_route(ns, dest, via=via, dev=dev)
            except netns.CommandError as exc:  # e.g. a next hop on no subnet of the router
                LOG.warning("router %s: route %s via %s: %s", router["id"], dest, via,
                            exc.stderr)

    async def _teardown(self, router_id: str) -> None:
        self.routers.pop(router_id, None)
        self.errors.pop(router_id, None)
        self._nat.pop(router_id, None)
        await netns.delete(self.namespace(router_id))  # the veths (and their taps) go with it
        shutil.rmtree(self.directory / router_id, ignore_errors=True)
