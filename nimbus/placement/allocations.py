"""Allocations: what each consumer uses on which providers, written atomically for one or
several consumers, with capacity checked in the database.

Correct under concurrency on every backend: the providers' generations are read first, usage
after, and each touched provider's generation is bumped with a compare-and-swap UPDATE at the
end. A writer that lost a race finds its UPDATE matched nothing, rolls back and runs again
(service.retrying), so two claims can never both fit into the same free capacity. On SQLite the
write transactions are serialised anyway.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement import errors
from nimbus.placement.claim_io import ClaimIO, Duplicate, SessionIO, SqliteIO
from nimbus.placement.index import Index
from nimbus.placement.models import Allocation, Consumer, ResourceProvider
from nimbus.placement.service import AfterCommit
from nimbus.placement.sqlite_writer import SqliteWriter
from nimbus.web.errors import BadRequest, Conflict

INCOMPLETE_PROJECT = "00000000-0000-0000-0000-000000000000"
INCOMPLETE_USER = "00000000-0000-0000-0000-000000000000"
UNKNOWN_TYPE = "unknown"


@dataclass
class ConsumerWrite:
    uuid: str
    allocations: dict[str, dict[str, int]]  # provider uuid -> class -> amount
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    consumer_type: str | None = None


@dataclass
class WriteOptions:
    check_generation: bool = False  # 1.28+
    set_type: bool = False  # 1.38+


@dataclass
class _ConsumerRow:
    id: int
    project_id: str
    user_id: str
    consumer_type: str | None
    generation: int


@dataclass
class _Plan:
    consumers: dict[str, _ConsumerRow] = field(default_factory=dict)
    old: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    providers: dict[str, tuple[int, int]] = field(default_factory=dict)  # uuid -> (id, gen)
    gens: dict[int, int] = field(default_factory=dict)  # provider id -> generation


def _gen_conflict(expected: Any, got: Any) -> Conflict:
    shown = "null" if expected is None else expected
    return Conflict(f"consumer generation conflict - expected {shown} but got {got}",
                    code=errors.CONCURRENT_UPDATE)


async def replace(session: AsyncSession | None, after: AfterCommit, index: Index,
                  writes: list[ConsumerWrite], opts: WriteOptions,
                  writer: SqliteWriter | None = None) -> bool:
    """Replace the consumers' allocations; False when none of them had any.

    writer (SQLite): the claim runs on the writer's connection, in one trip under the
    database's write lock (grouped with concurrent claims); the session is not used (None)."""
    names = _Names(dict(index.rc_ids), dict(index.rc_names))
    if writer is not None:
        try:
            usage, new_gens, had = await writer.run(
                lambda raw: _replace(SqliteIO(raw), names, writes, opts))
        except asyncio.CancelledError:
            index.invalidate()  # it may have committed meanwhile: reload before next use
            raise
    else:
        assert session is not None
        conn = await session.connection()
        if conn.dialect.name == "sqlite":
            aio: Any = (await conn.get_raw_connection()).driver_connection
            usage, new_gens, had = await aio._execute(
                lambda: _replace(SqliteIO(aio._conn), names, writes, opts))
        else:
            usage, new_gens, had = await session.run_sync(
                lambda sync: _replace(SessionIO(sync), names, writes, opts))

    def apply() -> None:
        for rp_id, gen in new_gens.items():
            index.set_usage(rp_id, gen, usage.get(rp_id, {}))

    after.append(apply)
    return had


@dataclass
class _Names:
    rc_ids: dict[str, int]
    rc_names: dict[int, str]


