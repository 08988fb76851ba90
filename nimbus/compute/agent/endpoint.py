"""What the conductor and the API ask a compute agent over the bus (topic compute-agent,
server = host): build, terminate, power and state actions, console, diagnostics, events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nimbus.compute import lifecycle, rpc, states
from nimbus.compute.agent import imagecache, network
from nimbus.compute.agent.moves import MovesMixin
from nimbus.compute.virt.driver import GuestNotFound

if TYPE_CHECKING:
    from nimbus.compute.agent.host import HostAgent

LOG = logging.getLogger(__name__)


class HostEndpoint(MovesMixin):
    version = "1.0"

    def __init__(self, agent: HostAgent) -> None:
        self.agent = agent
        self.driver = agent.driver

    # -- build and delete -------------------------------------------------------------------------
    async def build_and_run_instance(self, context: dict[str, Any], instance: dict[str, Any],
                                     admin_password: str | None = None,
                                     request_id: str | None = None) -> None:
        agent = self.agent
        uuid = instance["uuid"]
        start = agent.now()
        async with agent.lock(uuid):
            if uuid in agent.terminated:
                return
            await self._notify("compute.instance.create.start", instance)
            vifs: list[dict[str, Any]] = []
            spawned = False
            try:
                vifs = await network.allocate(agent, instance)
                instance["network_info"] = vifs
                waits = []
                if agent.settings.plugging_timeout() > 0 and vifs:
                    waits = agent.expect_events(uuid, "network-vif-plugged",
                                                [v["port_id"] for v in vifs])
                path = await imagecache.image_path(agent, instance)
                await self.driver.spawn(instance, instance.get("image_meta") or {}, vifs,
                                        admin_password=admin_password, image_path=path)
                spawned = True
                if waits:
                    await self._wait_plugged(uuid, waits)
            except Exception as exc:
                agent.drop_waiters(uuid)
                LOG.info("build of %s on %s failed: %s", uuid, agent.host, exc)
                if spawned:
                    await self._quiet(self.driver.destroy(instance, vifs))
                await lifecycle.release_ports(agent.cloud, uuid, vifs)
                reschedule = not isinstance(exc, network.NetworkError)
                reason = f"Build of instance {uuid} was re-scheduled: {exc}" if reschedule \
                    else f"Build of instance {uuid} aborted: {exc}"
                await agent.cloud.bus.call(rpc.CONDUCTOR, "build_failed", uuid=uuid,
                                           host=agent.host, reason=reason[:255],
                                           request_id=request_id, reschedule=reschedule)
                return
            result = await agent.cloud.bus.call(
                rpc.CONDUCTOR, "build_done", uuid=uuid, host=agent.host, updates={
                    "vm_state": states.ACTIVE, "task_state": None,
                    "power_state": states.RUNNING, "network_info": vifs,
                    "launched_at": agent.now()},
                request_id=request_id, start=start)
            if not result.get("ok") and uuid not in agent.terminated:
                # Deleted while building, and nobody will tell us to clean up.
                status = await agent.report(uuid, {})
                if status.get("deleted"):
                    await self._quiet(self.driver.destroy(instance, vifs))
                    await lifecycle.release_ports(agent.cloud, uuid, vifs)

    async def _wait_plugged(self, uuid: str, waits: list[asyncio.Future[dict[str, Any]]]) -> None:
        timeout = self.agent.settings.plugging_timeout()
        done, pending = await asyncio.wait(waits, timeout=timeout)
        if pending:
            self.agent.drop_waiters(uuid)
            if self.agent.settings.vif_plugging_is_fatal:
                raise TimeoutError(f"Timeout waiting for vif plugging callback for instance "
                                   f"with vm_state building and task_state spawning "
                                   f"({len(pending)} port(s) not plugged in {timeout}s).")
        for fut in done:
            if fut.result().get("status") == "failed":
                raise RuntimeError("Virtual Interface creation failed")

    async def terminate_instance(self, context: dict[str, Any], instance: dict[str, Any],
                                 request_id: str | None = None) -> None:
        agent = self.agent
        uuid = instance["uuid"]
        agent.forget(uuid)
        agent.drop_waiters(uuid)
        async with agent.lock(uuid):
            await self._notify("compute.instance.delete.start", instance)
            await self._quiet(self.driver.destroy(instance, instance.get("network_info") or []))
            await lifecycle.release_ports(agent.cloud, uuid, instance.get("network_info") or [])
            await agent.cloud.bus.call(rpc.CONDUCTOR, "instance_destroyed", uuid=uuid,
                                       request_id=request_id)

    async def external_instance_event(self, context: dict[str, Any],
                                      events: list[dict[str, Any]]) -> None:
        for event in events:
            self.agent.deliver(event)

    # -- actions ----------------------------------------------------------------------------------
    async def reboot_instance(self, context: dict[str, Any], instance: dict[str, Any],
                              reboot_type: str = "SOFT", request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_reboot_instance", "reboot",
                        lambda: self.driver.reboot(instance, instance["network_info"],
                                                   reboot_type),
                        {"vm_state": states.ACTIVE, "power_state": states.RUNNING},
                        error={"vm_state": states.ERROR})

    async def stop_instance(self, context: dict[str, Any], instance: dict[str, Any],
                            request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_stop_instance", "power_off",
                        lambda: self.driver.power_off(instance),
                        {"vm_state": states.STOPPED, "power_state": states.SHUTDOWN})

    async def start_instance(self, context: dict[str, Any], instance: dict[str, Any],
                             request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_start_instance", "power_on",
                        lambda: self.driver.power_on(instance, instance["network_info"]),
                        {"vm_state": states.ACTIVE, "power_state": states.RUNNING})

    async def pause_instance(self, context: dict[str, Any], instance: dict[str, Any],
                             request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_pause_instance", "pause",
                        lambda: self.driver.pause(instance),
                        {"vm_state": states.PAUSED_VM, "power_state": states.PAUSED})

    async def unpause_instance(self, context: dict[str, Any], instance: dict[str, Any],
                               request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_unpause_instance", "unpause",
                        lambda: self.driver.unpause(instance),
                        {"vm_state": states.ACTIVE, "power_state": states.RUNNING})

    async def suspend_instance(self, context: dict[str, Any], instance: dict[str, Any],
                               request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_suspend_instance", "suspend",
                        lambda: self.driver.suspend(instance),
                        {"vm_state": states.SUSPENDED_VM, "power_state": states.SUSPENDED})

    async def resume_instance(self, context: dict[str, Any], instance: dict[str, Any],
                              request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_resume_instance", "resume",
                        lambda: self.driver.resume(instance, instance["network_info"]),
                        {"vm_state": states.ACTIVE, "power_state": states.RUNNING})

    async def rescue_instance(self, context: dict[str, Any], instance: dict[str, Any],
                              rescue_password: str | None = None,
                              image_meta: dict[str, Any] | None = None,
                              request_id: str | None = None) -> None:
        async def rescue() -> None:
            path = await imagecache.image_path(self.agent, instance, image_meta)
            await self.driver.rescue(instance, instance["network_info"],
                                     image_meta or instance.get("image_meta") or {},
                                     rescue_password, image_path=path)

        await self._act(instance, request_id, "compute_rescue_instance", "rescue", rescue,
                        {"vm_state": states.RESCUED, "power_state": states.RUNNING})

    async def unrescue_instance(self, context: dict[str, Any], instance: dict[str, Any],
                                request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_unrescue_instance", "unrescue",
                        lambda: self.driver.unrescue(instance, instance["network_info"]),
                        {"vm_state": states.ACTIVE, "power_state": states.RUNNING})

    async def set_admin_password(self, context: dict[str, Any], instance: dict[str, Any],
                                 password: str, request_id: str | None = None) -> None:
        await self._act(instance, request_id, "compute_set_admin_password", None,
                        lambda: self.driver.set_admin_password(instance, password), {})

    # -- questions --------------------------------------------------------------------------------
    async def get_console_output(self, context: dict[str, Any], instance: dict[str, Any],
                                 length: int | None = None) -> str:
        text = await self.driver.get_console_output(instance)
        if length is not None and length >= 0:
            text = "\n".join(text.split("\n")[-length:]) if length else ""
        return text

    async def get_diagnostics(self, context: dict[str, Any],
                              instance: dict[str, Any]) -> dict[str, Any]:
        return await self.driver.get_diagnostics(instance)

    async def get_power_state(self, context: dict[str, Any], instance: dict[str, Any]) -> int:
        try:
            return (await self.driver.get_info(instance)).power_state
        except GuestNotFound:
            return states.NOSTATE

    async def attach_interface(self, context: dict[str, Any], instance: dict[str, Any],
                               vif: dict[str, Any]) -> None:
        async with self.agent.lock(instance["uuid"]):
            await self.driver.attach_interface(instance, vif)

    async def detach_interface(self, context: dict[str, Any], instance: dict[str, Any],
                               vif: dict[str, Any]) -> None:
        async with self.agent.lock(instance["uuid"]):
            await self.driver.detach_interface(instance, vif)

    # -- plumbing ---------------------------------------------------------------------------------
    async def _act(self, instance: dict[str, Any], request_id: str | None, event: str,
                   notify: str | None, work: Callable[[], Awaitable[Any]],
                   done: dict[str, Any], error: dict[str, Any] | None = None) -> None:
        agent = self.agent
        uuid = instance["uuid"]
        start = agent.now()
        async with agent.lock(uuid):
            if notify:
                await self._notify(f"compute.instance.{notify}.start", instance)
            try:
                await work()
            except Exception as exc:
                LOG.info("%s of %s failed: %s", event, uuid, exc)
                await agent.report(uuid, {"task_state": None, **(error or {})},
                                   event=agent.event(event, request_id, start, str(exc)),
                                   fault=str(exc))
                return
            await agent.report(uuid, {"task_state": None, **done},
                               event=agent.event(event, request_id, start),
                               notify=[f"compute.instance.{notify}.end"] if notify else None)

    async def _notify(self, event_type: str, instance: dict[str, Any]) -> None:
        try:
            await self.agent.cloud.bus.notify(event_type, {
                "instance_id": instance["uuid"], "host": self.agent.host,
                "project_id": instance.get("project_id"), "user_id": instance.get("user_id"),
                "state": instance.get("vm_state"), "task_state": instance.get("task_state")},
                publisher_id=f"compute.{self.agent.host}")
        except Exception:
            LOG.debug("could not send %s", event_type, exc_info=True)

    @staticmethod
    async def _quiet(work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception:
            LOG.warning("ignored failure during cleanup", exc_info=True)
