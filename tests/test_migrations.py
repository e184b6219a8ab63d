"""Migrations keep learners' records: upgrading and downgrading a populated SQLite database loses no row."""

from __future__ import annotations

import pytest
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


ROWS_AT_0006 = [
    "INSERT INTO modules (id, course_id, slug, previous_slugs, position, is_retired) VALUES (2, 1, 'n', '[]', 2, 0)",
    "INSERT INTO module_revisions (id, module_id, number, title, estimated_minutes, last_reviewed, objectives,"
    " \"references\", body, created_at) VALUES (2, 1, 2, 'M two', 10, '2026-11-01', '[]', '[]', 'b2', :now)",
    "INSERT INTO quizzes (id, course_id, module_id, slug, previous_slugs, is_retired, kind, title, draw,"
    " passing_score, max_attempts, cooldown_hours, time_limit_minutes, reveal_answers, partial_credit)"
    " VALUES (1, 1, NULL, 'final', '[]', 0, 'final', 'Final', 2, 75, 3, 24, 60, 'after_pass', 0)",
    "INSERT INTO questions (id, quiz_id, key, position, is_retired) VALUES (1, 1, 'q1', 0, 0)",
    "INSERT INTO questions (id, quiz_id, key, position, is_retired) VALUES (2, 1, 'q2', 1, 0)",
    # q1 was revised, and its second revision carries a different telling of the shared case.
    "INSERT INTO question_revisions (id, question_id, number, type, section, module_slug, vignette_key,"
    " vignette_title, vignette_text, stem, options, explanation, created_at) VALUES (1, 1, 1, 'single', 's', 'n',"
    " 'case-a', 'Case A', 'first telling', 'stem 1', '[]', 'e', :now)",
    "INSERT INTO question_revisions (id, question_id, number, type, section, module_slug, vignette_key,"
    " vignette_title, vignette_text, stem, options, explanation, created_at) VALUES (2, 1, 2, 'single', 's', 'n',"
    " 'case-a', 'Case A', 'second telling', 'stem 1b', '[]', 'e', :now)",
    "INSERT INTO question_revisions (id, question_id, number, type, section, module_slug, vignette_key,"
    " vignette_title, vignette_text, stem, options, explanation, created_at) VALUES (3, 2, 1, 'single', 's', 'm',"
    " 'case-a', 'Case A', 'second telling', 'stem 2', '[]', 'e', :now)",
    "INSERT INTO attempts (id, user_id, quiz_id, number, status, started_at, submitted_at, late, score, passed,"
    " passing_score, active_seconds) VALUES (1, 1, 1, 1, 'submitted', :now, :now, 0, 50, 0, 75, 0)",
    "INSERT INTO attempt_items (id, attempt_id, position, question_revision_id, option_order)"
    " VALUES (1, 1, 0, 1, '[]')",
]


def test_0007_publishes_current_revisions_and_shares_cases(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'at6.sqlite3'}")
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            for statement in ROWS_AT_0001:
                conn.execute(text(statement), {"now": NOW})
        upgrade(engine, "0006_admin")
        with engine.begin() as conn:
            for statement in ROWS_AT_0006:
                conn.execute(text(statement), {"now": NOW})
        upgrade(engine)
        with engine.connect() as conn:
            q = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
            # Module 1 has revisions 1 and 2 (ids 1, 2): the highest is what learners see.
            assert q("SELECT published_revision_id, file_revision_id FROM modules WHERE id = 1") == [(2, 2)]
            assert q("SELECT published_revision_id FROM questions ORDER BY id") == [(2,), (3,)]
            # The quiz's rules became settings revision 1, and the old attempt was taken under it.
            assert q("SELECT number, title, draw, passing_score, time_limit_minutes FROM quiz_settings_revisions") == [
                (1, "Final", 2, 75, 60)
            ]
            assert q("SELECT settings_id FROM attempts") == q("SELECT published_revision_id FROM quizzes")
            # One shared case with two tellings; the attempt item keeps the telling its learner read.
            assert q("SELECT count(*) FROM vignettes") == [(1,)]
            assert q("SELECT number, text FROM vignette_revisions ORDER BY number") == [
                (1, "first telling"),
                (2, "second telling"),
            ]
            item = q("SELECT r.text FROM attempt_items i JOIN vignette_revisions r ON r.id = i.vignette_revision_id")
            assert item == [("first telling",)]
            # Final-assessment questions name their module by id.
            assert q("SELECT question_id, module_id FROM question_revisions ORDER BY id") == [(1, 2), (1, 2), (2, 1)]
        downgrade(engine, "0006_admin")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT title, draw, passing_score FROM quizzes")).all() == [("Final", 2, 75)]
            back = conn.execute(text("SELECT module_slug, vignette_key FROM question_revisions ORDER BY id")).all()
            assert back == [("n", "case-a"), ("n", "case-a"), ("m", "case-a")]
    finally:
        engine.dispose()


