"""A real cloud for functional tests: the Cloud object behind uvicorn on a free loopback port,
in its own thread and event loop, driven over HTTP like any client would."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import openstack
import uvicorn

from nimbus.cloud import Cloud
from nimbus.common.settings import Settings

ADMIN_PASSWORD = "nimbus-test-admin"
OPENSTACK_CLI = str(Path(sys.executable).with_name("openstack"))


_CLI_LOCK = threading.Lock()  # in-process CLI runs share sys.stdout and os.environ


def run_cli_in_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """openstackclient's main() with this environment and captured output, one at a time."""
    import contextlib
    import io
    import logging

    from openstackclient import shell

    with _CLI_LOCK:
        saved_env = dict(os.environ)
        root = logging.getLogger()
        saved_handlers, saved_level = list(root.handlers), root.level
        out, err = io.StringIO(), io.StringIO()
        os.environ.clear()
        os.environ.update(env)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = shell.main(args)
                except SystemExit as exc:  # argparse and cliff exit on usage errors
                    code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            _forget_cached_clients()
    return subprocess.CompletedProcess(["openstack", *args], code or 0, out.getvalue(),
                                       err.getvalue())


def _forget_cached_clients() -> None:
    """openstackclient caches each service client on a descriptor of the ClientManager
    *class*, so a second in-process run would reuse the first run's session and token."""
    from osc_lib.clientmanager import ClientCache, ClientManager

    for klass in (ClientManager, *ClientManager.__subclasses__()):
        for value in vars(klass).values():
            if isinstance(value, ClientCache):
                value._handle = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningCloud:
    def __init__(self, state_dir: Path, *, services: list[str] | None = None,
                 database_url: str | None = None, bus_url: str = "memory://",
                 port: int | None = None, **settings: Any) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        env: dict[str, Any] = {
            "state_dir": state_dir, "port": self.port, "host": "127.0.0.1",
            "database_url": database_url, "bus_url": bus_url,
            "identity": {"admin_password": ADMIN_PASSWORD, **settings.pop("identity", {})},
        }
        if services is not None:
            env["services"] = services
        env.update(settings)
        self.settings = Settings(**env)
        self.cloud: Cloud | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> RunningCloud:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f"cloud-{self.port}")
        self._thread.start()
        ready.result(timeout=60)
        return self

    def _run(self, ready: Future[None]) -> None:
        import uvloop

        loop = uvloop.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.close()

    async def _serve(self, ready: Future[None]) -> None:
        from nimbus.cli.server import Server, uvicorn_config

        try:
            self.cloud = Cloud(self.settings)
            await self.cloud.start()
            config = uvicorn_config(self.cloud.asgi_app(), self.settings, self.port)
            self._server = Server(config)
            self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            serving = await self._server.serve_until_bound()
            if serving.done():
                serving.result()
                raise RuntimeError(f"could not listen on port {self.port}")
        except BaseException as exc:
            ready.set_exception(exc)
            raise
        ready.set_result(None)
        await serving
        await self.cloud.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._thread = None

    def call(self, fn: Callable[[Cloud], Any]) -> Any:
        """Run a coroutine function against the live Cloud on its own loop."""
        assert self._loop is not None and self.cloud is not None
        return asyncio.run_coroutine_threadsafe(fn(self.cloud), self._loop).result(30)

    # -- clients ------------------------------------------------------------------------------
    def auth(self, user: str = "admin", password: str = ADMIN_PASSWORD,
             project: str | None = "admin", domain: str = "Default",
             **extra: Any) -> dict[str, Any]:
        auth: dict[str, Any] = {"auth_url": self.auth_url, "username": user,
                                "password": password, "user_domain_name": domain}
        if project is not None:
            auth.update(project_name=project, project_domain_name=domain)
        auth.update(extra)
        return auth

    def token(self, user: str = "admin", password: str = ADMIN_PASSWORD,
              project: str | None = "admin", domain: str = "default") -> str:
        """A token by password, project-scoped unless project is None."""
        import httpx

        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": domain}, "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": domain}}}
        resp = httpx.post(f"{self.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)
        if resp.status_code != 201:
            raise AssertionError(f"login of {user} failed: {resp.status_code} {resp.text}")
        return resp.headers["X-Subject-Token"]

    def connect(self, **kw: Any) -> openstack.connection.Connection:
        return openstack.connection.Connection(
            auth=self.auth(**kw), region_name="RegionOne", identity_api_version="3")

    def cli(self, *args: str, user: str = "admin", password: str = ADMIN_PASSWORD,
            project: str | None = "admin", check: bool = True,
            env: dict[str, str] | None = None, subprocess_mode: bool = False) -> Any:
        """Run the unmodified `openstack` CLI; returns parsed JSON when -f json was asked.

        By default the CLI's own entry point runs in this process (its imports cost ~1.5 s
        per process; in-process calls take ~0.3 s). subprocess_mode runs the real command."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        full_env.update({"OS_AUTH_URL": self.auth_url, "OS_USERNAME": user,
                         "OS_PASSWORD": password, "OS_USER_DOMAIN_NAME": "Default",
                         "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"})
        if project is not None:
            full_env.update({"OS_PROJECT_NAME": project, "OS_PROJECT_DOMAIN_NAME": "Default"})
        full_env.update(env or {})
        if subprocess_mode:
            proc = subprocess.run([OPENSTACK_CLI, *args], capture_output=True, text=True,
                                  env=full_env, timeout=120)
        else:
            proc = run_cli_in_process(list(args), full_env)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr}")
        if "json" in args and proc.returncode == 0 and proc.stdout.strip():
            return json.loads(proc.stdout)
        return proc
