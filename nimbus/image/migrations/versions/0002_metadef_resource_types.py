"""the resource types the metadata definitions catalog knows from the start

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:30:00
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import nimbus.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = ("OS::Glance::Image", "OS::Glance::Snapshot", "OS::Cinder::Volume",
         "OS::Cinder::Snapshot", "OS::Nova::Flavor", "OS::Nova::Aggregate", "OS::Nova::Server",
         "OS::Trove::Instance")


def upgrade() -> None:
    table = sa.table("metadef_resource_type", sa.column("name", sa.String),
                     sa.column("protected", sa.Boolean),
                     sa.column("created_at", nimbus.db.base.UTCDateTime()),
                     sa.column("updated_at", nimbus.db.base.UTCDateTime()))
    now = datetime.now(UTC)
    op.bulk_insert(table, [{"name": n, "protected": True, "created_at": now, "updated_at": now}
                           for n in NAMES])


def downgrade() -> None:
    names = ", ".join(f"'{n}'" for n in NAMES)
    op.execute(f"DELETE FROM metadef_resource_type WHERE name IN ({names})")