def test_0023_adds_the_evidence_answers_and_keeps_the_evaluations_and_their_triggers(tmp_path):
    """Evaluations made before the balance and hours questions keep their answers and read as "not asked"; the page
    versions' triggers (0011) on the table survive the upgrade and the downgrade, which a table rebuild would drop."""
    engine = make_engine(f"sqlite:///{tmp_path / 'at22.sqlite3'}")
    evaluation = (
        "INSERT INTO evaluations (id, user_id, course_id, objectives_met, relevance, quality, overall, free_of_bias,"
        " bias_comment, comments, practice_change, change_plan, submitted_at)"
        " VALUES (1, 1, 1, '{}', 4, 5, 4, 0, 'Brand X', 'Fine.', 'yes', 'Screen more.', :now)"
    )
    triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'evaluations' ORDER BY name"
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            for statement in ROWS_AT_0001:
                conn.execute(text(statement), {"now": NOW})
        upgrade(engine, "0022_correction_declined")
        with engine.begin() as conn:
            conn.execute(text(evaluation), {"now": NOW})
            before = conn.execute(text(triggers)).all()
        assert before
        upgrade(engine, "0023_evaluation_evidence")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT evidence_balanced, evidence_comment, hours_spent FROM evaluations")).one()
            assert tuple(row) == ("", "", None)
            assert conn.execute(text(triggers)).all() == before
        downgrade(engine, "0022_correction_declined")
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT bias_comment, comments, practice_change, change_plan FROM evaluations"))
            assert kept.all() == [("Brand X", "Fine.", "yes", "Screen more.")]
            assert conn.execute(text(triggers)).all() == before
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("table", "first", "last", "gone"),
    [
        ("courses", "0018_ended_sessions", "0019_course_release", {"released_on", "review_by", "team"}),
        (
            "certificates",
            "0020_certificate_file_history",
            "0022_correction_declined",
            {"correction_requested_at", "correction_declined_at", "correction_declined_note"},
        ),
    ],
)
def test_columns_added_after_the_page_versions_come_and_go_with_the_tables_triggers(tmp_path, table, first, last, gone):
    """Columns come and go without a table rebuild, which on SQLite drops the page versions' triggers (0011) on
    the table: a downgrade and an upgrade again keep them."""
    engine = make_engine(f"sqlite:///{tmp_path / 'columns.sqlite3'}")
    triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t ORDER BY name"
    try:
        upgrade(engine, first)
        with engine.connect() as conn:
            before = conn.execute(text(triggers), {"t": table}).all()
        assert before
        upgrade(engine, last)
        downgrade(engine, first)
        with engine.connect() as conn:
            assert conn.execute(text(triggers), {"t": table}).all() == before
            columns = conn.execute(text("SELECT name FROM pragma_table_info(:t)"), {"t": table}).scalars()
            assert not set(columns) & gone
        upgrade(engine, last)
        with engine.connect() as conn:
            assert conn.execute(text(triggers), {"t": table}).all() == before
    finally:
        engine.dispose()
