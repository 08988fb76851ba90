"""Claims on SQLite in one hop: a connection of placement's own, on a thread of its own.

Through the async driver a claim costs three trips to a connection thread while the database's
write lock is held (the statements, the commit, the reset when the connection goes back to the
pool). Here a claim's statements run between BEGIN IMMEDIATE and COMMIT in a single call on the
writer's thread, under the Database's write lock, so that lock is held for one trip.

Group commit: claims that arrive while a trip is under way go together in the next one, each in
a SAVEPOINT of its own (one claim's failure undoes only its own writes), with one COMMIT for
all. They run one after the other, each seeing those before it, exactly as if serialised; a
trip to the thread and back costs about as much CPU as the claim itself, so under load each
claim pays for a fraction of one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
Outcome = tuple[bool, Any]  # (succeeded, result or exception)


class SqliteWriter:
    def __init__(self, url: str, lock: asyncio.Lock) -> None:
        """lock: the Database's write lock (SQLite has one writer at a time)."""
        path = make_url(url).database or ""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="placement-sqlite")
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = lock
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    @staticmethod
    def usable(url: str) -> bool:
        """A file: an in-memory database cannot be shared with a second connection."""
        path = make_url(url).database or ""
        return bool(path) and path != ":memory:" and not path.startswith("file::memory:")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=30,
                                   check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           "busy_timeout=30000"):
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return self._conn

    def _run(self, works: list[Work]) -> list[Outcome]:
        conn = self._connection()
        alone = len(works) == 1
        outcomes: list[Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for work in works:
                if not alone:
                    conn.execute("SAVEPOINT claim")
                try:
                    result = work(conn)
                except Exception as exc:  # the claim's own failure: undo only its writes
                    if not alone:
                        conn.execute("ROLLBACK TO claim")
                        conn.execute("RELEASE claim")
                    outcomes.append((False, exc))
                    continue
                if not alone:
                    conn.execute("RELEASE claim")
                outcomes.append((True, result))
            conn.execute("COMMIT" if any(ok for ok, _ in outcomes) else "ROLLBACK")
        except BaseException:
            if conn.in_transaction:  # also when COMMIT itself failed (it then stays open)
                conn.execute("ROLLBACK")
            raise
        return outcomes

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """work's result once committed (work runs on the writer's thread, in a transaction
        with other claims). Cancelled meanwhile: the cancellation waits until the claim is
        done with (it may still commit), so the caller knows the database's state is final."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                await asyncio.wait([future])
            raise

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                async with self._lock:
                    batch, self._pending = self._pending, []
                    try:
                        outcomes = await loop.run_in_executor(
                            self._pool, self._run, [work for work, _ in batch])
                    except Exception as exc:  # the transaction itself failed
                        outcomes = [(False, exc)] * len(batch)
                    except BaseException:  # cancelled (the loop is closing)
                        for _, future in batch:
                            future.cancel()
                        raise
                _settle(batch, outcomes)
        finally:
            self._drainer = None

    def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._pool.submit(shut).result()
        self._pool.shutdown(wait=True)


def _settle(batch: list[tuple[Work, asyncio.Future[Any]]], outcomes: list[Outcome]) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
