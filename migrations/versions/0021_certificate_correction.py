"""certificate correction: a holder's request for a corrected certificate

Revision ID: 0021_certificate_correction
Revises: 0020_certificate_file_history
Create Date: 2026-11-28

A certificate keeps the name, credential and licence it was issued with. A holder who corrects them on the profile
asks for a corrected version from the dashboard; the request waits for an administrator on the Certificates page.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_certificate_correction"
down_revision: str | None = "0020_certificate_file_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("correction_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch drop rebuilds the table on SQLite, which would drop its
    # page-version triggers (0011).
    op.execute("ALTER TABLE certificates DROP COLUMN correction_requested_at")
