"""Migrations keep learners' records: upgrading and downgrading a populated SQLite database loses no row."""

from __future__ import annotations

from sqlalchemy import text

from kaptrain.db import make_engine
from kaptrain.migrate import downgrade, upgrade

NOW = "2026-11-01 10:00:00.000000"
ROWS_AT_0001 = [
    "INSERT INTO users (id, email, full_name, profession, credential, licence_number, jurisdiction, password_hash,"
    " role, is_active, session_version, created_at) VALUES (1, 'a@example.org', 'A', 'x', '', '', '', 'h',"
    " 'learner', 1, 1, :now)",
    "INSERT INTO courses (id, slug, title, description, audience, ce_hours, passing_score, provider,"
    " financial_disclosure, off_label_statement, disclaimer, objectives, is_published, created_at, updated_at)"
    " VALUES (1, 'c', 'C', 'd', 'a', 1, 80, 'p', 'f', 'o', 'd', '[]', 1, :now, :now)",
    "INSERT INTO modules (id, course_id, slug, position, is_retired) VALUES (1, 1, 'm', 1, 0)",
    "INSERT INTO module_revisions (id, module_id, number, title, estimated_minutes, last_reviewed, objectives,"
    " \"references\", body, created_at) VALUES (1, 1, 1, 'M', 10, '2026-11-01', '[]', '[]', 'b', :now)",
    "INSERT INTO enrolments (id, user_id, course_id, enrolled_at) VALUES (1, 1, 1, :now)",
    "INSERT INTO module_progress (id, user_id, module_id, first_opened_at, last_seen_at, seat_seconds)"
    " VALUES (1, 1, 1, :now, :now, 90)",
]
TABLES = ("users", "courses", "modules", "module_revisions", "enrolments", "module_progress")


def counts(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}  # noqa: S608


def test_upgrade_and_downgrade_keep_every_row_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            for statement in ROWS_AT_0001:
                conn.execute(text(statement), {"now": NOW})
        before = counts(engine)
        assert set(before.values()) == {1}
        upgrade(engine)  # rebuilding tables must not fire ON DELETE actions
        assert counts(engine) == before
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1  # switched back on
            seat = conn.execute(text("SELECT seat_seconds FROM module_progress")).scalar_one()
        assert seat == 90
        downgrade(engine, "0001")
        assert counts(engine) == before
    finally:
        engine.dispose()
