"""The QEMU driver driven directly, for real: the test guest image booted under TCG inside
node namespaces this test creates (nt-<token>-node1/-node2, no uplink, removed afterwards,
also when a test fails). Every QEMU, tap and file the driver makes must be gone after a
destroy or a failed spawn."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nimbus.common.settings import Settings
from nimbus.compute import states
from nimbus.compute.virt.driver import DriverError, GuestNotFound, load_driver
from nimbus.compute.virt.qemu import QemuDriver
from nimbus.guestimage import builder
from tests.guestimage.lab import CACHE, missing_host_tools, require

BANNER = r"(?m)^nimbus-guest: "
MTU = 1450


@pytest.fixture(scope="module")
def image() -> Path:
    require(builder.missing_tools() + missing_host_tools())
    return builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE).path


def sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


def netns_pids(ns: str) -> list[int]:
    return [int(p) for p in sh("ip", "netns", "pids", ns).stdout.split()]


def links(ns: str) -> list[str]:
    out = sh("ip", "netns", "exec", ns, "ip", "-o", "link", "show").stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


@dataclass
class Lab:
    token: str
    state_dir: Path
    node1: str
    node2: str

    def driver(self, host: str = "h1", **qemu: Any) -> QemuDriver:
        settings = Settings(state_dir=self.state_dir, compute={"qemu": {"shutdown_timeout": 15,
                                                                       **qemu}},
                            dataplane={"nodes": {"h1": {"namespace": self.node1},
                                                 "h2": {"namespace": self.node2},
                                                 "gone": {"namespace": f"nt-{self.token}-gone"}}})
        driver = load_driver("qemu", host, settings.compute, cloud_settings=settings)
        assert isinstance(driver, QemuDriver)
        return driver

    def instance(self, memory_mb: int = 128, vif: bool = True) -> tuple[dict[str, Any],
                                                                        list[dict[str, Any]]]:
        uid = str(uuid.uuid4())
        inst = {"uuid": uid, "name": f"instance-{self.token}",
                "flavor": {"memory_mb": memory_mb, "vcpus": 1, "root_gb": 1}}
        port = uuid.uuid4().hex
        vifs = [{"port_id": port, "mac_address": "52:54:00:" + ":".join(
            self.token[i:i + 2] for i in (0, 2, 4)), "devname": "tap" + port[:11],
            "mtu": MTU}] if vif else []
        return inst, vifs


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require(missing_host_tools())
    token = uuid.uuid4().hex[:8]
    running = Lab(token, tmp_path / "state", f"nt-{token}-node1", f"nt-{token}-node2")
    try:
        for ns in (running.node1, running.node2):
            assert sh("ip", "netns", "add", ns).returncode == 0
        yield running
    finally:
        for ns in (running.node1, running.node2):
            for pid in netns_pids(ns):  # guests a failed test left behind
                sh("kill", "-9", str(pid))
            sh("ip", "netns", "del", ns)
    assert token not in sh("ip", "netns", "list").stdout


async def console_match(driver: QemuDriver, inst: dict[str, Any], pattern: str,
                        within: float = 90.0, after: int = 0) -> re.Match[str]:
    deadline = time.monotonic() + within
    while True:
        text = await driver.get_console_output(inst)
        if match := re.compile(pattern).search(text, after):
            return match
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} on the console in {within:.0f}s:\n"
                                 + text[-3000:])
        await asyncio.sleep(0.1)


async def leaves_nothing(driver: QemuDriver, inst: dict[str, Any], lab: Lab) -> None:
    assert inst["uuid"] not in await driver.list_instances()
    for ns in (lab.node1, lab.node2):
        assert netns_pids(ns) == []
        assert [link for link in links(ns) if link.startswith("tap")] == []
    assert not (driver.instances_path / inst["uuid"]).exists()
    assert not driver.paths(inst["uuid"]).sockets.exists()
    with pytest.raises(GuestNotFound):
        await driver.get_info(inst)


async def power(driver: QemuDriver, inst: dict[str, Any]) -> int:
    return (await driver.get_info(inst)).power_state


@pytest.fixture
async def guest(lab: Lab, image: Path) -> AsyncIterator[tuple[QemuDriver, dict[str, Any],
                                                             list[dict[str, Any]]]]:
    driver = lab.driver()
    await driver.init_host()
    inst, vifs = lab.instance()
    await driver.spawn(inst, {"disk_format": "qcow2"}, vifs, image_path=str(image))
    try:
        yield driver, inst, vifs
    finally:
        await driver.destroy(inst, vifs)


async def test_life_of_a_guest(lab: Lab, guest: tuple[QemuDriver, dict[str, Any],
                                                      list[dict[str, Any]]]) -> None:
    driver, inst, vifs = guest
    tap = vifs[0]["devname"]
    assert await power(driver, inst) == states.RUNNING
    assert inst["uuid"] in await driver.list_instances()
    # The tap is in the node's namespace, up, with the network's MTU, and QEMU runs there.
    show = sh("ip", "netns", "exec", lab.node1, "ip", "link", "show", "dev", tap).stdout
    assert f"mtu {MTU}" in show and "UP" in show
    assert len(netns_pids(lab.node1)) == 1
    disk = sh("qemu-img", "info", "-U", str(driver.instances_path / inst["uuid"] / "disk"))
    assert "backing file: " in disk.stdout and "virtual size: 1 GiB" in disk.stdout

    await console_match(driver, inst, BANNER)

    await driver.pause(inst)
    assert await power(driver, inst) == states.PAUSED
    await driver.unpause(inst)
    assert await power(driver, inst) == states.RUNNING

    data = b"".join([chunk async for chunk in driver.snapshot(inst)])
    assert data[:4] == b"QFI\xfb"
    snap = lab.state_dir / "snap.qcow2"
    snap.write_bytes(data)
    info = sh("qemu-img", "info", str(snap)).stdout
    assert "file format: qcow2" in info and "backing file" not in info
    assert await power(driver, inst) == states.RUNNING

    # A fresh driver object (the agent restarted) finds the guest and talks to it.
    again = lab.driver()
    await again.init_host()
    assert await again.list_instances() == [inst["uuid"]]
    assert await power(again, inst) == states.RUNNING
    assert lab.driver("h2").records() == []

    started = time.monotonic()
    await again.suspend(inst)
    assert await power(again, inst) == states.SUSPENDED
    # QEMU is gone; the tap stays, so that the port stays wired (bridge, filter rules) for
    # the guest's return on this host
    assert netns_pids(lab.node1) == [] and tap in links(lab.node1)
    await again.resume(inst, vifs)
    assert await power(again, inst) == states.RUNNING
    print(f"suspend + resume: {time.monotonic() - started:.1f}s")
    assert tap in links(lab.node1)

    seen = len(await again.get_console_output(inst))
    await again.reboot(inst, vifs, "HARD")
    await console_match(again, inst, r"nimbus-guest: init", after=seen)
    # acpid runs once the boot script reaches dropbear (there is no DHCP server here:
    # udhcpc gives up after its tries), so from then on the power button works
    await console_match(again, inst, r"nimbus-guest: (dropbear|ready)", after=seen)

    started = time.monotonic()
    await again.power_off(inst)  # clean: ACPI power button, the guest powers itself off
    assert time.monotonic() - started < 10
    assert await power(again, inst) == states.SHUTDOWN
    assert "power button pressed" in await again.get_console_output(inst)
    assert netns_pids(lab.node1) == [] and tap in links(lab.node1)
    assert inst["uuid"] in await again.list_instances()

    seen = len(await again.get_console_output(inst))
    await again.power_on(inst, vifs)
    assert await power(again, inst) == states.RUNNING
    await console_match(again, inst, BANNER, after=seen)
    diag = await again.get_diagnostics(inst)
    assert diag["state"] == "running" and diag["num_nics"] == 1
    assert diag["nic_details"][0]["mac_address"] == vifs[0]["mac_address"]

    await again.destroy(inst, vifs)
    await leaves_nothing(again, inst, lab)


async def test_live_migration_between_node_namespaces(
        lab: Lab, guest: tuple[QemuDriver, dict[str, Any], list[dict[str, Any]]]) -> None:
    source, inst, vifs = guest
    dest = lab.driver("h2")
    await dest.init_host()
    await console_match(source, inst, BANNER)
    started = time.monotonic()
    await dest.receive_live_migration(inst, vifs)
    await source.live_migration(inst, "h2")
    took = time.monotonic() - started
    print(f"live migration: {took:.2f}s")
    assert await source.list_instances() == []
    assert await dest.list_instances() == [inst["uuid"]]
    assert await power(dest, inst) == states.RUNNING
    assert netns_pids(lab.node1) == [] and len(netns_pids(lab.node2)) == 1
    assert vifs[0]["devname"] in links(lab.node2) and vifs[0]["devname"] not in links(lab.node1)
    # The guest goes on where it was: its boot continues to the end on the new host.
    await console_match(dest, inst, r"nimbus-guest: (dropbear|ready)")
    before = (await dest.get_info(inst)).cpu_time_ns
    await console_match(dest, inst, r"nimbus-guest: ready")
    assert (await dest.get_info(inst)).cpu_time_ns >= before
    await dest.destroy(inst, vifs)
    await leaves_nothing(dest, inst, lab)


async def test_faults_leave_nothing_behind(lab: Lab, image: Path) -> None:
    driver = lab.driver()
    await driver.init_host()

    inst, vifs = lab.instance()
    with pytest.raises(DriverError, match="is missing"):
        await driver.spawn(inst, {}, vifs, image_path=str(lab.state_dir / "no-such-image"))
    await leaves_nothing(driver, inst, lab)

    corrupt = lab.state_dir / "corrupt.qcow2"
    corrupt.write_bytes(b"QFI\xfb" + b"\xff" * 4000)
    with pytest.raises(DriverError, match="cannot read image|corrupt"):
        await driver.spawn(inst, {"disk_format": "qcow2"}, vifs, image_path=str(corrupt))
    await leaves_nothing(driver, inst, lab)

    # The image boots from a kernel image (kernel_id) that this host's cache does not hold.
    with pytest.raises(DriverError, match="kernel image k-1 is not in this host's image cache"):
        await driver.spawn(inst, {"disk_format": "qcow2", "properties": {"kernel_id": "k-1"}},
                           vifs, image_path=str(image))
    await leaves_nothing(driver, inst, lab)

    # QEMU refuses at start (no such amount of memory): its own words are in the error.
    big, big_vifs = lab.instance(memory_mb=64 << 30)
    with pytest.raises(DriverError, match="QEMU failed to start: .*memory"):
        await driver.spawn(big, {"disk_format": "qcow2"}, big_vifs, image_path=str(image))
    await leaves_nothing(driver, big, lab)

    # A tap of that name is already there (not ours): refused, and the tap is left alone.
    tap = vifs[0]["devname"]
    sh("ip", "netns", "exec", lab.node1, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
    with pytest.raises(DriverError, match=f"tap {tap} already exists"):
        await driver.spawn(inst, {"disk_format": "qcow2"}, vifs, image_path=str(image))
    assert netns_pids(lab.node1) == [] and tap in links(lab.node1)
    assert not (driver.instances_path / inst["uuid"]).exists()
    sh("ip", "netns", "exec", lab.node1, "ip", "link", "del", tap)

    gone = lab.driver("gone")
    with pytest.raises(DriverError, match=f"node namespace nt-{lab.token}-gone does not exist"):
        await gone.spawn(inst, {"disk_format": "qcow2"}, vifs, image_path=str(image))
    await leaves_nothing(driver, inst, lab)

    # A guest that is not there: destroy is fine, the rest says so.
    await driver.destroy(inst, vifs)
    with pytest.raises(GuestNotFound):
        await driver.power_on(inst, vifs)
