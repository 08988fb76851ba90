"""The real DHCP and L3 agents on one node namespace of the test's own.

The L2 agent's part (bridges, taps on them, ACTIVE) is played by a small stand-in, and guests
by endpoint namespaces: a veth whose node end is the port's tap and whose other end has the
port's MAC, leased with busybox udhcpc. An "external host" namespace sits on the public
network (through the node's mapped interface) at its gateway address, 172.24.4.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from nimbus.bus import Bus, Server, Target
from nimbus.common import netns
from nimbus.common.settings import DataplaneSettings, NodeSettings
from nimbus.network.agents.dhcp import DhcpAgent
from nimbus.network.agents.l3 import L3Agent
from nimbus.network.dataplane import dnsmasq, ip
from tests.guestimage.lab import require
from tests.network.conftest import Api, token_for
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud
from tests.support.shell import sh

T = TypeVar("T")
EXT_IP = "172.24.4.1"
HOST = "node1"


def missing() -> list[str]:
    out = [t for t in ("ip", "dnsmasq", "busybox", "iptables-restore") if not shutil.which(t)]
    if os.geteuid() != 0:
        out.append("root (for ip netns)")
    return out


def wait_until(what: str, probe: Callable[[], T | None], limit: float = 20) -> T:
    deadline = time.monotonic() + limit
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        time.sleep(0.1)


class StandInL2:
    """The L2 agent's part: each port bound to the node gets its network's bridge (the
    public one with the node's mapped interface), its tap on it once it exists, ACTIVE."""

    version = "1.0"

    def __init__(self, bus: Bus, host: str, node: NodeSettings) -> None:
        self.bus, self.host, self.node = bus, host, node
        self.server: Server | None = None

    async def start(self) -> StandInL2:
        self.server = await self.bus.serve(Target("network-agent", server=self.host), self)
        await self.bus.call(Target("network-server"), "report_state", agent={
            "agent_type": "Linux bridge agent", "binary": "stand-in", "host": self.host,
            "topic": "network-agent", "start_flag": True})
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def port_update(self, context: dict[str, Any], port: dict[str, Any]) -> None:
        ns, net = self.node.namespace, port["network"]
        await ip.ensure_bridge(ns, net["bridge"])
        uplink = self.node.physical_interface_mappings.get(net["physical_network"] or "")
        if net["network_type"] == "flat" and uplink:
            await ip.set_up(ns, uplink, master=net["bridge"])
        for _ in range(300):
            if await ip.link_exists(ns, port["device"]):
                break
            await asyncio.sleep(0.1)
        else:
            return
        await ip.set_up(ns, port["device"], master=net["bridge"])
        await self.bus.call(Target("network-server"), "update_port_status",
                            port_id=port["port_id"], status="ACTIVE", host=self.host)

    async def port_delete(self, context: dict[str, Any], port_id: str, network_id: str) -> None:
        pass

    async def security_groups_updated(self, context: dict[str, Any], **kw: Any) -> None:
        pass

    async def fdb_update(self, context: dict[str, Any], **kw: Any) -> None:
        pass


class Metadata:
    """A stand-in metadata proxy: records the namespaces it was given and what they held."""

    def __init__(self) -> None:
        self.added: dict[str, list[str]] = {}
        self.removed: list[str] = []

    async def add(self, network_id: str, namespace: str) -> None:
        dev = next(n for n in await ip.links(namespace) if n.startswith("ns-"))
        self.added[network_id] = await ip.addresses(namespace, dev)

    async def remove(self, network_id: str) -> None:
        self.removed.append(network_id)


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.token = uuid.uuid4().hex[:8]
        self.prefix = f"nt-{self.token}-"
        self.node = self.prefix + "node1"
        self.ext = self.prefix + "ext"
        self.tmp = tmp

    def ns(self, name: str) -> str:
        return self.prefix + name

    def setup(self) -> None:
        for name in (self.node, self.ext):
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", self.node, "link", "add", "pub0", "type", "veth", "peer", "name", "eth0")
        sh("ip", "-n", self.node, "link", "set", "eth0", "netns", self.ext)
        sh("ip", "-n", self.node, "link", "set", "pub0", "up")
        sh("ip", "-n", self.ext, "addr", "add", f"{EXT_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.ext, "link", "set", "eth0", "up")

    def endpoint(self, name: str, port: dict[str, Any]) -> str:
        """A namespace plugged like a guest on `port` (its tap in the node namespace)."""
        ns = self.ns(name)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        tap = "tap" + port["id"][:11]
        sh("ip", "-n", self.node, "link", "add", tap, "type", "veth", "peer", "name", "eth0")
        sh("ip", "-n", self.node, "link", "set", "eth0", "netns", ns)
        sh("ip", "-n", self.node, "link", "set", tap, "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "address", port["mac_address"], "up")
        return ns

    def lease(self, ns: str) -> dict[str, str]:
        """udhcpc in `ns`: the options it got; the address and routes are applied."""
        out = self.tmp / f"{ns}.lease"
        script = self.tmp / "udhcpc.sh"
        script.write_text(
            "#!/bin/sh\ncase \"$1\" in bound|renew)\n"
            "  env > \"$LEASE_OUT\"\n"
            "  ip addr flush dev \"$interface\"\n"
            "  ip addr add \"$ip/$mask\" dev \"$interface\"\n"
            "  [ -n \"$router\" ] && ip route replace default via ${router%% *}\n;;\nesac\n")
        script.chmod(0o755)
        sh("ip", "netns", "exec", ns, "env", f"LEASE_OUT={out}", "busybox", "udhcpc", "-i",
           "eth0", "-q", "-n", "-t", "10", "-T", "1", "-O", "staticroutes", "-O", "mtu",
           "-s", str(script))
        return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)

    def namespaces(self) -> list[str]:
        return [n for n in netns.list_namespaces() if n.startswith(self.prefix)]

    def cleanup(self) -> None:
        for pid in dnsmasq.alive_pids(self.tmp / "dp" / "dhcp" / HOST):
            sh("kill", str(pid), check=False)
        for name in self.namespaces():
            sh("ip", "netns", "delete", name, check=False)


def echo_server(ns: str, port: int) -> tuple[socket.socket, list[str]]:
    """A TCP server in `ns` that answers each connection with the peer's address."""
    srv = netns.socket_in(ns)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(8)
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, peer = srv.accept()
            except OSError:
                return
            seen.append(peer[0])
            with conn:
                conn.sendall(peer[0].encode())

    threading.Thread(target=serve, daemon=True).start()
    return srv, seen


def ask(ns: str, address: str, port: int, timeout: float = 1.5) -> str | None:
    """Connect from `ns`; the echo's answer (None when unreachable)."""
    sock = netns.socket_in(ns)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        return sock.recv(100).decode()
    except OSError:
        return None
    finally:
        sock.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require(missing())
    lab = Lab(tmp_path)
    try:
        lab.setup()
        yield lab
    finally:
        lab.cleanup()


@pytest.fixture
def cloud(lab: Lab, tmp_path: Path) -> Iterator[tuple[RunningCloud, Api, dict[str, Any]]]:
    running = RunningCloud(tmp_path / "state", services=["identity", "network"],
                           network={"bootstrap": False})
    running.start()
    node = NodeSettings(namespace=lab.node, physical_interface_mappings={"public": "pub0"})
    dataplane = DataplaneSettings(namespace_prefix=lab.prefix, state_path=tmp_path / "dp")
    metadata = Metadata()
    agents: dict[str, Any] = {"metadata": metadata}

    async def start(c: Any) -> None:
        agents["l2"] = await StandInL2(c.bus, HOST, node).start()
        agents["dhcp"] = await DhcpAgent(c.bus, HOST, node, dataplane,
                                         metadata=metadata).start()  # type: ignore[arg-type]
        agents["l3"] = await L3Agent(c.bus, HOST, node, dataplane).start()

    try:
        running.call(start)
        api = Api(running, token_for(running, "admin", ADMIN_PASSWORD, "admin"), "")
        yield running, api, agents
    finally:
        async def stop(c: Any) -> None:
            for kind in ("l3", "dhcp"):
                if kind in agents:
                    await agents[kind].purge()
            if "l2" in agents:
                await agents["l2"].stop()

        try:
            running.call(stop)
        finally:
            running.stop()


def test_dhcp_and_routers_on_a_node(lab: Lab, cloud: Any) -> None:
    running, api, agents = cloud
    t0 = time.monotonic()
    public = api.create("network", name="public", **{
        "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"})
    api.create("subnet", network_id=public["id"], cidr="172.24.4.0/24", ip_version=4,
               gateway_ip=EXT_IP, enable_dhcp=False)
    net = api.create("network", name="tenant")
    sub = api.create("subnet", network_id=net["id"], cidr="10.90.0.0/24", ip_version=4,
                     dns_nameservers=["10.90.0.53"],
                     host_routes=[{"destination": "10.99.0.0/24", "nexthop": "10.90.0.254"}])
    qdhcp = lab.prefix + "qdhcp-" + net["id"]

    def dhcp_port() -> dict[str, Any] | None:
        found = api.get("/ports", params={"network_id": net["id"],
                                          "device_owner": "network:dhcp"}).json()["ports"]
        return found[0] if found and found[0]["status"] == "ACTIVE" else None

    dport = wait_until("the DHCP port ACTIVE", dhcp_port)
    dhcp_ip = dport["fixed_ips"][0]["ip_address"]
    assert dport["binding:host_id"] == HOST
    proc = dnsmasq.Dnsmasq(lab.tmp / "dp" / "dhcp" / HOST / net["id"], qdhcp, "")
    first_pid = wait_until("dnsmasq", proc.pid)
    held = wait_until("the metadata proxy", lambda: agents["metadata"].added.get(net["id"]))
    assert f"{dnsmasq.METADATA_IP}/32" in held and f"{dhcp_ip}/24" in held

    # -- a lease with the port's address, router, MTU and classless routes ------------------
    p1 = api.create("port", network_id=net["id"], device_owner="compute:test",
                    device_id=str(uuid.uuid4()), **{"binding:host_id": HOST})
    ep1 = lab.endpoint("ep1", p1)
    wait_until("p1 ACTIVE", lambda: api.get(f"/ports/{p1['id']}").json()["port"]["status"]
               == "ACTIVE")
    t1 = time.monotonic()
    lease = wait_until("p1's lease", lambda: lab.lease(ep1))
    print(f"first lease {time.monotonic() - t1:.2f} s ({t1 - t0:.2f} s of set-up before)")
    assert lease["ip"] == p1["fixed_ips"][0]["ip_address"]
    assert lease["router"] == "10.90.0.1"
    assert lease["mtu"] == str(net["mtu"]) == "1450"
    assert lease["dns"] == "10.90.0.53"
    assert lease["staticroutes"].split() == [
        "10.99.0.0/24", "10.90.0.254", "169.254.169.254/32", dhcp_ip, "0.0.0.0/0", "10.90.0.1"]

    # -- a second port later: a reload, not a restart ---------------------------------------
    p2 = api.create("port", network_id=net["id"], device_owner="compute:test",
                    device_id=str(uuid.uuid4()), **{"binding:host_id": HOST})
    ep2 = lab.endpoint("ep2", p2)
    wait_until("p2 in the hosts file", lambda: p2["mac_address"] in proc.hosts.read_text())
    wait_until("p2 ACTIVE", lambda: api.get(f"/ports/{p2['id']}").json()["port"]["status"]
               == "ACTIVE")
    assert lab.lease(ep2)["ip"] == p2["fixed_ips"][0]["ip_address"]
    assert proc.pid() == first_pid

    # -- a deleted port's address given to a new port: dnsmasq forgot the old lease ---------
    gone = api.create("port", network_id=net["id"], device_owner="compute:test",
                      device_id=str(uuid.uuid4()), **{"binding:host_id": HOST})
    ep_gone = lab.endpoint("epgone", gone)
    wait_until("the port in the hosts file", lambda: gone["mac_address"] in
               proc.hosts.read_text())
    reused = lab.lease(ep_gone)["ip"]
    assert reused == gone["fixed_ips"][0]["ip_address"]
    assert api.delete(f"/ports/{gone['id']}").status_code == 204
    sh("ip", "netns", "delete", ep_gone)
    wait_until("the port out of the hosts file", lambda: gone["mac_address"] not in
               proc.hosts.read_text())
    p3 = api.create("port", network_id=net["id"], device_owner="compute:test",
                    device_id=str(uuid.uuid4()), fixed_ips=[{"ip_address": reused}],
                    **{"binding:host_id": HOST})
    ep3 = lab.endpoint("ep3", p3)
    wait_until("p3 in the hosts file", lambda: p3["mac_address"] in proc.hosts.read_text())
    assert lab.lease(ep3)["ip"] == reused
    assert proc.pid() == first_pid

    # -- a router: SNAT to the gateway address ------------------------------------------------
    _, seen_outside = echo_server(lab.ext, 7000)
    router = api.create("router", name="r1", external_gateway_info={
        "network_id": public["id"], "enable_snat": True})
    api.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    router = api.get(f"/routers/{router['id']}").json()["router"]
    gw_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    t2 = time.monotonic()
    assert wait_until("ep1 reaching the external host", lambda: ask(ep1, EXT_IP, 7000)) == gw_ip
    print(f"router up in {time.monotonic() - t2:.2f} s")
    router_ports = api.get("/ports", params={"device_id": router["id"]}).json()["ports"]
    assert {p["binding:host_id"] for p in router_ports} == {HOST}
    assert {p["status"] for p in router_ports} == {"ACTIVE"}

    # -- a floating IP: reachable from outside, and the source of what p1 sends out ------------
    _, seen_inside = echo_server(ep1, 7001)
    fip = api.create("floatingip", floating_network_id=public["id"], port_id=p1["id"])
    address = fip["floating_ip_address"]
    assert wait_until("the floating IP", lambda: ask(lab.ext, address, 7001)) == EXT_IP
    assert seen_inside[-1] == EXT_IP
    assert wait_until("SNAT to the floating IP",
                      lambda: ask(ep1, EXT_IP, 7000) == address and address)
    assert ask(ep2, EXT_IP, 7000) == gw_ip
    api.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    wait_until("the floating IP gone", lambda: ask(lab.ext, address, 7001, 0.5) is None)
    assert ask(ep1, EXT_IP, 7000) == gw_ip

    # -- the router interface removed: no more routing ----------------------------------------
    qrouter = lab.prefix + "qrouter-" + router["id"]
    api.put(f"/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]})
    wait_until("ep1 cut off", lambda: ask(ep1, EXT_IP, 7000, 0.5) is None)
    assert not [n for n in asyncio.run(ip.links(qrouter)) if n.startswith("qr-")]

    # -- deleting the network and the router leaves nothing -----------------------------------
    for port in (p1, p2, p3):
        assert api.delete(f"/ports/{port['id']}").status_code == 204
    api.delete(f"/floatingips/{fip['id']}")
    assert api.delete(f"/networks/{net['id']}").status_code == 204
    api.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert api.delete(f"/routers/{router['id']}").status_code == 204
    wait_until("no qdhcp/qrouter namespace", lambda: not [
        n for n in lab.namespaces() if "qdhcp-" in n or "qrouter-" in n])
    wait_until("no dnsmasq", lambda: proc.pid() is None)
    assert first_pid not in dnsmasq.alive_pids(lab.tmp / "dp" / "dhcp" / HOST)
    assert net["id"] in agents["metadata"].removed


def test_dnsmasq_that_will_not_start_is_reported(lab: Lab, cloud: Any) -> None:
    running, api, agents = cloud
    net = api.create("network", name="blocked")
    qdhcp = lab.prefix + "qdhcp-" + net["id"]
    # Something else holds the DHCP server port in the network's namespace.
    netns_ready = asyncio.run(_ensure(qdhcp))
    assert netns_ready
    blocker = netns.socket_in(qdhcp, socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("0.0.0.0", 67))
    try:
        api.create("subnet", network_id=net["id"], cidr="10.91.0.0/24", ip_version=4)

        def dhcp_port(status: str) -> dict[str, Any] | None:
            found = api.get("/ports", params={"network_id": net["id"],
                                              "device_owner": "network:dhcp"}).json()["ports"]
            return found[0] if found and found[0]["status"] == status else None

        wait_until("the DHCP port in ERROR", lambda: dhcp_port("ERROR"))
        reason = running.call(lambda c: _errors(agents["dhcp"], net["id"]))
        assert "dnsmasq did not start" in reason and "in use" in reason
        agent = api.get("/agents", params={"agent_type": "DHCP agent",
                                           "host": HOST}).json()["agents"][0]
        assert net["id"] in agent["configurations"]["dhcp_errors"]
    finally:
        blocker.close()
    # The next update tries again.
    api.create("port", network_id=net["id"])
    wait_until("the DHCP port ACTIVE again", lambda: dhcp_port("ACTIVE"))


async def _ensure(namespace: str) -> bool:
    await netns.ensure(namespace)
    return True


async def _errors(agent: DhcpAgent, network_id: str) -> str:
    return agent.errors.get(network_id, "")
