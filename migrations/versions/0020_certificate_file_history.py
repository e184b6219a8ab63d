"""certificate file history: the digests of a certificate's earlier renderings

Revision ID: 0020_certificate_file_history
Revises: 0019_course_release
Create Date: 2026-11-28

The verification page tells an uploaded certificate PDF that the site issued from one carrying a genuine credential
inside a PDF someone else made. A re-render replaces the stored file, so the digests of the files it replaced are
kept beside it: a PDF downloaded before a re-render is still recognised.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_certificate_file_history"
down_revision: str | None = "0019_course_release"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificate_files") as batch:
        batch.add_column(sa.Column("earlier_sha256", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("certificate_files") as batch:
        batch.drop_column("earlier_sha256")
