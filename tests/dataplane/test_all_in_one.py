"""`nimbus up` as `make up` runs it on a machine that can run guests: the data plane turns
itself on in the node namespace, a server created with the `openstack` CLI and nothing but an
image and a flavor lands on the admin project's `private` network, gets its DHCP lease and
reads its metadata, and `nimbus down --purge` leaves no namespace and no process behind.

The node namespace and the prefix of the DHCP/router namespaces are the test's own (through the
settings a user would set), so a cloud the machine's user runs is not touched."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from nimbus.guestimage import builder
from tests.dataplane.plane import wait_until
from tests.guestimage.lab import CACHE, missing_host_tools, require
from tests.support.cloud import OPENSTACK_CLI, free_port

NIMBUS = [sys.executable, "-m", "nimbus.cli.main"]


def test_up_runs_real_guests_and_down_purge_removes_them(tmp_path: Path) -> None:
    require(builder.missing_tools() + missing_host_tools())
    image = builder.build(CACHE / "test-image" / "nimbus-test.qcow2", CACHE)
    state = tmp_path / "state"
    (state / "guest-images").mkdir(parents=True)
    shutil.copy(image.path, state / "guest-images" / "nimbus-test.qcow2")
    prefix = f"nt{uuid.uuid4().hex[:6]}-"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NIMBUS_"))}
    env.update(HOME=str(tmp_path), COLUMNS="200", OS_CLOUD="nimbus",
               NIMBUS_DATAPLANE__NAMESPACE_PREFIX=prefix,
               NIMBUS_DATAPLANE__DEFAULT_NODE__NAMESPACE=prefix + "node")

    def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, env=env,
                              timeout=timeout)

    def namespaces() -> list[str]:
        return [n for n in run("ip", "netns", "list").stdout.split() if n.startswith(prefix)]

    up = run(*NIMBUS, "up", "--state-dir", str(state), "--port", str(free_port()))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "data plane off" not in up.stdout
        created = run(OPENSTACK_CLI, "server", "create", "--image", "nimbus-test", "--flavor",
                      "m1.nano", "--wait", "-f", "value", "-c", "status", "-c", "addresses",
                      "vm1")
        assert created.returncode == 0, created.stderr
        assert created.stdout.split()[-1] == "ACTIVE", created.stdout
        address = re.search(r"'private': \['([\d.]+)'\]", created.stdout)
        assert address, created.stdout
        assert prefix + "node" in namespaces()

        def console() -> str:
            return run(OPENSTACK_CLI, "console", "log", "show", "vm1").stdout

        wait_until("the lease and metadata on the console", lambda: re.search(
            rf"nimbus-guest: lease eth0 {re.escape(address.group(1))}/26[\s\S]*"
            r"nimbus-guest: metadata hostname vm1", console()), 120, every=1)
        assert any(n.startswith(prefix + "qdhcp-") for n in namespaces())
        assert any(n.startswith(prefix + "qrouter-") for n in namespaces())
    finally:
        down = run(*NIMBUS, "down", "--state-dir", str(state), "--purge")
    assert "Data plane removed" in down.stdout, down.stdout + down.stderr
    assert namespaces() == []
    guests = run("pgrep", "-f", f"qemu-system.*{state}").stdout.split()
    assert guests == []
