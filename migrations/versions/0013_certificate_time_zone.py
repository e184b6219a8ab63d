"""certificate time zone: a certificate's dates are the days in the holder's time zone, fixed at issue

Revision ID: 0013_certificate_time_zone
Revises: 0012_sealed_two_factor_secrets
Create Date: 2026-11-27

Certificates printed UTC dates, while the learner's pages show dates in the learner's time zone: a course
completed at 22:16 in Toronto was "26 November" on the dashboard and "November 27" on the certificate. A
certificate now keeps the holder's time zone as it was when the certificate was made (with the name, licence and
the rest it copies), and every place that shows its dates (PDF, email, verification page, API, CE report) shows the
days in that zone. Certificates from before get "UTC": the dates they were printed with. Added as a plain column
(no table rebuild, which on SQLite would drop the page-version triggers); nullable in the schema, always set by
the code.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_certificate_time_zone"
down_revision: str | None = "0012_sealed_two_factor_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("certificates", sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.execute("UPDATE certificates SET time_zone = 'UTC'")


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE certificates DROP COLUMN time_zone")
