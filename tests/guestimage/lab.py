"""A lab for booting the test guest: two network namespaces of the test's own, nothing else.

  <node> netns: bridge br0, a tap per guest (QEMU's NIC), tapdhcp (veth to the dhcp netns)
  <node>-d netns: ns-dhcp 10.91.0.2/24 and 169.254.169.254/32, dnsmasq, the metadata server

No address or route is added to the root namespace, nothing has an uplink, and QEMU uses only
the tap device (never QEMU user-mode networking). `close()` ends every process the lab started and
deletes both namespaces (and with them the bridge, veth and tap)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import unavailable
from tests.support.shell import sh, start_in

SUBNET = "10.91.0"
DHCP_IP = f"{SUBNET}.2"
GATEWAY = f"{SUBNET}.1"  # advertised, never configured: there is nowhere to go
MTU = 1400
METADATA_IP = "169.254.169.254"
HERE = Path(__file__).parent


# .debs and the test's image live outside the repo and survive between runs; the image is
# rebuilt whenever the builder's code, its guest files or the Debian packages change.
CACHE = Path(os.environ.get("NIMBUS_GUEST_CACHE", "/var/tmp/nimbus-guest-cache"))


def require(missing: list[str]) -> None:
    """Skip when the machine lacks something (fail instead when CI=true)."""
    if missing:
        unavailable("the guest image test needs: " + ", ".join(missing))


def missing_host_tools() -> list[str]:
    """What the boot test needs from the machine and does not find."""
    missing = [f"{tool} ({pkg})" for tool, pkg in {
        "ip": "iproute2", "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
        "dnsmasq": "dnsmasq-base", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
    }.items() if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (for ip netns)")
    if not Path("/dev/net/tun").exists():
        missing.append("/dev/net/tun")
    return missing




@dataclass(frozen=True)
class Guest:
    name: str
    mac: str
    ip: str
    tap: str


@dataclass
class Lab:
    workdir: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)  # guest -> when QEMU started

    @property
    def node(self) -> str:
        return f"nimbus-test-{self.token}"

    @property
    def dhcp(self) -> str:
        return f"nimbus-test-{self.token}-d"

    def console_log(self, guest: Guest) -> Path:
        return self.workdir / f"{guest.name}.console.log"

    def ns(self, netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", netns, *args, check=check)

    def _start(self, name: str, netns: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = self.procs[name] = start_in(netns, args, self.workdir / f"{name}.log")
        return proc

    # -- network -------------------------------------------------------------------------
    def wire(self, guests: list[Guest], metadata: dict[str, object], user_data: str,
             hang: list[Guest] | None = None) -> None:
        """The namespaces, bridge and taps; dnsmasq with a host entry per guest; the metadata
        server (the same answers for all guests, none at all for those in `hang`)."""
        for netns in (self.node, self.dhcp):
            sh("ip", "netns", "add", netns)
            self.namespaces.append(netns)
            self.ns(netns, "ip", "link", "set", "lo", "up")
        node, dhcp = self.node, self.dhcp
        self.ns(node, "ip", "link", "add", "br0", "type", "bridge")
        self.ns(node, "ip", "link", "set", "br0", "up")
        self.ns(node, "ip", "link", "add", "tapdhcp", "type", "veth", "peer", "name", "ns-dhcp",
                "netns", dhcp)
        self.ns(node, "ip", "link", "set", "tapdhcp", "master", "br0", "up")
        for guest in guests:
            self.ns(node, "ip", "tuntap", "add", "dev", guest.tap, "mode", "tap")
            self.ns(node, "ip", "link", "set", guest.tap, "master", "br0", "up")
        self.ns(dhcp, "ip", "addr", "add", f"{DHCP_IP}/24", "dev", "ns-dhcp")
        self.ns(dhcp, "ip", "addr", "add", f"{METADATA_IP}/32", "dev", "ns-dhcp")
        self.ns(dhcp, "ip", "link", "set", "ns-dhcp", "up")

        (self.workdir / "dhcp-hosts").write_text("".join(f"{g.mac},{g.ip}\n" for g in guests))
        (self.workdir / "dhcp-opts").write_text(
            f"option:router,{GATEWAY}\n"
            f"option:classless-static-route,{METADATA_IP}/32,{DHCP_IP},0.0.0.0/0,{GATEWAY}\n"
            f"option:mtu,{MTU}\n")
        w = self.workdir
        self._start("dnsmasq", dhcp, [
            "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
            "--port=0", "--user=root", "--group=root", "--interface=ns-dhcp",
            "--bind-interfaces", "--except-interface=lo",
            f"--dhcp-range=set:lab,{SUBNET}.0,static,255.255.255.0,86400s",
            f"--dhcp-hostsfile={w / 'dhcp-hosts'}", f"--dhcp-optsfile={w / 'dhcp-opts'}",
            f"--dhcp-leasefile={w / 'leases'}", f"--pid-file={w / 'dnsmasq.pid'}",
            "--dhcp-authoritative", "--log-dhcp"])

        md = w / "metadata" / "openstack" / "latest"
        md.mkdir(parents=True)
        (md / "meta_data.json").write_text(json.dumps(metadata))
        (md / "user_data").write_text(user_data)
        self._start("metadata", dhcp, [sys.executable, str(HERE / "metadata_server.py"),
                                       METADATA_IP, "80", str(w / "metadata"),
                                       ",".join(g.ip for g in hang or [])])
        deadline = time.monotonic() + 10
        while "ready" not in (w / "metadata.log").read_text():
            if self.procs["metadata"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("metadata server did not start: "
                                   + (w / "metadata.log").read_text())
            time.sleep(0.05)

    # -- the guest -----------------------------------------------------------------------
    def boot(self, image: Path, guest: Guest) -> None:
        overlay = self.workdir / f"{guest.name}.qcow2"
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image),
           str(overlay))
        self.started[guest.name] = time.monotonic()
        sock = self.workdir / guest.name
        self._start(guest.name, self.node, [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-smp", "1", "-machine", "pc",
            "-nodefaults", "-display", "none", "-no-reboot",
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-netdev", f"tap,id=n0,ifname={guest.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={guest.mac}",
            "-chardev", f"socket,id=s0,path={sock}.serial,server=on,wait=off,"
                        f"logfile={self.console_log(guest)}",
            "-serial", "chardev:s0",
            "-qmp", f"unix:{sock}.qmp,server=on,wait=off"])

    def console(self, guest: Guest) -> str:
        try:
            return self.console_log(guest).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, guest: Guest, pattern: str,
                 timeout: float) -> tuple[re.Match[str], float]:
        """The first match of `pattern` in the guest's console log, and seconds since its
        QEMU started."""
        deadline = time.monotonic() + timeout
        while True:
            if match := re.search(pattern, self.console(guest)):
                return match, time.monotonic() - self.started[guest.name]
            qemu = self.procs.get(guest.name)
            if qemu is not None and qemu.poll() is not None:
                raise AssertionError(f"QEMU of {guest.name} exited ({qemu.returncode}) before "
                                     f"{pattern!r}:\n" + self.diagnostics(guest))
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the console of {guest.name} in "
                                     f"{timeout:.0f} s:\n" + self.diagnostics(guest))
            time.sleep(0.1)

    def qmp(self, guest: Guest, command: str) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.workdir / f"{guest.name}.qmp"))
            reader = sock.makefile("rb")
            reader.readline()  # greeting
            for cmd in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")
                while True:
                    reply = json.loads(reader.readline())
                    if "return" in reply or "error" in reply:
                        break

    def diagnostics(self, guest: Guest) -> str:
        parts = [f"--- console of {guest.name} ---\n{self.console(guest)[-4000:]}"]
        for name in (guest.name, "dnsmasq", "metadata"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name} ---\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    # -- teardown ------------------------------------------------------------------------
    def close(self) -> None:
        """Every process, then both namespaces (bridge, veth, tap go with them), then files."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for netns in reversed(self.namespaces):
            sh("ip", "netns", "del", netns, check=False)
        self.namespaces.clear()
        for pattern in ("*.qcow2", "*.serial", "*.qmp", "dnsmasq.pid", "leases", "id_*"):
            for path in self.workdir.glob(pattern):
                path.unlink(missing_ok=True)
        shutil.rmtree(self.workdir / "metadata", ignore_errors=True)
