"""The conductor: runs builds and moves (asking the scheduler, casting to agents), and is
the agents' way to the database (they report through it; they never touch it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.bus import Server, Target
from nimbus.common.timeutils import isotime
from nimbus.compute import hosts as host_logic
from nimbus.compute import instances, lifecycle, rpc
from nimbus.compute.conductor.build import Builder
from nimbus.compute.models import Instance, Service

if TYPE_CHECKING:
    from nimbus.compute.scheduler import Scheduler
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)


class ConductorEndpoint:
    version = "1.0"

    def __init__(self, conductor: Conductor) -> None:
        self.c = conductor
        self.svc = conductor.svc

    # -- agents ---------------------------------------------------------------------------------
    async def register_host(self, context: dict[str, Any], host: str,
                            resources: dict[str, Any]) -> dict[str, Any]:
        async with self.svc.db.transaction() as session:
            service = await host_logic.register_service(session, host, host_logic.COMPUTE_BINARY,
                                                   rpc.AGENT_TOPIC)
            node = await host_logic.register_node(session, service, resources)
            result = {"node_uuid": node.uuid, "service_id": service.id,
                      "disabled": service.disabled}
        if self.c.scheduler is not None:
            self.c.scheduler.hosts.invalidate()
        return result

    async def heartbeat(self, context: dict[str, Any], hosts: list[str]) -> None:
        async with self.svc.db.transaction() as session:
            await host_logic.heartbeat(session, hosts, host_logic.COMPUTE_BINARY)

    async def instances_on_host(self, context: dict[str, Any], host: str) -> list[dict[str, Any]]:
        async with self.svc.db.session() as session:
            rows = (await session.scalars(select(Instance).where(
                Instance.host == host, Instance.deleted.is_(False)))).all()
            return [instances.to_agent(i) for i in rows]

    # -- builds ---------------------------------------------------------------------------------
    async def build_instances(self, context: dict[str, Any], instance_uuids: list[str],
                              request_id: str | None = None,
                              passwords: dict[str, str] | None = None) -> None:
        await self.c.builder.build(instance_uuids, request_id, passwords or {})

    async def build_done(self, context: dict[str, Any], uuid: str, host: str,
                         updates: dict[str, Any], request_id: str | None = None,
                         start: str | None = None) -> dict[str, Any]:
        return await self.c.builder.done(uuid, host, updates, request_id, start)

    async def build_failed(self, context: dict[str, Any], uuid: str, host: str, reason: str,
                           request_id: str | None = None, reschedule: bool = True,
                           details: str | None = None) -> None:
        await self.c.builder.failed(uuid, host, reason, request_id, reschedule, details)

    # -- everything else agents report ----------------------------------------------------------
    async def instance_update(self, context: dict[str, Any], uuid: str,
                              updates: dict[str, Any],
                              expect_task: list[str | None] | None = None,
                              event: dict[str, Any] | None = None,
                              fault: dict[str, Any] | None = None,
                              notify: list[str] | None = None) -> dict[str, Any]:
        return await self.c.instance_update(uuid, updates, expect_task, event, fault, notify)

    async def instance_destroyed(self, context: dict[str, Any], uuid: str,
                                 request_id: str | None = None) -> None:
        await lifecycle.finish_delete(self.svc, uuid, request_id, ports=False)

    async def moves(self, context: dict[str, Any], step: str, kwargs: dict[str, Any]) -> Any:
        """Move operations (resize, migrations, evacuate, shelve, unshelve) and the agents'
        reports on them."""
        if step.startswith("_") or not hasattr(self.c.moves, step):
            raise ValueError(f"no move step {step!r}")
        return await getattr(self.c.moves, step)(**kwargs)


class EventsEndpoint:
    """Server external events other services send on topic `compute`
    (network-vif-plugged and friends): routed to the agent of the server's host."""

    version = "1.0"

    def __init__(self, conductor: Conductor) -> None:
        self.c = conductor

    async def external_instance_event(self, context: dict[str, Any],
                                      events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await self.c.route_events(events)


class Conductor:
    def __init__(self, svc: ComputeService, scheduler: Scheduler | None) -> None:
        from nimbus.compute.conductor.moves import Moves

        self.svc = svc
        self.scheduler = scheduler
        self.builder = Builder(svc, self)
        self.moves = Moves(svc, self)
        self._heartbeat: asyncio.Task[None] | None = None

    async def serve(self) -> list[Server]:
        bus = self.svc.cloud.bus
        servers = [await bus.serve(rpc.CONDUCTOR, ConductorEndpoint(self)),
                   await bus.serve(Target(rpc.EVENTS_TOPIC), EventsEndpoint(self))]
        self._heartbeat = asyncio.create_task(self._beat(), name="conductor-heartbeat")
        return servers

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat
        await self.builder.stop()

    async def _beat(self) -> None:
        me = socket.gethostname()
        while True:
            await asyncio.sleep(self.svc.settings.report_interval)
            try:
                async with self.svc.db.transaction() as session:
                    for binary in ("nova-conductor", "nova-scheduler"):
                        await host_logic.heartbeat(session, [me], binary)
            except Exception:
                LOG.warning("conductor heartbeat failed", exc_info=True)

    async def instance_update(self, uuid: str, updates: dict[str, Any],
                              expect_task: list[str | None] | None,
                              event: dict[str, Any] | None, fault: dict[str, Any] | None,
                              notify: list[str] | None) -> dict[str, Any]:
        changes = instances.Changes()
        async with self.svc.db.transaction() as session:
            inst = (await session.scalars(select(Instance).where(
                Instance.uuid == uuid))).first()
            if inst is None or inst.deleted:
                return {"ok": False, "deleted": True}
            if expect_task is not None and inst.task_state not in expect_task:
                return {"ok": False, "deleted": False, "task_state": inst.task_state}
            clean = {k: v for k, v in updates.items() if k in instances.REPORTABLE}
            instances.apply(inst, clean, changes)
            if fault:
                instances.add_fault(session, inst, fault["message"], code=fault.get("code", 500),
                                    details=fault.get("details"), host=fault.get("host"))
            if event:
                from nimbus.common.timeutils import parse_isotime

                start = event.get("start")
                await instances.record_event(
                    session, uuid, event.get("request_id"), event["name"],
                    start=parse_isotime(start) if start else None, error=event.get("error"),
                    host=event.get("host"), details=event.get("details"))
            payload = instances.state_payload(inst)
        await changes.send(self.svc)
        for event_type in notify or []:
            await self.svc.notify(event_type, payload)
        return {"ok": True, "deleted": False}

    async def route_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        uuids = list({e.get("server_uuid") for e in events if e.get("server_uuid")})
        async with self.svc.db.session() as session:
            rows = {i.uuid: i for i in (await session.scalars(select(Instance).where(
                Instance.uuid.in_(uuids), Instance.deleted.is_(False)))).all()}
            host_up: dict[str, bool] = {}
            for svc_row in (await session.scalars(select(Service).where(
                    Service.host.in_([i.host for i in rows.values() if i.host]),
                    Service.binary == host_logic.COMPUTE_BINARY))).all():
                host_up[svc_row.host] = True
        results = []
        by_host: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            inst = rows.get(event.get("server_uuid", ""))
            out = dict(event)
            if inst is None:
                out.update(code=404, status="failed")
            elif not inst.host or inst.host not in host_up:
                out.update(code=422, status="failed")
            else:
                out.update(code=200, status=event.get("status", "completed"))
                by_host.setdefault(inst.host, []).append(out)
            results.append(out)
        for host, host_events in by_host.items():
            try:
                await self.svc.cloud.bus.cast(rpc.agent(host), "external_instance_event",
                                              events=host_events)
            except Exception:
                LOG.warning("could not forward events to %s", host, exc_info=True)
        return results

    @staticmethod
    def now() -> str:
        from nimbus.common.timeutils import utcnow

        return isotime(utcnow(), micro=True) or ""
