"""One compute agent: a hypervisor host with its driver. It registers with the conductor,
reports its inventory and traits to placement, serves its bus topic, and reports every
instance change back through the conductor (agents never touch the database)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from nimbus.bus import Server
from nimbus.clients.placement import PlacementClient
from nimbus.common.timeutils import isotime, utcnow
from nimbus.compute import lifecycle, rpc, states
from nimbus.compute.virt.driver import GuestNotFound, VirtDriver

if TYPE_CHECKING:
    from nimbus.compute.agent.manager import AgentManager

LOG = logging.getLogger(__name__)
REMEMBER_TERMINATED = 4096


class HostAgent:
    def __init__(self, manager: AgentManager, host: str, driver: VirtDriver) -> None:
        self.manager = manager
        self.cloud = manager.cloud
        self.settings = manager.settings
        self.host = host
        self.driver = driver
        self.node_uuid: str | None = None
        self.registered = False
        self._server: Server | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        # Instances terminated here lately: a build that arrives after its delete is dropped.
        self.terminated: OrderedDict[str, None] = OrderedDict()
        # (instance uuid, event name, tag) -> future, for network-vif-plugged and friends.
        self.waiters: dict[tuple[str, str, str], asyncio.Future[dict[str, Any]]] = {}

    # -- life cycle -------------------------------------------------------------------------------
    async def serve(self) -> None:
        from nimbus.compute.agent.endpoint import HostEndpoint

        await self.driver.init_host()
        self._server = await self.cloud.bus.serve(rpc.agent(self.host), HostEndpoint(self))

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.driver.cleanup_host()

    async def register(self) -> None:
        res = self.driver.resources()
        result = await self.cloud.bus.call(rpc.CONDUCTOR, "register_host", host=self.host,
                                           resources=res.as_dict(), timeout=15)
        self.node_uuid = result["node_uuid"]
        await self.report_inventory()
        self.registered = True

    async def report_inventory(self) -> None:
        if not lifecycle.has_service(self.cloud, "placement") or self.node_uuid is None:
            return
        res = self.driver.resources()
        s = self.settings
        placement = self.cloud.clients.get(PlacementClient)
        provider, created = await placement.ensure_provider(self.node_uuid,
                                                           res.hypervisor_hostname)
        generation = int(provider["generation"]) if created else None

        def inv(total: int, ratio: float, reserved: int = 0) -> dict[str, Any]:
            return {"total": total, "reserved": reserved, "min_unit": 1, "max_unit": total,
                    "step_size": 1, "allocation_ratio": ratio}

        generation = await placement.set_inventory(self.node_uuid, {
            "VCPU": inv(res.vcpus, s.cpu_allocation_ratio),
            "MEMORY_MB": inv(res.memory_mb, s.ram_allocation_ratio,
                             min(s.reserved_host_memory_mb, res.memory_mb - 1)),
            "DISK_GB": inv(res.local_gb, s.disk_allocation_ratio)}, generation)
        await placement.set_traits(self.node_uuid, sorted(res.traits),
                                   generation if created else None)

    # -- helpers for the endpoint -----------------------------------------------------------------
    @asynccontextmanager
    async def lock(self, uuid: str) -> AsyncIterator[None]:
        """One operation at a time per instance, in arrival order."""
        lock = self._locks.get(uuid)
        if lock is None:
            lock = self._locks[uuid] = asyncio.Lock()
        self._lock_users[uuid] = self._lock_users.get(uuid, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[uuid] -= 1
            if not self._lock_users[uuid]:
                del self._lock_users[uuid]
                self._locks.pop(uuid, None)

    def forget(self, uuid: str) -> None:
        self.terminated[uuid] = None
        while len(self.terminated) > REMEMBER_TERMINATED:
            self.terminated.popitem(last=False)

    async def report(self, uuid: str, updates: dict[str, Any], *,
                     expect_task: list[str | None] | None = None,
                     event: dict[str, Any] | None = None, fault: str | None = None,
                     notify: list[str] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.cloud.bus.call(
            rpc.CONDUCTOR, "instance_update", uuid=uuid, updates=updates,
            expect_task=expect_task, event=event,
            fault={"message": fault, "host": self.host} if fault else None, notify=notify)
        return result

    def event(self, name: str, request_id: str | None, start: str,
              error: str | None = None) -> dict[str, Any]:
        return {"name": name, "request_id": request_id, "start": start, "host": self.host,
                "error": error, "details": error}

    @staticmethod
    def now() -> str:
        return isotime(utcnow(), micro=True) or ""

    def expect_events(self, uuid: str, name: str,
                      tags: list[str]) -> list[asyncio.Future[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        futures = []
        for tag in tags:
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            self.waiters[(uuid, name, tag)] = fut
            futures.append(fut)
        return futures

    def drop_waiters(self, uuid: str) -> None:
        for key in [k for k in self.waiters if k[0] == uuid]:
            fut = self.waiters.pop(key)
            if not fut.done():
                fut.cancel()

    def deliver(self, event: dict[str, Any]) -> None:
        key = (event.get("server_uuid", ""), event.get("name", ""), event.get("tag") or "")
        fut = self.waiters.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(event)

    async def init_instances(self) -> None:
        """After a restart: finish or undo what was under way, bring missing guests back."""
        from nimbus.compute.agent.endpoint import HostEndpoint

        known: list[dict[str, Any]] = await self.cloud.bus.call(
            rpc.CONDUCTOR, "instances_on_host", host=self.host)
        running = set(await self.driver.list_instances())
        for inst in known:
            uuid = inst["uuid"]
            if inst["task_state"] == states.DELETING:
                await HostEndpoint(self).terminate_instance({}, inst)
                continue
            if inst["vm_state"] == states.BUILDING:
                await self.report(uuid, {"vm_state": states.ERROR, "task_state": None},
                                  fault="The build was interrupted by a restart of its host")
                continue
            if inst["task_state"] is not None:
                await self.report(uuid, {"task_state": None})
            if uuid not in running and inst["vm_state"] not in (
                    states.SHELVED_OFFLOADED, states.ERROR, states.SHELVED):
                await self.driver.recover(inst, inst["power_state"])

    # -- periodic ---------------------------------------------------------------------------------
    async def sync_power_states(self) -> None:
        known: list[dict[str, Any]] = await self.cloud.bus.call(
            rpc.CONDUCTOR, "instances_on_host", host=self.host)
        running = set(await self.driver.list_instances())
        for inst in known:
            running.discard(inst["uuid"])
            if inst["task_state"] is not None or inst["vm_state"] in (
                    states.BUILDING, states.SHELVED_OFFLOADED, states.ERROR):
                continue
            try:
                power = (await self.driver.get_info(inst)).power_state
            except GuestNotFound:
                power = states.NOSTATE
            if power == inst["power_state"]:
                continue
            updates: dict[str, Any] = {"power_state": power}
            if inst["vm_state"] == states.ACTIVE and power in (states.SHUTDOWN, states.NOSTATE,
                                                                states.CRASHED):
                updates["vm_state"] = states.STOPPED
            LOG.info("power state of %s on %s: %s", inst["uuid"], self.host, updates)
            await self.report(inst["uuid"], updates, expect_task=[None])
        for uuid in running:  # guests the database does not know (deleted while we were away)
            LOG.info("destroying guest %s on %s: not in the database", uuid, self.host)
            try:
                await self.driver.destroy({"uuid": uuid}, [])
            except Exception:
                LOG.warning("could not destroy orphan %s", uuid, exc_info=True)
