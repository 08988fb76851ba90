"""One Database object per service per process: an async engine and its sessions.

SQLite allows one writer at a time, and a deferred transaction that reads and then writes can
fail with "database is locked" instead of waiting. So on SQLite, write transactions also hold a
per-Database asyncio lock; PostgreSQL and MariaDB use ordinary row locking.

Server databases: a pooled connection is checked for life before use only when it sat idle for
a while (IDLE_PING_SECONDS). Pinging at every checkout (SQLAlchemy's pool_pre_ping) costs
asyncpg three round trips (BEGIN, an empty query, ROLLBACK) per session, more than most
sessions' own queries; a connection handed back moments ago is as alive as a ping would show.
A connection found dead is replaced before use; one that dies while in use fails that request,
and the pool then replaces every connection older than the failure.

PostgreSQL: read sessions run their SELECTs outside a transaction (autocommit), which saves the
BEGIN and ROLLBACK round trips. At PostgreSQL's READ COMMITTED every statement sees a fresh
snapshot anyway, so plain reads see exactly what they saw inside a transaction. Anything else a
read session runs (a flush, INSERT/UPDATE/DELETE, SELECT ... FOR UPDATE, a savepoint, text SQL)
first puts its connection back into transactional mode, so it runs in a transaction that is
rolled back at the end of the session as before: nothing a read session does is committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
}
# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0
_LAST_USED = "nimbus_last_used"


def async_url(url: str) -> str:
    """Accept plain URLs (postgresql://, mysql://) and pick the async driver."""
    parsed = make_url(url)
    if "+" in parsed.drivername:
        return url
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, *, echo: bool = False,
                 idle_ping_seconds: float = IDLE_PING_SECONDS) -> None:
        self.url = async_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # LIFO: the few connections a steady load needs stay hot (and keep their
            # prepared statements); the rest age out and are pinged when used again.
            kwargs.update(pool_size=10, max_overflow=20, pool_recycle=1800, pool_use_lifo=True)
        if self.dialect == "mysql":
            kwargs["connect_args"] = {"charset": "utf8mb4"}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            _ping_when_idle(self.engine, idle_ping_seconds)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reads = self._sessions
        if self.dialect == "postgresql":
            reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            event.listen(reader.sync_engine, "before_execute", _transaction_before_writes)
            event.listen(reader.sync_engine, "savepoint", _transaction_before_savepoint)
            self._reads = async_sessionmaker(reader, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Counts committed writes made through this object (see cache.ReadCache).
        self.generation = 0

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; nothing is committed."""
        async with self._reads() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any error."""
        try:
            if self._write_lock is None:
                async with self._sessions() as session, session.begin():
                    yield session
                return
            async with self._write_lock, self._sessions() as session, session.begin():
                yield session
        finally:
            # Also on failure: cheap, and a commit that raised may still have landed.
            self.generation += 1

    async def dispose(self) -> None:
        await self.engine.dispose()


def _plain_select(statement: Any) -> bool:
    return bool(getattr(statement, "is_select", False)) and \
        getattr(statement, "_for_update_arg", None) is None


def _in_transaction(conn: Connection) -> None:
    """Leave autocommit for the rest of this checkout: the next statement BEGINs, and the
    session's end rolls it back (the pool restores autocommit-less defaults at checkin)."""
    dbapi_conn = conn.connection.dbapi_connection
    dialect = conn.dialect
    if dbapi_conn is not None and dialect.detect_autocommit_setting(dbapi_conn):
        dialect.set_isolation_level(dbapi_conn,
                                    dialect.default_isolation_level or "READ COMMITTED")


def _transaction_before_writes(conn: Connection, statement: Any, *_args: Any) -> None:
    if not _plain_select(statement):
        _in_transaction(conn)


def _transaction_before_savepoint(conn: Connection, _name: Any) -> None:
    _in_transaction(conn)


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection's life at checkout only after `idle_seconds` unused."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    def fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool drops this connection and checks out another (a fresh one if need be).
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc
        record.info[_LAST_USED] = time.monotonic()

    event.listen(sync_engine.pool, "connect", fresh)
    event.listen(sync_engine.pool, "checkout", checkout)
    event.listen(sync_engine.pool, "checkin", fresh)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
