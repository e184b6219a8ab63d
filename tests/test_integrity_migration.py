"""Migration 0010_integrity on a database that holds a site's records (SQLite, or PostgreSQL via TEST_DATABASE_URL).

A scratch database (a temporary SQLite file, or a new PostgreSQL database beside the test database, dropped
afterwards) gets a learner's whole course through the real services: graded and open attempts, a certificate
issued, revoked, issued again by hand and re-issued. Going down to 0009 and up again keeps every row and every
value. Rows that break a new rule (written by hand at 0009, as an old import might have) make the upgrade stop
before it changes anything, naming each rule and the rows; once they are corrected, the upgrade goes through.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, MetaData, inspect, text

from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import RevocationReason
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.courses import services as courses
from kaptrain.migrate import MigrationError, downgrade, upgrade
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, make_test_app
from tests.factories import certified, enrolled, make_user, pass_quiz, quiz, start
from tests.scratch_database import scratch_database

BEFORE = "0009_scale_indexes"


@pytest.fixture(scope="module")
def scratch_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database of the kind the suite runs on, removed afterwards."""
    yield from scratch_database(tmp_path_factory.mktemp("integrity"), "integrity")


@pytest.fixture(scope="module")
def site(scratch_url: str) -> Iterator[Flask]:
    """An app on the scratch database, migrated, with one learner's records in every state a certificate has."""
    app = make_test_app(scratch_url)
    database = app.extensions["kaptrain.db"]
    upgrade(database.engine)
    with app.app_context():
        session = database.new_session()
        import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
        holder = make_user(session, full_name="Rae Records, LMFT")
        enrolled(session, holder)
        first = certified(session, holder)
        certificates.revoke(session, first, RevocationReason.ISSUED_IN_ERROR, "test", actor_label="cli:test")
        again = certificates.issue_without_course(session, holder, first.course, "Record from the old system")
        certificates.reissue(session, again, actor_label="cli:test")
        other = make_user(session)
        enrolled(session, other)
        pass_quiz(session, other, "alpha-quiz")
        beta = quiz(session, "beta-quiz")
        assert beta.module is not None
        courses.open_module(session, other.id, beta.module)
        start(session, other, beta)  # left open
        session.commit()
        session.close()
    yield app
    database.engine.dispose()


def snapshot(engine: Engine) -> dict[str, list[dict[str, object]]]:
    """Every row of every table by column name (the PDFs by length), in key order: what a migration must keep."""
    meta = MetaData()
    meta.reflect(bind=engine)
    out = {}
    with engine.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            if name == "alembic_version":
                continue
            rows = conn.execute(table.select().order_by(*table.primary_key.columns)).mappings().all()
            out[name] = [{k: len(v) if isinstance(v, bytes) else v for k, v in row.items()} for row in rows]
    return out


