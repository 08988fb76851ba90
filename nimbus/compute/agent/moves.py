"""The agent's side of moves and images: resize and cold migration (source, then
destination), live migration, rebuild and evacuation, snapshots and backups, shelve and
unshelve. Mixed into HostEndpoint."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nimbus.clients.image import ImageClient
from nimbus.clients.network import NetworkClient
from nimbus.compute import lifecycle, rpc, states
from nimbus.compute.agent import imagecache, network
from nimbus.compute.virt.driver import GuestNotFound

if TYPE_CHECKING:
    from nimbus.compute.agent.host import HostAgent
    from nimbus.compute.virt.driver import VirtDriver

LOG = logging.getLogger(__name__)


class MovesMixin:
    agent: HostAgent
    driver: VirtDriver

    async def _conductor(self, method: str, **kwargs: Any) -> Any:
        return await self.agent.cloud.bus.call(rpc.CONDUCTOR, "moves", step=method,
                                               kwargs=kwargs, timeout=120)

    async def _rebind(self, vifs: list[dict[str, Any]], host: str | None) -> None:
        await self._update_ports(vifs, {"binding:host_id": host})

    async def _update_ports(self, vifs: list[dict[str, Any]], body: dict[str, Any]) -> None:
        if not vifs or not lifecycle.has_service(self.agent.cloud, "network"):
            return
        client = self.agent.cloud.clients.get(NetworkClient)
        for vif in vifs:
            try:
                await client.update_port(vif["port_id"], body)
            except Exception:
                LOG.warning("could not update port %s with %s", vif["port_id"], body,
                            exc_info=True)

    async def _power(self, instance: dict[str, Any]) -> int:
        try:
            return (await self.driver.get_info(instance)).power_state
        except GuestNotFound:
            return states.NOSTATE

    # -- resize and cold migration ----------------------------------------------------------------
    async def resize_instance(self, context: dict[str, Any], instance: dict[str, Any],
                              migration: dict[str, Any], request_id: str | None = None) -> None:
        """Source: power off and hand the disk over; the destination finishes."""
        uuid = instance["uuid"]
        async with self.agent.lock(uuid):
            try:
                await self.driver.migrate_disk_and_power_off(
                    instance, migration["dest_compute"], instance.get("new_flavor") or {},
                    instance["network_info"])
            except Exception as exc:
                await self._conductor("resize_failed", uuid=uuid, migration_uuid=migration["uuid"],
                                      reason=f"Resize error: {exc}", request_id=request_id,
                                      host=self.agent.host)
                return
            payload = await self._conductor("resize_migrated", uuid=uuid,
                                            migration_uuid=migration["uuid"])
        if payload is not None:
            await self.agent.cloud.bus.cast(rpc.agent(migration["dest_compute"]),
                                            "finish_resize", instance=payload,
                                            migration=migration, request_id=request_id)

    async def finish_resize(self, context: dict[str, Any], instance: dict[str, Any],
                            migration: dict[str, Any], request_id: str | None = None) -> None:
        uuid = instance["uuid"]
        agent = self.agent
        async with agent.lock(uuid):
            vifs = instance["network_info"]
            try:
                await self._rebind(vifs, agent.host)
                moved = {**instance, "flavor": instance.get("new_flavor") or instance["flavor"]}
                power_on = instance.get("vm_state") != states.STOPPED
                await self.driver.finish_migration(moved, vifs, instance.get("image_meta") or {},
                                                   power_on)
            except Exception as exc:
                await self._rebind(vifs, migration["source_compute"])
                await self._conductor("resize_failed", uuid=uuid, migration_uuid=migration["uuid"],
                                      reason=f"Resize error: {exc}", request_id=request_id,
                                      host=agent.host)
                return
            await self._conductor("resize_finished", uuid=uuid, migration_uuid=migration["uuid"],
                                  host=agent.host, node=migration["dest_node"],
                                  node_uuid=agent.node_uuid or migration["dest_node_uuid"],
                                  power_state=await self._power(instance),
                                  request_id=request_id)

    async def confirm_resize(self, context: dict[str, Any], instance: dict[str, Any],
                             migration: dict[str, Any], request_id: str | None = None) -> None:
        """Source: drop what is left of the server here."""
        uuid = instance["uuid"]
        async with self.agent.lock(uuid):
            if migration["source_compute"] != migration["dest_compute"]:
                try:
                    await self.driver.confirm_migration(instance, instance["network_info"])
                except Exception:
                    LOG.warning("cleanup after resize of %s failed", uuid, exc_info=True)
        power = await self._remote_power(migration["dest_compute"], instance)
        await self._conductor("resize_confirmed", uuid=uuid, migration_uuid=migration["uuid"],
                              power_state=power, request_id=request_id)

    async def _remote_power(self, host: str, instance: dict[str, Any]) -> int:
        if host == self.agent.host:
            return await self._power(instance)
        try:
            power: int = await self.agent.cloud.bus.call(rpc.agent(host), "get_power_state",
                                                         instance=instance, timeout=30)
            return power
        except Exception:
            return states.RUNNING

    async def revert_resize(self, context: dict[str, Any], instance: dict[str, Any],
                            migration: dict[str, Any], request_id: str | None = None) -> None:
        """Destination: remove the resized server; the source brings the old one back."""
        uuid = instance["uuid"]
        async with self.agent.lock(uuid):
            if migration["source_compute"] != migration["dest_compute"]:
                try:  # the source may share the files (one machine): keep them
                    await self.driver.destroy(instance, instance["network_info"],
                                              destroy_disks=False)
                except Exception:
                    LOG.warning("destroy on revert of %s failed", uuid, exc_info=True)
            await self._rebind(instance["network_info"], migration["source_compute"])
        await self.agent.cloud.bus.cast(rpc.agent(migration["source_compute"]),
                                        "finish_revert_resize", instance=instance,
                                        migration=migration, request_id=request_id)

    async def finish_revert_resize(self, context: dict[str, Any], instance: dict[str, Any],
                                   migration: dict[str, Any],
                                   request_id: str | None = None) -> None:
        uuid = instance["uuid"]
        async with self.agent.lock(uuid):
            old = {**instance, "flavor": instance.get("old_flavor") or instance["flavor"]}
            power_on = instance.get("vm_state") != states.STOPPED and \
                instance.get("power_state") != states.SHUTDOWN
            await self.driver.finish_revert_migration(old, instance["network_info"], power_on)
            power = await self._power(instance)
        await self._conductor("resize_reverted", uuid=uuid, migration_uuid=migration["uuid"],
                              power_state=power, request_id=request_id)

    # -- live migration ---------------------------------------------------------------------------
    async def live_migration(self, context: dict[str, Any], instance: dict[str, Any],
                             migration: dict[str, Any], request_id: str | None = None) -> None:
        uuid = instance["uuid"]
        dest = migration["dest_compute"]
        bus = self.agent.cloud.bus
        async with self.agent.lock(uuid):
            try:
                await bus.call(rpc.agent(dest), "pre_live_migration", instance=instance,
                               timeout=60)
                await self.driver.live_migration(instance, dest)
                await self._update_ports(instance["network_info"],
                                         {"binding:host_id": dest, "binding:profile": {}})
            except Exception as exc:
                try:
                    await bus.call(rpc.agent(dest), "rollback_live_migration", instance=instance,
                                   source=self.agent.host, timeout=60)
                except Exception:
                    LOG.warning("rollback of the live migration of %s failed", uuid,
                                exc_info=True)
                await self._conductor("live_failed", uuid=uuid, migration_uuid=migration["uuid"],
                                      reason=f"Live migration failed: {exc}",
                                      request_id=request_id)
                return
        await self._conductor("live_migrated", uuid=uuid, migration_uuid=migration["uuid"],
                              host=dest, node=migration["dest_node"],
                              node_uuid=migration["dest_node_uuid"], request_id=request_id)

    async def pre_live_migration(self, context: dict[str, Any], instance: dict[str, Any]) -> None:
        # The ports stay bound to the source until the switch-over; migrating_to has the
        # network wire them here too, so the destination's taps are ready when it comes.
        await self._update_ports(instance["network_info"],
                                 {"binding:profile": {"migrating_to": self.agent.host}})
        await self.driver.receive_live_migration(instance, instance["network_info"])

    async def rollback_live_migration(self, context: dict[str, Any], instance: dict[str, Any],
                                      source: str) -> None:
        try:  # the source still runs the guest, maybe from the same files
            await self.driver.destroy(instance, instance["network_info"], destroy_disks=False)
        finally:
            await self._update_ports(instance["network_info"],
                                     {"binding:host_id": source, "binding:profile": {}})

    # -- rebuild and evacuation -------------------------------------------------------------------
    async def rebuild_instance(self, context: dict[str, Any], instance: dict[str, Any],
                               admin_password: str | None = None,
                               evacuate: dict[str, Any] | None = None,
                               request_id: str | None = None, stop: bool = False) -> None:
        uuid = instance["uuid"]
        agent = self.agent
        start = agent.now()
        async with agent.lock(uuid):
            vifs = instance["network_info"]
            was_stopped = instance.get("vm_state") == states.STOPPED
            try:
                if evacuate:
                    await self._rebind(vifs, agent.host)
                else:
                    await self.driver.destroy(instance, vifs)
                path = await imagecache.image_path(agent, instance)
                await self.driver.spawn(instance, instance.get("image_meta") or {}, vifs,
                                        admin_password=admin_password, image_path=path)
                if was_stopped or stop:
                    await self.driver.power_off(instance)
            except Exception as exc:
                if evacuate:
                    await self._conductor("evacuate_failed", uuid=uuid,
                                          migration_uuid=evacuate["uuid"],
                                          reason=f"Evacuation failed: {exc}",
                                          request_id=request_id)
                else:
                    await agent.report(uuid, {"vm_state": states.ERROR, "task_state": None},
                                       event=agent.event("compute_rebuild_instance",
                                                         request_id, start, str(exc)),
                                       fault=str(exc))
                return
            power = await self._power(instance)
        if evacuate:
            await self._conductor("evacuated", uuid=uuid, migration_uuid=evacuate["uuid"],
                                  host=agent.host, node=evacuate["dest_node"],
                                  node_uuid=agent.node_uuid or evacuate["dest_node_uuid"],
                                  power_state=power, network_info=vifs, request_id=request_id)
            return
        await agent.report(uuid, {"vm_state": states.STOPPED if was_stopped else states.ACTIVE,
                                  "task_state": None, "power_state": power,
                                  "launched_at": agent.now()},
                           event=agent.event("compute_rebuild_instance", request_id, start),
                           notify=["compute.instance.rebuild.end"])

    # -- images -----------------------------------------------------------------------------------
    async def _upload(self, instance: dict[str, Any], image_id: str) -> None:
        chunks = [chunk async for chunk in self.driver.snapshot(instance)]
        await self.agent.cloud.clients.get(ImageClient).upload(image_id, b"".join(chunks))

    async def snapshot_instance(self, context: dict[str, Any], instance: dict[str, Any],
                                image_id: str, request_id: str | None = None,
                                backup: dict[str, Any] | None = None) -> None:
        uuid = instance["uuid"]
        agent = self.agent
        start = agent.now()
        event = "compute_backup_instance" if backup else "compute_snapshot_instance"
        async with agent.lock(uuid):
            try:
                await self._upload(instance, image_id)
            except Exception as exc:
                LOG.info("snapshot of %s failed: %s", uuid, exc)
                try:
                    await agent.cloud.clients.get(ImageClient).delete(image_id)
                except Exception:
                    LOG.warning("could not delete image %s", image_id, exc_info=True)
                await agent.report(uuid, {"task_state": None},
                                   event=agent.event(event, request_id, start, str(exc)),
                                   fault=str(exc))
                return
        if backup:
            await self._rotate(instance, backup)
        await agent.report(uuid, {"task_state": None},
                           event=agent.event(event, request_id, start),
                           notify=["compute.instance.snapshot.end"])

    async def _rotate(self, instance: dict[str, Any], backup: dict[str, Any]) -> None:
        client = self.agent.cloud.clients.get(ImageClient)
        try:
            images = await client.list({"instance_uuid": instance["uuid"],
                                        "image_type": "backup",
                                        "backup_type": backup["type"],
                                        "sort_key": "created_at", "sort_dir": "desc"})
        except Exception:
            LOG.warning("could not list the backups of %s", instance["uuid"], exc_info=True)
            return
        for image in images[int(backup["rotation"]):]:
            try:
                await client.delete(image["id"])
            except Exception:
                LOG.warning("could not rotate backup %s", image["id"], exc_info=True)

    # -- shelve -----------------------------------------------------------------------------------
    async def shelve_instance(self, context: dict[str, Any], instance: dict[str, Any],
                              image_id: str | None = None, offload: bool = True,
                              request_id: str | None = None) -> None:
        uuid = instance["uuid"]
        agent = self.agent
        async with agent.lock(uuid):
            try:
                if await self._power(instance) == states.RUNNING:
                    await self.driver.power_off(instance)
                if image_id:
                    await self._upload(instance, image_id)
                if offload:
                    await self.driver.destroy(instance, instance["network_info"])
                    await self._rebind(instance["network_info"], None)
            except Exception as exc:
                start = agent.now()
                await agent.report(uuid, {"task_state": None},
                                   event=agent.event("compute_shelve_instance", request_id,
                                                     start, str(exc)), fault=str(exc))
                return
        await self._conductor("shelved", uuid=uuid, offloaded=offload,
                              power_state=states.SHUTDOWN if not offload else states.NOSTATE,
                              request_id=request_id)

    async def shelve_offload_instance(self, context: dict[str, Any], instance: dict[str, Any],
                                      request_id: str | None = None) -> None:
        uuid = instance["uuid"]
        async with self.agent.lock(uuid):
            try:
                await self.driver.destroy(instance, instance["network_info"])
            except Exception:
                LOG.warning("destroy on offload of %s failed", uuid, exc_info=True)
            await self._rebind(instance["network_info"], None)
        await self._conductor("shelved", uuid=uuid, offloaded=True, power_state=states.NOSTATE,
                              request_id=request_id)

    async def unshelve_instance(self, context: dict[str, Any], instance: dict[str, Any],
                                request_id: str | None = None) -> None:
        uuid = instance["uuid"]
        agent = self.agent
        async with agent.lock(uuid):
            vifs = instance["network_info"]
            try:
                if uuid in await self.driver.list_instances():
                    await self.driver.power_on(instance, vifs)
                else:
                    if vifs:
                        await self._rebind(vifs, agent.host)
                    else:
                        vifs = await network.allocate(agent, instance)
                    shelved = (instance.get("system_metadata") or {}).get("shelved_image_id")
                    meta = {**(instance.get("image_meta") or {}),
                            **({"id": shelved, "disk_format": None} if shelved else {})}
                    path = await imagecache.image_path(agent, instance, meta)
                    await self.driver.spawn(instance, meta, vifs, image_path=path)
            except Exception as exc:
                await self._rebind(vifs, None)
                await self._conductor("unshelve_failed", uuid=uuid,
                                      reason=f"Unshelve failed: {exc}", request_id=request_id)
                return
        image_id = (instance.get("system_metadata") or {}).get("shelved_image_id")
        if image_id:
            try:
                await agent.cloud.clients.get(ImageClient).delete(image_id)
            except Exception:
                LOG.warning("could not delete shelved image %s", image_id, exc_info=True)
        await self._conductor("unshelved", uuid=uuid, network_info=vifs, request_id=request_id)
