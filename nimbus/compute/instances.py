"""Instances in the database: lookups, state changes (each announced on the bus), faults,
instance actions and events, and the dict agents and drivers get."""

from __future__ import annotations

import traceback as tb
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import isotime, utcnow
from nimbus.compute import states
from nimbus.compute.errors import server_not_found
from nimbus.compute.models import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceTag,
)

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

# Fields an agent may report back through the conductor.
REPORTABLE = {
    "vm_state", "task_state", "power_state", "host", "node", "node_uuid", "launched_on",
    "launched_at", "terminated_at", "network_info", "progress", "root_device_name",
    "availability_zone", "flavor", "old_flavor", "new_flavor", "memory_mb", "vcpus",
    "root_gb", "ephemeral_gb", "image_ref", "image_meta", "system_metadata", "key_name",
    "key_data", "user_data", "metadata_", "security_groups", "locked", "display_name",
    "hostname", "access_ip_v4", "access_ip_v6", "display_description", "retry_hosts",
    "block_device_mapping", "trusted_certs", "pinned_availability_zone",
}
DATETIME_FIELDS = {"launched_at", "terminated_at"}


def instance_name(inst: Instance) -> str:
    return f"instance-{inst.id:08x}"


async def get(session: AsyncSession, uuid: str, ctx: RequestContext | None = None, *,
              include_deleted: bool = False, for_update: bool = False) -> Instance:
    query = select(Instance).where(Instance.uuid == uuid)
    if not include_deleted:
        query = query.where(Instance.deleted.is_(False))
    if for_update and session.bind is not None and session.bind.dialect.name != "sqlite":
        query = query.with_for_update()
    inst = (await session.scalars(query)).first()
    if inst is None or (ctx is not None and not ctx.is_admin
                        and inst.project_id != ctx.project_id):
        raise server_not_found(uuid)
    return inst


