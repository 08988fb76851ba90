"""Aggregates: the groups of providers a provider belongs to (by UUID; placement only links
them, the aggregates themselves belong to whoever made the UUID)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement import errors
from nimbus.placement.index import Index
from nimbus.placement.models import Aggregate, ProviderAggregate
from nimbus.placement.providers import Provider, bump
from nimbus.placement.service import AfterCommit


async def of_provider(session: AsyncSession, rp: Provider) -> list[str]:
    return list((await session.scalars(
        select(Aggregate.uuid)
        .join(ProviderAggregate, ProviderAggregate.aggregate_id == Aggregate.id)
        .where(ProviderAggregate.resource_provider_id == rp.id)
        .order_by(Aggregate.uuid))).all())


async def _ensure(session: AsyncSession, after: AfterCommit, index: Index,
                  uuids: list[str]) -> dict[str, int]:
    rows = (await session.execute(select(Aggregate.uuid, Aggregate.id).where(
        Aggregate.uuid.in_(uuids)))).all() if uuids else []
    ids = dict(rows)
    for agg_uuid in uuids:
        if agg_uuid in ids:
            continue
        row = Aggregate(uuid=agg_uuid)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:  # created meanwhile by another request: run again
            raise errors.ConcurrentUpdate() from None
        ids[agg_uuid] = row.id
    pairs = list(ids.items())

    def apply() -> None:
        for agg_uuid, agg_id in pairs:
            index.add_aggregate(agg_id, agg_uuid)

    after.append(apply)
    return ids


async def set_for_provider(session: AsyncSession, after: AfterCommit, index: Index,
                           rp: Provider, generation: int | None, uuids: list[str]) -> int:
    if generation is not None and generation != rp.generation:
        raise errors.conflict("Resource provider's generation already changed. Please update "
                              "the generation and try again.", errors.CONCURRENT_UPDATE)
    ids = await _ensure(session, after, index, sorted(set(uuids)))
    await session.execute(delete(ProviderAggregate).where(
        ProviderAggregate.resource_provider_id == rp.id))
    if ids:
        await session.execute(insert(ProviderAggregate), [
            {"resource_provider_id": rp.id, "aggregate_id": a} for a in sorted(ids.values())])
    new_gen = await bump(session, rp.id, rp.generation)
    state = set(ids.values())
    after.append(lambda: index.set_aggregates(rp.id, new_gen, state))
    return new_gen
