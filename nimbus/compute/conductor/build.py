"""Builds: schedule, record the chosen hosts, cast to their agents; then take the agents'
answers (ACTIVE, or a failure: another host while attempts remain, else ERROR)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, select, update

from nimbus.bus import BusTimeout, RemoteError
from nimbus.common.timeutils import isotime, parse_isotime, utcnow
from nimbus.compute import instances, lifecycle, rpc, states
from nimbus.compute.models import Instance

if TYPE_CHECKING:
    from nimbus.compute.conductor import Conductor
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)
SCHEDULE_EVENT = "conductor_schedule_and_build_instances"
BUILD_EVENT = "compute__do_build_and_run_instance"
BATCH = 500
TABLE: Table = Instance.__table__  # type: ignore[assignment]


class Builder:
    def __init__(self, svc: ComputeService, conductor: Conductor) -> None:
        self.svc = svc
        self.conductor = conductor
        self._pending: list[tuple[Any, ...]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher], timeout=5)

    async def build(self, uuids: list[str], request_id: str | None,
                    passwords: dict[str, str]) -> None:
        async with self.svc.db.session() as session:
            rows = list((await session.scalars(select(Instance).where(
                Instance.uuid.in_(uuids), Instance.deleted.is_(False)).order_by(
                Instance.launch_index))).all())
            if not rows:
                return
            spec = await lifecycle.request_spec(session, rows[0])
        order = [r.uuid for r in rows]
        start = utcnow()
        try:
            result = await self.svc.cloud.bus.call(
                rpc.SCHEDULER, "select_destinations", spec=spec, instance_uuids=order,
                timeout=120)
        except (BusTimeout, RemoteError) as exc:
            LOG.warning("scheduling %s failed: %s", order, exc)
            result = {"error": "No valid host was found. The scheduler did not answer."}
        if "error" in result:
            for uuid in order:
                await lifecycle.set_error(self.svc, uuid, result["error"], request_id=request_id,
                                          event=SCHEDULE_EVENT)
            return
        await self._dispatch(result["selections"], {r.uuid: r for r in rows}, request_id,
                             passwords, start)

    async def _dispatch(self, selections: list[dict[str, Any]], rows: dict[str, Instance],
                        request_id: str | None, passwords: dict[str, str], start: Any) -> None:
        """Record the chosen hosts (only for instances still waiting: a delete may have won)
        and cast the builds. `rows` are the instances as loaded before scheduling."""
        changes = instances.Changes()
        casts: list[tuple[str, dict[str, Any]]] = []
        gone: list[str] = []
        now = utcnow()
        async with self.svc.db.transaction() as session:
            uuids = [s["instance_uuid"] for s in selections]
            waiting = set((await session.scalars(select(Instance.uuid).where(
                Instance.uuid.in_(uuids), Instance.deleted.is_(False),
                Instance.task_state == states.SCHEDULING))).all())
            params = []
            events = []
            for sel in selections:
                inst = rows.get(sel["instance_uuid"])
                if inst is None or inst.uuid not in waiting:
                    gone.append(sel["instance_uuid"])
                    continue
                zone = inst.pinned_availability_zone or sel.get("availability_zone") \
                    or inst.availability_zone
                values = {"host": sel["host"], "node": sel["node"],
                          "node_uuid": sel["node_uuid"], "launched_on": sel["host"],
                          "task_state": states.NETWORKING, "availability_zone": zone}
                old = (inst.vm_state, inst.task_state)
                for key, value in values.items():
                    setattr(inst, key, value)
                params.append({"b_uuid": inst.uuid, "b_updated_at": now, **{
                    f"b_{k}": val for k, val in values.items()}})
                payload = instances.state_payload(inst)
                payload.update(old_state=old[0], old_task_state=old[1],
                               new_task_state=states.NETWORKING)
                changes.add("compute.instance.update", payload)
                events.append({"uuid": inst.uuid, "request_id": request_id,
                               "event": SCHEDULE_EVENT, "start": start})
                casts.append((sel["host"], instances.to_agent(inst)))
            if params:
                await session.execute(
                    update(TABLE).where(TABLE.c.uuid == bindparam("b_uuid")).values(
                        host=bindparam("b_host"), node=bindparam("b_node"),
                        node_uuid=bindparam("b_node_uuid"),
                        launched_on=bindparam("b_launched_on"),
                        task_state=bindparam("b_task_state"),
                        availability_zone=bindparam("b_availability_zone"),
                        updated_at=bindparam("b_updated_at")), params)
            await instances.record_events(session, events)
        if gone:
            await lifecycle.release_allocations(self.svc, gone)
        await changes.send(self.svc)
        bus = self.svc.cloud.bus
        for host, payload in casts:
            await bus.cast(rpc.agent(host), "build_and_run_instance", instance=payload,
                           admin_password=passwords.get(payload["uuid"]),
                           request_id=request_id)

    async def done(self, uuid: str, host: str, updates: dict[str, Any],
                   request_id: str | None, start: str | None) -> dict[str, Any]:
        """Agents report finished builds here; reports arriving together are written in one
        transaction (a thousand hosts finishing at once would otherwise queue on it)."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((uuid, host, updates, request_id, start, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="build-done-flush")
        return await fut

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                results = await self._done_many(batch)
            except Exception as exc:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (*_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def _done_many(self, batch: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        changes = instances.Changes()
        results: list[dict[str, Any]] = []
        finished: list[dict[str, Any]] = []
        now = utcnow()
        async with self.svc.db.transaction() as session:
            uuids = [item[0] for item in batch]
            rows = {r.uuid: r for r in (await session.execute(select(
                Instance.uuid, Instance.host, Instance.node, Instance.deleted,
                Instance.task_state, Instance.vm_state, Instance.display_name,
                Instance.project_id, Instance.user_id, Instance.availability_zone,
                Instance.image_ref, Instance.created_at, Instance.flavorid).where(
                Instance.uuid.in_(uuids)))).all()}
            params = []
            events = []
            for uuid, host, updates, request_id, start, _ in batch:
                row = rows.get(uuid)
                if row is None or row.deleted or row.host != host or \
                        row.task_state == states.DELETING or row.vm_state != states.BUILDING:
                    results.append({"ok": False})
                    continue
                launched = updates.get("launched_at")
                launched_at = parse_isotime(launched) if isinstance(launched, str) \
                    else launched or now
                params.append({"b_uuid": uuid, "b_vm": updates.get("vm_state", states.ACTIVE),
                               "b_power": updates.get("power_state", states.RUNNING),
                               "b_nw": updates.get("network_info") or [],
                               "b_launched": launched_at, "b_updated": now})
                payload = {"instance_id": uuid, "display_name": row.display_name,
                           "project_id": row.project_id, "user_id": row.user_id,
                           "host": row.host, "node": row.node,
                           "state": updates.get("vm_state", states.ACTIVE), "task_state": None,
                           "power_state": updates.get("power_state", states.RUNNING),
                           "availability_zone": row.availability_zone,
                           "flavor": row.flavorid, "image_ref": row.image_ref,
                           "launched_at": isotime(launched_at),
                           "created_at": isotime(row.created_at)}
                changes.add("compute.instance.update", {
                    **payload, "old_state": row.vm_state, "old_task_state": row.task_state,
                    "new_task_state": None})
                events.append({"uuid": uuid, "request_id": request_id, "event": BUILD_EVENT,
                               "host": host, "start": parse_isotime(start) if start else None})
                finished.append(payload)
                results.append({"ok": True})
            if params:
                await session.execute(
                    update(TABLE).where(TABLE.c.uuid == bindparam("b_uuid")).values(
                        vm_state=bindparam("b_vm"), task_state=None,
                        power_state=bindparam("b_power"), network_info=bindparam("b_nw"),
                        launched_at=bindparam("b_launched"),
                        updated_at=bindparam("b_updated")), params)
            await instances.record_events(session, events)
        if self.conductor.scheduler is not None:
            for _, host, *_ in batch:
                self.conductor.scheduler.hosts.failed_builds.pop(host, None)
        await changes.send(self.svc)
        for payload in finished:
            await self.svc.notify("compute.instance.create.end", payload)
        return results

    async def failed(self, uuid: str, host: str, reason: str, request_id: str | None,
                     reschedule: bool, details: str | None) -> None:
        await lifecycle.release_allocations(self.svc, [uuid])
        if self.conductor.scheduler is not None:
            counts = self.conductor.scheduler.hosts.failed_builds
            counts[host] = counts.get(host, 0) + 1
        max_attempts = self.svc.settings.max_attempts
        retry = False
        changes = instances.Changes()
        async with self.svc.db.transaction() as session:
            inst = (await session.scalars(select(Instance).where(
                Instance.uuid == uuid))).first()
            if inst is None or inst.deleted or inst.task_state == states.DELETING:
                return
            await instances.record_event(session, uuid, request_id, BUILD_EVENT, host=host,
                                         error=reason, details=reason)
            tried = [*(inst.retry_hosts or []), host]
            if reschedule and len(tried) < max_attempts:
                instances.apply(inst, {"retry_hosts": tried, "host": None, "node": None,
                                       "node_uuid": None, "task_state": states.SCHEDULING,
                                       "network_info": []}, changes)
                retry = True
        if retry:
            await changes.send(self.svc)
            LOG.info("rescheduling %s after a failed build on %s: %s", uuid, host, reason)
            await self.build([uuid], request_id, {})
            return
        message = reason
        if reschedule:
            message = ("Exceeded maximum number of retries. Exhausted all hosts available "
                       f"for retrying build failures for instance {uuid}.")
        await lifecycle.set_error(self.svc, uuid, message, details=details or reason,
                                  host=host)
