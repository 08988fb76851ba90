"""Claims on SQLite in one hop: a connection of placement's own, on a thread of its own.

Through the async driver a claim costs three trips to a connection thread while the database's
write lock is held (the statements, the commit, the reset when the connection goes back to the
pool). Here the caller holds that same lock (it entered Database.transaction() and runs nothing
on that session, so the session never takes a connection) and the claim's statements run
between BEGIN IMMEDIATE and COMMIT in a single call: the lock is held for one trip.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, url: str) -> None:
        path = make_url(url).database or ""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="placement-sqlite")
        self._path = path
        self._conn: sqlite3.Connection | None = None

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

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, work)

    def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._pool.submit(shut).result()
        self._pool.shutdown(wait=True)
