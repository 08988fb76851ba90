"""A lab for the real data plane: two compute nodes and an external host, each a network
namespace of the test's own, and the settings that run a whole cloud on them.

  <p>n1   node1: bridges, taps, QEMU guests; pub0 (the external network's interface) and u1
  <p>n2   node2: the same, without DHCP or routers; u2
  <p>ext  the external host: eth0 172.24.4.1/24 (the public subnet's gateway), peer of pub0
  u1 10.255.0.1/24 <-> u2 10.255.0.2/24: the underlay VXLAN runs on

The agents add <p>qdhcp-<network> and <p>qrouter-<router> namespaces; `close()` removes every
namespace that starts with the lab's prefix and every process left in them. No address or
route is added to the root namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.shell import die_with_parent, sh

HERE = Path(__file__).parent
EXTERNAL_HOST = "172.24.4.1"
UNDERLAY = {"node1": "10.255.0.1", "node2": "10.255.0.2"}
T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], deadline_s: float,
               every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Plane:
    workdir: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    witness: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        return f"nt{self.token}-"

    def ns(self, name: str) -> str:
        return self.prefix + name

    def run_in(self, name: str, *args: str, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns(name), *args, check=check, timeout=timeout)

    # -- building ------------------------------------------------------------------------
    def build(self) -> Plane:
        for name in ("n1", "n2", "ext"):
            sh("ip", "netns", "add", self.ns(name))
            self.run_in(name, "ip", "link", "set", "lo", "up")
        n1, n2, ext = self.ns("n1"), self.ns("n2"), self.ns("ext")
        # underlay, with room for VXLAN's 50 bytes on top of a 1500-byte guest MTU
        sh("ip", "-n", n1, "link", "add", "u1", "mtu", "1550", "type", "veth", "peer", "name",
           "u2", "netns", n2)
        sh("ip", "-n", n1, "addr", "add", f"{UNDERLAY['node1']}/24", "dev", "u1")
        sh("ip", "-n", n2, "addr", "add", f"{UNDERLAY['node2']}/24", "dev", "u2")
        sh("ip", "-n", n2, "link", "set", "u2", "mtu", "1550")
        sh("ip", "-n", n1, "link", "set", "u1", "up")
        sh("ip", "-n", n2, "link", "set", "u2", "up")
        # the external network: pub0 in node1, eth0 in the external host
        sh("ip", "-n", n1, "link", "add", "pub0", "type", "veth", "peer", "name", "eth0",
           "netns", ext)
        sh("ip", "-n", n1, "link", "set", "pub0", "up")
        sh("ip", "-n", ext, "addr", "add", f"{EXTERNAL_HOST}/24", "dev", "eth0")
        sh("ip", "-n", ext, "link", "set", "eth0", "up")
        self.witness = subprocess.Popen(
            ["ip", "netns", "exec", ext, sys.executable, str(HERE / "icmp_witness.py"),
             str(self.witness_log)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        return self

    @property
    def witness_log(self) -> Path:
        return self.workdir / "icmp-witness.log"

    def pings_seen_from(self) -> list[str]:
        """Source addresses of the echo requests the external host received."""
        try:
            return self.witness_log.read_text().split()
        except FileNotFoundError:
            return []

    def settings(self, image: Path) -> dict[str, Any]:
        """RunningCloud keywords for a cloud whose compute hosts are the lab's nodes."""
        return {
            "compute": {"virt_driver": "qemu", "hosts": ["node1", "node2"],
                        "vif_plugging_timeout": 120,
                        "qemu": {"instances_path": str(self.workdir / "instances")}},
            "image": {"bootstrap_image": str(image)},
            "dataplane": {
                "enabled": True, "namespace_prefix": self.prefix,
                "state_path": str(self.workdir / "dataplane"),
                "nodes": {
                    "node1": {"namespace": self.ns("n1"), "tunnel_ip": UNDERLAY["node1"],
                              "physical_interface_mappings": {"public": "pub0"},
                              "agents": ["l2", "dhcp", "l3", "metadata"]},
                    "node2": {"namespace": self.ns("n2"), "tunnel_ip": UNDERLAY["node2"],
                              "agents": ["l2"]},
                }},
        }

    # -- looking ---------------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        listed = sh("ip", "netns", "list").stdout.split("\n")
        return sorted(line.split()[0] for line in listed
                      if line.startswith(self.prefix))

    def pids_in(self, namespace: str) -> list[int]:
        done = sh("ip", "netns", "pids", namespace, check=False)
        return [int(p) for p in done.stdout.split()]

    def links(self, name: str) -> list[str]:
        out = self.run_in(name, "ip", "-o", "link", "show").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    # -- tearing down ----------------------------------------------------------------------
    def close(self) -> list[str]:
        """Kill what is left in the lab's namespaces and delete them; returns what was
        still there besides the lab's own three (which the test then reports)."""
        leftovers = [ns for ns in self.namespaces()
                     if ns not in {self.ns("n1"), self.ns("n2"), self.ns("ext")}]
        if self.witness is not None:
            self.witness.kill()
            self.witness.wait()
        for namespace in self.namespaces():
            for pid in self.pids_in(namespace):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "delete", namespace, check=False)
        return leftovers
