"""page versions: what a learner's pages show is versioned by the database itself

Revision ID: 0011_page_versions
Revises: 0010_integrity
Create Date: 2026-11-26

`users.pages_version` counts changes to what one learner's pages show; the one row of `cache_epochs` ("pages")
counts changes to what every learner's pages show (content, quiz rules, course and site settings). Triggers keep
both, so no code path (ORM, Core, a bulk statement or SQL typed by hand) can change a page without changing its
version: kaptrain.pagecache keeps rendered learner pages under those two numbers.

The table lists are this migration's copy of kaptrain.pagecache's (a migration must not change when the code
does); tests/test_page_cache.py checks that the database's triggers match the code's lists.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_page_versions"
down_revision: str | None = "0010_integrity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: how a row names its learner ({row} is NEW or OLD)
LEARNER_TABLES = {
    "accommodations": "{row}.user_id",
    "attempts": "{row}.user_id",
    "attempt_items": "(SELECT user_id FROM attempts WHERE attempts.id = {row}.attempt_id)",
    "attestations": "{row}.user_id",
    "certificates": "{row}.user_id",
    "enrolments": "{row}.user_id",
    "evaluations": "{row}.user_id",
    "module_progress": "{row}.user_id",
}
# Columns whose changes no page shows: the module page's clocks, moved on every view and heartbeat.
UNSHOWN_COLUMNS = {"module_progress": {"last_seen_at", "last_heartbeat_at"}}
# An attempt's items are inserted with the attempt itself (whose insert is counted): only later changes count.
UPDATED_ONLY = {"attempt_items"}
GLOBAL_TABLES = (
    "courses",
    "modules",
    "module_revisions",
    "questions",
    "question_revisions",
    "quizzes",
    "quiz_settings_revisions",
    "settings",
    "vignettes",
    "vignette_revisions",
)
# users: a change to any column but these changes the learner's own pages (name, role, time zone, email ...).
USER_UNSHOWN = {"last_login_at", "totp_last_counter", "pages_version"}


def _columns(table: str, leave_out: set[str]) -> list[str]:
    return [c["name"] for c in sa.inspect(op.get_bind()).get_columns(table) if c["name"] not in leave_out]


def _sqlite_triggers() -> list[str]:
    bump_user = "UPDATE users SET pages_version = pages_version + 1 WHERE id IN ({who});"
    statements = []
    for table, who in LEARNER_TABLES.items():
        unshown = UNSHOWN_COLUMNS.get(table)
        of = f" OF {', '.join(_columns(table, unshown))}" if unshown else ""
        new, old = bump_user.format(who=who.format(row="NEW")), bump_user.format(who=who.format(row="OLD"))
        both = bump_user.format(who=f"{who.format(row='OLD')}, {who.format(row='NEW')}")  # one row: one bump
        if table not in UPDATED_ONLY:
            statements.append(f"CREATE TRIGGER pages_{table}_insert AFTER INSERT ON {table} BEGIN {new} END")
        statements += [
            f"CREATE TRIGGER pages_{table}_update AFTER UPDATE{of} ON {table} BEGIN {both} END",
            f"CREATE TRIGGER pages_{table}_delete AFTER DELETE ON {table} BEGIN {old} END",
        ]
    bump_all = "UPDATE cache_epochs SET version = version + 1 WHERE name = 'pages';"
    for table in GLOBAL_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER pages_{table}_{event.lower()} AFTER {event} ON {table} BEGIN {bump_all} END"
            )
    shown = ", ".join(_columns("users", USER_UNSHOWN))
    statements.append(
        f"CREATE TRIGGER pages_users_update AFTER UPDATE OF {shown} ON users "
        "BEGIN UPDATE users SET pages_version = pages_version + 1 WHERE id = NEW.id; END"
    )
    return statements


# On PostgreSQL the versions move at COMMIT, after every other row the transaction changes: the users row (and the
# epoch row) is then always the last lock a transaction takes, so two transactions of one learner that lock their
# other rows in different orders (a heartbeat: clock then progress; a quiz submission: attempt then clock) never
# wait for each other in a circle. SQLite has one writer at a time and no such question.
DEFERRED = "DEFERRABLE INITIALLY DEFERRED"


def _postgresql_triggers() -> list[str]:
    statements = []
    for table, who in LEARNER_TABLES.items():
        new, old = who.format(row="NEW"), who.format(row="OLD")
        statements.append(
            f"CREATE FUNCTION pages_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "UPDATE users SET pages_version = pages_version + 1 WHERE id IN ("
            f"CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE {old} END, CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE {new} END"
            "); RETURN NULL; END $$"
        )
        unshown = UNSHOWN_COLUMNS.get(table)
        of = f" OF {', '.join(_columns(table, unshown))}" if unshown else ""
        insert = "" if table in UPDATED_ONLY else "INSERT OR "
        statements.append(
            f"CREATE CONSTRAINT TRIGGER pages_{table} AFTER {insert}UPDATE{of} OR DELETE ON {table} "
            f"{DEFERRED} FOR EACH ROW EXECUTE FUNCTION pages_{table}()"
        )
    statements.append(
        "CREATE FUNCTION pages_epoch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE cache_epochs SET version = version + 1 WHERE name = 'pages'; RETURN NULL; END $$"
    )
    for table in GLOBAL_TABLES:
        statements.append(
            f"CREATE CONSTRAINT TRIGGER pages_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"{DEFERRED} FOR EACH ROW EXECUTE FUNCTION pages_epoch()"
        )
    statements.append(
        "CREATE FUNCTION pages_users() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "NEW.pages_version := OLD.pages_version + 1; RETURN NEW; END $$"
    )
    shown = ", ".join(_columns("users", USER_UNSHOWN))
    statements.append(
        f"CREATE TRIGGER pages_users BEFORE UPDATE OF {shown} ON users FOR EACH ROW EXECUTE FUNCTION pages_users()"
    )
    return statements


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("pages_version", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "cache_epochs",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_epochs")),
    )
    op.execute("INSERT INTO cache_epochs (name, version) VALUES ('pages', 0)")
    dialect = op.get_bind().dialect.name
    for statement in _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    """Revert this migration."""
    if op.get_bind().dialect.name == "postgresql":
        for table in (*LEARNER_TABLES, *GLOBAL_TABLES, "users"):
            op.execute(f"DROP TRIGGER IF EXISTS pages_{table} ON {table}")
        for function in (*LEARNER_TABLES, "epoch", "users"):
            op.execute(f"DROP FUNCTION IF EXISTS pages_{function}()")
    else:
        for table in (*LEARNER_TABLES, *GLOBAL_TABLES, "users"):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS pages_{table}_{event}")
    op.drop_table("cache_epochs")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pages_version")
