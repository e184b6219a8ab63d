"""evaluation evidence: balance and evidence of the content, and the time the learner spent on the course

Revision ID: 0023_evaluation_evidence
Revises: 0022_correction_declined
Create Date: 2026-11-29

A CE accreditation review asked the evaluation two more questions: whether the content was evidence-based and
balanced, and clear about what is established and what is not, including off-label use ("yes" | "partly" | "no",
with a comment on "partly" or "no"); and about how many hours the learner spent on the course, reading outside the
site included (optional). Evaluations made before keep empty answers ("not asked") and no hours.

Added as plain columns, as 0015 did on this table, not in a batch: a batch drop on SQLite rebuilds the table, which
would drop its page-version triggers (0011). The range of the hours (more than 0, at most 100, quarter hours) is
checked by the service: a CHECK constraint would need that rebuild too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_evaluation_evidence"
down_revision: str | None = "0022_correction_declined"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred trigger events pending on the table altered
    op.add_column(
        "evaluations", sa.Column("evidence_balanced", sa.String(length=10), nullable=False, server_default="")
    )
    op.add_column("evaluations", sa.Column("evidence_comment", sa.Text(), nullable=False, server_default=""))
    op.add_column("evaluations", sa.Column("hours_spent", sa.Numeric(precision=5, scale=2), nullable=True))


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE evaluations DROP COLUMN hours_spent")
    op.execute("ALTER TABLE evaluations DROP COLUMN evidence_comment")
    op.execute("ALTER TABLE evaluations DROP COLUMN evidence_balanced")
