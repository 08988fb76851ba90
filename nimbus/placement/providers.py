"""Resource providers: create, read, rename, re-parent and delete, as nested trees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import utcnow
from nimbus.placement import errors
from nimbus.placement.index import Index
from nimbus.placement.models import (
    Allocation,
    Inventory,
    ProviderAggregate,
    ProviderTrait,
    ResourceProvider,
)
from nimbus.placement.service import AfterCommit
from nimbus.web.errors import BadRequest, Conflict


@dataclass
class Provider:
    id: int
    uuid: str
    name: str
    generation: int
    parent_provider_uuid: str | None
    root_provider_uuid: str
    parent_id: int | None
    root_id: int
    updated_at: Any = None


_Parent = aliased(ResourceProvider)
_Root = aliased(ResourceProvider)


def provider_query() -> Any:
    """Columns, not ORM objects: every provider request reads one or two, and loading them as
    entities costs more than the query."""
    return (select(ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.name,
                   ResourceProvider.generation, _Parent.uuid, _Root.uuid,
                   ResourceProvider.parent_provider_id, ResourceProvider.root_provider_id,
                   ResourceProvider.updated_at)
            .outerjoin(_Parent, _Parent.id == ResourceProvider.parent_provider_id)
            .outerjoin(_Root, _Root.id == ResourceProvider.root_provider_id))


# Built once: constructing a statement (and its cache key) costs more than running it.
_BY_UUID = provider_query().where(ResourceProvider.uuid == bindparam("uuid"))
_NAMED_OR_UUID = select(ResourceProvider.id, ResourceProvider.name, ResourceProvider.uuid).where(
    (ResourceProvider.name == bindparam("name")) | (ResourceProvider.uuid == bindparam("uuid")))
_BUMP = (update(ResourceProvider)
         .where(ResourceProvider.id == bindparam("rp_id"),
                ResourceProvider.generation == bindparam("gen"))
         .values(generation=bindparam("new_gen")))


def _provider(row: Any) -> Provider:
    rp_id, rp_uuid, name, gen, parent_uuid, root_uuid, parent_id, root_id, updated = row
    return Provider(rp_id, rp_uuid, name, gen, parent_uuid, root_uuid or rp_uuid, parent_id,
                    root_id or rp_id, updated)


async def find(session: AsyncSession, uuid: str) -> Provider | None:
    row = (await session.execute(_BY_UUID, {"uuid": uuid})).first()
    return _provider(row) if row else None


async def get(session: AsyncSession, uuid: str) -> Provider:
    found = await find(session, uuid)
    if found is None:
        raise errors.provider_not_found(uuid)
    return found


async def list_by_ids(session: AsyncSession, ids: set[int] | None, *,
                      name: str | None = None, uuid: str | None = None) -> list[Provider]:
    query = provider_query()
    if ids is not None:
        if not ids:
            return []
        query = query.where(ResourceProvider.id.in_(sorted(ids)))
    if name is not None:
        query = query.where(ResourceProvider.name == name)
    if uuid is not None:
        query = query.where(ResourceProvider.uuid == uuid)
    rows = (await session.execute(query.order_by(ResourceProvider.id))).all()
    return [_provider(r) for r in rows]


async def bump(session: AsyncSession, rp_id: int, generation: int) -> int:
    """Compare-and-swap the provider's generation; ConcurrentUpdate when it moved."""
    result = await session.execute(_BUMP, {"rp_id": rp_id, "gen": generation,
                                           "new_gen": generation + 1})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.ConcurrentUpdate()
    return generation + 1


async def _duplicate(session: AsyncSession, name: str, uuid: str | None,
                     exclude: int | None = None) -> list[str]:
    found = []
    rows = await session.execute(_NAMED_OR_UUID, {"name": name, "uuid": uuid or ""})
    for rp_id, rp_name, rp_uuid in rows.all():
        if rp_id == exclude:
            continue
        if uuid and rp_uuid == uuid:
            found.append(f"uuid: {uuid}")
        if rp_name == name:
            found.append(f"name: {name}")
    return found


