"""Alembic per service: each service has its own migrations/ and its own version table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from nimbus.db.engine import Database


def alembic_config(service: str, migrations_dir: Path, metadata: MetaData) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["service"] = service
    cfg.attributes["metadata"] = metadata
    return cfg


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def run_env(context: Any) -> None:
    """Called from each service's migrations/env.py with `alembic.context` (a module proxy
    for an EnvironmentContext); the connection comes from upgrade()."""
    cfg = context.config
    connection: Connection = cfg.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=cfg.attributes["metadata"],
        version_table=version_table(cfg.attributes["service"]),
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def upgrade(db: Database, service: str, migrations_dir: Path, metadata: MetaData,
                  revision: str = "heads") -> None:
    cfg = alembic_config(service, migrations_dir, metadata)

    def _run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_run)


async def current(db: Database, service: str, migrations_dir: Path, metadata: MetaData) -> Any:
    from alembic.runtime.migration import MigrationContext

    def _current(connection: Connection) -> Any:
        ctx = MigrationContext.configure(connection, opts={"version_table": version_table(service)})
        return ctx.get_current_heads()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)
