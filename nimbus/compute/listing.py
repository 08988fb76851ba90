"""GET /servers without the HTTP: Nova's filters (exact ones in SQL, regular expressions in
Python), multi-key sorting, and marker paging."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only, raiseload

from nimbus.compute import states
from nimbus.compute.models import Instance, InstanceTag
from nimbus.web.errors import BadRequest

SORT_COLUMNS: dict[str, Any] = {
    "access_ip_v4": Instance.access_ip_v4, "access_ip_v6": Instance.access_ip_v6,
    "auto_disk_config": Instance.auto_disk_config,
    "availability_zone": Instance.availability_zone, "config_drive": Instance.config_drive,
    "created_at": Instance.created_at, "display_description": Instance.display_description,
    "display_name": Instance.display_name, "host": Instance.host,
    "hostname": Instance.hostname, "image_ref": Instance.image_ref,
    "instance_type_id": Instance.flavorid, "kernel_id": Instance.kernel_id,
    "key_name": Instance.key_name, "launch_index": Instance.launch_index,
    "launched_at": Instance.launched_at, "locked_by": Instance.locked_by,
    "node": Instance.node, "power_state": Instance.power_state,
    "progress": Instance.progress, "project_id": Instance.project_id,
    "ramdisk_id": Instance.ramdisk_id, "root_device_name": Instance.root_device_name,
    "task_state": Instance.task_state, "terminated_at": Instance.terminated_at,
    "updated_at": Instance.updated_at, "user_id": Instance.user_id, "uuid": Instance.uuid,
    "vm_state": Instance.vm_state, "locked": Instance.locked,
}
# Filters Nova matches exactly (the rest are regular expressions).
EXACT = {"project_id": Instance.project_id, "user_id": Instance.user_id,
         "uuid": Instance.uuid, "host": Instance.host, "image_ref": Instance.image_ref,
         "image": Instance.image_ref, "launch_index": Instance.launch_index,
         "flavor": Instance.flavorid, "reservation_id": Instance.reservation_id}
REGEX = {"name": "display_name", "display_name": "display_name",
         "description": "display_description", "display_description": "display_description",
         "hostname": "hostname", "key_name": "key_name", "node": "node",
         "availability_zone": "availability_zone", "kernel_id": "kernel_id",
         "ramdisk_id": "ramdisk_id", "root_device_name": "root_device_name",
         "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6",
         "locked_by": "locked_by"}


@dataclass
class Query:
    project_id: str | None = None
    exact: dict[str, list[str]] = field(default_factory=dict)
    regex: dict[str, str] = field(default_factory=dict)
    vm_states: list[str] | None = None
    task_states: list[str | None] | None = None
    status_pairs: list[tuple[str, str | None]] | None = None
    power_state: list[int] | None = None
    deleted: bool | None = False
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    ip: str | None = None
    ip6: str | None = None
    locked: bool | None = None
    config_drive: str | None = None
    progress: int | None = None
    created_at: datetime | None = None
    launched_at: datetime | None = None
    terminated_at: datetime | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    limit: int = 1000
    marker: str | None = None


def _where(q: Query) -> list[Any]:
    conds: list[Any] = []
    if q.project_id is not None:
        conds.append(Instance.project_id == q.project_id)
    if q.deleted is not None:
        conds.append(Instance.deleted.is_(q.deleted))
    for key, values in q.exact.items():
        column = EXACT[key]
        if key == "launch_index":
            try:
                conds.append(column.in_([int(v) for v in values]))
            except ValueError:
                conds.append(False)
        else:
            conds.append(column.in_(values))
    if q.status_pairs is not None:
        options = []
        for vm_state, task in q.status_pairs:
            if task is None:
                options.append(Instance.vm_state == vm_state)
            else:
                options.append(and_(Instance.vm_state == vm_state, Instance.task_state == task))
        conds.append(or_(*options) if options else False)
    if q.vm_states is not None:
        conds.append(Instance.vm_state.in_(q.vm_states))
    if q.task_states is not None:
        named = [t for t in q.task_states if t is not None]
        cond: Any = Instance.task_state.in_(named)
        if None in q.task_states:
            cond = or_(cond, Instance.task_state.is_(None))
        conds.append(cond)
    if q.power_state is not None:
        conds.append(Instance.power_state.in_(q.power_state))
    if q.changes_since is not None:
        conds.append(Instance.updated_at >= q.changes_since)
    if q.changes_before is not None:
        conds.append(Instance.updated_at <= q.changes_before)
    if q.locked is not None:
        conds.append(Instance.locked.is_(q.locked))
    if q.progress is not None:
        conds.append(Instance.progress == q.progress)
    for attr in ("created_at", "launched_at", "terminated_at"):
        value = getattr(q, attr)
        if value is not None:
            conds.append(getattr(Instance, attr) >= value)
    if q.config_drive is not None:
        conds.append(Instance.config_drive == ("True" if q.config_drive.lower() in (
            "true", "1", "yes", "on") else ""))
    for tag in q.tags:
        conds.append(Instance.uuid.in_(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag == tag)))
    if q.tags_any:
        conds.append(Instance.uuid.in_(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag.in_(q.tags_any))))
    if q.not_tags:
        tagged_all = and_(*[Instance.uuid.in_(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag == tag)) for tag in q.not_tags])
        conds.append(not_(tagged_all))
    if q.not_tags_any:
        conds.append(Instance.uuid.not_in(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag.in_(q.not_tags_any))))
    return conds


def _python_filters(q: Query) -> list[Any]:
    checks: list[Any] = []
    for key, pattern in q.regex.items():
        try:
            compiled = re.compile(pattern)
        except re.error:
            raise BadRequest(f"Invalid filter field: {key}.") from None
        attr = REGEX[key]
        checks.append(lambda i, a=attr, c=compiled: bool(c.search(str(getattr(i, a) or ""))))
    for ip_pattern, version in ((q.ip, 4), (q.ip6, 6)):
        if ip_pattern:
            try:
                compiled = re.compile(ip_pattern)
            except re.error:
                raise BadRequest("Invalid filter field: ip.") from None
            checks.append(lambda i, c=compiled, v=version: any(
                c.search(ip["ip_address"]) for vif in (i.network_info or [])
                for ip in vif.get("fixed_ips", []) if ip.get("version", 4) == v))
    return checks


def _order(q: Query) -> list[Any]:
    order = []
    for key, direction in q.sort:
        column = SORT_COLUMNS[key]
        order.append(column.desc() if direction == "desc" else column.asc())
    if not any(k in ("uuid",) for k, _ in q.sort):
        last_dir = q.sort[-1][1] if q.sort else "desc"
        order.append(Instance.id.desc() if last_dir == "desc" else Instance.id.asc())
    return order


# What the brief list view (id, name, links) reads; nothing else is loaded for it.
BRIEF = (load_only(Instance.uuid, Instance.display_name, raiseload=True), raiseload("*"))


async def run(session: AsyncSession, q: Query, *, brief: bool = False) -> list[Instance]:
    """The page of instances `q` asks for; `brief`: only uuid and display_name are read
    (of a page's rows the brief view needs nothing else; other attributes raise)."""
    conds = _where(q)
    checks = _python_filters(q)
    order = _order(q)
    if not checks and q.marker is None:
        query = select(Instance).where(*conds).order_by(*order).limit(q.limit)
        if brief:
            query = query.options(*BRIEF)
        return list((await session.scalars(query)).all())
    if checks:
        rows = list((await session.scalars(select(Instance).where(*conds).order_by(
            *order))).all())
        rows = [r for r in rows if all(check(r) for check in checks)]
        ids = [r.uuid for r in rows]
        by_uuid = {r.uuid: r for r in rows}
    else:
        ids = list((await session.scalars(select(Instance.uuid).where(*conds).order_by(
            *order))).all())
        by_uuid = {}
    if q.marker is not None:
        try:
            start = ids.index(q.marker) + 1
        except ValueError:
            exists = await session.scalar(select(Instance.id).where(
                Instance.uuid == q.marker))
            if exists is None:
                raise BadRequest(f"marker [{q.marker}] not found") from None
            start = len(ids)
        ids = ids[start:]
    page = ids[:q.limit]
    if by_uuid:
        return [by_uuid[u] for u in page]
    if not page:
        return []
    query = select(Instance).where(Instance.uuid.in_(page))
    if brief:
        query = query.options(*BRIEF)
    loaded = {i.uuid: i for i in (await session.scalars(query)).all()}
    return [loaded[u] for u in page if u in loaded]


def status_pairs(values: list[str]) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for value in values:
        pairs += states.states_for_status(value)
    return pairs
