"""allocation_ratio in double precision

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inventories") as batch_op:
        batch_op.alter_column("allocation_ratio", type_=sa.Double(), existing_type=sa.Float(),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("inventories") as batch_op:
        batch_op.alter_column("allocation_ratio", type_=sa.Float(), existing_type=sa.Double(),
                              existing_nullable=False)
