"""scale indexes: the staff pages at 10,000 learners

Revision ID: 0009_scale_indexes
Revises: 0008_account_security
Create Date: 2026-11-26

Indexes only; no row changes. `attempts (quiz_id, status)` finds a quiz's graded attempts for the item analysis;
`attempt_items (attempt_id, question_revision_id, credit)` lets the item analysis sum a quiz's answers from the
index alone (a covering index) instead of visiting a million rows that also hold the JSON answers;
`certificates (issued_at, status, hours)` serves the completions report's date range and order and gives its
count and CE hours from the index alone; `certificates.supersedes_id` (partial: only certificates that replace
another) finds the certificate that replaced another, the CE report's "superseded by", without reading them all.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_scale_indexes"
down_revision: str | None = "0008_account_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_index("ix_attempts_quiz_id_status", "attempts", ["quiz_id", "status"], unique=False)
    op.create_index(
        "ix_attempt_items_attempt_id_revision_credit",
        "attempt_items",
        ["attempt_id", "question_revision_id", "credit"],
        unique=False,
    )
    op.create_index(
        "ix_certificates_issued_at_status_hours", "certificates", ["issued_at", "status", "hours"], unique=False
    )
    op.create_index(
        "ix_certificates_supersedes_id",
        "certificates",
        ["supersedes_id"],
        unique=False,
        sqlite_where=sa.text("supersedes_id IS NOT NULL"),
        postgresql_where=sa.text("supersedes_id IS NOT NULL"),
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index("ix_certificates_supersedes_id", table_name="certificates")
    op.drop_index("ix_certificates_issued_at_status_hours", table_name="certificates")
    op.drop_index("ix_attempt_items_attempt_id_revision_credit", table_name="attempt_items")
    op.drop_index("ix_attempts_quiz_id_status", table_name="attempts")