def as_at(rows: list[dict[str, object]], like: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows with only the columns `like` has (a later migration may have added some)."""
    columns = set(like[0]) if like else set()
    return [{k: v for k, v in row.items() if k in columns} for row in rows]


def version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def checks(engine: Engine) -> set[str]:
    inspector = inspect(engine)
    return {c["name"] for t in ("attempts", "certificates") for c in inspector.get_check_constraints(t)}


def test_down_to_0009_and_up_again_keeps_every_row(site: Flask) -> None:
    engine = site.extensions["kaptrain.db"].engine
    snapshot_version = version(engine)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM certificates ORDER BY status")).scalars().all()
        attempts = conn.execute(text("SELECT status, count(*) FROM attempts GROUP BY status ORDER BY status")).all()
    assert statuses == ["active", "revoked", "superseded"]
    assert attempts == [("open", 1), ("submitted", 4)]
    # 0014 refuses to forget random status-list slots that signed credentials name: these rows are as 0013 made them.
    with pytest.raises(MigrationError, match="0014_random_status_slots cannot be undone: 3 certificates"):
        downgrade(engine, BEFORE)
    assert version(engine) == snapshot_version
    with engine.begin() as conn:
        conn.execute(text("UPDATE certificates SET status_slot = id"))
    kept = snapshot(engine)
    downgrade(engine, BEFORE)
    assert version(engine) == BEFORE and not checks(engine) & {"ck_attempts_open_or_graded", "ck_certificates_hours"}
    down = snapshot(engine)["certificates"]
    assert down == as_at(kept["certificates"], down)  # 0013 added certificates.time_zone, which 0009 has not
    upgrade(engine)
    assert {"ck_attempts_open_or_graded", "ck_certificates_revoked", "ck_certificates_hours"} <= checks(engine)
    after = snapshot(engine)
    # Later migrations may add columns (0011 adds users.pages_version): compare the tables 0010 constrains.
    # 0015's and 0023's evaluation answers are dropped by a downgrade below them, and come back empty ("not asked").
    dropped = {"practice_change", "change_plan", "evidence_balanced", "evidence_comment", "hours_spent"}
    for table in ("attempts", "attempt_items", "certificates", "certificate_files", "attestations", "evaluations"):
        assert [_without(r, dropped) for r in after[table]] == [_without(r, dropped) for r in kept[table]], table
    assert {r["practice_change"] for r in after["evaluations"]} == {""}


def _without(row: dict[str, object], columns: set[str]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k not in columns}


def test_rows_that_break_a_new_rule_stop_the_upgrade_before_it_changes_anything(site: Flask) -> None:
    engine = site.extensions["kaptrain.db"].engine
    downgrade(engine, BEFORE)
    with engine.begin() as conn:
        graded = conn.execute(text("SELECT min(id) FROM attempts WHERE status = 'submitted'")).scalar_one()
        revoked = conn.execute(text("SELECT id FROM certificates WHERE status = 'revoked'")).scalar_one()
        conn.execute(text("UPDATE attempts SET score = NULL WHERE id = :id"), {"id": graded})
        conn.execute(
            text(
                "UPDATE certificates SET status = 'active', revoked_at = NULL, revocation_reason = NULL WHERE id = :id"
            ),
            {"id": revoked},
        )
        conn.execute(text("UPDATE evaluations SET relevance = 9"))
        module, own = conn.execute(text("SELECT id, file_revision_id FROM modules ORDER BY id LIMIT 1")).one()
        conn.execute(
            text("UPDATE modules SET file_revision_id = (SELECT max(id) FROM module_revisions WHERE module_id <> :m)"
                 " WHERE id = :m"),
            {"m": module},
        )  # fmt: skip
    broken = snapshot(engine)
    with pytest.raises(MigrationError) as refused:
        upgrade(engine)
    message = str(refused.value)
    assert "nothing was changed" in message
    assert f"attempts id {graded}: break ck_attempts_open_or_graded" in message
    assert "ck_evaluations_ratings" in message
    assert "certificates (user_id, course_id)" in message and "uq_certificates_one_current" in message
    assert f"modules id {module}: file_revision_id names a revision of another item" in message
    assert "ck_attempts_score" not in message  # only the rules that rows break are named
    assert version(engine) == BEFORE and not checks(engine) & {"ck_attempts_open_or_graded"}
    assert snapshot(engine) == broken
    with engine.begin() as conn:  # the operator corrects the rows
        conn.execute(text("UPDATE attempts SET score = 100 WHERE id = :id"), {"id": graded})
        conn.execute(
            text(
                "UPDATE certificates SET status = 'revoked', revoked_at = issued_at, revocation_reason = 'other'"
                " WHERE id = :id"
            ),
            {"id": revoked},
        )
        conn.execute(text("UPDATE evaluations SET relevance = 5"))
        conn.execute(text("UPDATE modules SET file_revision_id = :r WHERE id = :m"), {"r": own, "m": module})
    upgrade(engine)
    assert "ck_attempts_open_or_graded" in checks(engine)


def test_the_cli_says_why_in_one_line_per_rule_without_a_traceback(site: Flask) -> None:
    engine = site.extensions["kaptrain.db"].engine
    downgrade(engine, BEFORE)
    with engine.begin() as conn:
        conn.execute(text("UPDATE attestations SET hours_claimed = 0"))
    result = site.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert "ck_attestations_hours_claimed" in result.output and "Traceback" not in result.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE attestations SET hours_claimed = 3.5"))
    assert site.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
    assert version(engine) != BEFORE
