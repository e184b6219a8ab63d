"""Every query a page request makes can use an index on the big tables (PostgreSQL only).

Each main learner and staff page is requested through the test client, on a fixture course with learners at
every stage, while a `before_cursor_execute` listener records the statements (and their parameters). Each one
is then planned again with `EXPLAIN (FORMAT JSON)`, and no plan may read the whole of attempts, attempt_items,
module_progress, enrolments or certificates: no Seq Scan of them, and no index scan without an index condition
(which walks the whole index, a sequential scan by another name).

On tables this small PostgreSQL prefers a sequential scan whatever the indexes, since reading a few pages is
cheaper than any index. So the plans are made with `SET LOCAL enable_seqscan = off` (in a savepoint that is
rolled back): the planner then uses an index whenever one can serve the query, and a Seq Scan is left only
where no index could, which is what would make the page read the whole table at 10,000 learners. SQLite has no
comparable planner switch; this file runs in the PostgreSQL pass of CI (TEST_DATABASE_URL) and is skipped on
SQLite."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role
from kaptrain.courses import services as courses
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.factories import (
    certified,
    complete_learning,
    correct_answers,
    enrolled,
    make_user,
    pass_quiz,
    quiz,
    start,
)

BIG_TABLES = frozenset({"attempts", "attempt_items", "module_progress", "enrolments", "certificates"})
PLANNED = re.compile(r"\s*(SELECT|WITH|UPDATE|DELETE)\b", re.I)
COURSE = "/courses/demo-course"


@pytest.fixture(autouse=True)
def _postgresql_only(app: Flask) -> None:
    if app.extensions["kaptrain.db"].engine.dialect.name != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL (set TEST_DATABASE_URL)")


@contextmanager
def recording(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Collect (statement, parameters) of every query that could read a table while the block runs."""
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if PLANNED.match(statement) and not executemany:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


# Nodes that read all of their input before passing anything on: below them a LIMIT no longer stops a scan early.
BLOCKING = frozenset({"Sort", "Incremental Sort", "Aggregate", "Hash", "Materialize", "WindowAgg", "SetOp", "Unique"})


def whole_table_reads(plan: dict[str, Any], paged: bool = False, whole_index_ok: bool = False) -> Iterator[str]:
    """The plan's nodes that read all of a big table: a Seq Scan, or an index scan with no condition (unless a
    LIMIT stops it after a page, or the page is meant to total the whole table, `whole_index_ok`)."""
    kind = plan["Node Type"]
    table = plan.get("Relation Name")
    if table in BIG_TABLES:
        if kind == "Seq Scan":
            yield f"Seq Scan on {table}"
        elif (
            kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in plan and not paged and not whole_index_ok
        ):
            yield f"{kind} on {table} using {plan['Index Name']} with no index condition"
    paged = (paged or kind == "Limit") and kind not in BLOCKING
    for child in plan.get("Plans", []):
        yield from whole_table_reads(child, paged, whole_index_ok)


def explain(connection: Connection, statement: str, parameters: Any) -> dict[str, Any]:
    """The plan PostgreSQL would use with sequential scans discouraged (see the module docstring)."""
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        raw = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    finally:
        savepoint.rollback()
    document = json.loads(raw) if isinstance(raw, str) else raw
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


@pytest.fixture
def check(app: Flask, client: FlaskClient) -> Callable[..., list[str]]:
    """Request a page, then plan each of its queries; returns the problems found (empty: all good)."""
    database = app.extensions["kaptrain.db"]

    def _check(
        method: str, url: str, status: int | None = 200, whole_index_ok: bool = False, **kwargs: Any
    ) -> list[str]:
        with recording(database.engine) as seen:
            response = client.open(url, method=method, **kwargs)
            body = response.get_data()  # a streamed CSV runs its queries as it is read
        assert status is None or response.status_code == status, (url, response.status_code, body[:300])
        assert seen, f"{url} ran no query"
        problems = []
        for statement, parameters in seen:
            plan = explain(database.bind, statement, parameters)
            for problem in whole_table_reads(plan, whole_index_ok=whole_index_ok):
                problems.append(f"{method} {url}: {problem}\n    {' '.join(statement.split())[:400]}")
        return problems

    return _check


