"""integrity: database constraints for the invariants the code relies on

Revision ID: 0010_integrity
Revises: 0009_scale_indexes
Create Date: 2026-11-27

CHECK constraints on ranges, states and enum values (an attempt is open, or graded with its score, time and
pass flag; a revoked certificate has its revocation time and reason; ratings 1-5, scores 0-100, counts never
negative, ...); two unique partial indexes: at most one certificate in force or waiting for approval per learner
and course, and a certificate replaced by one re-issue at most (the existing partial index on
`certificates.supersedes_id` becomes unique); and the keys from an item to its published and file revisions (and
from an attempt to the rules it was taken under) become composite, so they can only name a revision of that same
item (quiz). docs/architecture.md, "Data integrity", lists each one.

Rows are never changed to fit. Before altering anything the upgrade looks for rows that break a new rule; if there
are any it stops, changing nothing, and names the rule and the first rows (MigrationError): an operator decides
what a wrong CE record should say, not a migration. The application has never written such rows, so a site's own
data passes; hand edits or imports from elsewhere may not.

SQLite rebuilds each table to add its constraints (batch mode; the partial indexes are dropped first and made
again after, since a rebuild may not carry their WHERE); PostgreSQL adds them with ALTER TABLE.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kaptrain.migrate import MigrationError

revision: str = "0010_integrity"
down_revision: str | None = "0009_scale_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> [(constraint name, condition)]; the same text as the models' CheckConstraints, frozen here.
CHECKS: dict[str, list[tuple[str, str]]] = {
    "users": [
        ("ck_users_role", "role IN ('learner', 'instructor', 'admin')"),
        ("ck_users_session_version", "session_version >= 1"),
        ("ck_users_totp_secret", "totp_enabled_at IS NULL OR totp_secret IS NOT NULL"),
    ],
    "account_tokens": [
        ("ck_account_tokens_purpose", "purpose IN ('reset_password', 'confirm_email', 'change_email')"),
    ],
    "courses": [
        ("ck_courses_ce_hours", "ce_hours > 0"),
        ("ck_courses_passing_score", "passing_score BETWEEN 1 AND 100"),
        ("ck_courses_min_reading_percent", "min_reading_percent BETWEEN 0 AND 100"),
        ("ck_courses_certificate_approval", "certificate_approval IN ('automatic', 'manual')"),
        (
            "ck_courses_certificate_validity_months",
            "certificate_validity_months IS NULL OR certificate_validity_months >= 1",
        ),
    ],
    "module_revisions": [
        ("ck_module_revisions_number", "number >= 1"),
        ("ck_module_revisions_estimated_minutes", "estimated_minutes >= 1"),
    ],
    "module_progress": [
        ("ck_module_progress_seat_seconds", "seat_seconds >= 0"),
    ],
    "quizzes": [
        ("ck_quizzes_kind", "kind IN ('module', 'final')"),
    ],
    "quiz_settings_revisions": [
        ("ck_quiz_settings_revisions_number", "number >= 1"),
        ("ck_quiz_settings_revisions_draw", "draw >= 1"),
        ("ck_quiz_settings_revisions_passing_score", "passing_score BETWEEN 1 AND 100"),
        ("ck_quiz_settings_revisions_max_attempts", "max_attempts >= 1"),
        ("ck_quiz_settings_revisions_cooldown_hours", "cooldown_hours >= 0"),
        ("ck_quiz_settings_revisions_time_limit_minutes", "time_limit_minutes IS NULL OR time_limit_minutes >= 1"),
        ("ck_quiz_settings_revisions_reveal_answers", "reveal_answers IN ('after_pass', 'always', 'never')"),
    ],
    "question_revisions": [
        ("ck_question_revisions_number", "number >= 1"),
        ("ck_question_revisions_type", "type IN ('single', 'multiple', 'true_false')"),
    ],
    "vignette_revisions": [
        ("ck_vignette_revisions_number", "number >= 1"),
    ],
    "attempts": [
        ("ck_attempts_status", "status IN ('open', 'submitted')"),
        (
            "ck_attempts_open_or_graded",
            "(status = 'open' AND submitted_at IS NULL AND score IS NULL AND passed IS NULL)"
            " OR (status = 'submitted' AND submitted_at IS NOT NULL AND score IS NOT NULL AND passed IS NOT NULL)",
        ),
        ("ck_attempts_score", "score IS NULL OR (score >= 0 AND score <= 100)"),
        ("ck_attempts_passed_by_score", "passed IS NULL OR passed = (score >= passing_score)"),
        ("ck_attempts_passing_score", "passing_score BETWEEN 1 AND 100"),
        ("ck_attempts_number", "number >= 1"),
        ("ck_attempts_active_seconds", "active_seconds >= 0"),
    ],
    "attempt_items": [
        ("ck_attempt_items_position", "position >= 0"),
        ("ck_attempt_items_credit", "credit IS NULL OR (credit >= 0 AND credit <= 1)"),
    ],
    "accommodations": [
        ("ck_accommodations_extra_minutes", "extra_minutes >= 0"),
        ("ck_accommodations_extra_attempts", "extra_attempts >= 0"),
    ],
    "accommodation_changes": [
        ("ck_accommodation_changes_action", "action IN ('granted', 'edited', 'withdrawn')"),
    ],
    "evaluations": [
        (
            "ck_evaluations_ratings",
            "relevance BETWEEN 1 AND 5 AND quality BETWEEN 1 AND 5 AND overall BETWEEN 1 AND 5",
        ),
    ],
    "attestations": [
        ("ck_attestations_hours_claimed", "hours_claimed > 0"),
        ("ck_attestations_active_seconds", "active_seconds >= 0"),
    ],
    "certificates": [
        ("ck_certificates_status", "status IN ('pending', 'active', 'superseded', 'revoked')"),
        ("ck_certificates_issued", "status = 'pending' OR (number IS NOT NULL AND issued_at IS NOT NULL)"),
        (
            "ck_certificates_revoked",
            "(status = 'revoked' AND revoked_at IS NOT NULL AND revocation_reason IS NOT NULL)"
            " OR (status <> 'revoked' AND revoked_at IS NULL AND revocation_reason IS NULL)",
        ),
        (
            "ck_certificates_superseded",
            "(status = 'superseded' AND superseded_at IS NOT NULL)"
            " OR (status <> 'superseded' AND superseded_at IS NULL)",
        ),
        (
            "ck_certificates_revocation_reason",
            "revocation_reason IN"
            " ('issued_in_error', 'requirements_not_met', 'academic_misconduct', 'course_withdrawn', 'other')",
        ),
        ("ck_certificates_hours", "hours > 0 AND hours <= max_hours"),
    ],
    "status_lists": [
        ("ck_status_lists_number", "number >= 0"),
    ],
    "drafts": [
        ("ck_drafts_version", "version >= 1"),
    ],
    "uploads": [
        ("ck_uploads_size", "size_bytes > 0 AND width > 0 AND height > 0"),
    ],
}
# How a table's rows are named in the refusal (every other table: id).
ROW_KEY = {"status_lists": "number"}
# Revisions get a unique (id, owner) for the composite keys below to refer to.
REVISION_OWNERS = {
    "module_revisions": "module_id",
    "question_revisions": "question_id",
    "vignette_revisions": "vignette_id",
    "quiz_settings_revisions": "quiz_id",
}
# table -> [(column, revisions, the column naming the item here)]: the key (column, item) -> revisions (id, owner)
# replaces the plain key column -> revisions.id and keeps its name.
OWN_REVISION: dict[str, list[tuple[str, str, str]]] = {
    "modules": [("published_revision_id", "module_revisions", "id"), ("file_revision_id", "module_revisions", "id")],
    "questions": [
        ("published_revision_id", "question_revisions", "id"),
        ("file_revision_id", "question_revisions", "id"),
    ],
    "vignettes": [
        ("published_revision_id", "vignette_revisions", "id"),
        ("file_revision_id", "vignette_revisions", "id"),
    ],
    "quizzes": [
        ("published_revision_id", "quiz_settings_revisions", "id"),
        ("file_revision_id", "quiz_settings_revisions", "id"),
    ],
    "attempts": [("settings_id", "quiz_settings_revisions", "quiz_id")],
}


def _key(table: str, column: str, revisions: str) -> str:
    return f"fk_{table}_{column}_{revisions}"


def _owner_key(revisions: str) -> str:
    return f"uq_{revisions}_id_{REVISION_OWNERS[revisions]}"


OPEN_ATTEMPT = sa.text("status = 'open'")
CURRENT_CERTIFICATE = sa.text("status IN ('pending', 'active')")
REPLACES_ONE = sa.text("supersedes_id IS NOT NULL")
# (index, table, columns, where): rows that would make a new unique index fail.
UNIQUE = [
    ("uq_certificates_one_current", "certificates", "user_id, course_id", CURRENT_CERTIFICATE.text),
    ("uq_certificates_supersedes_id", "certificates", "supersedes_id", REPLACES_ONE.text),
]
SHOWN = 5  # offending rows named per rule


def _violations(conn: sa.Connection) -> list[str]:
    """Each new rule that rows already break, in words, with the first offending rows."""
    found = []
    for table, checks in CHECKS.items():
        key = ROW_KEY.get(table, "id")
        for name, condition in checks:
            # NOT (condition) is true exactly where the CHECK would fail (a NULL result passes a CHECK).
            rows = conn.execute(
                sa.text(f"SELECT {key} FROM {table} WHERE NOT ({condition}) ORDER BY {key} LIMIT {SHOWN}")  # noqa: S608
            ).scalars()
            ids = ", ".join(str(row) for row in rows)
            if ids:
                found.append(f"{table} {key} {ids}: break {name} ({condition})")
    for table, keys in OWN_REVISION.items():
        for column, revisions, item in keys:
            owner = REVISION_OWNERS[revisions]
            rows = conn.execute(
                sa.text(
                    f"SELECT t.id FROM {table} t WHERE t.{column} IS NOT NULL AND NOT EXISTS"  # noqa: S608
                    f" (SELECT 1 FROM {revisions} r WHERE r.id = t.{column} AND r.{owner} = t.{item})"
                    f" ORDER BY t.id LIMIT {SHOWN}"
                )
            ).scalars()
            ids = ", ".join(str(row) for row in rows)
            if ids:
                found.append(
                    f"{table} id {ids}: {column} names a revision of another item ({_key(table, column, revisions)})"
                )
    for name, table, columns, where in UNIQUE:
        groups = conn.execute(
            sa.text(
                f"SELECT {columns} FROM {table} WHERE {where} GROUP BY {columns} HAVING count(*) > 1"  # noqa: S608
                f" ORDER BY {columns} LIMIT {SHOWN}"
            )
        ).all()
        if groups:
            values = "; ".join(", ".join(str(v) for v in group) for group in groups)
            found.append(f"{table} ({columns}) = {values}: more than one row where {where} ({name})")
    return found


def _drop_partial_indexes() -> None:
    op.drop_index("uq_attempts_one_open", table_name="attempts")
    op.drop_index("ix_certificates_supersedes_id", table_name="certificates")


def upgrade() -> None:
    """Apply this migration (refused, changing nothing, when existing rows break a new rule)."""
    broken = _violations(op.get_bind())
    if broken:
        raise MigrationError(
            "0010_integrity adds database constraints that rows in this database break; nothing was changed. "
            "Correct these rows, then upgrade again:\n  " + "\n  ".join(broken)
        )
    _drop_partial_indexes()
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(op.f(name), condition)
            if table in REVISION_OWNERS:  # before the keys that refer to it
                batch_op.create_unique_constraint(op.f(_owner_key(table)), ["id", REVISION_OWNERS[table]])
    for table, keys in OWN_REVISION.items():
        with op.batch_alter_table(table) as batch_op:
            for column, revisions, item in keys:
                name = op.f(_key(table, column, revisions))
                batch_op.drop_constraint(name, type_="foreignkey")
                owner = REVISION_OWNERS[revisions]
                batch_op.create_foreign_key(name, revisions, [column, item], ["id", owner], ondelete="RESTRICT")
    op.create_index(
        "uq_attempts_one_open",
        "attempts",
        ["user_id", "quiz_id"],
        unique=True,
        sqlite_where=OPEN_ATTEMPT,
        postgresql_where=OPEN_ATTEMPT,
    )
    op.create_index(
        "uq_certificates_supersedes_id",
        "certificates",
        ["supersedes_id"],
        unique=True,
        sqlite_where=REPLACES_ONE,
        postgresql_where=REPLACES_ONE,
    )
    op.create_index(
        "uq_certificates_one_current",
        "certificates",
        ["user_id", "course_id"],
        unique=True,
        sqlite_where=CURRENT_CERTIFICATE,
        postgresql_where=CURRENT_CERTIFICATE,
    )


def downgrade() -> None:
    """Revert this migration (rows are kept as they are)."""
    op.drop_index("uq_certificates_one_current", table_name="certificates")
    op.drop_index("uq_certificates_supersedes_id", table_name="certificates")
    op.drop_index("uq_attempts_one_open", table_name="attempts")
    for table, keys in OWN_REVISION.items():
        with op.batch_alter_table(table) as batch_op:
            for column, revisions, _item in keys:
                name = op.f(_key(table, column, revisions))
                batch_op.drop_constraint(name, type_="foreignkey")
                batch_op.create_foreign_key(name, revisions, [column], ["id"], ondelete="RESTRICT")
    for table, checks in reversed(CHECKS.items()):
        with op.batch_alter_table(table) as batch_op:
            if table in REVISION_OWNERS:
                batch_op.drop_constraint(op.f(_owner_key(table)), type_="unique")
            for name, _condition in reversed(checks):
                batch_op.drop_constraint(op.f(name), type_="check")
    op.create_index(
        "uq_attempts_one_open",
        "attempts",
        ["user_id", "quiz_id"],
        unique=True,
        sqlite_where=OPEN_ATTEMPT,
        postgresql_where=OPEN_ATTEMPT,
    )
    op.create_index(
        "ix_certificates_supersedes_id",
        "certificates",
        ["supersedes_id"],
        unique=False,
        sqlite_where=REPLACES_ONE,
        postgresql_where=REPLACES_ONE,
    )
