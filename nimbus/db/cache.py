"""A read cache that can never serve what a committed write has changed.

Each entry remembers the database generation (count of write transactions) seen *before* it
was loaded, and is served only while that generation is still current. A write that commits
while a read is loading therefore makes the freshly stored entry stale at once. Writes by other
processes reach us as bus notifications, which call `invalidate()`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from nimbus.db.engine import Database

T = TypeVar("T")


class ReadCache:
    def __init__(self, db: Database, max_entries: int = 512) -> None:
        self.db = db
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        generation = self.db.generation
        hit = self._entries.get(key)
        if hit is not None and hit[0] == generation:
            self._entries.move_to_end(key)
            value: T = hit[1]
            return value
        loaded = await load()
        self._entries[key] = (generation, loaded)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return loaded

    def invalidate(self) -> None:
        self.db.generation += 1
