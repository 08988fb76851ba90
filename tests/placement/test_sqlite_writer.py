"""The SQLite writer's group commit: claims that arrive together share one transaction, each in
a savepoint of its own, so a failing claim undoes only its own writes and the others commit;
a claim whose request is cancelled still finishes before the cancellation goes on."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from nimbus.placement.sqlite_writer import SqliteWriter


def _insert(value: int, fail: bool = False) -> Callable[[sqlite3.Connection], int]:
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        if fail:
            raise ValueError(f"claim {value} does not fit")
        return value

    return work


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")]


def test_grouped_claims_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v INTEGER)")

    async def main() -> list[object]:
        lock = asyncio.Lock()
        writer = SqliteWriter(f"sqlite+aiosqlite:///{path}", lock)
        try:
            async with lock:  # hold the lock: the claims queue up and go in one trip
                tasks = [asyncio.ensure_future(writer.run(_insert(i, fail=i % 3 == 1)))
                         for i in range(7)]
                await asyncio.sleep(0)
            return list(await asyncio.gather(*tasks, return_exceptions=True))
        finally:
            await asyncio.to_thread(writer.close)

    results = asyncio.run(main())
    assert [r if isinstance(r, int) else "failed" for r in results] == \
        [0, "failed", 2, 3, "failed", 5, 6]
    assert all(isinstance(r, ValueError) for i, r in enumerate(results) if i % 3 == 1)
    assert _rows(path) == [0, 2, 3, 5, 6]


def test_cancelled_claim_finishes_first(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v INTEGER)")

    async def main() -> None:
        started = asyncio.Event()
        lock = asyncio.Lock()
        writer = SqliteWriter(f"sqlite+aiosqlite:///{path}", lock)
        loop = asyncio.get_running_loop()
        release = asyncio.Event()

        def slow(conn: sqlite3.Connection) -> int:
            loop.call_soon_threadsafe(started.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
            conn.execute("INSERT INTO t (v) VALUES (42)")
            return 42

        try:
            task = asyncio.ensure_future(writer.run(slow))
            await started.wait()
            task.cancel()
            for _ in range(5):  # a cancellation that did not wait would be through by now
                await asyncio.sleep(0)
            assert not task.done(), "the cancellation waits for the claim"
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _rows(path) == [42]
        finally:
            await asyncio.to_thread(writer.close)

    asyncio.run(main())
