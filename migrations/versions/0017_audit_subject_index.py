"""audit subject index: a record's history is looked up by its subject

Revision ID: 0017_audit_subject_index
Revises: 0016_claim_returned
Create Date: 2026-11-27

The CE report names who issued each certificate and why fewer hours were certified, from the audit log, a batch
of certificates at a time; a person's page lists the entries about them. Both look entries up by subject.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_audit_subject_index"
down_revision: str | None = "0016_claim_returned"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_subject", "audit_log", ["subject_type", "subject_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
