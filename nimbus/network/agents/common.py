"""What the real network agents share: the server's topic, a worker that applies changes one
key (network, router) at a time, the heartbeat with a periodic resync, where agents keep
their files, and the life cycle of the agents built on those (DHCP, L3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nimbus.bus import Bus, Server, Target
from nimbus.common.settings import DataplaneSettings, NodeSettings, default_state_dir

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


class KeyedAgent:
    """An agent that keeps one thing per key (the DHCP agent: networks, the L3 agent: routers)
    in line with the server: casts on `<topic>.<host>` and the periodic resync submit keys to
    one KeyedWorker; every key has a folder under the agent's own. Subclasses give the
    endpoint, the heartbeat's state, resync, _sync and _teardown of one key."""

    kind = ""  # the agent's folder under the state root: "dhcp", "l3"
    topic = ""

    def __init__(self, bus: Bus, host: str, node: NodeSettings, dataplane: DataplaneSettings,
                 *, state_dir: Path | None = None, report_interval: float = 30.0) -> None:
        self.bus = bus
        self.host = host
        self.node = node
        self.dataplane = dataplane
        self.directory = host_dir(state_root(dataplane, state_dir), self.kind, host)
        self.work = KeyedWorker(self._sync)
        self.errors: dict[str, str] = {}  # key -> why it could not be applied
        self._server: Server | None = None
        self.heartbeat = Heartbeat(bus, self._state, report_interval, self.resync)

    # -- what a subclass gives -------------------------------------------------------------
    def _endpoint(self) -> object:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def current(self) -> set[str]:
        """The keys applied now."""
        raise NotImplementedError

    async def resync(self) -> None:
        raise NotImplementedError

    async def _sync(self, key: str) -> None:
        raise NotImplementedError

    async def _teardown(self, key: str) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:  # noqa: B027 - optional hook
        """Extra subscriptions, made before the first resync."""

    async def _unlisten(self) -> None:  # noqa: B027 - optional hook
        """Undo _listen."""

    # -- life cycle ------------------------------------------------------------------------
    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await self.bus.call(Target(SERVER_TOPIC), method, **kwargs)

    def on_disk(self) -> set[str]:
        """The keys that have a folder (applied by this agent or an earlier run of it)."""
        if not self.directory.exists():
            return set()
        return {p.name for p in self.directory.iterdir() if p.is_dir()}

    async def start(self) -> KeyedAgent:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._server = await self.bus.serve(Target(self.topic, server=self.host),
                                            self._endpoint())
        await self._listen()
        await self.heartbeat.report(start=True)
        await self.resync()
        await self.work.drain()
        self.heartbeat.start()
        LOG.info("%s agent on %s: %d applied", self.kind, self.host, len(self.current()))
        return self

    async def stop(self) -> None:
        """Stop listening; what the agent applied keeps working (a restarted agent adopts
        it)."""
        await self.heartbeat.stop()
        await self._unlisten()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.work.cancel()

    async def purge(self) -> None:
        """Stop, then tear down everything this agent applied, with its folders."""
        await self.stop()
        for key in self.on_disk() | self.current():
            await self._teardown(key)
