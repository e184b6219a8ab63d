"""ended sessions: logging out ends this browser's session only

Revision ID: 0018_ended_sessions
Revises: 0017_audit_subject_index
Create Date: 2026-11-27

Until now logging out ended every session of the account (the only way to make a signed cookie stop working was
to move the account's session version). Each login now gives its cookie a random session id, and logging out
records that id here; "Log out everywhere" still moves the version.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_ended_sessions"
down_revision: str | None = "0017_audit_subject_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_sessions",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_ended_sessions")),
    )
    op.create_index(op.f("ix_ended_sessions_ended_at"), "ended_sessions", ["ended_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ended_sessions_ended_at"), table_name="ended_sessions")
    op.drop_table("ended_sessions")
