"""Resource classes: the standard ones (seeded, immutable) and CUSTOM_* ones."""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement.index import Index
from nimbus.placement.models import Allocation, Inventory, ResourceClass
from nimbus.placement.service import AfterCommit
from nimbus.placement.standard import RESOURCE_CLASSES
from nimbus.web.errors import BadRequest, Conflict, NotFound

STANDARD = frozenset(RESOURCE_CLASSES)


def class_id(index: Index, name: str) -> int:
    rc_id = index.rc_ids.get(name)
    if rc_id is None:
        raise NotFound(f"No such resource class {name}.")
    return rc_id


async def list_names(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(ResourceClass.name)
                                       .order_by(ResourceClass.id))).all())


async def get(session: AsyncSession, name: str) -> ResourceClass:
    row = await session.scalar(select(ResourceClass).where(ResourceClass.name == name))
    if row is None:
        raise NotFound(f"No resource class with name {name} found")
    return row


async def create(session: AsyncSession, after: AfterCommit, index: Index, name: str,
                 *, exist_ok: bool = False) -> bool:
    """True when created; False when it existed and exist_ok."""
    if await session.scalar(select(ResourceClass.id).where(ResourceClass.name == name)):
        if exist_ok:
            return False
        raise Conflict(f"Conflicting resource class already exists: {name}",
                       code="placement.duplicate_name")
    row = ResourceClass(name=name)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflicting resource class already exists: {name}",
                       code="placement.duplicate_name") from None
    rc_id = row.id
    after.append(lambda: index.add_class(rc_id, name))
    return True


async def rename(session: AsyncSession, after: AfterCommit, index: Index, old: str,
                 new: str) -> None:
    if old in STANDARD:
        raise BadRequest(f"Cannot update standard resource class {old}")
    row = await get(session, old)
    if await session.scalar(select(ResourceClass.id).where(ResourceClass.name == new)):
        raise Conflict(f"Resource class already exists: {new}",
                       code="placement.duplicate_name")
    row.name = new
    await session.flush()
    rc_id = row.id

    def apply() -> None:
        index.remove_class(old)
        index.add_class(rc_id, new)

    after.append(apply)


async def remove(session: AsyncSession, after: AfterCommit, index: Index, name: str) -> None:
    if name in STANDARD:
        raise BadRequest(f"Cannot delete standard resource class {name}: Cannot delete "
                         f"standard resource class {name}.")
    row = await get(session, name)
    used = await session.scalar(select(
        exists().where(Inventory.resource_class_id == row.id)
        | exists().where(Allocation.resource_class_id == row.id)))
    if used:
        raise Conflict(f"Unable to delete resource class {name}: Cannot delete resource "
                       f"class {name}. Class is in use in inventory.")
    await session.execute(delete(ResourceClass).where(ResourceClass.id == row.id))
    after.append(lambda: index.remove_class(name))