def _replace(io: ClaimIO, names: _Names, writes: list[ConsumerWrite], opts: WriteOptions
             ) -> tuple[dict[int, dict[int, int]], dict[int, int], bool]:
    """The claim itself, against either IO: (usage after it, new generations) of every
    provider it touched, and whether the consumers had allocations before."""
    uuids = [w.uuid for w in writes]
    plan = _Plan()
    for row in io.consumers(uuids):
        if row[0] not in plan.consumers:
            plan.consumers[row[0]] = _ConsumerRow(*row[1:6])
        if row[6] is not None:
            plan.old.setdefault(row[0], []).append((row[6], row[7], row[8]))
    if opts.check_generation:
        for w in writes:
            have = plan.consumers.get(w.uuid)
            if have is None and w.generation is not None:
                raise Conflict(f"consumer generation conflict - expected null but got "
                               f"{w.generation}", code=errors.CONCURRENT_UPDATE)
            if have is not None and have.generation != w.generation:
                raise _gen_conflict(have.generation, w.generation)
    wanted_uuids = sorted({rp for w in writes for rp in w.allocations})
    old_ids = sorted({rp for rows in plan.old.values() for rp, _, _ in rows})
    # Generation, inventories and usage in one statement: one snapshot, so the usage read
    # belongs to the generation the compare-and-swap below checks.
    invs: dict[tuple[int, int], tuple[int, ...]] = {}
    usage: dict[int, dict[int, int]] = defaultdict(dict)
    for r in io.providers(wanted_uuids, old_ids):
        rp_id, rp_uuid, gen, rc_id = r[0], r[1], r[2], r[3]
        plan.providers[rp_uuid] = (rp_id, gen)
        plan.gens[rp_id] = gen
        if rc_id is not None:
            total, reserved, min_unit, max_unit, step, ratio, used = r[4:11]
            invs[(rp_id, rc_id)] = (int((total - reserved) * ratio), min_unit, max_unit, step)
            usage[rp_id][rc_id] = int(used or 0)
    for rp_uuid in wanted_uuids:
        if rp_uuid not in plan.providers:
            raise BadRequest(f"Allocation for resource provider '{rp_uuid}' that does not "
                             "exist.")
    rows = _new_rows(writes, plan, names)
    usage = _check_capacity(names, plan, rows, invs, usage)
    if plan.old:
        io.delete_allocations(uuids)
    if rows:
        io.insert_allocations(rows)
    _write_consumers(io, writes, plan, opts)
    if plan.gens and io.bump(plan.gens) != len(plan.gens):
        raise errors.ConcurrentUpdate()
    new_gens = {rp_id: gen + 1 for rp_id, gen in plan.gens.items()}
    return usage, new_gens, bool(plan.old)


def _new_rows(writes: list[ConsumerWrite], plan: _Plan, index: _Names
              ) -> list[dict[str, Any]]:
    rows = []
    for w in writes:
        for rp_uuid, amounts in w.allocations.items():
            rp_id = plan.providers[rp_uuid][0]
            for rc, used in amounts.items():
                rc_id = index.rc_ids.get(rc)
                if rc_id is None:
                    raise BadRequest(f"Unable to allocate inventory for consumer {w.uuid}: "
                                     f"No such resource class {rc}.")
                rows.append({"resource_provider_id": rp_id, "resource_class_id": rc_id,
                             "consumer_id": w.uuid, "used": used})
    return rows


def _check_capacity(index: _Names, plan: _Plan, rows: list[dict[str, Any]],
                    invs: dict[tuple[int, int], tuple[int, ...]],
                    usage: dict[int, dict[int, int]]) -> dict[int, dict[int, int]]:
    """The usage of every touched provider once these allocations replace the old ones;
    409 when a new allocation does not fit."""
    for old_rows in plan.old.values():
        for rp_id, rc_id, used in old_rows:
            usage[rp_id][rc_id] = usage[rp_id].get(rc_id, 0) - used
    uuid_of = {rp_id: rp_uuid for rp_uuid, (rp_id, _) in plan.providers.items()}
    added: set[tuple[int, int]] = set()
    for row in rows:
        rp_id, rc_id, used = row["resource_provider_id"], row["resource_class_id"], row["used"]
        rc = index.rc_names.get(rc_id, str(rc_id))
        where = f"'{rc}' on resource provider '{uuid_of[rp_id]}'"
        inv = invs.get((rp_id, rc_id))
        if inv is None:
            raise Conflict(f"Unable to allocate inventory: Inventory for {where} invalid.")
        _, min_unit, max_unit, step = inv
        if used < min_unit or used > max_unit or used % step:
            raise Conflict(f"Unable to allocate inventory: Unable to create allocation for "
                           f"{where}. The requested amount would violate inventory "
                           "constraints.")
        usage[rp_id][rc_id] = usage[rp_id].get(rc_id, 0) + used
        added.add((rp_id, rc_id))
    for rp_id, rc_id in sorted(added):
        if usage[rp_id][rc_id] > invs[(rp_id, rc_id)][0]:
            rc = index.rc_names.get(rc_id, str(rc_id))
            raise Conflict(f"Unable to allocate inventory: Unable to create allocation for "
                           f"'{rc}' on resource provider '{uuid_of[rp_id]}'. The requested "
                           "amount would exceed the capacity.")
    return usage


