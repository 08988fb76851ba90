"""The test guest image, built for real and booted under QEMU (TCG) in namespaces of the test's
own: it gets its DHCP lease (classless routes, MTU), reads the metadata service (hostname,
instance id, SSH key), runs the user-data script, prints its banner, lets us in over SSH with
the key, and powers off cleanly on the ACPI power button."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.guestimage import builder
from tests.guestimage.lab import (
    CACHE,
    DHCP_IP,
    GATEWAY,
    MTU,
    SUBNET,
    Guest,
    Lab,
    missing_host_tools,
    require,
)


@pytest.fixture(scope="module")
def image() -> builder.BuildResult:
    require(builder.missing_tools() + missing_host_tools())
    return builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require(missing_host_tools())
    running = Lab(tmp_path)

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # A SIGTERM (a CI timeout, say) still tears the lab down.
    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield running
    finally:
        running.close()
        signal.signal(signal.SIGTERM, previous)
    assert running.namespaces == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert running.token not in listed


def test_the_image_is_small_and_up_to_date(image: builder.BuildResult) -> None:
    manifest = image.manifest
    assert manifest["size"] == image.path.stat().st_size < 32 << 20
    assert manifest["initrd_size"] < 8 << 20
    assert {"virtio_net", "virtio_blk", "virtio_pci", "button"} <= set(manifest["modules"])
    again = builder.build(image.path, CACHE)
    assert not again.built and again.seconds < 2
    assert again.manifest["sha256"] == manifest["sha256"]


def test_boot_dhcp_metadata_userdata_ssh(image: builder.BuildResult, lab: Lab) -> None:
    """vm1 gets everything; vm2, booted beside it, gets its lease but no answer at all from
    the metadata service: it boots all the same, without hostname or key."""
    key = lab.workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab", "-f",
                    str(key)], check=True)
    vm1 = Guest("vm1", "52:54:00:5a:11:01", f"{SUBNET}.11", "tap1")
    vm2 = Guest("vm2", "52:54:00:5a:11:02", f"{SUBNET}.12", "tap2")
    hostname = f"guest-{lab.token}"
    instance_id = f"11111111-2222-3333-4444-{lab.token}0000"
    marker = f"user-data ran {lab.token}"
    lab.wire([vm1, vm2], {
        "uuid": instance_id, "hostname": f"{hostname}.novalocal", "name": hostname,
        "launch_index": 0, "availability_zone": "nova",
        "public_keys": {"lab": key.with_suffix(".pub").read_text()}},
        f"#!/bin/sh\necho \"{marker}\" as $(id -un) on $(hostname)\n", hang=[vm2])
    lab.boot(image.path, vm1)
    lab.boot(image.path, vm2)

    _, lease_s = lab.wait_for(vm1, rf"nimbus-guest: lease eth0 {vm1.ip}/24 mtu {MTU}", 90)
    _, banner_s = lab.wait_for(vm1, r"nimbus-guest: ready: ssh cirros@", 60)
    console = lab.console(vm1)
    print(f"\nvm1: QEMU start -> lease {lease_s:.1f} s, -> banner {banner_s:.1f} s "
          f"(image {image.manifest['size'] / 1e6:.1f} MB, built now: {image.built})")
    assert f"nimbus-guest: eth0 {vm1.ip}/24 mtu {MTU}" in console
    assert f"nimbus-guest: hostname {hostname} instance-id {instance_id}" in console
    assert f"nimbus-guest: metadata hostname {hostname} instance-id {instance_id} keys 1" \
        in console
    assert f"{marker} as root on {hostname}" in console
    assert console.index(marker) < console.index("nimbus-guest: ready")
    requests = (lab.workdir / "metadata.log").read_text()
    assert f"{vm1.ip} \"GET /openstack/latest/meta_data.json" in requests
    assert f"{vm1.ip} \"GET /openstack/latest/user_data" in requests

    # SSH with the key from the metadata, from the dhcp namespace (dropbear makes its host
    # key on this first connection).
    ssh = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
           "-o", "ConnectTimeout=10", f"cirros@{vm1.ip}",
           f"echo ssh-ok $(id -un) $(hostname); ping -c 1 -W 5 {DHCP_IP} >/dev/null && "
           "echo ping-ok; ip route; cat /sys/class/net/eth0/mtu"]
    deadline = time.monotonic() + 30
    while True:
        done = lab.ns(lab.dhcp, *ssh, check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert done.returncode == 0, done.stderr + lab.diagnostics(vm1)
    assert f"ssh-ok cirros {hostname}" in done.stdout
    assert "ping-ok" in done.stdout, done.stdout
    assert re.search(rf"169\.254\.169\.254 via {re.escape(DHCP_IP)} dev eth0", done.stdout)
    assert f"default via {GATEWAY} dev eth0" in done.stdout
    assert done.stdout.split()[-1] == str(MTU)

    # The ACPI power button (a soft shutdown) powers the guest off: QEMU exits by itself.
    lab.qmp(vm1, "system_powerdown")
    lab.wait_for(vm1, "nimbus-guest: power button pressed", 20)
    assert lab.procs[vm1.name].wait(20) == 0
    assert "nimbus-guest: shutting down" in lab.console(vm1)

    # vm2: the metadata service never answered; each try timed out and the boot went on.
    _, banner2_s = lab.wait_for(vm2, r"nimbus-guest: ready: ssh cirros@", 60)
    console = lab.console(vm2)
    print(f"vm2 (metadata hangs): banner {banner2_s:.1f} s")
    assert f"nimbus-guest: lease eth0 {vm2.ip}/24" in console
    assert "nimbus-guest: metadata: none" in console
    assert "nimbus-guest: hostname nimbus instance-id -" in console
    assert marker not in console
    assert f"{vm2.ip} hanging on /openstack/latest/meta_data.json" in \
        (lab.workdir / "metadata.log").read_text()
