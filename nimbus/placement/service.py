"""The placement service: resource providers, inventories, allocations and candidates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp

from nimbus.common.context import RequestContext
from nimbus.common.policy import Enforcer
from nimbus.db.engine import Database
from nimbus.db.migrate import upgrade
from nimbus.placement.errors import ConcurrentUpdate
from nimbus.placement.index import Index
from nimbus.placement.models import Base, ResourceClass, Trait
from nimbus.placement.policy import RULES
from nimbus.placement.sqlite_writer import SqliteWriter
from nimbus.placement.standard import RESOURCE_CLASSES, TRAITS
from nimbus.web.errors import Conflict

if TYPE_CHECKING:
    from nimbus.cloud import Cloud

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
RETRIES = 10

AfterCommit = list[Callable[[], None]]


class PlacementService:
    name = "placement"

    cloud: Cloud
    db: Database
    enforcer: Enforcer

    def __init__(self) -> None:
        self.index = Index()
        self.writer: SqliteWriter | None = None

    async def start(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.db = cloud.database("placement")
        await upgrade(self.db, "placement", MIGRATIONS, Base.metadata)
        self.enforcer = Enforcer(RULES, cloud.settings.placement.policy_file)
        async with self.db.transaction() as session:
            await _seed(session, ResourceClass, RESOURCE_CLASSES)
            await _seed(session, Trait, TRAITS)
        async with self.db.session() as session:
            await self.index.load(session)
        # SQLite's one-writer lock of the Database (the same one its transactions take).
        lock = getattr(self.db, "_write_lock", None)
        if self.db.dialect == "sqlite" and SqliteWriter.usable(self.db.url) and \
                isinstance(lock, asyncio.Lock):
            self.writer = SqliteWriter(self.db.url, lock)

    def app(self) -> ASGIApp:
        from nimbus.placement.api import build_app

        return build_app(self)

    async def stop(self) -> None:
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
            self.writer = None

    # -- shared by the resource modules --------------------------------------------------------
    def enforce(self, rule: str, ctx: RequestContext) -> None:
        self.enforcer.enforce(rule, ctx.policy_credentials(), {"target": {}})

    async def fresh_index(self) -> Index:
        await self.index.ensure_fresh(self.db)
        return self.index

    @asynccontextmanager
    async def write(self, *, session: bool = True
                    ) -> AsyncIterator[tuple[AsyncSession, AfterCommit]]:
        """A write transaction, and a list of index updates run once it has committed.

        session=False (claims through the SQLite writer, which takes the database's write lock
        and commits on its own connection): no session and no lock here; the work gets None.

        An error that is not the API's own (a lost connection, a cancelled request) may come
        after the database committed: the index is then reloaded before it is next read."""
        after: AfterCommit = []
        in_body = False
        try:
            async with (self.db.transaction() if session or self.writer is None
                        else self._counted()) as held:
                in_body = True
                yield held, after
                in_body = False
        except BaseException:
            # Raised by the work itself: rolled back, the index is right. Raised while
            # committing: the commit may or may not have happened.
            if not in_body:
                self.index.invalidate()
            raise
        for apply in after:
            apply()

    @asynccontextmanager
    async def _counted(self) -> AsyncIterator[Any]:
        try:
            yield None
        finally:
            self.db.generation += 1  # as Database.transaction counts writes (ReadCache)

    async def retrying(self, work: Callable[[AsyncSession, AfterCommit], Any],
                       what: str = "allocate", *, session: bool = True) -> Any:
        """Run work(session, after) in a write transaction, again when a concurrent writer
        moved a generation under it (or the database chose it as a deadlock victim).
        session=False: see write()."""
        for _ in range(RETRIES):
            try:
                async with self.write(session=session) as (held, after):
                    return await work(held, after)
            except ConcurrentUpdate:
                continue
            except Exception as exc:
                if not _retryable(exc):
                    raise
        raise Conflict(f"Max retries of DB transaction exceeded attempting to perform {what}.",
                       code="placement.concurrent_update")


def _retryable(exc: BaseException) -> bool:
    """Deadlocks and serialization failures that PostgreSQL and MariaDB resolve by aborting
    one transaction: running it again is the cure."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return False
    text = str(exc.orig) if exc.orig is not None else str(exc)
    codes = ("1213", "1205", "40001", "40P01", "deadlock", "Deadlock", "could not serialize")
    return any(code in text for code in codes)


async def _seed(session: AsyncSession, table: type[ResourceClass] | type[Trait],
                names: tuple[str, ...]) -> None:
    have = set((await session.scalars(select(table.name))).all())
    missing = [{"name": n} for n in names if n not in have]
    if missing:
        await session.execute(insert(table), missing)
