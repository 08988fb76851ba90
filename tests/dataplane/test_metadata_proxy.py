"""The metadata proxy for real: a cloud (fake hypervisor) whose server ports are reached from
namespaces of the test's own, through the proxy serving 169.254.169.254:80 inside a "DHCP"
namespace, which asks compute over the bus.

  nt-<token>-node   bridge br0: the node (taps of guests, veths of the others)
  nt-<token>-dhcp   ns-dhcp on br0: an address of the subnet, 169.254.169.254/32; the proxy's
                    socket (and dnsmasq, for the booted guest)
  nt-<token>-guest  eth0 on br0: a server port's fixed IP, plus addresses that are no
                    server's; HTTP from here with python's http.client

The second test boots the test image under QEMU (TCG) with the MAC of a server's port: it gets
its lease from dnsmasq and reads meta_data.json (hostname, uuid, key) and user_data through
the proxy. Nothing is added to the root namespace; everything goes with the namespaces."""

from __future__ import annotations

import base64
import gzip
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from nimbus.cloud import Cloud
from nimbus.network.agents.metadata import MetadataProxy
from tests.compute.conftest import Api, _identity, login, net_api, wait_for_hosts
from tests.compute.test_keypairs import public_key
from tests.guestimage.lab import CACHE, missing_host_tools, require
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud
from tests.support.shell import sh, start_in

SERVICES = ["identity", "placement", "image", "network", "compute"]
HOST = "md-node"
METADATA_IP = "169.254.169.254"

CLIENT = r"""
import base64, http.client, json, socket, sys
out = []
for source, method, path in json.loads(sys.argv[1]):
    if method == "RAW":  # bytes as given, then whatever comes back
        with socket.create_connection(("169.254.169.254", 80), 15, (source, 0)) as sock:
            sock.sendall(path.encode())
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
        out.append({"raw": got.decode("utf-8", "replace")})
        continue
    conn = http.client.HTTPConnection("169.254.169.254", 80, timeout=15,
                                      source_address=(source, 0))
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        out.append({"status": resp.status, "type": resp.getheader("Content-Type"),
                    "length": resp.getheader("Content-Length"),
                    "body": body.decode("utf-8", "replace"),
                    "body_b64": base64.b64encode(body).decode()})
    except OSError as exc:
        out.append({"error": type(exc).__name__ + ": " + str(exc)})
    finally:
        conn.close()
print(json.dumps(out))
"""


def missing() -> list[str]:
    gone = [f"{tool}" for tool in ("ip",) if shutil.which(tool) is None]
    if os.geteuid() != 0:
        gone.append("root (for ip netns)")
    return gone


