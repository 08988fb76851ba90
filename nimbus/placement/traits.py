"""Traits: standard (os-traits) and CUSTOM_*, and the traits of each provider."""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement.index import Index
from nimbus.placement.models import ProviderTrait, Trait
from nimbus.placement.providers import Provider, bump
from nimbus.placement.service import AfterCommit
from nimbus.placement.standard import TRAITS
from nimbus.web.errors import BadRequest, Conflict, NotFound

STANDARD = frozenset(TRAITS)


def trait_ids(index: Index, names: set[str]) -> dict[str, int]:
    """Names to ids; 400 naming the unknown ones."""
    missing = sorted(n for n in names if n not in index.trait_ids)
    if missing:
        raise BadRequest(f"No such trait(s): {', '.join(missing)}.")
    return {n: index.trait_ids[n] for n in names}


async def list_names(session: AsyncSession, name_filter: str | None,
                     associated: bool | None) -> list[str]:
    query = select(Trait.name)
    if name_filter:
        op, _, value = name_filter.partition(":")
        if op == "in":
            query = query.where(Trait.name.in_([v for v in value.split(",") if v]))
        elif op == "startswith":
            query = query.where(Trait.name.startswith(value, autoescape=True))
        else:
            raise BadRequest(f"Badly formatted name parameter. Expected name query string "
                             f"parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. "
                             f"Got: \"{name_filter}\"")
    if associated is not None:
        linked = exists().where(ProviderTrait.trait_id == Trait.id)
        query = query.where(linked if associated else ~linked)
    return list((await session.scalars(query.order_by(Trait.name))).all())


async def exists_named(session: AsyncSession, name: str) -> bool:
    return bool(await session.scalar(select(Trait.id).where(Trait.name == name)))


async def create(session: AsyncSession, after: AfterCommit, index: Index, name: str) -> bool:
    """True when created, False when it already existed."""
    if await exists_named(session, name):
        return False
    row = Trait(name=name)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        return False
    trait_id = row.id
    after.append(lambda: index.add_trait(trait_id, name))
    return True


async def remove(session: AsyncSession, after: AfterCommit, index: Index, name: str) -> None:
    if name in STANDARD:
        raise BadRequest(f"Cannot delete standard trait {name}.")
    trait_id = await session.scalar(select(Trait.id).where(Trait.name == name))
    if trait_id is None:
        raise NotFound(f"No such trait(s): {name}.")
    if await session.scalar(select(exists().where(ProviderTrait.trait_id == trait_id))):
        raise Conflict(f"The trait {name} is in use by a resource provider.")
    await session.execute(delete(Trait).where(Trait.id == trait_id))
    after.append(lambda: index.remove_trait(name))


async def of_provider(session: AsyncSession, rp: Provider) -> list[str]:
    return list((await session.scalars(
        select(Trait.name).join(ProviderTrait, ProviderTrait.trait_id == Trait.id)
        .where(ProviderTrait.resource_provider_id == rp.id).order_by(Trait.name))).all())


async def set_for_provider(session: AsyncSession, after: AfterCommit, index: Index,
                           rp: Provider, generation: int | None, names: list[str]) -> int:
    if generation is not None and generation != rp.generation:
        raise Conflict("Resource provider's generation already changed. Please update the "
                       "generation and try again.", code="placement.concurrent_update")
    wanted = set(names)
    rows = (await session.execute(select(Trait.id, Trait.name).where(
        Trait.name.in_(sorted(wanted))))).all() if wanted else []
    ids = {name: trait_id for trait_id, name in rows}
    missing = sorted(wanted - set(ids))
    if missing:
        raise BadRequest(f"No such trait(s): {', '.join(missing)}.")
    await session.execute(delete(ProviderTrait).where(
        ProviderTrait.resource_provider_id == rp.id))
    if ids:
        await session.execute(insert(ProviderTrait), [
            {"resource_provider_id": rp.id, "trait_id": t} for t in sorted(ids.values())])
    new_gen = await bump(session, rp.id, rp.generation)
    state = set(ids.values())
    after.append(lambda: index.set_traits(rp.id, new_gen, state))
    return new_gen
