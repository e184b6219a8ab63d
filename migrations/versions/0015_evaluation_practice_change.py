"""evaluation practice change: the commitment-to-change question CE accreditors expect on an evaluation

Revision ID: 0015_evaluation_practice_change
Revises: 0014_random_status_slots
Create Date: 2026-11-27

The evaluation asks whether the learner will change their practice as a result of the course, and what they plan
to change. Evaluations made before keep empty answers ("not asked"). Added as plain columns with defaults (no
table rebuild, which on SQLite would drop the page-version triggers).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_evaluation_practice_change"
down_revision: str | None = "0014_random_status_slots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred trigger events pending on the table altered
    op.add_column("evaluations", sa.Column("practice_change", sa.String(length=20), nullable=False, server_default=""))
    op.add_column("evaluations", sa.Column("change_plan", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE evaluations DROP COLUMN change_plan")
    op.execute("ALTER TABLE evaluations DROP COLUMN practice_change")
