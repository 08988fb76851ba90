"""The end-to-end test of the real data plane: a whole cloud whose compute hosts are two node
namespaces, real QEMU guests (TCG), Linux bridges, VXLAN, dnsmasq, a router namespace and
iptables security groups, driven through openstacksdk as a user would.

Node 1: a network, a subnet and a router to the external network; two servers with a key pair
and user-data. Both get their DHCP leases (console), ping each other, and reach the external
host through SNAT (the host sees the router's address, or the floating IP's); the external host
reaches one of them through a floating IP by SSH with the injected key, and by ping once the
security group allows ICMP. Node 2: a third server on the same network over VXLAN, pinging
across nodes, live-migrated with a ping running. Then everything is deleted and nothing is
left: no namespace, process, tap or file."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.guestimage import builder
from tests.dataplane.plane import EXTERNAL_HOST, Plane, wait_until
from tests.guestimage.lab import CACHE, missing_host_tools, require
from tests.support.cloud import RunningCloud
from tests.support.shell import sh

SUBNET = "10.77.0"
MARKER = "user-data-ran"


@pytest.fixture(scope="module")
def image() -> builder.BuildResult:
    require(builder.missing_tools() + missing_host_tools())
    return builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory,
          image: builder.BuildResult) -> Iterator[Plane]:
    lab = Plane(tmp_path_factory.mktemp("plane"))
    try:
        yield lab.build()
    finally:
        leftovers = lab.close()
        assert lab.namespaces() == []
        assert leftovers == [], f"the cloud left namespaces behind: {leftovers}"


@pytest.fixture(scope="module")
def cloud(plane: Plane, image: builder.BuildResult,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = RunningCloud(tmp_path_factory.mktemp("state"), **plane.settings(image.path))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def world(cloud: RunningCloud, plane: Plane) -> dict[str, Any]:
    """What the tests share: the connection, the key, the network and the router."""
    conn = cloud.connect()
    key = plane.workdir / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", str(key))
    conn.compute.create_keypair(name="e2e", public_key=key.with_suffix(".pub").read_text())
    net = conn.network.create_network(name="e2e-net")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        cidr=f"{SUBNET}.0/24", name="e2e-subnet")
    public = conn.network.find_network("public")
    router = conn.network.create_router(name="e2e-router",
                                        external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet=subnet.id)
    group = conn.network.create_security_group(name="e2e-sg")
    conn.network.create_security_group_rule(  # SSH from anywhere
        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0")
    conn.network.create_security_group_rule(  # anything from the group's own members
        security_group_id=group.id, direction="ingress", ethertype="IPv4",
        remote_group_id=group.id)
    image_id = conn.image.find_image("nimbus-test").id
    flavor = conn.compute.find_flavor("m1.nano")
    return {"conn": conn, "key": key, "net": net, "subnet": subnet, "router": router,
            "group": group, "image": image_id, "flavor": flavor, "public": public}


def boot(world: dict[str, Any], name: str, host: str, user_data: str = "") -> Any:
    import base64

    extra = {"user_data": base64.b64encode(user_data.encode()).decode()} if user_data else {}
    return world["conn"].compute.create_server(
        name=name, image_id=world["image"], flavor_id=world["flavor"].id,
        networks=[{"uuid": world["net"].id}], key_name="e2e",
        security_groups=[{"name": "e2e-sg"}], availability_zone=f"nova:{host}", **extra)


def console(world: dict[str, Any], server: Any) -> str:
    out: str = world["conn"].compute.get_server_console_output(server)["output"]
    return out


def fixed_ip(world: dict[str, Any], server: Any) -> str:
    server = world["conn"].compute.get_server(server)
    return str(server.addresses["e2e-net"][0]["addr"])


def ssh(plane: Plane, world: dict[str, Any], address: str, command: str,
        deadline_s: float = 60) -> str:
    """Run `command` in a guest over SSH from the external host, retrying until dropbear
    answers."""
    argv = ["ssh", "-i", str(world["key"]), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", f"cirros@{address}", command]

    def attempt() -> str | None:
        done = plane.run_in("ext", *argv, check=False, timeout=120)
        return done.stdout if done.returncode == 0 else None

    return wait_until(f"ssh cirros@{address} {command!r}", attempt, deadline_s, every=1)


def ext_pings(plane: Plane, address: str, count: int = 1) -> bool:
    done = plane.run_in("ext", "ping", "-c", str(count), "-W", "2", address, check=False)
    return done.returncode == 0


def test_two_guests_on_one_node(plane: Plane, world: dict[str, Any]) -> None:
    conn = world["conn"]
    script = ("#!/bin/sh\n"
              f"ping -c 3 -W 3 {EXTERNAL_HOST} >/dev/null && echo {MARKER} ext-ping-ok\n"
              f"echo {MARKER} on $(hostname)\n")
    started = time.monotonic()
    vm1 = boot(world, "e2e-vm1", "node1", script)
    vm2 = boot(world, "e2e-vm2", "node1", script)
    vm1 = conn.compute.wait_for_server(vm1, status="ACTIVE", wait=180, interval=0.5)
    vm2 = conn.compute.wait_for_server(vm2, status="ACTIVE", wait=180, interval=0.5)
    active_s = time.monotonic() - started
    assert vm1.compute_host == vm2.compute_host == "node1"
    ip1, ip2 = fixed_ip(world, vm1), fixed_ip(world, vm2)
    for server, address in ((vm1, ip1), (vm2, ip2)):
        port = next(conn.network.ports(device_id=server.id))
        assert port.status == "ACTIVE" and port.binding_host_id == "node1"
        banner = wait_until(f"{server.name}'s banner", lambda s=server: re.search(
            r"nimbus-guest: ready: ssh cirros@(\S+)", console(world, s)), 120, every=0.5)
        assert banner.group(1) == address
        text = console(world, server)
        assert f"nimbus-guest: lease eth0 {address}/24" in text
        assert f"nimbus-guest: metadata hostname {server.name}" in text
        # user-data ran, and its ping left through the router's SNAT
        assert f"{MARKER} on {server.name}" in text
        assert f"{MARKER} ext-ping-ok" in text, text
    print(f"\ntwo servers: API -> both ACTIVE {active_s:.1f} s")

    router = conn.network.get_router(world["router"])
    gateway_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    assert gateway_ip in plane.pings_seen_from()
    assert ip1 not in plane.pings_seen_from()  # private addresses never leave

    # A floating IP for vm1: SSH from the external host with the injected key.
    port1 = next(conn.network.ports(device_id=vm1.id))
    fip = conn.network.create_ip(floating_network_id=world["public"].id, port_id=port1.id)
    address = fip.floating_ip_address
    out = ssh(plane, world, address, f"echo ssh-ok $(id -un) $(hostname); "
              f"ping -c 2 -W 3 {ip2} >/dev/null && echo ping-vm2-ok; "
              f"ping -c 2 -W 3 {EXTERNAL_HOST} >/dev/null && echo ping-ext-ok")
    assert "ssh-ok cirros e2e-vm1" in out
    assert "ping-vm2-ok" in out and "ping-ext-ok" in out, out
    assert address in plane.pings_seen_from()  # vm1 leaves as its floating IP

    # The group lets SSH in from anywhere but ICMP only from its members.
    assert not ext_pings(plane, address)
    rule = conn.network.create_security_group_rule(
        security_group_id=world["group"].id, direction="ingress", ethertype="IPv4",
        protocol="icmp", remote_ip_prefix="0.0.0.0/0")
    wait_until("the ICMP rule to let the ping through", lambda: ext_pings(plane, address),
               30, every=0.5)
    conn.network.delete_security_group_rule(rule)
    wait_until("the ping to be blocked again", lambda: not ext_pings(plane, address), 30,
               every=0.5)

    # The image names a kernel and a ramdisk: the guests booted straight from them, no boot
    # loader ran. A soft reboot (ACPI power button, then a new QEMU) keeps vm2 on its
    # network: it leases its address again and vm1 reaches it.
    assert "SYSLINUX" not in console(world, vm2)
    conn.compute.reboot_server(vm2, "SOFT")
    wait_until("vm2's new lease after its reboot", lambda: console(world, vm2).count(
        f"nimbus-guest: lease eth0 {ip2}/") >= 2, 120, every=0.5)
    out = ssh(plane, world, address, f"ping -c 2 -W 3 {ip2} >/dev/null && echo ping-vm2-ok")
    assert "ping-vm2-ok" in out, out
    world["vm1"], world["vm2"], world["fip"] = vm1, vm2, fip


def test_second_node_vxlan_and_live_migration(plane: Plane, world: dict[str, Any]) -> None:
    conn = world["conn"]
    vm3 = boot(world, "e2e-vm3", "node2")
    vm3 = conn.compute.wait_for_server(vm3, status="ACTIVE", wait=180, interval=0.5)
    assert vm3.compute_host == "node2"
    ip3 = fixed_ip(world, vm3)
    wait_until("vm3's lease (from node1's DHCP over VXLAN)",
               lambda: f"nimbus-guest: lease eth0 {ip3}/24" in console(world, vm3), 120, 0.5)
    address = world["fip"].floating_ip_address
    assert "ok" in ssh(plane, world, address, f"ping -c 2 -W 3 {ip3} >/dev/null && echo ok")

    # Ping vm3 from vm1 every 0.2 s while vm3 moves to node1.
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", plane.ns("ext"), "ssh", "-i", str(world["key"]),
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"cirros@{address}",
         f"ping -c 60 -i 0.2 -W 1 {ip3}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        conn.compute.live_migrate_server(vm3, host="node1", block_migration=False)
        wait_until("vm3 on node1", lambda: (s := conn.compute.get_server(vm3)).compute_host
                   == "node1" and s.status == "ACTIVE", 120, every=0.5)
        out, _ = pinger.communicate(timeout=60)
    finally:
        pinger.kill()
    received = int(re.search(r"(\d+) packets received", out).group(1))  # type: ignore[union-attr]
    print(f"\nlive migration: {received}/60 pings answered")
    assert received >= 50, out
    port3 = next(conn.network.ports(device_id=vm3.id))
    assert port3.binding_host_id == "node1" and port3.status == "ACTIVE"
    assert "ok" in ssh(plane, world, address, f"ping -c 1 -W 3 {ip3} >/dev/null && echo ok")
    world["vm3"] = vm3


def test_deleting_everything_leaves_nothing(plane: Plane, world: dict[str, Any],
                                            cloud: RunningCloud) -> None:
    conn = world["conn"]
    servers = [world[k] for k in ("vm1", "vm2", "vm3") if k in world]
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=60, interval=0.5)
    if "fip" in world:
        conn.network.delete_ip(world["fip"])
    conn.network.remove_interface_from_router(world["router"], subnet=world["subnet"].id)
    conn.network.delete_router(world["router"])
    conn.network.delete_network(world["net"])
    # The admin project's own private network and router1 (the bootstrap's) go too, so
    # that no DHCP or router namespace should be left.
    for router in conn.network.routers():
        for port in conn.network.ports(device_id=router.id,
                                       device_owner="network:router_interface"):
            conn.network.remove_interface_from_router(router, port_id=port.id)
        conn.network.delete_router(router)
    for net in conn.network.networks(name="private"):
        conn.network.delete_network(net)

    def clean() -> bool:
        extra = [ns for ns in plane.namespaces()
                 if ns not in {plane.ns("n1"), plane.ns("n2"), plane.ns("ext")}]
        guests = [p for n in ("n1", "n2") for p in plane.pids_in(plane.ns(n))]
        taps = [link for n in ("n1", "n2") for link in plane.links(n)
                if link.startswith("tap")]
        return not extra and not guests and not taps

    wait_until("the data plane to be empty", clean, 60, every=0.5)
    instances = Path(plane.workdir / "instances")
    assert not instances.exists() or [p.name for p in instances.iterdir()
                                      if p.name != "_base"] == []
