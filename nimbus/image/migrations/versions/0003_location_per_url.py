"""an image may have several locations in one store (http locations added by users)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:10:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("image_location", schema=None) as batch_op:
        batch_op.drop_constraint("uq_image_location_image_id", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("image_location", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_image_location_image_id", ["image_id", "store"])
