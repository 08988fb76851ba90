"""The read cache serves nothing a committed write has changed, even mid-load."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from nimbus.db.cache import ReadCache
from nimbus.db.engine import Database


async def test_hits_until_a_write_commits_and_never_keeps_a_racing_load(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    cache = ReadCache(db)
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    assert await cache.get("k", load) == 1
    assert await cache.get("k", load) == 1  # hit
    async with db.transaction() as session:
        await session.execute(text("select 1"))
    assert await cache.get("k", load) == 2  # the write made it stale

    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_load() -> str:
        started.set()
        await release.wait()
        return "read before the write"

    pending = asyncio.create_task(cache.get("slow", slow_load))
    await started.wait()
    cache.invalidate()  # a write lands while the load is in flight
    release.set()
    assert await pending == "read before the write"
    assert await cache.get("slow", lambda: asyncio.sleep(0, "fresh")) == "fresh"
    await db.dispose()


async def test_failed_transactions_also_invalidate(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    before = db.generation
    try:
        async with db.transaction():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert db.generation == before + 1
    await db.dispose()
