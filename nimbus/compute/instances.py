"""Instances in the database: lookups, state changes (each announced on the bus), faults,
instance actions and events, and the dict agents and drivers get."""

from __future__ import annotations

import traceback as tb
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, literal_column, select, union_all, update
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
    ServerGroup,
    ServerGroupMember,
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


# Statements of the hottest reads, built once: building a statement costs more CPU than a
# round trip; executing a prebuilt one only binds its parameters.
_LIVE = select(Instance).where(Instance.uuid == bindparam("uuid"), Instance.deleted.is_(False))
_ANY = select(Instance).where(Instance.uuid == bindparam("uuid"))


def _tags_and_groups(where_tag: Any, where_member: Any, tags: bool, groups: bool) -> Any:
    """One SELECT (kind 't' tag / 'g' server group uuid, instance uuid, value) for both."""
    parts = []
    if tags:
        parts.append(select(literal_column("'t'", String).label("kind"),
                            InstanceTag.instance_uuid.label("uuid"),
                            InstanceTag.tag.label("value")).where(where_tag))
    if groups:
        parts.append(select(literal_column("'g'", String).label("kind"),
                            ServerGroupMember.instance_uuid.label("uuid"),
                            ServerGroup.uuid.label("value")).join(
            ServerGroup, ServerGroup.id == ServerGroupMember.group_id).where(where_member))
    extra = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    return extra


def _extras_of_many(tags: bool, groups: bool) -> Any:
    uuids: Any = bindparam("uuids", expanding=True)
    extra = _tags_and_groups(InstanceTag.instance_uuid.in_(uuids),
                             ServerGroupMember.instance_uuid.in_(uuids), tags, groups)
    return select(extra).order_by(extra.c.kind, extra.c.value)


def _live_with_extras(tags: bool, groups: bool) -> Any:
    uuid: Any = bindparam("uuid")
    extra = _tags_and_groups(InstanceTag.instance_uuid == uuid,
                             ServerGroupMember.instance_uuid == uuid, tags, groups)
    return select(Instance, extra.c.kind, extra.c.value).outerjoin(
        extra, extra.c.uuid == Instance.uuid).where(
        Instance.uuid == uuid, Instance.deleted.is_(False)).order_by(
        extra.c.kind, extra.c.value)


_KINDS = ((True, False), (False, True), (True, True))
_EXTRAS_OF_MANY = {kinds: _extras_of_many(*kinds) for kinds in _KINDS}
_LIVE_WITH_EXTRAS = {kinds: _live_with_extras(*kinds) for kinds in _KINDS}


async def get(session: AsyncSession, uuid: str, ctx: RequestContext | None = None, *,
              include_deleted: bool = False, for_update: bool = False) -> Instance:
    query = _ANY if include_deleted else _LIVE
    if for_update and session.bind is not None and session.bind.dialect.name != "sqlite":
        query = query.with_for_update()
    inst = (await session.scalars(query, {"uuid": uuid})).first()
    if inst is None or (ctx is not None and not ctx.is_admin
                        and inst.project_id != ctx.project_id):
        raise server_not_found(uuid)
    return inst


class Extras:
    """Tags (2.26+) and server groups (2.71+) of instances, None where not asked."""

    def __init__(self, uuids: list[str], tags: bool, groups: bool) -> None:
        self.tags: dict[str, list[str]] | None = {u: [] for u in uuids} if tags else None
        self.groups: dict[str, list[str]] | None = {u: [] for u in uuids} if groups else None

    def add(self, kind: str | None, uuid: str, value: str | None) -> None:
        found = self.tags if kind == "t" else self.groups if kind == "g" else None
        if found is not None and value is not None:
            found[uuid].append(value)


async def tags_and_groups(session: AsyncSession, uuids: list[str], *, tags: bool,
                          groups: bool) -> Extras:
    """Both in one round trip (tags in the database's order of tag)."""
    out = Extras(uuids, tags, groups)
    if uuids and (tags or groups):
        for kind, uuid, value in (await session.execute(_EXTRAS_OF_MANY[(tags, groups)],
                                                        {"uuids": uuids})).all():
            out.add(kind, uuid, value)
    return out


async def get_with_extras(session: AsyncSession, uuid: str, ctx: RequestContext | None, *,
                          tags: bool, groups: bool) -> tuple[Instance, Extras]:
    """get() and tags_and_groups() of one instance in one round trip."""
    if not (tags or groups):
        return await get(session, uuid, ctx), Extras([uuid], False, False)
    rows = (await session.execute(_LIVE_WITH_EXTRAS[(tags, groups)], {"uuid": uuid})).all()
    inst = rows[0][0] if rows else None
    if inst is None or (ctx is not None and not ctx.is_admin
                        and inst.project_id != ctx.project_id):
        raise server_not_found(uuid)
    out = Extras([uuid], tags, groups)
    for _, kind, value in rows:
        out.add(kind, uuid, value)
    return inst, out


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


def action_row(uuid: str, action: str, ctx: RequestContext, now: datetime) -> dict[str, Any]:
    """The columns of a new instance action (for bulk inserts)."""
    return {"action": action, "instance_uuid": uuid,
            "request_id": ctx.global_request_id or ctx.request_id or "",
            "user_id": ctx.user_id, "project_id": ctx.project_id,
            "start_time": now, "created_at": now, "updated_at": now}


def start_action(session: AsyncSession, inst: Instance, action: str,
                 ctx: RequestContext) -> None:
    session.add(InstanceAction(**action_row(inst.uuid, action, ctx, utcnow())))


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
