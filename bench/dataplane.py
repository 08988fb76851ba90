"""Data-plane figures: real QEMU guests (TCG) on the all-in-one, in namespaces of the bench's
own. API → ACTIVE and API → first ping answered over sequential boots (p50), 4 concurrent boots
to ping, delete → fully cleaned (no QEMU process, no tap), resident memory per guest and of the
control plane. The ping comes from the network's DHCP namespace to the guest's fixed address.

    python -m bench.dataplane [--boots 5] [--concurrent 4]    (root; QEMU, dnsmasq, iptables)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchCloud
from nimbus.guestimage import builder

MICROVERSION = {"OpenStack-API-Version": "compute 2.100"}


class Lab:
    def __init__(self) -> None:
        self.prefix = f"nb{uuid.uuid4().hex[:6]}-"
        self.node = self.prefix + "node"

    def env(self) -> dict[str, str]:
        return {"NIMBUS_DATAPLANE__ENABLED": "true",
                "NIMBUS_DATAPLANE__NAMESPACE_PREFIX": self.prefix,
                "NIMBUS_DATAPLANE__DEFAULT_NODE__NAMESPACE": self.node,
                "NIMBUS_COMPUTE__VIRT_DRIVER": "qemu",
                "NIMBUS_COMPUTE__VIF_PLUGGING_TIMEOUT": "120",
                "NIMBUS_LOG_LEVEL": "warning"}

    def namespaces(self) -> list[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix)]

    def pids(self, namespace: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    def taps(self) -> list[str]:
        out = subprocess.run(["ip", "-n", self.node, "-o", "link"], capture_output=True,
                             text=True).stdout
        return [ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()
                if ln.split(":")[1].strip().startswith("tap")]

    def pings(self, namespace: str, address: str) -> bool:
        return subprocess.run(["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "0.3",
                               address], capture_output=True).returncode == 0

    def close(self) -> None:
        for namespace in self.namespaces():
            for pid in self.pids(namespace):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Driver:
    def __init__(self, cloud: BenchCloud, lab: Lab) -> None:
        self.cloud, self.lab = cloud, lab
        token = cloud.token()
        self.headers = {"X-Auth-Token": token}
        self.compute = httpx.Client(base_url=f"{cloud.url}/compute/v2.1",
                                    headers={**self.headers, **MICROVERSION}, timeout=120)
        self.network = httpx.Client(base_url=f"{cloud.url}/network/v2.0",
                                    headers=self.headers, timeout=60)
        image = httpx.get(f"{cloud.url}/image/v2/images?name=nimbus-test",
                          headers=self.headers).json()["images"]
        if not image:
            raise SystemExit("no nimbus-test image: run `nimbus image build-test` first")
        self.image = image[0]["id"]
        net = self.network.get("/networks?name=private").json()["networks"][0]
        self.net = net["id"]
        self.dhcp_ns = f"{lab.prefix}qdhcp-{self.net}"
        sg = self.network.post("/security-groups", json={"security_group": {
            "name": "bench-ping"}}).json()["security_group"]
        self.network.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "protocol": "icmp",
            "ethertype": "IPv4"}}).raise_for_status()
        self.flavor = next(f["id"] for f in self.compute.get("/flavors").json()["flavors"]
                           if f["name"] == "m1.nano")

    def boot_to_ping(self, name: str) -> dict[str, Any]:
        t0 = time.monotonic()
        server = self.compute.post("/servers", json={"server": {
            "name": name, "imageRef": self.image, "flavorRef": self.flavor,
            "networks": [{"uuid": self.net}],
            "security_groups": [{"name": "bench-ping"}]}}).json()["server"]
        active = address = None
        while time.monotonic() - t0 < 300:
            body = self.compute.get(f"/servers/{server['id']}").json()["server"]
            if body["status"] == "ERROR":
                raise RuntimeError(f"{name} went to ERROR: {body.get('fault')}")
            if body["status"] == "ACTIVE":
                active = time.monotonic() - t0
                address = next(iter(body["addresses"].values()))[0]["addr"]
                break
            time.sleep(0.05)
        assert address is not None, f"{name} never became ACTIVE"
        while time.monotonic() - t0 < 300:
            if self.lab.pings(self.dhcp_ns, address):
                break
        return {"id": server["id"], "active": active, "ping": time.monotonic() - t0}

    def qemu_pids(self) -> list[int]:
        found = []
        for pid in self.lab.pids(self.lab.node):
            try:
                if b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except FileNotFoundError:  # it just ended
                pass
        return found

    def delete_to_clean(self, server_id: str) -> float:
        """Delete the only guest; seconds until the API forgot it and its QEMU process and
        tap are gone."""
        ports = self.network.get(f"/ports?device_id={server_id}").json()["ports"]
        taps = {"tap" + p["id"][:11] for p in ports}
        t0 = time.monotonic()
        self.compute.delete(f"/servers/{server_id}")
        while time.monotonic() - t0 < 120:
            if self.compute.get(f"/servers/{server_id}").status_code == 404 and \
                    not self.qemu_pids() and not taps & set(self.lab.taps()):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError(f"{server_id} was not cleaned up in 120 s")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the data-plane bench needs root (network namespaces)")
    lab = Lab()
    cloud = BenchCloud(env=lab.env())
    # The test guest, built (or taken up to date from the cache) where `nimbus up` finds it.
    cache = Path(os.environ.get("NIMBUS_GUEST_CACHE", "/var/tmp/nimbus-guest-cache"))
    builder.build(cloud.state_dir / "guest-images" / "nimbus-test.qcow2", cache)
    try:
        cloud.start()
        driver = Driver(cloud, lab)
        print(f"data plane (TCG), load {load()}")
        sequential = []
        for i in range(args.boots):
            result = driver.boot_to_ping(f"seq-{i}")
            sequential.append(result)
            if i == 0:
                pids = driver.qemu_pids()
                guest_rss = rss_mb(pids[0]) if pids else 0.0
            cleaned = driver.delete_to_clean(result["id"])
            result["cleaned"] = cleaned
            print(f"  boot {i}: ACTIVE {result['active']:.2f} s, ping {result['ping']:.2f} s,"
                  f" delete -> clean {cleaned:.2f} s")
        print(f"sequential boots ({args.boots}): API -> ACTIVE p50 "
              f"{statistics.median(r['active'] for r in sequential):.2f} s, "
              f"API -> first ping p50 {statistics.median(r['ping'] for r in sequential):.2f} s,"
              f" delete -> clean p50 "
              f"{statistics.median(r['cleaned'] for r in sequential):.2f} s")
        with ThreadPoolExecutor(args.concurrent) as pool:
            t0 = time.monotonic()
            results = list(pool.map(driver.boot_to_ping,
                                    [f"par-{i}" for i in range(args.concurrent)]))
            wall = time.monotonic() - t0
        pings = sorted(r["ping"] for r in results)
        rss = [rss_mb(p) for p in driver.qemu_pids()]
        print(f"{args.concurrent} concurrent boots: all pinging after {wall:.2f} s "
              f"(each: {', '.join(f'{p:.1f}' for p in pings)} s), load {load()}")
        print(f"resident memory: per guest (m1.nano, 128 MB) "
              f"{statistics.mean(rss) if rss else guest_rss:.0f} MB; "
              f"control plane {cloud.rss_mb():.0f} MB")
        for r in results:
            driver.compute.delete(f"/servers/{r['id']}")
    finally:
        cloud.stop()
        lab.close()


if __name__ == "__main__":
    main()
