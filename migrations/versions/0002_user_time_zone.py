"""user time zone

Revision ID: 0002_user_time_zone
Revises: 0001
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_user_time_zone"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add users.time_zone; existing accounts get "" (times shown in UTC)."""
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    """Drop users.time_zone."""
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("time_zone")
