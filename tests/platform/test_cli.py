"""`nimbus up` as a user runs it: background start, clouds.yaml, status, down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.cloud import OPENSTACK_CLI, free_port

NIMBUS = [sys.executable, "-m", "nimbus.cli.main"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def test_up_prints_access_writes_clouds_yaml_and_down_stops(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NIMBUS_"))}
    env.update(HOME=str(tmp_path), COLUMNS="200")
    up = run([*NIMBUS, "up", "--state-dir", str(state), "--port", port, "--no-dataplane"],
             env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Nimbus is up" in up.stdout
        assert f"http://127.0.0.1:{port}/identity/v3" in up.stdout
        password = (state / "admin-password").read_text().strip()
        assert password in up.stdout
        clouds = yaml.safe_load((tmp_path / ".config/openstack/clouds.yaml").read_text())
        assert clouds["clouds"]["nimbus"]["auth"]["password"] == password
        assert (state / "clouds.yaml").is_file()
        token = run([OPENSTACK_CLI, "--os-cloud", "nimbus", "token", "issue", "-f", "value",
                     "-c", "project_id"], env)
        assert token.returncode == 0, token.stderr
        assert len(token.stdout.strip()) == 32
        again = run([*NIMBUS, "up", "--state-dir", str(state), "--port", port], env)
        assert "already running" in again.stdout
        status = run([*NIMBUS, "status", "--state-dir", str(state)], env)
        assert status.returncode == 0 and f":{port}" in status.stdout
    finally:
        down = run([*NIMBUS, "down", "--state-dir", str(state)], env)
    assert "stopped" in down.stdout
    assert run([*NIMBUS, "status", "--state-dir", str(state)], env).returncode == 1


def test_serve_runs_identity_alone_on_postgresql(tmp_path: Path) -> None:
    import time

    import httpx

    from tests.support import services

    url, db_name = services.create_database("postgresql")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NIMBUS_"))}
    env.update(HOME=str(tmp_path), NIMBUS_DATABASE_URL=url, NIMBUS_SERVICES='["identity"]',
               NIMBUS_IDENTITY__ADMIN_PASSWORD="serve-pw")
    proc = subprocess.Popen([*NIMBUS, "serve", "identity", "--state-dir", str(tmp_path / "s"),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        base = f"http://127.0.0.1:{port}/identity/v3"
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(base, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "serve-pw"}}}}}
        resp = httpx.post(f"{base}/auth/tokens", json=body)
        assert resp.status_code == 201
        catalog = {e["type"] for e in resp.json()["token"]["catalog"]}
        assert catalog == {"identity"}
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        services.drop_database("postgresql", db_name)


def test_up_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NIMBUS_"))}
    env.update(HOME=str(tmp_path))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = str(blocker.getsockname()[1])
        up = run([*NIMBUS, "up", "--state-dir", str(tmp_path / "s"), "--port", port,
                  "--timeout", "30", "--no-dataplane"], env)
    assert up.returncode == 1
    assert "exited" in up.stdout and "Nimbus is up" not in up.stdout
