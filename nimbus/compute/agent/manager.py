"""All the compute agents of this process: registration with the conductor and placement,
one heartbeat message for all of them, and the periodic tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus.compute import rpc
from nimbus.compute.agent.host import HostAgent
from nimbus.compute.virt.driver import load_driver

if TYPE_CHECKING:
    from nimbus.cloud import Cloud
    from nimbus.common.settings import ComputeSettings
    from nimbus.compute.agent.imagecache import ImageCache

LOG = logging.getLogger(__name__)
REGISTER_CONCURRENCY = 16


class AgentManager:
    def __init__(self, cloud: Cloud, settings: ComputeSettings, hosts: list[str]) -> None:
        self.cloud = cloud
        self.settings = settings
        self.hosts: dict[str, HostAgent] = {
            name: HostAgent(self, name, load_driver(settings.virt_driver, name, settings,
                                                    cloud_settings=cloud.settings))
            for name in hosts}
        # Image caches of drivers that boot local files, by folder (imagecache.py).
        self.image_caches: dict[Path, ImageCache] = {}
        self.ready = asyncio.Event()
        self.network_names: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for agent in self.hosts.values():
            await agent.serve()
        self._tasks.append(asyncio.create_task(self._register_all(), name="compute-register"))
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="compute-heartbeat"))
        self._tasks.append(asyncio.create_task(self._power_sync(), name="compute-power-sync"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await asyncio.gather(*(a.stop() for a in self.hosts.values()), return_exceptions=True)

    async def _register_all(self) -> None:
        """Register every host, retrying those that fail (the conductor or placement may
        not answer yet while the cloud starts)."""
        pending = list(self.hosts.values())
        delay = 0.05
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

        async def one(agent: HostAgent) -> bool:
            async with gate:
                try:
                    await agent.register()
                    await agent.init_instances()
                    return True
                except Exception as exc:
                    LOG.debug("registering %s failed, will retry: %s", agent.host, exc)
                    return False

        while pending:
            done = await asyncio.gather(*(one(a) for a in pending))
            pending = [a for a, ok in zip(pending, done, strict=True) if not ok]
            if pending:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.ready.set()
        LOG.info("%d compute host(s) registered", len(self.hosts))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.report_interval)
            names = [a.host for a in self.hosts.values() if a.registered]
            if not names:
                continue
            try:
                await self.cloud.bus.cast(rpc.CONDUCTOR, "heartbeat", hosts=names)
            except Exception:
                LOG.warning("heartbeat failed", exc_info=True)

    async def _power_sync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_power_state_interval)
            for agent in list(self.hosts.values()):
                if agent.registered:
                    try:
                        await agent.sync_power_states()
                    except Exception:
                        LOG.warning("power state sync of %s failed", agent.host, exc_info=True)

    def stats(self) -> dict[str, Any]:
        return {"hosts": len(self.hosts),
                "registered": sum(1 for a in self.hosts.values() if a.registered)}
