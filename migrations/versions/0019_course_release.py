"""course release: an enduring course's release and review dates, and its team

Revision ID: 0019_course_release
Revises: 0018_ended_sessions
Create Date: 2026-11-28

CE standards for enduring material ask the course page to say when the course was released, when its content
is due for review, and who planned, wrote and reviewed it (course.yaml's released_on, review_by and team).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_course_release"
down_revision: str | None = "0018_ended_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courses") as batch:
        batch.add_column(sa.Column("released_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("review_by", sa.Date(), nullable=True))
        batch.add_column(sa.Column("team", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch drop rebuilds the table on SQLite, which would drop its
    # page-version triggers (0011).
    for column in ("team", "review_by", "released_on"):
        op.execute(f"ALTER TABLE courses DROP COLUMN {column}")
