"""POST /reshaper: move inventory and the allocations against it between providers in one
transaction (as when a compute host splits its VGPUs into child providers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement import errors
from nimbus.placement.allocations import ConsumerWrite, WriteOptions, replace
from nimbus.placement.index import Index
from nimbus.placement.inventories import replace_all, with_defaults
from nimbus.placement.models import Allocation, ResourceProvider
from nimbus.placement.providers import bump, find
from nimbus.placement.service import AfterCommit
from nimbus.web.errors import BadRequest


async def reshape(session: AsyncSession, after: AfterCommit, index: Index,
                  inventories: dict[str, dict[str, Any]], writes: list[ConsumerWrite],
                  opts: WriteOptions, reserved_can_be_total: bool) -> None:
    consumers = [w.uuid for w in writes]
    old_ids = set((await session.scalars(select(Allocation.resource_provider_id).where(
        Allocation.consumer_id.in_(consumers)).distinct())).all()) if consumers else set()
    if consumers:
        await session.execute(delete(Allocation).where(Allocation.consumer_id.in_(consumers)))
    ignored: AfterCommit = []
    touched: set[int] = set()
    for rp_uuid, body in inventories.items():
        rp = await find(session, rp_uuid)
        if rp is None:
            raise BadRequest(f"Resource provider {rp_uuid} in inventories not found.")
        wanted = {rc: with_defaults(inv) for rc, inv in body["inventories"].items()}
        await replace_all(session, ignored, index, rp, body["resource_provider_generation"],
                          wanted, reserved_can_be_total)
        touched.add(rp.id)
    # The consumers' old allocations are gone already: replace() writes the new ones and
    # bumps the generations of the providers they use.
    await replace(session, ignored, index, writes, opts)
    rest = old_ids - touched
    if rest:
        for rp_id, gen in (await session.execute(
                select(ResourceProvider.id, ResourceProvider.generation)
                .where(ResourceProvider.id.in_(sorted(rest))))).all():
            try:
                await bump(session, rp_id, gen)
            except errors.ConcurrentUpdate:
                raise
    # Rare and wide: let the index reload itself rather than follow every detail.
    after.append(index.invalidate)
