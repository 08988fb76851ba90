"""Inventories: how much of each resource class a provider has, and on what terms."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement import errors
from nimbus.placement.index import Index, Inv
from nimbus.placement.models import Allocation, Inventory
from nimbus.placement.providers import Provider, bump
from nimbus.placement.resource_classes import class_id
from nimbus.placement.schema import MAX_INT
from nimbus.placement.service import AfterCommit
from nimbus.web.errors import BadRequest, Conflict, NotFound

FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")
DEFAULTS: dict[str, Any] = {"reserved": 0, "min_unit": 1, "max_unit": MAX_INT,
                            "step_size": 1, "allocation_ratio": 1.0}


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    out = {**DEFAULTS, **{k: v for k, v in data.items() if k in FIELDS}}
    out["allocation_ratio"] = float(out["allocation_ratio"])
    return out


def render(row: Inventory | dict[str, Any]) -> dict[str, Any]:
    if isinstance(row, dict):
        return {k: row[k] for k in FIELDS}
    return {k: getattr(row, k) for k in FIELDS}


def check_capacity(rp: Provider, rc: str, data: dict[str, Any], reserved_can_be_total: bool
                   ) -> None:
    capacity = data["total"] - data["reserved"]
    if capacity < 0 or (capacity == 0 and not reserved_can_be_total):
        extra = "greater than or equal to" if reserved_can_be_total else "greater than"
        raise BadRequest(
            f"Unable to update inventory for resource provider {rp.uuid}: Invalid inventory "
            f"for '{rc}' on resource provider '{rp.uuid}'. The reserved value is {extra} "
            "total.")


async def list_rows(session: AsyncSession, index: Index, rp: Provider
                    ) -> dict[str, Inventory]:
    rows = (await session.scalars(select(Inventory).where(
        Inventory.resource_provider_id == rp.id))).all()
    return {index.rc_names.get(r.resource_class_id, str(r.resource_class_id)): r
            for r in rows}


async def _used_classes(session: AsyncSession, rp_id: int) -> dict[int, int]:
    rows = (await session.execute(
        select(Allocation.resource_class_id, func.sum(Allocation.used))
        .where(Allocation.resource_provider_id == rp_id)
        .group_by(Allocation.resource_class_id))).all()
    return {rc: int(total or 0) for rc, total in rows}


async def replace_all(session: AsyncSession, after: AfterCommit, index: Index, rp: Provider,
                      generation: int | None, wanted: dict[str, dict[str, Any]],
                      reserved_can_be_total: bool, *, in_use_message: str | None = None) -> int:
    """Set the provider's whole inventory; returns the new provider generation.

    generation None: the caller already holds the current one (DELETE all)."""
    if generation is not None and generation != rp.generation:
        raise errors.generation_conflict()
    by_id: dict[int, dict[str, Any]] = {}
    for rc, data in wanted.items():
        try:
            rc_id = class_id(index, rc)
        except NotFound as exc:
            raise BadRequest(f"Unknown resource class in inventory for resource provider "
                             f"{rp.uuid}: {exc.message}") from None
        check_capacity(rp, rc, data, reserved_can_be_total)
        by_id[rc_id] = data
    existing = {r.resource_class_id: r for r in (await session.scalars(select(Inventory).where(
        Inventory.resource_provider_id == rp.id))).all()}
    gone = set(existing) - set(by_id)
    if gone:
        used = await _used_classes(session, rp.id)
        busy = sorted(index.rc_names.get(rc, str(rc)) for rc in gone if used.get(rc))
        if busy:
            message = (f"Inventory for '{', '.join(busy)}' on resource provider '{rp.uuid}' "
                       "in use.")
            raise Conflict(in_use_message or f"update conflict: {message}",
                           code=errors.INVENTORY_INUSE)
        await session.execute(delete(Inventory).where(
            Inventory.resource_provider_id == rp.id,
            Inventory.resource_class_id.in_(sorted(gone))))
    added = []
    for rc_id, data in by_id.items():
        row = existing.get(rc_id)
        if row is None:
            added.append({"resource_provider_id": rp.id, "resource_class_id": rc_id, **data})
        elif any(getattr(row, k) != data[k] for k in FIELDS):
            await session.execute(update(Inventory).where(Inventory.id == row.id).values(**data))
    if added:  # one statement for all (the ORM's unit of work costs more than the insert)
        await session.execute(insert(Inventory), added)
    new_gen = await bump(session, rp.id, rp.generation)
    state = {rc_id: Inv(**{k: data[k] for k in FIELDS}) for rc_id, data in by_id.items()}
    after.append(lambda: index.set_inventories(rp.id, new_gen, state))
    return new_gen


async def current_map(session: AsyncSession, index: Index, rp: Provider
                      ) -> dict[str, dict[str, Any]]:
    return {rc: render(row) for rc, row in (await list_rows(session, index, rp)).items()}
