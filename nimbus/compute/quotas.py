"""Quotas as Nova counts them: limits from the project (or project and user), else the
`default` quota class, else the built-in defaults; usage counted from what exists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.compute.errors import QuotaExceeded
from nimbus.compute.models import (
    Instance,
    KeyPair,
    ProjectUserQuota,
    Quota,
    QuotaClass,
    ServerGroup,
    ServerGroupMember,
)

DEFAULTS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
    "fixed_ips": -1,
    "floating_ips": 10,
    "security_groups": 10,
    "security_group_rules": 20,
}
RESOURCES = tuple(DEFAULTS)
# Counted per user (keypairs belong to users), the rest per project.
USER_COUNTED = ("key_pairs",)
FILTERED_236 = ("fixed_ips", "floating_ips", "security_group_rules", "security_groups")
FILTERED_257 = (*FILTERED_236, "injected_files", "injected_file_content_bytes",
                "injected_file_path_bytes")
DEFAULT_CLASS = "default"


def filtered(version_at: Any) -> tuple[str, ...]:
    """Resources hidden at the request's microversion (version_at(minor) -> bool)."""
    if version_at(57):
        return FILTERED_257
    if version_at(36):
        return FILTERED_236
    return ()


async def class_limits(session: AsyncSession, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    limits = dict(DEFAULTS)
    for resource, limit in (await session.execute(select(
            QuotaClass.resource, QuotaClass.hard_limit).where(
            QuotaClass.class_name == class_name))).all():
        if resource in limits:
            limits[resource] = limit
    return limits


async def limits(session: AsyncSession, project_id: str,
                 user_id: str | None = None) -> dict[str, int]:
    """Limits in one query: the default class, then the project's, then the user's."""
    class_q = select(literal(0).label("rank"), QuotaClass.resource, QuotaClass.hard_limit).where(
        QuotaClass.class_name == DEFAULT_CLASS)
    project_q = select(literal(1).label("rank"), Quota.resource, Quota.hard_limit).where(
        Quota.project_id == project_id)
    parts = [class_q, project_q]
    if user_id:
        parts.append(select(literal(2).label("rank"), ProjectUserQuota.resource,
                            ProjectUserQuota.hard_limit).where(
            ProjectUserQuota.project_id == project_id, ProjectUserQuota.user_id == user_id))
    out = dict(DEFAULTS)
    rows = sorted((await session.execute(union_all(*parts))).all(), key=lambda r: r[0])
    for _, resource, limit in rows:
        if resource in out:
            out[resource] = limit
    return out


async def instance_usage(session: AsyncSession, project_id: str,
                         user_id: str | None = None) -> dict[str, int]:
    query = select(func.count(), func.coalesce(func.sum(Instance.vcpus), 0),
                   func.coalesce(func.sum(Instance.memory_mb), 0)).where(
        Instance.project_id == project_id, Instance.deleted.is_(False))
    if user_id:
        query = query.where(Instance.user_id == user_id)
    count, cores, ram = (await session.execute(query)).one()
    return {"instances": int(count), "cores": int(cores), "ram": int(ram)}


async def usage(session: AsyncSession, project_id: str,
                user_id: str | None = None) -> dict[str, int]:
    used = {name: 0 for name in RESOURCES}
    used.update(await instance_usage(session, project_id, user_id))
    group_query = select(func.count()).select_from(ServerGroup).where(
        ServerGroup.project_id == project_id)
    if user_id:
        group_query = group_query.where(ServerGroup.user_id == user_id)
        used["key_pairs"] = int(await session.scalar(select(func.count()).select_from(
            KeyPair).where(KeyPair.user_id == user_id)) or 0)
    used["server_groups"] = int(await session.scalar(group_query) or 0)
    return used


def over(limit: int, used: int, requested: int) -> bool:
    return limit >= 0 and used + requested > limit


async def enforce_instances(session: AsyncSession, project_id: str, user_id: str,
                            min_count: int, max_count: int, vcpus: int, memory_mb: int,
                            lim: dict[str, int] | None = None) -> int:
    """The number of instances to build (≤ max_count), or 403 with Nova's message."""
    if lim is None:
        lim = await limits(session, project_id, user_id)
    if all(lim[r] < 0 for r in ("instances", "cores", "ram")):
        return max_count
    used = await instance_usage(session, project_id)
    fits = max_count
    for resource, each in (("instances", 1), ("cores", vcpus), ("ram", memory_mb)):
        if lim[resource] >= 0 and each:
            fits = min(fits, max(lim[resource] - used[resource], 0) // each)
    if fits >= min_count:
        return fits
    for resource, each in (("instances", 1), ("cores", vcpus), ("ram", memory_mb)):
        if over(lim[resource], used[resource], each * min_count):
            raise QuotaExceeded(
                f"Quota exceeded for {resource}: Requested {each * min_count}, but already "
                f"used {used[resource]} of {lim[resource]} {resource}")
    raise QuotaExceeded("Quota exceeded for instances")


async def enforce_delta(session: AsyncSession, project_id: str, user_id: str,
                        vcpus: int, memory_mb: int) -> None:
    """A resize growing an instance by this much must fit."""
    lim = await limits(session, project_id, user_id)
    used = await instance_usage(session, project_id)
    for resource, delta in (("cores", vcpus), ("ram", memory_mb)):
        if delta > 0 and over(lim[resource], used[resource], delta):
            raise QuotaExceeded(
                f"Quota exceeded for {resource}: Requested {delta}, but already used "
                f"{used[resource]} of {lim[resource]} {resource}")


async def check_metadata(session: AsyncSession, project_id: str, count: int) -> None:
    lim = (await limits(session, project_id))["metadata_items"]
    if lim >= 0 and count > lim:
        raise QuotaExceeded(f"Maximum number of metadata items exceeds {lim}")


async def check_server_group_members(session: AsyncSession, group: ServerGroup,
                                     user_id: str, adding: int) -> None:
    lim = (await limits(session, group.project_id, user_id))["server_group_members"]
    if lim < 0:
        return
    members = int(await session.scalar(select(func.count()).select_from(
        ServerGroupMember).where(ServerGroupMember.group_id == group.id)) or 0)
    if members + adding > lim:
        raise QuotaExceeded("Quota exceeded, too many servers in group")


async def set_limits(session: AsyncSession, project_id: str, user_id: str | None,
                     values: dict[str, int]) -> None:
    for resource, value in values.items():
        if user_id:
            row: Any = await session.get(ProjectUserQuota, (project_id, user_id, resource))
            if row is None:
                session.add(ProjectUserQuota(project_id=project_id, user_id=user_id,
                                             resource=resource, hard_limit=value))
            else:
                row.hard_limit = value
        else:
            row = await session.get(Quota, (project_id, resource))
            if row is None:
                session.add(Quota(project_id=project_id, resource=resource, hard_limit=value))
            else:
                row.hard_limit = value


async def set_class_limits(session: AsyncSession, class_name: str,
                           values: dict[str, int]) -> None:
    for resource, value in values.items():
        row = await session.get(QuotaClass, (class_name, resource))
        if row is None:
            session.add(QuotaClass(class_name=class_name, resource=resource, hard_limit=value))
        else:
            row.hard_limit = value


async def reset(session: AsyncSession, project_id: str, user_id: str | None) -> None:
    if user_id:
        await session.execute(delete(ProjectUserQuota).where(
            ProjectUserQuota.project_id == project_id, ProjectUserQuota.user_id == user_id))
    else:
        await session.execute(delete(Quota).where(Quota.project_id == project_id))
        await session.execute(delete(ProjectUserQuota).where(
            ProjectUserQuota.project_id == project_id))
