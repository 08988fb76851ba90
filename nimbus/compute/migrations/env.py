from alembic import context

from nimbus.db.migrate import run_env

run_env(context)  # type: ignore[arg-type]
