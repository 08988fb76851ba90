"""Shared bench plumbing: start an all-in-one cloud in its own process, drive it with wrk."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_PASSWORD = "bench-admin"


@dataclass
class LoadResult:
    name: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def row(self) -> str:
        return (f"{self.name:<34} c={self.concurrency:<3} {self.rps:>9.1f} req/s  "
                f"p50 {self.p50_ms:>7.2f} ms  p99 {self.p99_ms:>7.2f} ms"
                + (f"  errors {self.errors}" if self.errors else ""))


class BenchCloud:
    """`nimbus up --foreground` in a child process with a throw-away state folder."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None,
                 state_dir: Path | None = None) -> None:
        # A free port unless told: two benches (or a bench and a test) never share a cloud.
        self.port = port or free_port()
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="nimbus-bench-"))
        # The API benchmarks run on the fake hypervisor; bench.dataplane turns the real data
        # plane on.
        self.env = {**os.environ, "NIMBUS_IDENTITY__ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "NIMBUS_DATAPLANE__ENABLED": "false", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BenchCloud:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nimbus.cli.main", "up", "--foreground",
             "--state-dir", str(self.state_dir), "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() - started < 60:
            try:
                if httpx.get(f"{self.url}/identity/v3", timeout=0.5).status_code == 200:
                    self.ready_seconds = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the cloud exited during start")
            time.sleep(0.02)
        raise RuntimeError("the cloud did not start in 60 s")

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, *, keep_state: bool = False) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
        if not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def token(self, project: str = "admin") -> str:
        body = password_body("admin", ADMIN_PASSWORD, project)
        resp = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body)
        resp.raise_for_status()
        return resp.headers["X-Subject-Token"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def password_body(user: str, password: str, project: str | None) -> dict[str, object]:
    auth: dict[str, object] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


_LUA = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{headers}
"""

_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")


def wrk(name: str, url: str, *, concurrency: int, seconds: int = 8, method: str = "GET",
        body: object | None = None, headers: dict[str, str] | None = None) -> LoadResult:
    """One wrk run (one thread: the machine has two cores and the server needs one)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make install` as root)")
    lua = _LUA.format(
        method=method,
        body=json.dumps(json.dumps(body)) if body is not None else "nil",
        headers="\n".join(f'wrk.headers["{k}"] = {json.dumps(v)}'
                          for k, v in (headers or {}).items()))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
        script = fh.name
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", script, url],
            capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return LoadResult(name, concurrency, rps, _ms(lat.get("50", "nan")),
                      _ms(lat.get("99", "nan")), errors)
