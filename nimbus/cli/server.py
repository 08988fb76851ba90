"""Running a Cloud behind uvicorn, in the foreground of this process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from pathlib import Path

import uvicorn

from nimbus.cloud import Cloud
from nimbus.common.memory import settle_after_start
from nimbus.common.settings import Settings


def write_status(state_dir: Path, stage: str, **extra: object) -> None:
    """The background `nimbus up` reads this to show progress."""
    path = state_dir / "status.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stage": stage, "pid": os.getpid(), **extra}))
    tmp.replace(path)


class Server(uvicorn.Server):
    """uvicorn's server, plus an event set once its sockets are bound."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.bound = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.bound.set()

    async def serve_until_bound(self) -> asyncio.Task[None]:
        """Start serving; return once bound (or once serving failed) with the serving task."""
        serving = asyncio.create_task(self.serve())
        bound = asyncio.create_task(self.bound.wait())
        await asyncio.wait([serving, bound], return_when=asyncio.FIRST_COMPLETED)
        bound.cancel()
        return serving


def uvicorn_config(app: object, settings: Settings, port: int | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port if port is None else port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        backlog=2048,
    )


async def serve(settings: Settings, services: list[str] | None = None) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    write_status(settings.state_dir, "starting")
    cloud = Cloud(settings, services)
    try:
        write_status(settings.state_dir, "migrating and bootstrapping")
        await cloud.start()
        server = Server(uvicorn_config(cloud.asgi_app(), settings))
        settle_after_start()
        # uvicorn captures SIGINT/SIGTERM while serving and re-raises them afterwards into
        # the handlers it found; make those harmless so the cloud still stops cleanly.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        serving = await server.serve_until_bound()
        if server.started:  # bound: only now may `nimbus up` call it ready
            write_status(settings.state_dir, "listening", endpoint=settings.endpoint)
        await serving
        if not server.started:
            raise SystemExit(f"could not listen on {settings.host}:{settings.port}")
    finally:
        write_status(settings.state_dir, "stopped")
        await cloud.stop()


def run(settings: Settings, services: list[str] | None = None) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop

    from nimbus.common.memory import tune_for_servers

    tune_for_servers()
    uvloop.run(serve(settings, services))