async def tags_of(session: AsyncSession, uuids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {u: [] for u in uuids}
    if uuids:
        for uuid, tag in (await session.execute(select(InstanceTag.instance_uuid, InstanceTag.tag)
                                                .where(InstanceTag.instance_uuid.in_(uuids))
                                                .order_by(InstanceTag.tag))).all():
            out[uuid].append(tag)
    return out


async def latest_faults(session: AsyncSession, uuids: list[str]) -> dict[str, InstanceFault]:
    out: dict[str, InstanceFault] = {}
    if uuids:
        rows = (await session.scalars(select(InstanceFault).where(
            InstanceFault.instance_uuid.in_(uuids)).order_by(InstanceFault.id))).all()
        for row in rows:
            out[row.instance_uuid] = row
    return out


def state_payload(inst: Instance) -> dict[str, Any]:
    """What notifications say about an instance."""
    return {"instance_id": inst.uuid, "display_name": inst.display_name,
            "project_id": inst.project_id, "user_id": inst.user_id,
            "host": inst.host, "node": inst.node, "state": inst.vm_state,
            "task_state": inst.task_state, "power_state": inst.power_state,
            "availability_zone": inst.availability_zone,
            "flavor": (inst.flavor or {}).get("name"),
            "image_ref": inst.image_ref, "launched_at": isotime(inst.launched_at),
            "created_at": isotime(inst.created_at)}


class Changes:
    """State changes made in a transaction, announced once it commits."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def add(self, event_type: str, payload: dict[str, Any]) -> None:
        self.events.append((event_type, payload))

    async def send(self, svc: ComputeService) -> None:
        for event_type, payload in self.events:
            await svc.notify(event_type, payload)
        self.events.clear()


def apply(inst: Instance, updates: dict[str, Any], changes: Changes | None = None) -> None:
    """Set fields; a vm_state or task_state change becomes compute.instance.update."""
    old_state, old_task = inst.vm_state, inst.task_state
    for key, value in updates.items():
        if key in DATETIME_FIELDS and isinstance(value, str):
            from nimbus.common.timeutils import parse_isotime

            value = parse_isotime(value)
        setattr(inst, key, value)
    inst.updated_at = utcnow()
    if changes is not None and (old_state, old_task) != (inst.vm_state, inst.task_state):
        payload = state_payload(inst)
        payload.update(old_state=old_state, old_task_state=old_task,
                       new_task_state=inst.task_state)
        changes.add("compute.instance.update", payload)


async def set_state_if(session: AsyncSession, uuid: str, *, expect_vm: list[str] | None,
                       expect_task: list[str | None] | None, values: dict[str, Any]) -> bool:
    """Atomically move an instance whose states are as expected (races lose cleanly)."""
    conds = [Instance.uuid == uuid, Instance.deleted.is_(False)]
    if expect_vm is not None:
        conds.append(Instance.vm_state.in_(expect_vm))
    if expect_task is not None:
        named = [t for t in expect_task if t is not None]
        if None in expect_task:
            conds.append(Instance.task_state.is_(None) | Instance.task_state.in_(named)
                         if named else Instance.task_state.is_(None))
        else:
            conds.append(Instance.task_state.in_(named))
    result = await session.execute(update(Instance).where(*conds).values(
        updated_at=utcnow(), **values))
    return bool(getattr(result, "rowcount", 0))


def add_fault(session: AsyncSession, inst: Instance, message: str, *, code: int = 500,
              details: str | None = None, host: str | None = None) -> None:
    session.add(InstanceFault(instance_uuid=inst.uuid, code=code, message=message[:255],
                              details=details, host=host or inst.host, created_at=utcnow()))


def start_action(session: AsyncSession, inst: Instance, action: str,
                 ctx: RequestContext) -> None:
    now = utcnow()
    session.add(InstanceAction(action=action, instance_uuid=inst.uuid,
                               request_id=ctx.global_request_id or ctx.request_id or "",
                               user_id=ctx.user_id, project_id=ctx.project_id,
                               start_time=now, created_at=now, updated_at=now))


async def record_event(session: AsyncSession, uuid: str, request_id: str | None, event: str,
                       *, start: datetime | None = None, error: str | None = None,
                       host: str | None = None, details: str | None = None,
                       finish: bool = True) -> None:
    """An event of the instance's action for `request_id` (else its latest action)."""
    query = select(InstanceAction).where(InstanceAction.instance_uuid == uuid)
    if request_id:
        query = query.where(InstanceAction.request_id == request_id)
    action = (await session.scalars(query.order_by(InstanceAction.id.desc()).limit(1))).first()
    if action is None:
        return
    now = utcnow()
    session.add(InstanceActionEvent(
        action_id=action.id, event=event, start_time=start or now,
        finish_time=now if finish else None, result=("Error" if error else "Success")
        if finish else None, traceback=error, host=host, details=details))
    action.updated_at = now
    if error and not action.message:
        action.message = "Error"
    if finish:
        action.finish_time = now


async def record_events(session: AsyncSession, items: list[dict[str, Any]]) -> None:
    """Many events at once (one query for their actions): items carry uuid, request_id,
    event, and optionally start, error, host, details."""
    if not items:
        return
    uuids = list({i["uuid"] for i in items})
    actions: dict[tuple[str, str], InstanceAction] = {}
    latest: dict[str, InstanceAction] = {}
    for row in (await session.scalars(select(InstanceAction).where(
            InstanceAction.instance_uuid.in_(uuids)).order_by(InstanceAction.id))).all():
        actions[(row.instance_uuid, row.request_id)] = row
        latest[row.instance_uuid] = row
    now = utcnow()
    for item in items:
        action = actions.get((item["uuid"], item.get("request_id") or "")) \
            or latest.get(item["uuid"])
        if action is None:
            continue
        error = item.get("error")
        session.add(InstanceActionEvent(
            action_id=action.id, event=item["event"], start_time=item.get("start") or now,
            finish_time=now, result="Error" if error else "Success", traceback=error,
            host=item.get("host"), details=item.get("details")))
        action.updated_at = now
        action.finish_time = now
        if error and not action.message:
            action.message = "Error"


def error_text(exc: BaseException) -> str:
    return "".join(tb.format_exception_only(type(exc), exc)).strip()


def to_agent(inst: Instance) -> dict[str, Any]:
    """The instance as agents and drivers see it."""
    return {
        "uuid": inst.uuid, "id": inst.id, "name": instance_name(inst),
        "display_name": inst.display_name, "hostname": inst.hostname,
        "project_id": inst.project_id, "user_id": inst.user_id,
        "flavor": inst.flavor, "old_flavor": inst.old_flavor, "new_flavor": inst.new_flavor,
        "image_ref": inst.image_ref, "image_meta": inst.image_meta,
        "key_name": inst.key_name, "key_data": inst.key_data, "user_data": inst.user_data,
        "metadata": inst.metadata_ or {}, "availability_zone": inst.availability_zone,
        "host": inst.host, "node": inst.node, "node_uuid": inst.node_uuid,
        "requested_networks": inst.requested_networks,
        "security_groups": inst.security_groups or [],
        "network_info": inst.network_info or [], "vm_state": inst.vm_state,
        "task_state": inst.task_state, "power_state": inst.power_state,
        "block_device_mapping": inst.block_device_mapping or [],
        "config_drive": inst.config_drive, "launched_at": isotime(inst.launched_at),
        "system_metadata": inst.system_metadata or {},
    }


def is_volume_backed(inst: Instance) -> bool:
    return not inst.image_ref and any(
        b.get("boot_index") in (0, "0") and b.get("destination_type") == "volume"
        for b in inst.block_device_mapping or [])


TERMINAL_DELETE = (states.DELETED, states.SOFT_DELETED)
