"""Builds: schedule, record the chosen hosts, cast to their agents; then take the agents'
answers (ACTIVE, or a failure: another host while attempts remain, else ERROR)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.bus import BusTimeout, RemoteError
from nimbus.common.timeutils import parse_isotime, utcnow
from nimbus.compute import instances, lifecycle, rpc, states
from nimbus.compute.models import Instance

if TYPE_CHECKING:
    from nimbus.compute.conductor import Conductor
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)
SCHEDULE_EVENT = "conductor_schedule_and_build_instances"
BUILD_EVENT = "compute__do_build_and_run_instance"
BATCH = 500


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
        await self._dispatch(result["selections"], request_id, passwords, start)

    async def _dispatch(self, selections: list[dict[str, Any]], request_id: str | None,
                        passwords: dict[str, str], start: Any) -> None:
        changes = instances.Changes()
        casts: list[tuple[str, dict[str, Any]]] = []
        gone: list[str] = []
        async with self.svc.db.transaction() as session:
            uuids = [s["instance_uuid"] for s in selections]
            rows = {i.uuid: i for i in (await session.scalars(select(Instance).where(
                Instance.uuid.in_(uuids)))).all()}
            events = []
            for sel in selections:
                inst = rows.get(sel["instance_uuid"])
                if inst is None or inst.deleted or inst.task_state != states.SCHEDULING:
                    gone.append(sel["instance_uuid"])
                    continue
                instances.apply(inst, {
                    "host": sel["host"], "node": sel["node"], "node_uuid": sel["node_uuid"],
                    "launched_on": sel["host"], "task_state": states.NETWORKING,
                    "availability_zone": inst.pinned_availability_zone
                    or sel.get("availability_zone") or inst.availability_zone}, changes)
                events.append({"uuid": inst.uuid, "request_id": request_id,
                               "event": SCHEDULE_EVENT, "start": start})
                casts.append((sel["host"], instances.to_agent(inst)))
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
        async with self.svc.db.transaction() as session:
            uuids = [item[0] for item in batch]
            rows = {i.uuid: i for i in (await session.scalars(select(Instance).where(
                Instance.uuid.in_(uuids)))).all()}
            events = []
            for uuid, host, updates, request_id, start, _ in batch:
                inst = rows.get(uuid)
                if inst is None or inst.deleted or inst.host != host or \
                        inst.task_state == states.DELETING or inst.vm_state != states.BUILDING:
                    results.append({"ok": False})
                    continue
                clean = {k: v for k, v in updates.items() if k in instances.REPORTABLE}
                clean.setdefault("launched_at", utcnow())
                instances.apply(inst, clean, changes)
                events.append({"uuid": uuid, "request_id": request_id, "event": BUILD_EVENT,
                               "host": host, "start": parse_isotime(start) if start else None})
                finished.append(instances.state_payload(inst))
                results.append({"ok": True})
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
