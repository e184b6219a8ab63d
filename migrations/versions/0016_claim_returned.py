"""claim returned: an administrator may return a learner's hours claim instead of approving it

Revision ID: 0016_claim_returned
Revises: 0015_evaluation_practice_change
Create Date: 2026-11-27

A claim waiting for approval can be returned to the learner with a note: the pending certificate and the attestation
are removed (the audit log keeps what was claimed), and the enrolment keeps when and why, shown to the learner
until they attest again. An attestation may carry the learner's own note on how they studied, for the reviewer. Plain columns with defaults (no table rebuild, which on SQLite would drop the page-version
triggers).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_claim_returned"
down_revision: str | None = "0015_evaluation_practice_change"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred trigger events pending on the table altered
    op.add_column("enrolments", sa.Column("claim_returned_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("enrolments", sa.Column("claim_returned_note", sa.Text(), nullable=False, server_default=""))
    op.add_column("attestations", sa.Column("note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE attestations DROP COLUMN note")
    op.execute("ALTER TABLE enrolments DROP COLUMN claim_returned_note")
    op.execute("ALTER TABLE enrolments DROP COLUMN claim_returned_at")