async def create(session: AsyncSession, after: AfterCommit, index: Index, name: str,
                 uuid: str | None, parent_uuid: str | None) -> Provider:
    uuid = uuid or new_uuid()
    duplicates = await _duplicate(session, name, uuid)
    if duplicates:
        raise Conflict(f"Conflicting resource provider {', '.join(duplicates)} already exists.",
                       code=errors.DUPLICATE_NAME)
    parent: Provider | None = None
    if parent_uuid is not None:
        parent = await find(session, parent_uuid)
        if parent is None:
            raise BadRequest(f'Unable to create resource provider "{name}", {uuid}: Object '
                             "action create failed because: parent provider UUID does not "
                             "exist.")
    now = utcnow()
    try:
        result = await session.execute(insert(ResourceProvider).values(
            uuid=uuid, name=name, generation=0, parent_provider_id=parent.id if parent else None,
            root_provider_id=parent.root_id if parent else None, created_at=now,
            updated_at=now))
    except IntegrityError:
        raise Conflict(f"Conflicting resource provider name: {name} already exists.",
                       code=errors.DUPLICATE_NAME) from None
    rp_id: int = result.inserted_primary_key[0]  # type: ignore[attr-defined]
    if parent is None:  # a root is its own root
        await session.execute(update(ResourceProvider).where(ResourceProvider.id == rp_id)
                              .values(root_provider_id=rp_id, updated_at=now))
    created = Provider(rp_id, uuid, name, 0, parent.uuid if parent else None,
                       parent.root_provider_uuid if parent else uuid,
                       parent.id if parent else None, parent.root_id if parent else rp_id, now)
    after.append(lambda: index.put_provider(created.id, created.uuid, created.parent_id,
                                            created.root_id, 0))
    return created


async def update_provider(session: AsyncSession, after: AfterCommit, index: Index,
                          current: Provider, data: dict[str, Any],
                          allow_reparent: bool) -> Provider:
    values: dict[str, Any] = {}
    name = data.get("name", current.name)
    if name != current.name:
        if await _duplicate(session, name, None, exclude=current.id):
            raise Conflict(f"Conflicting resource provider {name} already exists.",
                           code=errors.DUPLICATE_NAME)
        values["name"] = name
    moved: dict[int, int] = {}
    new_parent: Provider | None = None
    if "parent_provider_uuid" in data and data["parent_provider_uuid"] != \
            current.parent_provider_uuid:
        wanted = data["parent_provider_uuid"]
        fail = f"Unable to save resource provider {current.uuid}: Object action update " \
               "failed because: "
        if not allow_reparent and current.parent_provider_uuid is not None:
            reason = ("un-parenting a provider is not currently allowed." if wanted is None
                      else "re-parenting a provider is not currently allowed.")
            raise BadRequest(fail + reason)
        if wanted is not None:
            new_parent = await find(session, wanted)
            if new_parent is None:
                raise BadRequest(fail + "parent provider UUID does not exist.")
            if await _in_subtree(session, current.id, new_parent.id):
                raise BadRequest(fail + "creating loop in the provider tree is not allowed.")
        new_root = new_parent.root_id if new_parent else current.id
        values["parent_provider_id"] = new_parent.id if new_parent else None
        if new_root != current.root_id:
            for rp_id in await _subtree_ids(session, current.id):
                moved[rp_id] = new_root
            await session.execute(update(ResourceProvider)
                                  .where(ResourceProvider.id.in_(sorted(moved)))
                                  .values(root_provider_id=new_root))
    if values:
        await session.execute(update(ResourceProvider)
                              .where(ResourceProvider.id == current.id).values(**values))
    result = await find(session, current.uuid)
    assert result is not None
    if "parent_provider_id" in values:
        parents = {current.id: values["parent_provider_id"]}
        roots = moved or {current.id: current.root_id}
        after.append(lambda: index.move_subtree(roots, parents))
    return result


async def _subtree_ids(session: AsyncSession, rp_id: int) -> set[int]:
    out = {rp_id}
    frontier = {rp_id}
    while frontier:
        children = set((await session.scalars(select(ResourceProvider.id).where(
            ResourceProvider.parent_provider_id.in_(sorted(frontier))))).all())
        frontier = children - out
        out |= frontier
    return out


async def _in_subtree(session: AsyncSession, top: int, candidate: int) -> bool:
    return candidate in await _subtree_ids(session, top)


async def delete_provider(session: AsyncSession, after: AfterCommit, index: Index,
                          current: Provider) -> None:
    if (await session.execute(select(exists().where(
            Allocation.resource_provider_id == current.id)))).scalar():
        raise Conflict(f"Unable to delete resource provider {current.uuid}: Resource provider "
                       "has allocations.", code=errors.PROVIDER_IN_USE)
    children = await session.scalar(select(func.count()).select_from(ResourceProvider).where(
        ResourceProvider.parent_provider_id == current.id))
    if children:
        raise Conflict(f"Unable to delete parent resource provider {current.uuid}: It has "
                       "child resource providers.", code=errors.PROVIDER_CANNOT_DELETE_PARENT)
    for table in (Inventory, ProviderTrait, ProviderAggregate):
        await session.execute(delete(table).where(table.resource_provider_id == current.id))
    result = await session.execute(delete(ResourceProvider).where(
        ResourceProvider.id == current.id, ResourceProvider.generation == current.generation))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.ConcurrentUpdate()
    after.append(lambda: index.remove_provider(current.id))
