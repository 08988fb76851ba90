"""Usages: per provider, and per project (and user, and consumer type)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement.index import Index
from nimbus.placement.models import Allocation, Consumer, Inventory

UNKNOWN = "unknown"


async def of_provider(session: AsyncSession, index: Index, rp_id: int) -> dict[str, int]:
    """Every class the provider has inventory of (0 when unused), as upstream answers."""
    out = {index.rc_names.get(rc, str(rc)): 0 for rc in (await session.scalars(
        select(Inventory.resource_class_id).where(
            Inventory.resource_provider_id == rp_id))).all()}
    for rc_id, total in (await session.execute(
            select(Allocation.resource_class_id, func.sum(Allocation.used))
            .where(Allocation.resource_provider_id == rp_id)
            .group_by(Allocation.resource_class_id))).all():
        out[index.rc_names.get(rc_id, str(rc_id))] = int(total or 0)
    return out


async def of_project(session: AsyncSession, index: Index, project_id: str,
                     user_id: str | None, consumer_type: str | None,
                     by_type: bool) -> dict[str, Any]:
    query = (select(Consumer.consumer_type, Allocation.resource_class_id,
                    func.sum(Allocation.used), func.count(func.distinct(Consumer.id)))
             .join(Consumer, Consumer.uuid == Allocation.consumer_id)
             .where(Consumer.project_id == project_id)
             .group_by(Consumer.consumer_type, Allocation.resource_class_id))
    if user_id is not None:
        query = query.where(Consumer.user_id == user_id)
    if consumer_type not in (None, "all"):
        if consumer_type == UNKNOWN:
            query = query.where(Consumer.consumer_type.is_(None))
        else:
            query = query.where(Consumer.consumer_type == consumer_type)
    rows = (await session.execute(query)).all()
    if not by_type:
        flat: dict[str, int] = {}
        for _, rc_id, total, _ in rows:
            name = index.rc_names.get(rc_id, str(rc_id))
            flat[name] = flat.get(name, 0) + int(total or 0)
        return flat
    grouped: dict[str, dict[str, int]] = {}
    counts = await _consumer_counts(session, project_id, user_id, consumer_type)
    for ctype, rc_id, total, _ in rows:
        key = "all" if consumer_type == "all" else (ctype or UNKNOWN)
        entry = grouped.setdefault(key, {})
        name = index.rc_names.get(rc_id, str(rc_id))
        entry[name] = entry.get(name, 0) + int(total or 0)
    for key, entry in grouped.items():
        entry["consumer_count"] = counts.get(key, 0)
    return grouped


async def _consumer_counts(session: AsyncSession, project_id: str, user_id: str | None,
                           consumer_type: str | None) -> dict[str, int]:
    query = (select(Consumer.consumer_type, func.count(Consumer.id))
             .where(Consumer.project_id == project_id).group_by(Consumer.consumer_type))
    if user_id is not None:
        query = query.where(Consumer.user_id == user_id)
    out: dict[str, int] = {}
    for ctype, count in (await session.execute(query)).all():
        key = "all" if consumer_type == "all" else (ctype or UNKNOWN)
        out[key] = out.get(key, 0) + int(count)
    return out