@dataclass
class Plane:
    """The test's namespaces (see the module docstring) and the processes it started."""

    workdir: Path
    cidr: ipaddress.IPv4Network
    dhcp_ip: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    namespaces: list[str] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return f"nt-{self.token}-node"

    @property
    def dhcp(self) -> str:
        return f"nt-{self.token}-dhcp"

    @property
    def guest(self) -> str:
        return f"nt-{self.token}-guest"

    def ns(self, netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", netns, *args, check=check)

    def build(self) -> None:
        for netns in (self.node, self.dhcp, self.guest):
            sh("ip", "netns", "add", netns)
            self.namespaces.append(netns)
            self.ns(netns, "ip", "link", "set", "lo", "up")
        prefix = self.cidr.prefixlen
        self.ns(self.node, "ip", "link", "add", "br0", "type", "bridge")
        self.ns(self.node, "ip", "link", "set", "br0", "up")
        for peer_ns, inner, outer in ((self.dhcp, "ns-dhcp", "tapdhcp"),
                                      (self.guest, "eth0", "tapguest")):
            self.ns(self.node, "ip", "link", "add", outer, "type", "veth", "peer", "name",
                    inner, "netns", peer_ns)
            self.ns(self.node, "ip", "link", "set", outer, "master", "br0", "up")
            self.ns(peer_ns, "ip", "link", "set", inner, "up")
        # What the DHCP agent does: the DHCP port's address and the metadata address.
        self.ns(self.dhcp, "ip", "addr", "add", f"{self.dhcp_ip}/{prefix}", "dev", "ns-dhcp")
        self.ns(self.dhcp, "ip", "addr", "add", f"{METADATA_IP}/32", "dev", "ns-dhcp")

    def add_guest_address(self, ip: str) -> None:
        self.ns(self.guest, "ip", "addr", "add", f"{ip}/{self.cidr.prefixlen}", "dev", "eth0")
        # What DHCP option 121 gives a guest: the metadata address through the DHCP port.
        self.ns(self.guest, "ip", "route", "replace", f"{METADATA_IP}/32", "via", self.dhcp_ip)

    def fetch(self, *requests: tuple[str, str, str]) -> list[dict[str, Any]]:
        """(source address, method, path) -> what the guest namespace got back."""
        done = self.ns(self.guest, sys.executable, "-I", "-c", CLIENT,
                       json.dumps([list(r) for r in requests]))
        result: list[dict[str, Any]] = json.loads(done.stdout)
        return result

    def start(self, name: str, netns: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = self.procs[name] = start_in(netns, args, self.workdir / f"{name}.log")
        return proc

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for netns in reversed(self.namespaces):
            sh("ip", "netns", "del", netns, check=False)
        self.namespaces.clear()


# -- the cloud, its server and the namespaces ----------------------------------------------------
@pytest.fixture(scope="module")
def mcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    require(missing())
    running = RunningCloud(Path(tmp_path_factory.mktemp("metadata-proxy")), services=SERVICES,
                           compute={"hosts": [HOST]}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(mcloud: RunningCloud) -> Api:
    token = login(mcloud, "admin", ADMIN_PASSWORD, "admin")
    project, user = _identity(mcloud, token)
    wait_for_hosts(mcloud, token, 1)
    return Api(mcloud, token, project, user)


@dataclass
class Setup:
    network_id: str
    subnet: dict[str, Any]
    image: str
    key_name: str
    key: str


@pytest.fixture(scope="module")
def setup(api: Api) -> Setup:
    headers = {"X-Auth-Token": api.token}
    image = httpx.post(api.other("image", "/v2/images"), headers=headers, json={
        "name": "md-tiny", "disk_format": "raw", "container_format": "bare"}).json()["id"]
    httpx.put(api.other("image", f"/v2/images/{image}/file"), content=b"\0" * 1024,
              headers={**headers, "Content-Type": "application/octet-stream"})
    key_name, key = "md-proxy-key", public_key()
    resp = api.post("/os-keypairs", {"keypair": {"name": key_name, "public_key": key}})
    assert resp.status_code in (200, 201), resp.text
    net = net_api(api, "GET", "/v2.0/networks", params={"name": "private"})["networks"][0]
    subnet = net_api(api, "GET", f"/v2.0/subnets/{net['subnets'][0]}")["subnet"]
    return Setup(net["id"], subnet, image, key_name, key)


def boot(api: Api, setup: Setup, name: str, user_data: str | bytes) -> tuple[
        dict[str, Any], dict[str, Any]]:
    """An ACTIVE server on the private network, and its port."""
    raw = user_data.encode() if isinstance(user_data, str) else user_data
    server = api.wait(api.boot(
        name, setup.image, networks=[{"uuid": setup.network_id}], key_name=setup.key_name,
        metadata={"purpose": "metadata-proxy-test"},
        user_data=base64.b64encode(raw).decode())["server"]["id"])
    [port] = net_api(api, "GET", "/v2.0/ports", params={"device_id": server["id"]})["ports"]
    return server, port


def free_addresses(api: Api, setup: Setup, count: int) -> list[str]:
    """Addresses of the subnet that no port has, from the top."""
    used = {ip["ip_address"] for p in net_api(api, "GET", "/v2.0/ports", params={
        "network_id": setup.network_id})["ports"] for ip in p["fixed_ips"]}
    cidr = ipaddress.ip_network(setup.subnet["cidr"])
    hosts = [str(h) for h in reversed(list(cidr.hosts()))
             if str(h) not in used and str(h) != setup.subnet["gateway_ip"]]
    return hosts[:count]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, api: Api, setup: Setup) -> Iterator[Plane]:
    [dhcp_ip] = free_addresses(api, setup, 1)
    built = Plane(Path(tmp_path_factory.mktemp("plane")),
                  ipaddress.ip_network(setup.subnet["cidr"]), dhcp_ip)

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupted)  # a CI timeout still cleans up
    try:
        built.build()
        yield built
    finally:
        built.close()
        signal.signal(signal.SIGTERM, previous)
    listed = sh("ip", "netns", "list").stdout
    assert built.token not in listed


@pytest.fixture(scope="module")
def proxy(mcloud: RunningCloud, setup: Setup, plane: Plane) -> Iterator[MetadataProxy]:
    async def start(cloud: Cloud) -> MetadataProxy:
        running = MetadataProxy(cloud, HOST)
        await running.add(setup.network_id, plane.dhcp)
        return running

    running: MetadataProxy = mcloud.call(start)
    try:
        yield running
    finally:
        async def stop(_cloud: Cloud) -> None:
            await running.stop()
        mcloud.call(stop)
    assert running.networks == {}


# -- the tests -------------------------------------------------------------------------------------
def test_guest_reads_its_metadata_through_the_proxy(mcloud: RunningCloud, api: Api,
                                                    setup: Setup, plane: Plane,
                                                    proxy: MetadataProxy) -> None:
    server, port = boot(api, setup, "md-proxy-1", "#!/bin/sh\necho proxied\n")
    ip = port["fixed_ips"][0]["ip_address"]
    binary = gzip.compress(b"#cloud-config\n")
    _, gzip_port = boot(api, setup, "md-proxy-gzip", binary)
    gzip_ip = gzip_port["fixed_ips"][0]["ip_address"]
    stray, foreign_ip = free_addresses(api, setup, 3)[1:]
    # A port that is no server's (a router's, say) has an address but gets nothing.
    foreign = net_api(api, "POST", "/v2.0/ports", {"port": {
        "network_id": setup.network_id, "device_owner": "network:router_interface_test",
        "device_id": str(uuid.uuid4()), "fixed_ips": [{"ip_address": foreign_ip}]}})["port"]
    for address in (ip, stray, foreign_ip, gzip_ip):
        plane.add_guest_address(address)
    assert proxy.networks == {setup.network_id: (plane.dhcp, METADATA_IP, 80)}

    started = time.monotonic()
    got = plane.fetch(
        (ip, "GET", "/openstack/latest/meta_data.json"),
        (ip, "GET", "/openstack/latest/user_data"),
        (ip, "GET", "/latest/meta-data/local-ipv4"),
        (ip, "GET", "/openstack"),
        (ip, "HEAD", "/openstack/latest/meta_data.json"),
        (ip, "GET", "/openstack/latest/nothing-here"),
        (ip, "POST", "/openstack/latest/password"),
        (stray, "GET", "/openstack/latest/meta_data.json"),
        (foreign_ip, "GET", "/openstack/latest/meta_data.json"),
        (gzip_ip, "GET", "/latest/user-data"),
        (ip, "RAW", "NOT HTTP AT ALL\r\n\r\n"),
    )
    elapsed = time.monotonic() - started
    print(f"\n{len(got)} requests from the guest namespace in {elapsed:.2f} s "
          "(one python start)")
    meta_resp, user_data, local_ip, versions, head, missing_path, post, from_stray, \
        from_foreign, gzipped, garbage = got
    assert meta_resp["status"] == 200, got
    assert meta_resp["type"] == "application/json"
    meta = json.loads(meta_resp["body"])
    assert meta["uuid"] == server["id"]
    assert meta["hostname"] == "md-proxy-1.novalocal" and meta["name"] == "md-proxy-1"
    assert meta["public_keys"] == {setup.key_name: setup.key}
    assert meta["meta"] == {"purpose": "metadata-proxy-test"}
    assert int(meta_resp["length"]) == len(meta_resp["body"].encode())
    assert (user_data["status"], user_data["body"]) == (200, "#!/bin/sh\necho proxied\n")
    assert (local_ip["status"], local_ip["body"]) == (200, ip)
    assert versions["body"].split("\n")[-1] == "latest"
    assert head["status"] == 200 and head["body"] == "" and int(head["length"]) > 100
    assert missing_path["status"] == 404
    assert post["status"] == 405
    assert from_stray["status"] == 404, from_stray
    assert from_foreign["status"] == 404, from_foreign
    assert gzipped["status"] == 200 and base64.b64decode(gzipped["body_b64"]) == binary
    assert garbage["raw"].startswith("HTTP/1.1 400 "), garbage
    net_api(api, "DELETE", f"/v2.0/ports/{foreign['id']}")

    # Not served once removed; served again once added.
    async def remove(_cloud: Cloud) -> None:
        await proxy.remove(setup.network_id)
    mcloud.call(remove)
    [refused] = plane.fetch((ip, "GET", "/openstack/latest/meta_data.json"))
    assert "ConnectionRefusedError" in refused.get("error", ""), refused

    async def add(_cloud: Cloud) -> None:
        await proxy.add(setup.network_id, plane.dhcp)
        await proxy.add(setup.network_id, plane.dhcp)  # twice: still one listener
    mcloud.call(add)
    [again] = plane.fetch((ip, "GET", "/openstack/latest/meta_data.json"))
    assert again["status"] == 200 and json.loads(again["body"])["uuid"] == server["id"]


def test_the_test_image_boots_with_metadata_from_the_proxy(
        mcloud: RunningCloud, api: Api, setup: Setup, plane: Plane,
        proxy: MetadataProxy) -> None:
    from nimbus.guestimage import builder

    require(builder.missing_tools() + missing_host_tools())
    image = builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE)
    marker = f"user-data ran {plane.token}"
    server, port = boot(api, setup, f"md-vm-{plane.token}",
                        f"#!/bin/sh\necho \"{marker}\" on $(hostname)\n")
    ip, mac = port["fixed_ips"][0]["ip_address"], port["mac_address"]
    cidr = plane.cidr
    w = plane.workdir
    (w / "dhcp-hosts").write_text(f"{mac},{ip}\n")
    (w / "dhcp-opts").write_text(
        f"option:router,{setup.subnet['gateway_ip']}\n"
        f"option:classless-static-route,{METADATA_IP}/32,{plane.dhcp_ip},"
        f"0.0.0.0/0,{setup.subnet['gateway_ip']}\n")
    plane.start("dnsmasq", plane.dhcp, [
        "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
        "--port=0", "--user=root", "--group=root", "--interface=ns-dhcp", "--bind-interfaces",
        "--except-interface=lo",
        f"--dhcp-range=set:md,{cidr.network_address},static,{cidr.netmask},86400s",
        f"--dhcp-hostsfile={w / 'dhcp-hosts'}", f"--dhcp-optsfile={w / 'dhcp-opts'}",
        f"--dhcp-leasefile={w / 'leases'}", f"--pid-file={w / 'dnsmasq.pid'}",
        "--dhcp-authoritative", "--log-dhcp"])
    plane.ns(plane.node, "ip", "tuntap", "add", "dev", "tapvm", "mode", "tap")
    plane.ns(plane.node, "ip", "link", "set", "tapvm", "master", "br0", "up")
    overlay = w / "vm.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.path),
       str(overlay))
    console = w / "vm.console.log"
    started = time.monotonic()
    qemu = plane.start("vm", plane.node, [
        "qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-smp", "1", "-machine", "pc",
        "-nodefaults", "-display", "none", "-no-reboot",
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-netdev", "tap,id=n0,ifname=tapvm,script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
        "-chardev", f"socket,id=s0,path={w / 'vm.serial'},server=on,wait=off,logfile={console}",
        "-serial", "chardev:s0"])

    def wait_for(pattern: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while True:
            text = console.read_text(errors="replace") if console.exists() else ""
            if re.search(pattern, text):
                return time.monotonic() - started
            if qemu.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the console:\n{text[-4000:]}\n"
                                     f"--- dnsmasq ---\n{plane.log('dnsmasq')[-2000:]}\n"
                                     f"--- qemu ---\n{plane.log('vm')[-1000:]}")
            time.sleep(0.1)

    hostname = f"md-vm-{plane.token}"
    meta_s = wait_for(rf"nimbus-guest: metadata hostname {hostname} instance-id "
                      rf"{server['id']} keys 1", 120)
    banner_s = wait_for(r"nimbus-guest: ready: ssh cirros@", 60)
    print(f"\nguest: QEMU start -> metadata read {meta_s:.1f} s, -> banner {banner_s:.1f} s")
    text = console.read_text(errors="replace")
    assert f"{marker} on {hostname}" in text
    assert f"nimbus-guest: eth0 {ip}/{cidr.prefixlen}" in text
    qemu.kill()
    qemu.wait(10)