def _write_consumers(io: ClaimIO, writes: list[ConsumerWrite], plan: _Plan,
                     opts: WriteOptions) -> None:
    created: list[dict[str, Any]] = []
    for w in writes:
        have = plan.consumers.get(w.uuid)
        project = w.project_id or (have.project_id if have else INCOMPLETE_PROJECT)
        user = w.user_id or (have.user_id if have else INCOMPLETE_USER)
        ctype = w.consumer_type if opts.set_type else (have.consumer_type if have else None)
        if not w.allocations:
            if have is not None:
                io.delete_consumer(have.id)
            continue
        values = {"project_id": project, "user_id": user, "consumer_type": ctype}
        if have is None:
            created.append({"uuid": w.uuid, "generation": 1, **values})
            continue
        if io.update_consumer(have.id, have.generation,
                              {"generation": have.generation + 1, **values}) != 1:
            raise Conflict("consumer generation conflict - the consumer changed while "
                           "allocating; please retry", code=errors.CONCURRENT_UPDATE)
    if created:
        try:
            io.insert_consumers(created)
        except Duplicate:  # another request created one of them meanwhile
            raise _gen_conflict("another request's", "null") from None


async def delete_consumer(session: AsyncSession, after: AfterCommit, index: Index,
                          consumer_uuid: str, writer: SqliteWriter | None = None) -> bool:
    """False when the consumer has no allocations."""
    return await replace(session, after, index, [ConsumerWrite(consumer_uuid, {})],
                         WriteOptions(), writer)


# -- reads -------------------------------------------------------------------------------------
async def for_consumer(session: AsyncSession, index: Index, consumer_uuid: str
                       ) -> tuple[Consumer | None, dict[str, dict[str, Any]]]:
    consumer = await session.scalar(select(Consumer).where(Consumer.uuid == consumer_uuid))
    rows = (await session.execute(
        select(ResourceProvider.uuid, ResourceProvider.generation,
               Allocation.resource_class_id, Allocation.used)
        .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
        .where(Allocation.consumer_id == consumer_uuid)
        .order_by(Allocation.id))).all()
    out: dict[str, dict[str, Any]] = {}
    for rp_uuid, gen, rc_id, used in rows:
        entry = out.setdefault(rp_uuid, {"generation": gen, "resources": {}})
        entry["resources"][index.rc_names.get(rc_id, str(rc_id))] = used
    return consumer, out


async def for_provider(session: AsyncSession, index: Index, rp_id: int
                       ) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(
        select(Allocation.consumer_id, Allocation.resource_class_id, Allocation.used,
               Consumer.generation)
        .outerjoin(Consumer, Consumer.uuid == Allocation.consumer_id)
        .where(Allocation.resource_provider_id == rp_id)
        .order_by(Allocation.id))).all()
    out: dict[str, dict[str, Any]] = {}
    for consumer_id, rc_id, used, gen in rows:
        entry = out.setdefault(consumer_id, {"resources": {}, "consumer_generation": gen})
        entry["resources"][index.rc_names.get(rc_id, str(rc_id))] = used
    return out
