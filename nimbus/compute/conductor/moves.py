"""Moves: resize and cold migration, live migration, evacuation, shelve and unshelve.

While a server moves, its source host's allocation is held by the migration record (moved
there in placement) and the destination's by the server; confirming frees the source,
reverting or failing gives it back. Agents report each step here."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.bus import BusTimeout, RemoteError
from nimbus.clients.placement import PlacementClient
from nimbus.common.timeutils import utcnow
from nimbus.compute import instances, lifecycle, rpc, states
from nimbus.compute.models import Instance, Migration

if TYPE_CHECKING:
    from nimbus.compute.conductor import Conductor
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)
FLAVOR_FIELDS = ("memory_mb", "vcpus", "root_gb", "ephemeral_gb")


def migration_dict(m: Migration) -> dict[str, Any]:
    return {"uuid": m.uuid, "id": m.id, "type": m.migration_type, "status": m.status,
            "source_compute": m.source_compute, "source_node": m.source_node,
            "dest_compute": m.dest_compute, "dest_node": m.dest_node,
            "source_node_uuid": m.source_node_uuid, "dest_node_uuid": m.dest_node_uuid}


class Moves:
    def __init__(self, svc: ComputeService, conductor: Conductor) -> None:
        self.svc = svc
        self.conductor = conductor

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def placement(self) -> PlacementClient | None:
        if not lifecycle.has_service(self.svc.cloud, "placement"):
            return None
        return self.svc.cloud.clients.get(PlacementClient)

    async def _hand_over(self, inst: Instance, migration_uuid: str) -> None:
        """The instance's allocation moves to the migration record."""
        if self.placement is not None:
            await self.placement.move_allocations(inst.uuid, migration_uuid,
                                                  project_id=inst.project_id,
                                                  user_id=inst.user_id)

    async def _give_back(self, uuid: str, migration_uuid: str, project: str,
                         user: str) -> None:
        """Undo a move's claims: the destination's goes, the source's returns."""
        if self.placement is None:
            return
        try:
            await self.placement.delete_allocations(uuid)
            await self.placement.move_allocations(migration_uuid, uuid, project_id=project,
                                                  user_id=user)
        except Exception:
            LOG.warning("could not give the allocations of %s back", uuid, exc_info=True)

    async def _free_source(self, migration_uuid: str) -> None:
        if self.placement is not None:
            try:
                await self.placement.delete_allocations(migration_uuid)
            except Exception:
                LOG.warning("could not free the allocations of migration %s", migration_uuid,
                            exc_info=True)

    async def _load(self, uuid: str, migration_uuid: str | None) -> tuple[
            Instance | None, Migration | None]:
        async with self.svc.db.session() as session:
            inst = (await session.scalars(select(Instance).where(
                Instance.uuid == uuid, Instance.deleted.is_(False)))).first()
            mig = None
            if migration_uuid:
                mig = (await session.scalars(select(Migration).where(
                    Migration.uuid == migration_uuid))).first()
            return inst, mig

    async def _save(self, uuid: str, migration_uuid: str | None,
                    inst_updates: dict[str, Any], mig_updates: dict[str, Any] | None = None,
                    *, event: str | None = None, request_id: str | None = None,
                    error: str | None = None, host: str | None = None,
                    notify: str | None = None) -> dict[str, Any] | None:
        """Update the instance and its migration together; the agent view afterwards."""
        changes = instances.Changes()
        async with self.svc.db.transaction() as session:
            inst = (await session.scalars(select(Instance).where(
                Instance.uuid == uuid))).first()
            if migration_uuid and mig_updates:
                mig = (await session.scalars(select(Migration).where(
                    Migration.uuid == migration_uuid))).first()
                if mig is not None:
                    for key, value in mig_updates.items():
                        setattr(mig, key, value)
                    mig.updated_at = utcnow()
            if inst is None or inst.deleted:
                return None
            instances.apply(inst, inst_updates, changes)
            if error:
                instances.add_fault(session, inst, error, host=host)
            if event:
                await instances.record_event(session, uuid, request_id, event, error=error,
                                             host=host, details=error)
            payload = instances.to_agent(inst)
            note = instances.state_payload(inst)
        await changes.send(self.svc)
        if notify:
            await self.svc.notify(notify, note)
        return payload

    async def _schedule(self, inst: Instance, flavor: dict[str, Any], *,
                        ignore: list[str], host: str | None = None,
                        zone: str | None = None) -> dict[str, Any]:
        async with self.svc.db.session() as session:
            row = (await session.scalars(select(Instance).where(
                Instance.uuid == inst.uuid))).first()
            assert row is not None
            spec = await lifecycle.request_spec(session, row)
        spec.update(flavor=flavor, ignore_hosts=ignore, requested_host=host,
                    force_host=None, force_node=None, requested_node=None)
        if zone is not None:
            spec["availability_zone"] = zone
        try:
            result: dict[str, Any] = await self.svc.cloud.bus.call(
                rpc.SCHEDULER, "select_destinations", spec=spec, instance_uuids=[inst.uuid],
                timeout=120)
        except (BusTimeout, RemoteError) as exc:
            result = {"error": f"No valid host was found. {exc}"}
        return result

    async def _fail(self, uuid: str, migration_uuid: str, message: str, event: str,
                    request_id: str | None, project: str, user: str,
                    inst_updates: dict[str, Any] | None = None) -> None:
        await self._give_back(uuid, migration_uuid, project, user)
        await self._save(uuid, migration_uuid, {"task_state": None, **(inst_updates or {})},
                         {"status": "error"}, event=event, request_id=request_id,
                         error=message)

    # -- resize and cold migration ----------------------------------------------------------------
    async def resize(self, uuid: str, migration_uuid: str, request_id: str | None = None,
                     host: str | None = None) -> None:
        inst, mig = await self._load(uuid, migration_uuid)
        if inst is None or mig is None:
            return
        await self._hand_over(inst, migration_uuid)
        same_host_ok = mig.migration_type == "resize" and \
            self.svc.settings.allow_resize_to_same_host
        result = await self._schedule(inst, inst.new_flavor or inst.flavor,
                                      ignore=[] if same_host_ok else [inst.host or ""],
                                      host=host)
        if "error" in result:
            await self._fail(uuid, migration_uuid, result["error"],
                             "conductor_migrate_server", request_id, inst.project_id,
                             inst.user_id)
            return
        sel = result["selections"][0]
        payload = await self._save(uuid, migration_uuid, {"task_state": states.RESIZE_MIGRATING},
                                   {"status": "migrating", "dest_compute": sel["host"],
                                    "dest_node": sel["node"], "dest_host": sel["host"],
                                    "dest_node_uuid": sel["node_uuid"]},
                                   event="conductor_migrate_server", request_id=request_id)
        if payload is None:
            await self._give_back(uuid, migration_uuid, inst.project_id, inst.user_id)
            return
        _, mig = await self._load(uuid, migration_uuid)
        assert mig is not None
        await self.svc.cloud.bus.cast(rpc.agent(inst.host or ""), "resize_instance",
                                      instance=payload, migration=migration_dict(mig),
                                      request_id=request_id)

    async def resize_migrated(self, uuid: str, migration_uuid: str) -> dict[str, Any] | None:
        return await self._save(uuid, migration_uuid, {"task_state": states.RESIZE_MIGRATED},
                                {"status": "post-migrating"})

    async def resize_finished(self, uuid: str, migration_uuid: str, host: str, node: str,
                              node_uuid: str, power_state: int,
                              request_id: str | None = None) -> None:
        inst, _ = await self._load(uuid, migration_uuid)
        if inst is None:
            await self._free_source(migration_uuid)
            return
        new = inst.new_flavor or inst.flavor
        updates: dict[str, Any] = {
            "host": host, "node": node, "node_uuid": node_uuid, "vm_state": states.RESIZED,
            "task_state": None, "power_state": power_state, "flavor": new,
            "old_flavor": inst.flavor, "new_flavor": new,
            **{k: new.get(k, 0) for k in FLAVOR_FIELDS}}
        await self._save(uuid, migration_uuid, updates, {"status": "finished"},
                         event="compute_finish_resize", request_id=request_id, host=host,
                         notify="compute.instance.finish_resize.end")
        async with self.svc.db.transaction() as session:
            row = (await session.scalars(select(Instance).where(Instance.uuid == uuid))).first()
            if row is not None:
                row.flavorid = new.get("flavorid", row.flavorid)

    async def resize_failed(self, uuid: str, migration_uuid: str, reason: str,
                            request_id: str | None = None, host: str | None = None) -> None:
        inst, mig = await self._load(uuid, migration_uuid)
        if inst is None:
            return
        await self._fail(uuid, migration_uuid, reason, "compute_resize_instance", request_id,
                         inst.project_id, inst.user_id,
                         {"host": mig.source_compute if mig else inst.host,
                          "node": mig.source_node if mig else inst.node,
                          "node_uuid": mig.source_node_uuid if mig else inst.node_uuid,
                          "vm_state": states.ERROR})

    async def resize_confirmed(self, uuid: str, migration_uuid: str, power_state: int,
                               request_id: str | None = None) -> None:
        await self._free_source(migration_uuid)
        stopped = power_state in (states.SHUTDOWN, states.NOSTATE)
        await self._save(uuid, migration_uuid, {
            "vm_state": states.STOPPED if stopped else states.ACTIVE, "task_state": None,
            "old_flavor": None, "new_flavor": None}, {"status": "confirmed"},
            event="compute_confirm_resize", request_id=request_id,
            notify="compute.instance.resize.confirm.end")

    async def resize_reverted(self, uuid: str, migration_uuid: str, power_state: int,
                              request_id: str | None = None) -> None:
        inst, mig = await self._load(uuid, migration_uuid)
        if inst is None or mig is None:
            await self._free_source(migration_uuid)
            return
        await self._give_back(uuid, migration_uuid, inst.project_id, inst.user_id)
        old = inst.old_flavor or inst.flavor
        stopped = power_state in (states.SHUTDOWN, states.NOSTATE)
        await self._save(uuid, migration_uuid, {
            "host": mig.source_compute, "node": mig.source_node,
            "node_uuid": mig.source_node_uuid, "flavor": old, "old_flavor": None,
            "new_flavor": None, "vm_state": states.STOPPED if stopped else states.ACTIVE,
            "task_state": None, "power_state": power_state,
            **{k: old.get(k, 0) for k in FLAVOR_FIELDS}}, {"status": "reverted"},
            event="compute_revert_resize", request_id=request_id,
            notify="compute.instance.resize.revert.end")
        async with self.svc.db.transaction() as session:
            row = (await session.scalars(select(Instance).where(Instance.uuid == uuid))).first()
            if row is not None:
                row.flavorid = old.get("flavorid", row.flavorid)

    # -- live migration ---------------------------------------------------------------------------
    async def live_migrate(self, uuid: str, migration_uuid: str, host: str | None = None,
                           request_id: str | None = None) -> None:
        inst, mig = await self._load(uuid, migration_uuid)
        if inst is None or mig is None:
            return
        await self._hand_over(inst, migration_uuid)
        result = await self._schedule(inst, inst.flavor, ignore=[inst.host or ""], host=host)
        if "error" in result:
            await self._fail(uuid, migration_uuid, result["error"],
                             "conductor_live_migrate_instance", request_id, inst.project_id,
                             inst.user_id)
            return
        sel = result["selections"][0]
        payload = await self._save(uuid, migration_uuid, {}, {
            "status": "preparing", "dest_compute": sel["host"], "dest_node": sel["node"],
            "dest_host": sel["host"], "dest_node_uuid": sel["node_uuid"]},
            event="conductor_live_migrate_instance", request_id=request_id)
        if payload is None:
            await self._give_back(uuid, migration_uuid, inst.project_id, inst.user_id)
            return
        _, mig = await self._load(uuid, migration_uuid)
        assert mig is not None
        await self.svc.cloud.bus.cast(rpc.agent(inst.host or ""), "live_migration",
                                      instance=payload, migration=migration_dict(mig),
                                      request_id=request_id)

    async def live_migrated(self, uuid: str, migration_uuid: str, host: str, node: str,
                            node_uuid: str, request_id: str | None = None) -> None:
        await self._free_source(migration_uuid)
        await self._save(uuid, migration_uuid, {
            "host": host, "node": node, "node_uuid": node_uuid, "task_state": None},
            {"status": "completed"}, event="compute_live_migration", request_id=request_id,
            host=host, notify="compute.instance.live_migration._post.end")

    async def live_failed(self, uuid: str, migration_uuid: str, reason: str,
                          request_id: str | None = None) -> None:
        inst, _ = await self._load(uuid, migration_uuid)
        if inst is None:
            return
        await self._fail(uuid, migration_uuid, reason, "compute_live_migration", request_id,
                         inst.project_id, inst.user_id)

    # -- evacuation -------------------------------------------------------------------------------
    async def evacuate(self, uuid: str, migration_uuid: str, host: str | None = None,
                       request_id: str | None = None, admin_password: str | None = None,
                       stop: bool = False) -> None:
        inst, mig = await self._load(uuid, migration_uuid)
        if inst is None or mig is None:
            return
        await self._hand_over(inst, migration_uuid)
        result = await self._schedule(inst, inst.flavor, ignore=[inst.host or ""], host=host)
        if "error" in result:
            await self._fail(uuid, migration_uuid, result["error"], "conductor_rebuild_server",
                             request_id, inst.project_id, inst.user_id)
            return
        sel = result["selections"][0]
        payload = await self._save(uuid, migration_uuid, {}, {
            "status": "pre-migrating", "dest_compute": sel["host"], "dest_node": sel["node"],
            "dest_host": sel["host"], "dest_node_uuid": sel["node_uuid"]},
            event="conductor_rebuild_server", request_id=request_id)
        if payload is None:
            await self._give_back(uuid, migration_uuid, inst.project_id, inst.user_id)
            return
        _, mig = await self._load(uuid, migration_uuid)
        assert mig is not None
        await self.svc.cloud.bus.cast(rpc.agent(sel["host"]), "rebuild_instance",
                                      instance=payload, evacuate=migration_dict(mig),
                                      admin_password=admin_password, request_id=request_id,
                                      stop=stop)

    async def evacuated(self, uuid: str, migration_uuid: str, host: str, node: str,
                        node_uuid: str, power_state: int, network_info: list[dict[str, Any]],
                        request_id: str | None = None) -> None:
        await self._free_source(migration_uuid)
        stopped = power_state == states.SHUTDOWN
        await self._save(uuid, migration_uuid, {
            "host": host, "node": node, "node_uuid": node_uuid, "task_state": None,
            "vm_state": states.STOPPED if stopped else states.ACTIVE,
            "power_state": power_state, "network_info": network_info}, {"status": "done"},
            event="compute_rebuild_instance", request_id=request_id, host=host,
            notify="compute.instance.rebuild.end")

    async def evacuate_failed(self, uuid: str, migration_uuid: str, reason: str,
                              request_id: str | None = None) -> None:
        inst, _ = await self._load(uuid, migration_uuid)
        if inst is None:
            return
        await self._fail(uuid, migration_uuid, reason, "compute_rebuild_instance", request_id,
                         inst.project_id, inst.user_id, {"vm_state": states.ERROR})

    # -- shelve -----------------------------------------------------------------------------------
    async def shelved(self, uuid: str, offloaded: bool, power_state: int,
                      request_id: str | None = None) -> None:
        if offloaded and self.placement is not None:
            try:
                await self.placement.delete_allocations(uuid)
            except Exception:
                LOG.warning("could not free the allocations of %s", uuid, exc_info=True)
        updates: dict[str, Any] = {"task_state": None, "power_state": power_state,
                                   "vm_state": states.SHELVED_OFFLOADED if offloaded
                                   else states.SHELVED}
        if offloaded:
            updates.update(host=None, node=None, node_uuid=None)
        await self._save(uuid, None, updates, event="compute_shelve_instance" if not offloaded
                         else "compute_shelve_offload_instance", request_id=request_id,
                         notify="compute.instance.shelve_offload.end" if offloaded
                         else "compute.instance.shelve.end")

    async def unshelve(self, uuid: str, request_id: str | None = None,
                       zone: str | None = None, host: str | None = None) -> None:
        inst, _ = await self._load(uuid, None)
        if inst is None:
            return
        result = await self._schedule(inst, inst.flavor, ignore=[], host=host, zone=zone)
        if "error" in result:
            await self._save(uuid, None, {"task_state": None},
                             event="conductor_unshelve_instance", request_id=request_id,
                             error=result["error"])
            return
        sel = result["selections"][0]
        payload = await self._save(uuid, None, {
            "host": sel["host"], "node": sel["node"], "node_uuid": sel["node_uuid"],
            "availability_zone": inst.pinned_availability_zone or sel.get("availability_zone")},
            event="conductor_unshelve_instance", request_id=request_id)
        if payload is None:
            if self.placement is not None:
                await self.placement.delete_allocations(uuid)
            return
        await self.svc.cloud.bus.cast(rpc.agent(sel["host"]), "unshelve_instance",
                                      instance=payload, request_id=request_id)

    async def unshelved(self, uuid: str, network_info: list[dict[str, Any]],
                        request_id: str | None = None) -> None:
        payload = await self._save(uuid, None, {
            "vm_state": states.ACTIVE, "task_state": None, "power_state": states.RUNNING,
            "network_info": network_info}, event="compute_unshelve_instance",
            request_id=request_id, notify="compute.instance.unshelve.end")
        if payload is None:
            return
        async with self.svc.db.transaction() as session:
            row = (await session.scalars(select(Instance).where(Instance.uuid == uuid))).first()
            if row is not None:
                meta = dict(row.system_metadata or {})
                meta.pop("shelved_image_id", None)
                row.system_metadata = meta

    async def unshelve_failed(self, uuid: str, reason: str,
                              request_id: str | None = None) -> None:
        if self.placement is not None:
            try:
                await self.placement.delete_allocations(uuid)
            except Exception:
                LOG.warning("could not free the allocations of %s", uuid, exc_info=True)
        await self._save(uuid, None, {"task_state": None, "host": None, "node": None,
                                      "node_uuid": None}, event="compute_unshelve_instance",
                         request_id=request_id, error=reason)
