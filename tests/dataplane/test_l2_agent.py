"""The Linux bridge L2 agent for real: two nodes (network namespaces joined by a veth
underlay, with tunnel IPs), the cloud's network service, and an agent per node started in the
cloud's process. Guests are stood in for by endpoint namespaces: for a port bound to a node, a
veth whose node end is the port's device (tap<port id[:11]>) and whose other end, with the
port's MAC and address, sits in an endpoint namespace of its own.

Every namespace is named nt-<token>-… and deleted at the end, also when a test fails; nothing
is added to the root namespace."""

from __future__ import annotations

import ipaddress
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from nimbus.common.settings import DataplaneSettings, NodeSettings
from nimbus.network.agents.l2 import LinuxBridgeAgent
from tests.guestimage.lab import require
from tests.network.conftest import Api, token_for
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud
from tests.support.shell import sh

PHYSNET = "physnet1"
EXTERNAL_IP = "10.77.9.200"


def missing_tools() -> list[str]:
    import os

    missing = [t for t in ("ip", "bridge", "ping", "iptables-restore", "ip6tables-restore")
               if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root (for ip netns)")
    return missing


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout}s")
        time.sleep(0.05)


@dataclass
class Lab:
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    endpoints: int = 0

    def name(self, suffix: str) -> str:
        return f"nt-{self.token}-{suffix}"

    @property
    def n1(self) -> str:
        return self.name("n1")

    @property
    def n2(self) -> str:
        return self.name("n2")

    def ns(self, namespace: str, *args: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", namespace, *args, check=check).stdout

    def build(self) -> None:
        for node in (self.n1, self.n2, self.name("x")):
            sh("ip", "netns", "add", node)
            self.ns(node, "ip", "link", "set", "lo", "up")
        # underlay between the nodes
        sh("ip", "-n", self.n1, "link", "add", "u1", "type", "veth", "peer", "name", "u2",
           "netns", self.n2)
        for node, dev, address in ((self.n1, "u1", "10.255.0.1/24"),
                                   (self.n2, "u2", "10.255.0.2/24")):
            sh("ip", "-n", node, "addr", "add", address, "dev", dev)
            sh("ip", "-n", node, "link", "set", dev, "up")
        # node1's interface for physnet1 leads to an "external" host
        sh("ip", "-n", self.n1, "link", "add", "phys1", "type", "veth", "peer", "name", "ext0",
           "netns", self.name("x"))
        sh("ip", "-n", self.name("x"), "addr", "add", f"{EXTERNAL_IP}/24", "dev", "ext0")
        sh("ip", "-n", self.name("x"), "link", "set", "ext0", "up")

    def close(self) -> None:
        for namespace in sh("ip", "netns", "list").stdout.split("\n"):
            name = namespace.split(" ")[0]
            if name.startswith(f"nt-{self.token}-"):
                sh("ip", "netns", "delete", name, check=False)

    def endpoint(self, node: str, port: dict[str, Any], cidr: str, mtu: int = 1450) -> str:
        """A stand-in guest for the port: its device on the node, the rest in a namespace."""
        self.endpoints += 1
        ep = self.name(f"e{self.endpoints}")
        sh("ip", "netns", "add", ep)
        self.ns(ep, "ip", "link", "set", "lo", "up")
        tap = "tap" + port["id"][:11]
        sh("ip", "-n", node, "link", "add", tap, "type", "veth", "peer", "name", "eth0",
           "netns", ep)
        address = port["fixed_ips"][0]["ip_address"]
        prefix = ipaddress.ip_network(cidr).prefixlen
        sh("ip", "-n", ep, "link", "set", "eth0", "address", port["mac_address"], "mtu",
           str(mtu), "up")
        sh("ip", "-n", ep, "addr", "add", f"{address}/{prefix}", "dev", "eth0",
           *(["nodad"] if ":" in address else []))
        return ep

    def reaches(self, ep: str, address: str, *, source: str | None = None,
                timeout: float = 20) -> None:
        wait_for(lambda: self.ping(ep, address, source=source), timeout,
                 f"ping {address} from {ep}")

    def ping(self, ep: str, address: str, *, source: str | None = None,
             count: int = 1) -> bool:
        extra = ["-I", source] if source else []
        return sh("ip", "netns", "exec", ep, "ping", "-c", str(count), "-i", "0.2", "-W", "1",
                  *extra, address, check=False).returncode == 0

    def blocked(self, ep: str, address: str, *, source: str | None = None) -> bool:
        return not self.ping(ep, address, source=source, count=3)


@dataclass
class Env:
    cloud: RunningCloud
    api: Api
    lab: Lab
    agents: dict[str, LinuxBridgeAgent]
    h1: str
    h2: str

    def port(self, network: dict[str, Any], host: str, **attrs: Any) -> dict[str, Any]:
        return self.api.create("port", network_id=network["id"], device_owner="compute:nova",
                               device_id=str(uuid.uuid4()), **{"binding:host_id": host},
                               **attrs)

    def status(self, port: dict[str, Any]) -> str:
        status: str = self.api.get(f"/ports/{port['id']}").json()["port"]["status"]
        return status

    def wait_status(self, port: dict[str, Any], wanted: str = "ACTIVE") -> None:
        wait_for(lambda: self.status(port) == wanted, 40, f"port {port['id']} {wanted}")

    def node(self, host: str) -> str:
        return self.lab.n1 if host == self.h1 else self.lab.n2

    def plugged(self, cidr: str, *ports: dict[str, Any]) -> list[str]:
        """A stand-in guest per port on its host's node; once all are ACTIVE, their
        namespaces."""
        eps = [self.lab.endpoint(self.node(p["binding:host_id"]), p, cidr) for p in ports]
        for port in ports:
            self.wait_status(port)
        return eps


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require(missing_tools())
    lab = Lab()
    cloud = RunningCloud(tmp_path_factory.mktemp("l2"), services=["identity", "network"],
                         network={"bootstrap": False})
    agents: dict[str, LinuxBridgeAgent] = {}
    try:
        lab.build()
        cloud.start()
        h1, h2 = f"h1-{lab.token}", f"h2-{lab.token}"
        plane = DataplaneSettings(device_poll_interval=0.05)
        nodes = {h1: NodeSettings(namespace=lab.n1, tunnel_ip="10.255.0.1",
                                  physical_interface_mappings={PHYSNET: "phys1"}),
                 h2: NodeSettings(namespace=lab.n2, tunnel_ip="10.255.0.2")}
        for host, node in nodes.items():
            async def start(c: Any, host: str = host, node: NodeSettings = node) -> Any:
                return await LinuxBridgeAgent(c.bus, host, node, plane).start()

            agents[host] = cloud.call(start)
        api = Api(cloud, token_for(cloud, "admin", ADMIN_PASSWORD, "admin"), "")
        yield Env(cloud, api, lab, agents, h1, h2)
    finally:
        for agent in agents.values():
            async def stop(c: Any, agent: LinuxBridgeAgent = agent) -> None:
                await agent.stop()

            try:
                cloud.call(stop)
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        cloud.stop()
        lab.close()


def network(env: Env, name: str, cidr: str, **attrs: Any) -> dict[str, Any]:
    net, _ = env.api.network(f"{name}-{env.lab.token}", cidr, **attrs)
    return net


def fdb(env: Env, node: str, device: str) -> set[tuple[str, str]]:
    out = env.lab.ns(node, "bridge", "fdb", "show", "dev", device)
    return {(line.split()[0], line.split()[2]) for line in out.splitlines() if " dst " in line}


def test_ports_go_active_and_reach_each_other_over_vxlan(env: Env) -> None:
    cidr = "10.77.1.0/24"
    net = network(env, "vx", cidr)
    assert net["provider:network_type"] == "vxlan"
    a, b = env.port(net, env.h1), env.port(net, env.h2)
    ep_a = env.lab.endpoint(env.lab.n1, a, cidr)
    env.lab.endpoint(env.lab.n2, b, cidr)
    started = time.monotonic()
    env.wait_status(a)
    env.wait_status(b)
    active = time.monotonic() - started
    ip_b = b["fixed_ips"][0]["ip_address"]
    env.lab.reaches(ep_a, ip_b)
    print(f"both ports ACTIVE {active:.2f}s after their devices appeared")

    # The L2 agents are registered with their tunnel endpoints.
    agents = {a["host"]: a for a in env.api.get("/agents").json()["agents"]
              if a["agent_type"] == "Linux bridge agent"}
    assert agents[env.h1]["configurations"]["tunneling_ip"] == "10.255.0.1"
    assert agents[env.h2]["alive"] is True

    # The path is the l2pop entries on the VXLAN device: flood and per-MAC, towards node2.
    vxlan = f"vxlan-{net['provider:segmentation_id']}"
    assert fdb(env, env.lab.n1, vxlan) == {("00:00:00:00:00:00", "10.255.0.2"),
                                           (b["mac_address"], "10.255.0.2")}
    # With node1's agent stopped (so it cannot put them back), delete them: no way through.
    agent = env.agents[env.h1]
    env.cloud.call(lambda c: agent.stop())
    for mac, dst in fdb(env, env.lab.n1, vxlan):
        env.lab.ns(env.lab.n1, "bridge", "fdb", "del", mac, "dev", vxlan, "dst", dst)
    env.lab.ns(ep_a, "ip", "neigh", "flush", "all")
    assert env.lab.blocked(ep_a, ip_b)
    # A new agent on node1 gets them from the server again (its resync).
    env.agents[env.h1] = env.cloud.call(lambda c: LinuxBridgeAgent(
        c.bus, agent.host, agent.node, agent.dataplane).start())
    env.lab.reaches(ep_a, ip_b)

    # Without the underlay there is no way through either.
    env.lab.ns(env.lab.n1, "ip", "link", "set", "u1", "down")
    try:
        assert env.lab.blocked(ep_a, ip_b)
    finally:
        env.lab.ns(env.lab.n1, "ip", "link", "set", "u1", "up")
    env.lab.reaches(ep_a, ip_b)

    # A port deleted on node2 disappears from node1's entries.
    env.api.delete(f"/ports/{b['id']}")
    wait_for(lambda: fdb(env, env.lab.n1, vxlan) == set(), 30, "entries removed")


def test_a_device_made_anew_under_a_wired_name_is_wired_again(env: Env) -> None:
    """What a hypervisor does when it restarts a guest: the tap goes and comes back under the
    same name, and nothing tells the agent. It notices by itself and puts it on the bridge."""
    cidr = "10.77.5.0/24"
    net = network(env, "anew", cidr)
    a, b = env.port(net, env.h1), env.port(net, env.h1)
    ep_a, _ = env.plugged(cidr, a, b)
    ip_b = b["fixed_ips"][0]["ip_address"]
    env.lab.reaches(ep_a, ip_b)
    tap = "tap" + b["id"][:11]
    env.lab.ns(env.lab.n1, "ip", "link", "del", tap)
    ep_b = env.lab.endpoint(env.lab.n1, b, cidr)
    bridge = f"brq{net['id'][:11]}"
    wait_for(lambda: f"master {bridge}" in env.lab.ns(env.lab.n1, "ip", "-o", "link", "show",
                                                        "dev", tap), 10, f"{tap} on {bridge}")
    env.lab.reaches(ep_a, ip_b)
    env.lab.reaches(ep_b, a["fixed_ips"][0]["ip_address"])


def test_vlan_network_is_carried_as_its_own_vni(env: Env) -> None:
    cidr = "10.77.2.0/24"
    net = network(env, "vl", cidr, **{"provider:network_type": "vlan",
                                      "provider:physical_network": PHYSNET,
                                      "provider:segmentation_id": 123})
    a, b = env.port(net, env.h1), env.port(net, env.h2)
    ep_a, _ = env.plugged(cidr, a, b)
    env.lab.reaches(ep_a, b["fixed_ips"][0]["ip_address"])
    device = f"vxlan-{0x800000 + 123}"
    for node in (env.lab.n1, env.lab.n2):
        shown = env.lab.ns(node, "ip", "-d", "-o", "link", "show", "dev", device)
        assert f"master brq{net['id'][:11]}" in shown and f"vxlan id {0x800000 + 123} " in shown


def test_security_group_without_icmp_blocks_ping_until_a_rule_allows_it(env: Env) -> None:
    cidr = "10.77.3.0/24"
    net = network(env, "sg", cidr)
    sg = env.api.create("security_group", name=f"noicmp-{env.lab.token}")
    a = env.port(net, env.h1)  # the project's default group: ingress only from its members
    b = env.port(net, env.h2, security_groups=[sg["id"]])
    ep_a, ep_b = env.plugged(cidr, a, b)
    ip_a, ip_b = a["fixed_ips"][0]["ip_address"], b["fixed_ips"][0]["ip_address"]
    assert env.lab.blocked(ep_a, ip_b)  # b's group lets no ICMP in
    assert env.lab.blocked(ep_b, ip_a)  # a's group lets nothing in from b
    env.api.create("security_group_rule", security_group_id=sg["id"], direction="ingress",
                   ethertype="IPv4", protocol="icmp")
    env.lab.reaches(ep_a, ip_b)  # the replies pass a's ingress: they are ESTABLISHED
    assert env.lab.blocked(ep_b, ip_a)  # while new traffic from b to a still does not


def test_spoofed_source_is_dropped_and_allowed_address_pairs_pass(env: Env) -> None:
    cidr = "10.77.4.0/24"
    net = network(env, "spoof", cidr)
    sg = env.api.create("security_group", name=f"icmp-{env.lab.token}")
    env.api.create("security_group_rule", security_group_id=sg["id"], direction="ingress",
                   ethertype="IPv4", protocol="icmp", remote_ip_prefix="0.0.0.0/0")
    a = env.port(net, env.h1)
    b = env.port(net, env.h2, security_groups=[sg["id"]])
    ep_a, _ = env.plugged(cidr, a, b)
    ip_b = b["fixed_ips"][0]["ip_address"]
    env.lab.reaches(ep_a, ip_b)
    spoofed = "10.77.4.199"
    env.lab.ns(ep_a, "ip", "addr", "add", f"{spoofed}/32", "dev", "eth0")
    assert env.lab.blocked(ep_a, ip_b, source=spoofed)
    resp = env.api.put(f"/ports/{a['id']}", {"port": {
        "allowed_address_pairs": [{"ip_address": spoofed}]}})
    assert resp.status_code == 200, resp.text
    env.lab.reaches(ep_a, ip_b, source=spoofed)


def test_flat_network_is_bridged_to_the_mapped_interface(env: Env) -> None:
    cidr = "10.77.9.0/24"
    net = network(env, "flat", cidr, **{"provider:network_type": "flat",
                                        "provider:physical_network": PHYSNET})
    a = env.port(net, env.h1)
    ep_a = env.lab.endpoint(env.lab.n1, a, cidr, mtu=1500)
    env.wait_status(a)
    env.lab.reaches(ep_a, EXTERNAL_IP)
    assert f"master brq{net['id'][:11]}" in env.lab.ns(env.lab.n1, "ip", "-o", "link",
                                                       "show", "dev", "phys1")
    # node2 maps no interface for physnet1: its port cannot be wired, and says so.
    b = env.port(net, env.h2)
    env.wait_status(b, "ERROR")
    agent = env.agents[env.h2]
    assert PHYSNET in agent.errors[b["id"]]
    # Administratively down: off the bridge, DOWN; up again: back.
    env.api.put(f"/ports/{a['id']}", {"port": {"admin_state_up": False}})
    env.wait_status(a, "DOWN")
    assert env.lab.blocked(ep_a, EXTERNAL_IP)
    env.api.put(f"/ports/{a['id']}", {"port": {"admin_state_up": True}})
    env.wait_status(a)
    env.lab.reaches(ep_a, EXTERNAL_IP)


def test_ipv6_passes_the_ip6tables_rules(env: Env) -> None:
    cidr = "fd77:6::/64"
    net = network(env, "v6", cidr)
    sg = env.api.create("security_group", name=f"icmp6-{env.lab.token}")
    env.api.create("security_group_rule", security_group_id=sg["id"], direction="ingress",
                   ethertype="IPv6", protocol="ipv6-icmp", remote_ip_prefix="::/0")
    a, b = env.port(net, env.h1, security_groups=[sg["id"]]), env.port(net, env.h2)
    ep_a, ep_b = env.plugged(cidr, a, b)
    ip_a, ip_b = a["fixed_ips"][0]["ip_address"], b["fixed_ips"][0]["ip_address"]
    env.lab.reaches(ep_b, ip_a)  # neighbour discovery; a lets ICMPv6 in from anywhere...
    assert env.lab.blocked(ep_a, ip_b)  # b's default group admits its members only
    spoofed = "fd77:6::dead"  # and b may not send from an address not its own
    env.lab.ns(ep_b, "ip", "addr", "add", f"{spoofed}/128", "dev", "eth0", "nodad")
    assert env.lab.blocked(ep_b, ip_a, source=spoofed)


def test_a_restarted_agent_adopts_the_wiring(env: Env) -> None:
    cidr = "10.77.6.0/24"
    net = network(env, "restart", cidr)
    a, b = env.port(net, env.h1), env.port(net, env.h2)
    ep_a, _ = env.plugged(cidr, a, b)
    ip_b = b["fixed_ips"][0]["ip_address"]
    env.lab.reaches(ep_a, ip_b)
    old = env.agents[env.h1]

    async def restart(c: Any) -> LinuxBridgeAgent:
        await old.stop()
        return await LinuxBridgeAgent(c.bus, old.host, old.node, old.dataplane).start()

    env.agents[env.h1] = env.cloud.call(restart)
    assert env.lab.ping(ep_a, ip_b)  # stopping left the wiring as it was
    # The new agent reports the ports again and rewrites its rules, not a second set.
    wait_for(lambda: env.agents[env.h1].status.get(a["id"]) == "ACTIVE", 30, "re-adopted")
    assert env.status(a) == "ACTIVE"
    for tool in ("iptables", "ip6tables"):
        rules = env.lab.ns(env.lab.n1, tool, "-S").splitlines()
        assert rules.count("-A FORWARD -j nimbus-FORWARD") == 1
        jumps = [r for r in rules if r.startswith("-A nimbus-FORWARD") and "-j nimbus-" in r]
        assert len(jumps) == len(set(jumps)) and any(a["id"][:11] in j for j in jumps)
    env.lab.reaches(ep_a, ip_b)


def test_rules_for_protocols_ports_and_remote_addresses() -> None:
    from nimbus.network.dataplane import firewall

    port = {"port_id": "p" * 36, "device": "tap" + "p" * 11, "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"ip_address": "10.0.0.5"}, {"ip_address": "fd00::5"}],
            "allowed_address_pairs": [{"ip_address": "10.0.1.0/24",
                                       "mac_address": "fa:16:3e:00:00:02"}],
            "security_group_rules": [
                {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                 "port_range_min": 80, "port_range_max": 81, "remote_ip_prefix": None,
                 "remote_ips": ["10.0.0.6", "fd00::6"], "stateful": False},
                {"direction": "ingress", "ethertype": "IPv6", "protocol": "icmp",
                 "port_range_min": 128, "port_range_max": 0, "remote_ip_prefix": None,
                 "remote_ips": None, "stateful": False},
                {"direction": "egress", "ethertype": "IPv4", "protocol": "112",
                 "port_range_min": None, "port_range_max": None,
                 "remote_ip_prefix": "192.0.2.0/24", "remote_ips": None, "stateful": False}]}
    v4 = firewall.ruleset([port], ["brqx"], 4)
    i4, o4, s4 = (firewall.chain(k, port["port_id"]) for k in "ios")
    assert ["-s", "10.0.0.6/32", "-p", "tcp", "-m", "tcp", "--dport", "80:81",
            "-j", "RETURN"] in v4[i4]
    assert ["-d", "192.0.2.0/24", "-p", "112", "-j", "RETURN"] in v4[o4]
    assert ["-s", "10.0.1.0/24", "-m", "mac", "--mac-source", "fa:16:3e:00:00:02",
            "-j", "RETURN"] in v4[s4]
    assert not any("conntrack" in rule for rule in v4[i4])  # stateless groups
    assert v4[i4][-1] == v4[o4][-1] == v4[s4][-1] == ["-j", "DROP"]
    v6 = firewall.ruleset([port], ["brqx"], 6)
    assert ["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "128/0",
            "-j", "RETURN"] in v6[i4]
    assert not any("fd00::6/128" in rule for rule in v6[i4])  # the tcp rule is IPv4 only
    unsecured = dict(port, device_owner="network:dhcp")
    assert not firewall.secured(unsecured)
    assert not firewall.secured(dict(port, port_security_enabled=False))


def test_purge_leaves_nothing(env: Env) -> None:
    cidr = "10.77.5.0/24"
    net = network(env, "purge", cidr)
    a = env.port(net, env.h1)
    env.lab.endpoint(env.lab.n1, a, cidr)
    env.wait_status(a)
    for agent in env.agents.values():
        async def purge(c: Any, agent: LinuxBridgeAgent = agent) -> None:
            await agent.purge()

        env.cloud.call(purge)
    for node in (env.lab.n1, env.lab.n2):
        links = env.lab.ns(node, "ip", "-o", "link", "show")
        assert " brq" not in links and " vxlan-" not in links
        for tool in ("iptables-save", "ip6tables-save"):
            assert "nimbus-" not in env.lab.ns(node, tool)
        assert "phys1" not in links or "master" not in env.lab.ns(
            node, "ip", "-o", "link", "show", "dev", "phys1")
