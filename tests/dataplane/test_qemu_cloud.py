"""The cloud with the QEMU driver, end to end through openstacksdk: the test image uploaded to
the image service, a server booted from it (no network) on a compute host whose node
namespace this test creates, its console banner through the API, stop and start, and a
delete that leaves no QEMU and no folder behind."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.guestimage import builder
from tests.guestimage.lab import CACHE, missing_host_tools, require
from tests.support.cloud import RunningCloud

HOST = "qemu-1"


def netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait(what: str, check: object, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f}s")
        time.sleep(0.2)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[RunningCloud, str]]:
    require(builder.missing_tools() + missing_host_tools())
    ns = f"nt-{uuid.uuid4().hex[:8]}-node1"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    running = RunningCloud(tmp_path / "state",
                           services=["identity", "image", "placement", "compute"],
                           compute={"virt_driver": "qemu", "hosts": [HOST],
                                    "qemu": {"shutdown_timeout": 15}},
                           dataplane={"nodes": {HOST: {"namespace": ns}}})
    try:
        running.start()
        yield running, ns
    finally:
        running.stop()
        for pid in netns_pids(ns):  # a guest a failed test left behind
            subprocess.run(["kill", "-9", str(pid)], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_server_boots_under_qemu(cloud: tuple[RunningCloud, str]) -> None:
    running, ns = cloud
    image_file = builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE).path
    conn = running.connect()
    image = conn.image.create_image(name="nimbus-test", filename=str(image_file),
                                    disk_format="qcow2", container_format="bare",
                                    visibility="public", wait=True)
    flavor = conn.compute.create_flavor(name="tiny-qemu", ram=128, vcpus=1, disk=1)
    wait("compute host registered",
         lambda: any(h.name == HOST for h in conn.compute.hypervisors()), 60)

    started = time.monotonic()
    server = conn.compute.create_server(name="vm1", image_id=image.id, flavor_id=flavor.id,
                                        networks="none")
    try:
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
    except Exception as exc:
        raise AssertionError(f"{exc}: {conn.compute.get_server(server).fault}") from None
    print(f"ACTIVE after {time.monotonic() - started:.1f}s")
    assert server.hypervisor_hostname == HOST or server.compute_host == HOST
    assert len(netns_pids(ns)) == 1  # QEMU runs in the host's node namespace
    folder = running.state_dir / "instances" / server.id
    assert (folder / "disk").exists()
    assert (running.state_dir / "instances" / "_base" / image.id).exists()

    def console() -> str:
        return str(conn.compute.get_server_console_output(server)["output"])

    wait("banner on the console", lambda: "nimbus-guest: " in console())
    print(f"banner after {time.monotonic() - started:.1f}s")
    # acpid is up once the boot script gets that far: then a stop is a clean power off
    wait("boot script done", lambda: "nimbus-guest: ready" in console())

    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=60)
    assert netns_pids(ns) == []
    assert "power button pressed" in console()

    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    assert len(netns_pids(ns)) == 1

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    wait("QEMU gone", lambda: netns_pids(ns) == [], 30)
    assert not folder.exists()


def test_vanished_node_namespace_fails_the_build_and_the_next_one_works(
        cloud: tuple[RunningCloud, str]) -> None:
    """The node's namespace is gone: the build ends in ERROR saying so, nothing is left on
    the host, and once the namespace is back the next server boots."""
    running, ns = cloud
    image_file = builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE).path
    conn = running.connect()
    image = conn.image.create_image(name="nimbus-test", filename=str(image_file),
                                    disk_format="qcow2", container_format="bare",
                                    visibility="public", wait=True)
    flavor = conn.compute.create_flavor(name="tiny-qemu", ram=128, vcpus=1, disk=1)
    wait("compute host registered",
         lambda: any(h.name == HOST for h in conn.compute.hypervisors()), 60)
    subprocess.run(["ip", "netns", "del", ns], check=True)

    server = conn.compute.create_server(name="lost", image_id=image.id, flavor_id=flavor.id,
                                        networks="none")
    server = conn.compute.wait_for_server(server, status="ERROR", failures=[], wait=120)
    actions = list(conn.compute.server_actions(server))
    events = conn.compute.get_server_action(actions[-1].request_id, server).events
    reasons = " ".join(str(e.get("traceback") or e.get("details") or "") for e in events)
    assert f"node namespace {ns} does not exist" in reasons + str(server.fault), \
        (server.fault, events)
    assert not (running.state_dir / "instances" / server.id).exists()
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)

    subprocess.run(["ip", "netns", "add", ns], check=True)
    again = conn.compute.create_server(name="back", image_id=image.id, flavor_id=flavor.id,
                                       networks="none")
    conn.compute.wait_for_server(again, status="ACTIVE", wait=120)
    assert len(netns_pids(ns)) == 1
    conn.compute.delete_server(again)
    conn.compute.wait_for_delete(again, wait=60)
    wait("QEMU gone", lambda: netns_pids(ns) == [], 30)
