"""Developer helper: autogenerate a migration for one service against a scratch SQLite.

    python -m nimbus.db.revision identity "add widgets"
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from nimbus.db.engine import Database
from nimbus.db.migrate import alembic_config, upgrade


async def main(service: str, message: str) -> None:
    models = importlib.import_module(f"nimbus.{service}.models")
    package = importlib.import_module(f"nimbus.{service}")
    migrations = Path(str(package.__file__)).parent / "migrations"
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/scratch.db")
        await upgrade(db, service, migrations, models.Base.metadata)
        cfg = alembic_config(service, migrations, models.Base.metadata)

        def _revise(connection: Connection) -> None:
            cfg.attributes["connection"] = connection
            command.revision(cfg, message=message, autogenerate=True)

        async with db.engine.begin() as conn:
            await conn.run_sync(_revise)
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
