"""What the real network agents share: the server's topic, a worker that applies changes one
key (network, router) at a time, the heartbeat with a periodic resync, and where agents keep
their files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nimbus.bus import Bus, Target
from nimbus.common.settings import DataplaneSettings, default_state_dir

LOG = logging.getLogger(__name__)
SERVER_TOPIC = "network-server"


class KeyedWorker:
    """Work per key, one at a time per key; requests made while one runs fold into one."""

    def __init__(self, apply: Callable[[str], Awaitable[None]]) -> None:
        self._apply = apply
        self._wanted: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str) -> None:
        self._wanted.add(key)
        if key not in self._tasks:
            self._tasks[key] = asyncio.get_running_loop().create_task(self._run(key))

    async def _run(self, key: str) -> None:
        try:
            while key in self._wanted:
                self._wanted.discard(key)
                try:
                    await self._apply(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    LOG.exception("applying %s failed", key)
        finally:
            self._tasks.pop(key, None)

    async def drain(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        """Wait until nothing is pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(list(self._tasks.values()), timeout=deadline - loop.time())

    async def cancel(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._wanted.clear()


class Heartbeat:
    """report_state now and every `interval` seconds, then `tick` if any (periodic resync)."""

    def __init__(self, bus: Bus, state: Callable[[], dict[str, Any]], interval: float,
                 tick: Callable[[], Awaitable[None]] | None = None) -> None:
        self.bus, self.state, self.interval, self.tick = bus, state, interval, tick
        self._task: asyncio.Task[None] | None = None

    async def report(self, start: bool = False) -> None:
        await self.bus.call(Target(SERVER_TOPIC), "report_state",
                            agent={**self.state(), "start_flag": start})

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.report()
                if self.tick is not None:
                    await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception("heartbeat failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def state_root(dataplane: DataplaneSettings, state_dir: Path | None) -> Path:
    return dataplane.state_path or (state_dir or default_state_dir()) / "dataplane"


def host_dir(root: Path, kind: str, host: str) -> Path:
    return root / kind / host.replace("/", "_")
