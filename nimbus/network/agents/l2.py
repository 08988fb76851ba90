"""The Linux bridge L2 agent of one node: wires the ports the server binds to its host.

For each port (the `port_update` payload of nimbus/network/wiring.py) it makes sure the
network's bridge exists with the network MTU and the segment's uplink on it, waits for the
port's device (a guest's tap made by the QEMU driver, or the bridge end of a DHCP/L3 agent
veth), puts it on the bridge, applies the port's security group rules and reports the port
ACTIVE (DOWN when administratively down, ERROR with a reason when it cannot be wired; a
failed port is tried again on its next update). Everything lives in the node's namespace.

Segments:
  vxlan  device vxlan-<vni> (local = the node's tunnel IP, nolearning) on the bridge, with
         l2pop forwarding entries from the server (nimbus/network/l2pop.py): an all-zero
         flood entry per remote tunnel endpoint and one entry per remote MAC
  vlan   this kernel has no 8021q (findings §6): a VLAN segment is emulated as VXLAN VNI
         0x800000 + vlan id over the same tunnels (bridges.VLAN_VNI_BASE), same entries
  flat   the interface `physical_interface_mappings[physical_network]` on the bridge
Security groups: iptables/ip6tables with -m physdev (nimbus/network/dataplane/firewall.py).

One worker task does all the wiring, in order; the bus handlers only record what is wanted
and wake it. While some port waits for its device the worker polls the namespace every
`device_poll_interval` seconds; while ports are wired it looks every AUDIT_INTERVAL seconds
whether their devices are still the ones it wired (a guest's tap made anew under the same name,
or taken off its bridge, is wired again). `stop()` leaves the wiring in place (a new
agent adopts it on start); `purge()` removes every bridge, VXLAN device and rule it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from nimbus.bus import Bus, Server, Target
from nimbus.common import netns
from nimbus.common.netns import CommandError
from nimbus.common.settings import DataplaneSettings, NodeSettings
from nimbus.network.agents.common import SERVER_TOPIC, Heartbeat
from nimbus.network.dataplane import bridges, firewall, ip

LOG = logging.getLogger(__name__)

AGENT_TOPIC = "network-agent"
AGENT_TYPE = "Linux bridge agent"
BINARY = "nimbus-linuxbridge-agent"
REPORT_INTERVAL = 30.0  # seconds between heartbeats (agent_down_time defaults to 75)
AUDIT_INTERVAL = 2.0  # seconds between checks of the wired devices (upstream polls as often)


class LinuxBridgeAgent:
    version = "1.0"

    def __init__(self, bus: Bus, host: str, node: NodeSettings,
                 dataplane: DataplaneSettings, *,
                 report_interval: float = REPORT_INTERVAL) -> None:
        self.bus = bus
        self.host = host
        self.node = node
        self.namespace = node.namespace
        self.dataplane = dataplane
        self.report_interval = report_interval
        self._beat = Heartbeat(bus, self.state, report_interval)
        self.ports: dict[str, dict[str, Any]] = {}  # port id -> latest payload
        self.status: dict[str, str] = {}  # port id -> status last reported
        self.errors: dict[str, str] = {}  # port id -> why it is in ERROR
        self.fdb: dict[str, dict[str, dict[str, Any]]] = {}  # network -> port -> entry
        self._pending: set[str] = set()  # ports to (re)wire
        self._waiting: set[str] = set()  # ports whose device is not there yet
        self._wired: dict[str, int | None] = {}  # port id -> ifindex of the device it wired
        self._removed: dict[str, dict[str, Any]] = {}  # port id -> its last payload
        self._fdb_dirty: set[str] = set()
        self._firewall_dirty = True
        self._want_resync = False
        self._ready: dict[str, tuple[Any, ...]] = {}  # network -> what its bridge was made for
        self._wake = asyncio.Event()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> LinuxBridgeAgent:
        if self.namespace:
            await netns.ensure(self.namespace)
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            try:
                await ip.sysctl(self.namespace, key, "1")
            except CommandError as exc:
                LOG.warning("%s: %s", key, exc)
        self._server = await self.bus.serve(Target(AGENT_TOPIC, server=self.host), self)
        await self._beat.report(start=True)
        await self.resync()
        self._tasks = [asyncio.get_running_loop().create_task(self._work(),
                                                              name=f"l2-agent-{self.host}")]
        self._beat.start()
        return self

    async def stop(self) -> None:
        """Stop serving and working; the node's wiring stays as it is."""
        await self._beat.stop()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def purge(self) -> None:
        """Stop, then remove every bridge, VXLAN device and firewall rule of the node."""
        await self.stop()
        await firewall.purge(self.namespace)
        await bridges.purge(self.namespace)
        self._ready.clear()

    def state(self) -> dict[str, Any]:
        """What report_state tells the server (the agent list's row)."""
        return {"agent_type": AGENT_TYPE, "binary": BINARY, "host": self.host,
                "topic": AGENT_TOPIC, "availability_zone": "nova",
                "configurations": self.configurations()}

    def configurations(self) -> dict[str, Any]:
        return {"interface_mappings": dict(self.node.physical_interface_mappings),
                "bridge_mappings": {}, "tunneling_ip": self.node.tunnel_ip,
                "tunnel_types": ["vxlan"] if self.node.tunnel_ip else [],
                "l2_population": True, "devices": len(self.ports),
                "port_errors": dict(self.errors)}

    async def resync(self) -> None:
        """Take everything the server says this host must wire, dropping what it no longer
        lists (used on start and when security groups change)."""
        wanted = await self.bus.call(Target(SERVER_TOPIC), "get_host_wiring", host=self.host)
        seen = set()
        for port in wanted:
            seen.add(port["port_id"])
            self._take(port, force=False)
        for port_id in set(self.ports) - seen:
            # A port bound elsewhere that a live migration brings here (the server sent it
            # with binding:profile migrating_to) stays until the server says port_delete.
            if self.ports[port_id].get("host") not in (None, self.host):
                continue
            self._forget(port_id)
        self._firewall_dirty = True
        self._wake.set()

    # -- what the server sends -----------------------------------------------------------------
    async def port_update(self, context: dict[str, Any], port: dict[str, Any]) -> None:
        self._take(port, force=True)
        self._wake.set()

    async def port_delete(self, context: dict[str, Any], port_id: str,
                          network_id: str) -> None:
        self._forget(port_id)
        self._wake.set()

    async def security_groups_updated(self, context: dict[str, Any],
                                      security_groups: list[str]) -> None:
        """Groups changed (their rules, or members when the list is empty): the worker
        fetches this host's wiring again if any port here is concerned."""
        changed = set(security_groups)
        for port in self.ports.values():
            rules = port.get("security_group_rules") or []
            if (changed & set(port.get("security_groups") or [])
                    or any(r.get("remote_group_id") in changed for r in rules)
                    or (not changed and any(r.get("remote_ips") is not None for r in rules))):
                self._want_resync = True
                self._wake.set()
                return

    async def fdb_update(self, context: dict[str, Any], network_id: str,
                         add: list[dict[str, Any]] | None = None,
                         remove: list[str] | None = None) -> None:
        entries = self.fdb.setdefault(network_id, {})
        for port_id in remove or []:
            entries.pop(port_id, None)
        for entry in add or []:
            if entry.get("host") != self.host:
                entries[entry["port_id"]] = entry
        self._fdb_dirty.add(network_id)
        self._wake.set()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _take(self, port: dict[str, Any], *, force: bool) -> None:
        port_id = port["port_id"]
        old = self.ports.get(port_id)
        self.ports[port_id] = port
        self._removed.pop(port_id, None)
        net = port["network"]["id"]
        if "fdb" in port:
            self.fdb[net] = {e["port_id"]: e for e in port["fdb"] if e.get("host") != self.host}
            self._fdb_dirty.add(net)
        if old is not None and old["network"]["id"] != net:
            self._removed[port_id] = old
        if force or old != port or self.status.get(port_id) not in ("ACTIVE", "DOWN"):
            self._pending.add(port_id)
            self._firewall_dirty = True

    def _forget(self, port_id: str) -> None:
        port = self.ports.pop(port_id, None)
        self._pending.discard(port_id)
        self._waiting.discard(port_id)
        self._wired.pop(port_id, None)
        self.status.pop(port_id, None)
        self.errors.pop(port_id, None)
        if port is not None:
            self._removed[port_id] = port
            self._firewall_dirty = True

    # -- the worker ----------------------------------------------------------------------------
    async def _work(self) -> None:
        failures = 0
        while True:
            timeout = self.dataplane.device_poll_interval if self._waiting else \
                AUDIT_INTERVAL if self._wired else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                await self._sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                LOG.exception("L2 agent on %s: sync failed (%d in a row); retrying", self.host,
                              failures)
                self._firewall_dirty = True
                await asyncio.sleep(min(self.dataplane.device_poll_interval * 2 ** failures,
                                        10.0))
                self._wake.set()

    async def _sync(self) -> None:
        if self._want_resync:
            self._want_resync = False
            try:
                await self.resync()
            except Exception:
                self._want_resync = True
                raise
        began = time.monotonic()
        links = await ip.links(self.namespace)
        self._audit(links)
        if self._waiting and not (self._pending or self._removed or self._fdb_dirty
                                  or self._firewall_dirty):
            if not any(self.ports[p]["device"] in links for p in self._waiting):
                return  # still nothing to plug: poll again later
        removed, self._removed = self._removed, {}
        for port_id, gone in removed.items():
            if gone["device"] in links and port_id not in self.ports:
                await bridges.unplug(self.namespace, gone["device"])
        todo = sorted(self._pending | self._waiting)
        self._pending.clear()
        reports: list[tuple[str, str, str | None]] = []
        for port_id in todo:
            port = self.ports.get(port_id)
            if port is None:
                continue
            if port["device"] not in links:
                error = await self._network_error(port, links)
                if error:  # no use waiting for the device
                    self._waiting.discard(port_id)
                    reports.append((port_id, "ERROR", error))
                else:
                    self._waiting.add(port_id)
                continue
            self._waiting.discard(port_id)
            status, reason = await self._wire(port, links)
            reports.append((port_id, status, reason))
            if status == "ACTIVE":
                self._wired[port_id] = links[port["device"]].get("ifindex")
            else:
                self._wired.pop(port_id, None)
        if self._firewall_dirty or reports or removed:
            error = await self._apply_firewall()
            if error:
                reports = [(pid, "ERROR", error) if status == "ACTIVE" else (pid, status, why)
                           for pid, status, why in reports]
        await self._sync_fdb()
        if removed:
            await self._collect(removed)
        for port_id, status, reason in reports:
            await self._report(port_id, status, reason)
        if reports or removed:
            LOG.debug("L2 agent on %s: %d port(s) wired, %d removed in %.3fs", self.host,
                      len(reports), len(removed), time.monotonic() - began)

    def _audit(self, links: dict[str, dict[str, Any]]) -> None:
        """Wire again the ports whose device is not the one wired any more: made anew under
        the same name (nothing tells the agent when a hypervisor re-creates a tap) or taken
        off its bridge. A device that is gone is waited for."""
        for port_id, ifindex in list(self._wired.items()):
            port = self.ports.get(port_id)
            link = links.get(port["device"]) if port else None
            if port is None or link is None:
                del self._wired[port_id]
                if port is not None:
                    self._waiting.add(port_id)
            elif link.get("ifindex") != ifindex or \
                    link.get("master") != port["network"].get("bridge"):
                del self._wired[port_id]
                self._pending.add(port_id)

    async def _wire(self, port: dict[str, Any],
                    links: dict[str, dict[str, Any]]) -> tuple[str, str | None]:
        """Bridge, uplink and plug for one port whose device exists: (status, reason)."""
        net = port["network"]
        try:
            await self._ensure_network(net, links)
            if port.get("admin_state_up", True):
                await bridges.plug(self.namespace, port["device"], net["bridge"],
                                   net.get("mtu"))
                return "ACTIVE", None
            await bridges.unplug(self.namespace, port["device"])
            return "DOWN", None
        except (bridges.WiringError, CommandError) as exc:
            LOG.warning("L2 agent on %s: port %s: %s", self.host, port["port_id"], exc)
            return "ERROR", str(exc)

    async def _network_error(self, port: dict[str, Any],
                             links: dict[str, dict[str, Any]]) -> str | None:
        """Make the port's bridge ahead of its device; why it cannot be made, if so."""
        try:
            await self._ensure_network(port["network"], links)
        except (bridges.WiringError, CommandError) as exc:
            if self.errors.get(port["port_id"]) != str(exc):
                LOG.warning("L2 agent on %s: port %s: %s", self.host, port["port_id"], exc)
            return str(exc)
        return None

    async def _ensure_network(self, net: dict[str, Any],
                              links: dict[str, dict[str, Any]]) -> None:
        key = (net.get("network_type"), net.get("segmentation_id"), net.get("physical_network"),
               net.get("mtu"), net["bridge"])
        if self._ready.get(net["id"]) == key and net["bridge"] in links:
            return
        self._ready.pop(net["id"], None)
        await bridges.ensure_network(self.namespace, net, tunnel_ip=self.node.tunnel_ip,
                                     mappings=self.node.physical_interface_mappings,
                                     links=links)
        links.update(await ip.links(self.namespace))
        self._ready[net["id"]] = key
        self._fdb_dirty.add(net["id"])

    async def _apply_firewall(self) -> str | None:
        """Rules for every secured, administratively up port; the error text if it failed."""
        self._firewall_dirty = False
        ports = [p for p in self.ports.values()
                 if firewall.secured(p) and p.get("admin_state_up", True)]
        nets = {p["network"]["bridge"] for p in self.ports.values()}
        try:
            await firewall.apply(self.namespace, ports, nets)
        except (CommandError, ValueError, KeyError) as exc:
            LOG.warning("L2 agent on %s: security group rules: %s", self.host, exc)
            self._firewall_dirty = True
            return f"security group rules failed: {exc}"
        return None

    async def _sync_fdb(self) -> None:
        dirty, self._fdb_dirty = self._fdb_dirty, set()
        for net_id in sorted(dirty):
            network = self._network(net_id)
            number = bridges.vni(network) if network else None
            if number is None or net_id not in self._ready or not self.node.tunnel_ip:
                continue
            wanted = bridges.wanted_fdb(list(self.fdb.get(net_id, {}).values()),
                                        self.node.tunnel_ip)
            try:
                await bridges.sync_fdb(self.namespace, bridges.vxlan_name(number), wanted)
            except CommandError as exc:
                LOG.warning("L2 agent on %s: forwarding entries of %s: %s", self.host, net_id,
                            exc)
                self._fdb_dirty.add(net_id)

    def _network(self, net_id: str) -> dict[str, Any] | None:
        for port in self.ports.values():
            if port["network"]["id"] == net_id:
                network: dict[str, Any] = port["network"]
                return network
        return None

    async def _collect(self, removed: dict[str, dict[str, Any]]) -> None:
        """Remove the bridges of networks that lost their last port here."""
        in_use = {p["network"]["id"] for p in self.ports.values()}
        gone = {p["network"]["id"]: p["network"]["bridge"] for p in removed.values()
                if p["network"]["id"] not in in_use}
        if not gone:
            return
        links = await ip.links(self.namespace)
        uplinks = set(self.node.physical_interface_mappings.values())
        for net_id, bridge in gone.items():
            if await bridges.remove_network_if_unused(self.namespace, bridge, links, uplinks):
                self._ready.pop(net_id, None)
                self.fdb.pop(net_id, None)

    async def _report(self, port_id: str, status: str, reason: str | None) -> None:
        if reason:
            self.errors[port_id] = reason
        else:
            self.errors.pop(port_id, None)
        try:
            await self.bus.call(Target(SERVER_TOPIC), "update_port_status", port_id=port_id,
                                status=status, host=self.host, reason=reason)
            self.status[port_id] = status
        except Exception:
            LOG.exception("L2 agent on %s: could not report port %s %s", self.host, port_id,
                          status)
            self._pending.add(port_id)
