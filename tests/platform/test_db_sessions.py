"""nimbus.db sessions on every database: a read session commits nothing, whatever it runs
(flushes, DML, row locks, savepoints), and sees committed data; a transaction commits; pooled
connections that died while idle are replaced before use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, String, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nimbus.db.engine import Database
from tests.support import services


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "db_session_rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/s.db"
        return
    created, name = services.create_database(kind)
    try:
        yield created
    finally:
        services.drop_database(kind, name)


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    async with database.transaction() as session:
        session.add(Row(id=1, name="one"))
    try:
        yield database
    finally:
        await database.dispose()


async def names(db: Database) -> list[str]:
    async with db.session() as session:
        return list((await session.scalars(select(Row.name).order_by(Row.id))).all())


async def a_failed_transaction_leaves_nothing(db: Database) -> None:
    before = await names(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            session.add(Row(id=99, name="never"))
            await session.flush()
            raise RuntimeError("fail after the flush")
    assert await names(db) == before


async def test_reads_see_commits_and_transactions_commit(db: Database) -> None:
    assert await names(db) == ["one"]
    # After a read on the same pooled connection, a transaction is a transaction.
    await a_failed_transaction_leaves_nothing(db)
    async with db.transaction() as session:
        session.add(Row(id=2, name="two"))
    assert await names(db) == ["one", "two"]


async def test_nothing_a_read_session_writes_is_committed(db: Database) -> None:
    async with db.session() as session:
        assert (await session.scalars(select(Row.name))).all() == ["one"]
        session.add(Row(id=4, name="orm insert"))
        await session.flush()
        await session.execute(insert(Row).values(id=5, name="core insert"))
        await session.execute(update(Row).where(Row.id == 1).values(name="changed"))
        (await session.get(Row, 4)).name = "autoflushed"  # type: ignore[union-attr]
        # The session sees its own writes, as inside any transaction ...
        assert (await session.scalars(select(Row.name).order_by(Row.id))).all() == [
            "changed", "autoflushed", "core insert"]
    # ... and none of them outlives it.
    assert await names(db) == ["one"]
    # The connection goes back to the pool clean: a transaction on it commits as usual.
    async with db.transaction() as session:
        session.add(Row(id=6, name="six"))
    assert await names(db) == ["one", "six"]
    await a_failed_transaction_leaves_nothing(db)


# Not on SQLite: pysqlite emits no BEGIN before a SAVEPOINT, so its RELEASE commits there.
@pytest.mark.parametrize("url", ["postgresql", "mariadb"], indirect=True)
async def test_savepoints_and_text_in_a_read_session(db: Database) -> None:
    async with db.session() as session:
        async with session.begin_nested():
            session.add(Row(id=7, name="in a savepoint"))
        await session.execute(text("UPDATE db_session_rows SET name = 'by text' WHERE id = 1"))
        assert await session.scalar(select(func.count()).select_from(Row)) == 2
    assert await names(db) == ["one"]
    await a_failed_transaction_leaves_nothing(db)


@pytest.mark.parametrize("url", ["postgresql", "mariadb"], indirect=True)  # SQLite: no row locks
async def test_a_row_lock_taken_in_a_read_session_holds_until_its_end(db: Database) -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    async def reader() -> None:
        async with db.session() as session:
            await session.scalar(select(Row).where(Row.id == 1).with_for_update())
            held.set()
            await release.wait()

    task = asyncio.create_task(reader())
    await held.wait()
    try:
        with pytest.raises(DBAPIError):
            async with db.transaction() as session:
                await session.scalar(select(Row).where(Row.id == 1).with_for_update(
                    nowait=True))
    finally:
        release.set()
        await task
    async with db.transaction() as session:
        assert await session.scalar(select(Row.name).where(Row.id == 1).with_for_update(
            nowait=True)) == "one"


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)  # kills a PostgreSQL backend
async def test_a_connection_killed_while_idle_is_replaced(url: str) -> None:
    db = Database(url, idle_ping_seconds=0.0)  # every checkout counts as after idling
    try:
        async with db.session() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        other = Database(url)
        try:
            async with other.session() as session:
                assert await session.scalar(text("SELECT pg_terminate_backend(:p)"),
                                            {"p": pid})
        finally:
            await other.dispose()
        async with db.session() as session:
            new_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        assert new_pid != pid
    finally:
        await db.dispose()


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)  # autocommit reads: PostgreSQL's
async def test_postgresql_reads_run_outside_a_transaction(db: Database) -> None:

    async def state_after_a_read(session_of: Any) -> str:
        async with session_of() as session:
            pid = await session.scalar(select(func.pg_backend_pid()))
            await session.execute(select(Row.id))
            async with other.session() as watcher:
                return str(await watcher.scalar(text(
                    "SELECT state FROM pg_stat_activity WHERE pid = :p"), {"p": pid}))

    other = Database(db.url)
    try:
        assert await state_after_a_read(db.session) == "idle"
        assert await state_after_a_read(db.transaction) == "idle in transaction"
    finally:
        await other.dispose()
