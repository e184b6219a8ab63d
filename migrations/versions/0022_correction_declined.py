"""correction declined: an administrator's answer to a correction request that is not a re-issue

Revision ID: 0022_correction_declined
Revises: 0021_certificate_correction
Create Date: 2026-11-28

An administrator who cannot print what the holder's profile now says (a licence number the board's register does
not show, say) declines the request with a note; the holder reads it on the dashboard and in an email, and may
correct the profile and ask again, which clears it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_correction_declined"
down_revision: str | None = "0021_certificate_correction"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("correction_declined_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("correction_declined_note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch drop rebuilds the table on SQLite, which would drop its
    # page-version triggers (0011).
    op.execute("ALTER TABLE certificates DROP COLUMN correction_declined_note")
    op.execute("ALTER TABLE certificates DROP COLUMN correction_declined_at")