@pytest.fixture
def population(app: Flask, db: Session) -> dict[str, Any]:
    """Learners at every stage: one certified, one stuck on a quiz, one part way, one not started."""
    with app.app_context():  # issuing reads the site's settings, and its email goes out at the commit
        done = make_user(db, full_name="Cora Certified")
        enrolled(db, done)
        certificate = certified(db, done)
        stuck = make_user(db, full_name="Sam Stuck")
        enrolled(db, stuck)
        courses.open_module(db, stuck.id, quiz(db, "alpha-quiz").module)  # type: ignore[arg-type]
        for _ in range(2):
            attempt = start(db, stuck, quiz(db, "alpha-quiz"))
            quizzes.submit_attempt(db, attempt, correct_answers(attempt, right=False))
        finished = make_user(db, full_name="Fin Finished")
        enrolled(db, finished)
        complete_learning(db, finished)
        enrolled(db, make_user(db, full_name="Nell New"), acknowledged=False)
        db.commit()
    return {"certified": done, "certificate": certificate, "stuck": stuck}


def test_learner_pages_read_no_big_table_whole(client, db, login, check, population):
    learner = make_user(db, full_name="Lee Learner")
    enrolled(db, learner)
    pass_quiz(db, learner, "alpha-quiz")
    db.commit()
    login(learner)
    problems = []
    for url in ("/courses", COURSE, "/dashboard", f"{COURSE}/modules/alpha", f"{COURSE}/modules/beta",
                f"{COURSE}/quizzes/alpha-quiz", f"{COURSE}/transcript"):  # fmt: skip
        problems += check("GET", url)
    problems += check("POST", f"{COURSE}/modules/beta/heartbeat")
    problems += check("GET", f"{COURSE}/quizzes/beta-quiz")
    problems += check("POST", f"{COURSE}/quizzes/beta-quiz/start", status=302)
    attempt = db.scalar(select(Attempt).where(Attempt.user_id == learner.id, Attempt.status == AttemptStatus.OPEN))
    assert attempt is not None
    db.refresh(attempt)
    problems += check("GET", f"/attempts/{attempt.id}")
    answers = correct_answers(attempt)
    problems += check("POST", f"/attempts/{attempt.id}/submit", status=302, data=answers)
    problems += check("GET", f"/attempts/{attempt.id}/result")
    client.post("/logout")
    login(population["certified"])
    certificate = population["certificate"]
    problems += check("GET", "/dashboard")
    # The PDF is rendered by a background job: stored or still being prepared, the page looks it up the same way.
    problems += check("GET", f"/certificates/{certificate.id}.pdf", status=None)
    problems += check("GET", f"/certificates/{certificate.id}.json")
    assert not problems, "\n".join(problems)


def test_staff_pages_read_no_big_table_whole(app, client, db, login, check, population, monkeypatch):
    monkeypatch.setitem(app.config, "EVALUATION_MIN_GROUP", 1)  # the evaluation pages show and export their rows
    login(make_user(db, role=Role.INSTRUCTOR))
    problems = []
    for url in (
        "/instructor/quizzes",
        "/instructor/courses/demo-course/quizzes/alpha-quiz/analysis",
        "/instructor/courses/demo-course/quizzes/alpha-quiz/analysis.csv",
        "/instructor/courses/demo-course/quizzes/demo-final/analysis",
        "/instructor/courses/demo-course/learners",
        "/instructor/courses/demo-course/learners?stuck=1",
        "/instructor/courses/demo-course/learners?name=sam&stuck=1",
        "/instructor/courses/demo-course/learners?step=module-1&page=2",
        "/instructor/courses/demo-course/evaluations",
        "/instructor/courses/demo-course/evaluations.csv",
    ):
        problems += check("GET", url)
    client.post("/logout")
    login(make_user(db, role=Role.ADMIN))
    certificate = population["certificate"]
    # With no dates the report totals every certificate ever issued: a whole-table sum by design, which may read
    # a whole index (still never the table itself).
    problems += check("GET", "/admin/reports", whole_index_ok=True)
    for url in (
        "/admin/reports?date_from=2020-01-01&date_to=2100-01-01&page=2",
        "/admin/reports/completions.csv?date_from=2020-01-01",
        "/admin/people",
        "/admin/people?q=Sam&role=learner",
        f"/admin/people/{population['stuck'].id}",
        "/admin/certificates",
        f"/admin/certificates/{certificate.id}",
        "/admin/accommodations",
    ):
        problems += check("GET", url)
    assert not problems, "\n".join(problems)
