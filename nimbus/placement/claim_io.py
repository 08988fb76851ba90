"""The statements of a claim, for the two ways a claim runs (allocations.replace).

A claim is a short, fixed sequence of statements. On PostgreSQL and MariaDB it runs through the
session (SessionIO, from session.run_sync). On SQLite every statement through the async driver
costs several hops to the connection's worker thread and back, so the whole claim runs as one
function on that thread instead (SqliteIO, on the session's own connection and transaction):
one hop per claim. Both read and write the same rows with the same SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nimbus.common.timeutils import utcnow
from nimbus.placement.models import Allocation, Consumer, Inventory, ResourceProvider

Row = tuple[Any, ...]


class Duplicate(Exception):
    """The consumer row already exists (another request created it meanwhile)."""


class ClaimIO(Protocol):
    def consumers(self, uuids: list[str]) -> list[Row]:
        """(uuid, id, project, user, type, generation, rp id, class id, used) per
        allocation of each consumer (rp id None for a consumer without any)."""

    def providers(self, uuids: list[str], ids: list[int]) -> list[Row]:
        """(id, uuid, generation, class id, total, reserved, min, max, step, ratio, used)
        per inventory of each provider (class id None for a provider without any)."""

    def delete_allocations(self, consumers: list[str]) -> None: ...

    def insert_allocations(self, rows: list[dict[str, Any]]) -> None: ...

    def delete_consumer(self, consumer_id: int) -> None: ...

    def insert_consumers(self, rows: list[dict[str, Any]]) -> None:
        """New consumer rows, in one statement; Duplicate if any of them exists already."""

    def update_consumer(self, consumer_id: int, generation: int,
                        values: dict[str, Any]) -> int: ...

    def bump(self, gens: dict[int, int]) -> int:
        """Compare-and-swap every provider's generation (id -> generation read) to the next
        one, in one statement; how many matched."""


_USED = (select(func.coalesce(func.sum(Allocation.used), 0))
         .where(Allocation.resource_provider_id == Inventory.resource_provider_id,
                Allocation.resource_class_id == Inventory.resource_class_id)
         .correlate(Inventory).scalar_subquery())


class SessionIO:
    def __init__(self, session: Session) -> None:
        self.s = session

    def consumers(self, uuids: list[str]) -> list[Row]:
        return [tuple(r) for r in self.s.execute(
            select(Consumer.uuid, Consumer.id, Consumer.project_id, Consumer.user_id,
                   Consumer.consumer_type, Consumer.generation,
                   Allocation.resource_provider_id, Allocation.resource_class_id,
                   Allocation.used)
            .outerjoin(Allocation, Allocation.consumer_id == Consumer.uuid)
            .where(Consumer.uuid.in_(uuids))).all()]

    def providers(self, uuids: list[str], ids: list[int]) -> list[Row]:
        cond: Any = ResourceProvider.uuid.in_(uuids)
        if ids:
            cond = cond | ResourceProvider.id.in_(ids)
        return [tuple(r) for r in self.s.execute(
            select(ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.generation,
                   Inventory.resource_class_id, Inventory.total, Inventory.reserved,
                   Inventory.min_unit, Inventory.max_unit, Inventory.step_size,
                   Inventory.allocation_ratio, _USED)
            .outerjoin(Inventory, Inventory.resource_provider_id == ResourceProvider.id)
            .where(cond)).all()]

    def delete_allocations(self, consumers: list[str]) -> None:
        self.s.execute(delete(Allocation).where(Allocation.consumer_id.in_(consumers)))

    def insert_allocations(self, rows: list[dict[str, Any]]) -> None:
        self.s.execute(insert(Allocation), rows)

    def delete_consumer(self, consumer_id: int) -> None:
        self.s.execute(delete(Consumer).where(Consumer.id == consumer_id))

    def insert_consumers(self, rows: list[dict[str, Any]]) -> None:
        try:
            if len(rows) == 1:
                self.s.execute(insert(Consumer).values(**rows[0]))
            else:
                self.s.execute(insert(Consumer), rows)
        except IntegrityError:
            raise Duplicate() from None

    def update_consumer(self, consumer_id: int, generation: int,
                        values: dict[str, Any]) -> int:
        result = self.s.execute(update(Consumer).where(
            Consumer.id == consumer_id, Consumer.generation == generation).values(**values))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def bump(self, gens: dict[int, int]) -> int:
        if len(gens) == 1:
            [(rp_id, generation)] = gens.items()
            cond: Any = (ResourceProvider.id == rp_id) & \
                (ResourceProvider.generation == generation)
        else:
            # The ids alone pick the rows by primary key; the pairs check the generations.
            cond = ResourceProvider.id.in_(sorted(gens)) & tuple_(
                ResourceProvider.id, ResourceProvider.generation).in_(sorted(gens.items()))
        result = self.s.execute(update(ResourceProvider).where(cond).values(
            generation=ResourceProvider.generation + 1))
        return int(result.rowcount)  # type: ignore[attr-defined]


def _stamp(when: datetime) -> str:
    """How SQLAlchemy's DateTime stores a (naive UTC) time in SQLite."""
    return when.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqliteIO:
    """Runs on the aiosqlite connection's own thread, with its sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn
        self.now = _stamp(utcnow())

    def consumers(self, uuids: list[str]) -> list[Row]:
        return self.c.execute(
            "SELECT c.uuid, c.id, c.project_id, c.user_id, c.consumer_type, c.generation, "
            "a.resource_provider_id, a.resource_class_id, a.used FROM consumers c "
            "LEFT OUTER JOIN allocations a ON a.consumer_id = c.uuid "
            f"WHERE c.uuid IN ({_marks(len(uuids))})", uuids).fetchall()

    def providers(self, uuids: list[str], ids: list[int]) -> list[Row]:
        where = f"rp.uuid IN ({_marks(len(uuids))})"
        if ids:
            where += f" OR rp.id IN ({_marks(len(ids))})"
        return self.c.execute(
            "SELECT rp.id, rp.uuid, rp.generation, i.resource_class_id, i.total, i.reserved, "
            "i.min_unit, i.max_unit, i.step_size, i.allocation_ratio, "
            "(SELECT coalesce(sum(a.used), 0) FROM allocations a "
            " WHERE a.resource_provider_id = i.resource_provider_id "
            " AND a.resource_class_id = i.resource_class_id) "
            "FROM resource_providers rp "
            "LEFT OUTER JOIN inventories i ON i.resource_provider_id = rp.id "
            f"WHERE {where}", [*uuids, *ids]).fetchall()

    def delete_allocations(self, consumers: list[str]) -> None:
        self.c.execute(f"DELETE FROM allocations WHERE consumer_id IN "
                       f"({_marks(len(consumers))})", consumers)

    def insert_allocations(self, rows: list[dict[str, Any]]) -> None:
        self.c.executemany(
            "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, "
            "used, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(r["resource_provider_id"], r["consumer_id"], r["resource_class_id"], r["used"],
              self.now, self.now) for r in rows])

    def delete_consumer(self, consumer_id: int) -> None:
        self.c.execute("DELETE FROM consumers WHERE id = ?", (consumer_id,))

    def insert_consumers(self, rows: list[dict[str, Any]]) -> None:
        try:
            self.c.executemany(
                "INSERT INTO consumers (uuid, project_id, user_id, consumer_type, generation, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(v["uuid"], v["project_id"], v["user_id"], v["consumer_type"],
                  v["generation"], self.now, self.now) for v in rows])
        except sqlite3.IntegrityError:
            raise Duplicate() from None

    def update_consumer(self, consumer_id: int, generation: int,
                        values: dict[str, Any]) -> int:
        return self.c.execute(
            "UPDATE consumers SET generation = ?, project_id = ?, user_id = ?, "
            "consumer_type = ?, updated_at = ? WHERE id = ? AND generation = ?",
            (values["generation"], values["project_id"], values["user_id"],
             values["consumer_type"], self.now, consumer_id, generation)).rowcount

    def bump(self, gens: dict[int, int]) -> int:
        matched = 0
        for rp_id, generation in sorted(gens.items()):
            matched += self.c.execute(
                "UPDATE resource_providers SET generation = ?, updated_at = ? "
                "WHERE id = ? AND generation = ?",
                (generation + 1, self.now, rp_id, generation)).rowcount
        return matched
