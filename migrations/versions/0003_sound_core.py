"""sound core: derived completion, per-course quiz slugs, renames, retired quizzes, active time, RESTRICT keys

Revision ID: 0003_sound_core
Revises: 0002_user_time_zone
Create Date: 2026-11-26

Completion is now derived from attempts and read marks, so the completed_at stamps go. CE records are
never deleted by a cascade: every foreign key from learners' records (and from content they point at)
becomes RESTRICT. Works on SQLite (batch copy-and-move) and PostgreSQL (ALTER TABLE).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sound_core"
down_revision: str | None = "0002_user_time_zone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referred table): the keys that become RESTRICT (they were CASCADE).
KEYS = [
    ("modules", "course_id", "courses"),
    ("module_revisions", "module_id", "modules"),
    ("enrolments", "user_id", "users"),
    ("enrolments", "course_id", "courses"),
    ("module_progress", "user_id", "users"),
    ("module_progress", "module_id", "modules"),
    ("quizzes", "course_id", "courses"),
    ("quizzes", "module_id", "modules"),
    ("questions", "quiz_id", "quizzes"),
    ("question_revisions", "question_id", "questions"),
    ("attempts", "user_id", "users"),
    ("attempts", "quiz_id", "quizzes"),
    ("attempt_items", "attempt_id", "attempts"),
    ("accommodations", "user_id", "users"),
    ("accommodations", "quiz_id", "quizzes"),
]
OPEN_ATTEMPT = sa.text("status = 'open'")


def _set_ondelete(ondelete: str) -> None:
    for table, column, referred in KEYS:
        name = f"fk_{table}_{column}_{referred}"
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")
            batch.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)


def upgrade() -> None:
    """Apply this migration."""
    # SQLite's batch mode rebuilds tables and may not carry a partial index's WHERE: drop it, then recreate.
    op.drop_index("uq_attempts_one_open", table_name="attempts")
    with op.batch_alter_table("courses") as batch:
        batch.add_column(sa.Column("min_reading_percent", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("modules") as batch:
        batch.add_column(sa.Column("previous_slugs", sa.JSON(), server_default="[]", nullable=False))
    with op.batch_alter_table("enrolments") as batch:
        batch.drop_column("completed_at")
    with op.batch_alter_table("module_progress") as batch:
        batch.drop_column("completed_at")
    with op.batch_alter_table("quizzes") as batch:
        batch.drop_constraint("uq_quizzes_slug", type_="unique")
        batch.drop_constraint("uq_quizzes_module_id", type_="unique")
        batch.create_unique_constraint("uq_quizzes_course_id_slug", ["course_id", "slug"])
        batch.create_index("ix_quizzes_module_id", ["module_id"])
        batch.add_column(sa.Column("previous_slugs", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("is_retired", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("active_seconds", sa.Integer(), server_default="0", nullable=False))
    _set_ondelete("RESTRICT")
    op.create_index(
        "uq_attempts_one_open",
        "attempts",
        ["user_id", "quiz_id"],
        unique=True,
        sqlite_where=OPEN_ATTEMPT,
        postgresql_where=OPEN_ATTEMPT,
    )
    op.create_table(
        "activity_clocks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("last_credit_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_activity_clocks_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_activity_clocks")),
    )


def downgrade() -> None:
    """Revert this migration (completion stamps come back empty: they were derived data)."""
    op.drop_table("activity_clocks")
    op.drop_index("uq_attempts_one_open", table_name="attempts")
    _set_ondelete("CASCADE")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("active_seconds")
    with op.batch_alter_table("quizzes") as batch:
        batch.drop_column("is_retired")
        batch.drop_column("previous_slugs")
        batch.drop_index("ix_quizzes_module_id")
        batch.drop_constraint("uq_quizzes_course_id_slug", type_="unique")
        batch.create_unique_constraint("uq_quizzes_module_id", ["module_id"])
        batch.create_unique_constraint("uq_quizzes_slug", ["slug"])
    with op.batch_alter_table("module_progress") as batch:
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("enrolments") as batch:
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("modules") as batch:
        batch.drop_column("previous_slugs")
    with op.batch_alter_table("courses") as batch:
        batch.drop_column("min_reading_percent")
    op.create_index(
        "uq_attempts_one_open",
        "attempts",
        ["user_id", "quiz_id"],
        unique=True,
        sqlite_where=OPEN_ATTEMPT,
        postgresql_where=OPEN_ATTEMPT,
    )
