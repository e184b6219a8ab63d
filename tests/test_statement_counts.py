"""A fixed number of SQL statements per learner page, whatever the size of the course, the attempt or the history.

Each page is requested through the test client as a logged-in learner while a `before_cursor_execute` listener on
the engine counts what reaches the database. The test harness runs every request in a savepoint of the test's
transaction: its SAVEPOINT is counted (it stands in for the BEGIN a request sends on SQLite), its RELEASE and
ROLLBACK TO are not (production ends a transaction through the driver, not with a statement). Then the course
grows (more modules, each with a quiz), the attempt grows (more questions drawn) and the learner's history grows
(more attempts, other learners), and each page must issue exactly as many statements as before: an N+1 fails here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

from kaptrain import activity
from kaptrain.accounts.models import User
from kaptrain.content import revisions
from kaptrain.content.models import Course, Module
from kaptrain.courses import services as courses
from kaptrain.db import utcnow
from kaptrain.pagecache import PageStore
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, Question, Quiz, QuizKind
from tests.factories import correct_answers, course, make_user, pass_quiz, quiz, set_rules, start

BUDGET = 8  # statements per learner page (issue 15)
COURSE = "/courses/demo-course"
NOT_COUNTED = re.compile(r"\s*(RELEASE|ROLLBACK TO)\b", re.I)


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """Collect the statements sent to the database while the block runs."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not NOT_COUNTED.match(statement):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


Request = Callable[[], Any]


@pytest.fixture
def count(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Issue one request and return the statements it sent (the response must be what a learner gets).

    These are the counts of drawing each page: the page cache (kaptrain.pagecache) is off here; what a page
    served from it costs is counted by test_a_page_or_heartbeat_without_the_orm_costs_a_statement_or_four."""
    engine = app.extensions["kaptrain.db"].engine
    monkeypatch.setitem(app.extensions, "kaptrain.pages", None)

    def _count(method: str, url: str, status: int = 200, **kwargs: Any) -> list[str]:
        with counting(engine) as seen:
            response = client.open(url, method=method, **kwargs)
        assert response.status_code == status, (url, response.status_code, response.get_data(as_text=True)[:500])
        return seen

    return _count


def _show(statements: list[str]) -> str:
    return "\n".join(f"  {i + 1}. {s[:220]}" for i, s in enumerate(statements))


def within_budget(name: str, statements: list[str]) -> int:
    """Assert the page kept within the budget, naming every statement when it did not."""
    assert len(statements) <= BUDGET, f"{name}: {len(statements)} statements (budget {BUDGET}):\n{_show(statements)}"
    return len(statements)


def add_modules(db: Session, n: int) -> None:
    """Publish n more modules in the fixture course, each with a published module quiz drawing from its own bank."""
    c = course(db)
    template = db.scalar(select(Module).where(Module.course_id == c.id, Module.slug == "gamma"))
    assert template is not None
    body = revisions.revision_data(revisions.MODULE, revisions.published(db, template))  # type: ignore[arg-type]
    alpha = quiz(db, "alpha-quiz")
    rules = revisions.revision_data(revisions.QUIZ, alpha.settings)
    first_question = db.scalar(select(Question).where(Question.quiz_id == alpha.id))
    assert first_question is not None
    question = revisions.revision_data(revisions.QUESTION, revisions.published(db, first_question))  # type: ignore[arg-type]
    top = max(m.position for m in c.modules)
    for i in range(1, n + 1):
        module = Module(course_id=c.id, slug=f"extra-{top + i}", position=top + i)
        db.add(module)
        db.flush()
        values = revisions.revision_values(revisions.MODULE, {**body, "title": f"Extra module {i}"})
        revisions.publish(module, revisions.add_revision(db, module, values, None))
        q = Quiz(course_id=c.id, module_id=module.id, slug=f"extra-{top + i}-quiz", kind=QuizKind.MODULE)
        db.add(q)
        db.flush()
        revisions.publish(q, revisions.add_revision(db, q, revisions.revision_values(revisions.QUIZ, rules), None))
        for j in range(3):
            bank_question = Question(quiz_id=q.id, key=f"extra-{i}-{j}", position=j)
            db.add(bank_question)
            db.flush()
            values = revisions.revision_values(revisions.QUESTION, {**question, "module_id": module.id})
            revisions.publish(bank_question, revisions.add_revision(db, bank_question, values, None))
    db.flush()


def other_learners(db: Session, n: int) -> None:
    """n more learners part way through the course: progress and attempts that are not this learner's."""
    for _ in range(n):
        someone = make_user(db)
        courses.acknowledge_disclosures(db, courses.enrol(db, someone.id, course(db)))
        pass_quiz(db, someone, "alpha-quiz")


def fail_attempts(db: Session, user: User, slug: str, n: int) -> Attempt:
    """n failed attempts on a quiz (its rules opened up so they are allowed); returns the last."""
    q = set_rules(db, quiz(db, slug), max_attempts=n + 5, cooldown_hours=0)
    last = None
    for _ in range(n):
        a = start(db, user, q)
        last = quizzes.submit_attempt(db, a, correct_answers(a, right=False))
    assert last is not None
    return last


def learner_pages(db: Session, count: Callable[..., list[str]], user: User) -> dict[str, int]:
    """Every learner page at the learner's current point in the alpha module and its quiz, counted."""
    # The first request after a content change fills this process's content catalogue: four statements more,
    # once per change (not within the budget, but no more with a larger course either).
    out: dict[str, int] = {"course page, content just changed": len(count("GET", COURSE))}
    out["course page"] = within_budget("course page", count("GET", COURSE))
    out["dashboard"] = within_budget("dashboard", count("GET", "/dashboard"))
    out["module page"] = within_budget("module page", count("GET", f"{COURSE}/modules/alpha"))
    out["heartbeat"] = within_budget("heartbeat", count("POST", f"{COURSE}/modules/alpha/heartbeat"))
    out["quiz page"] = within_budget("quiz page", count("GET", f"{COURSE}/quizzes/alpha-quiz"))
    count("POST", f"{COURSE}/quizzes/alpha-quiz/start", status=302)
    attempt = db.scalar(
        select(Attempt).where(Attempt.user_id == user.id, Attempt.status == "open").order_by(Attempt.id.desc())
    )
    assert attempt is not None
    db.refresh(attempt)
    out["attempt page"] = within_budget("attempt page", count("GET", f"/attempts/{attempt.id}"))
    answers = correct_answers(attempt, right=False)
    out["quiz submission"] = within_budget(
        "quiz submission", count("POST", f"/attempts/{attempt.id}/submit", status=302, data=answers)
    )
    out["result page"] = within_budget("result page", count("GET", f"/attempts/{attempt.id}/result"))
    return out


@pytest.fixture
def user(db: Session, learner: User) -> User:
    """The logged-in learner with the alpha quiz's rules opened up (more attempts, no cooldown).

    Their activity clock starts an hour ago, so every heartbeat moves it (a clock that does not move is not
    written: a first heartbeat would otherwise send one statement fewer than the next)."""
    set_rules(db, quiz(db, "alpha-quiz"), max_attempts=50, cooldown_hours=0)
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    activity.credit(db, learner.id, an_hour_ago, an_hour_ago, 0)
    db.commit()
    return learner


def test_every_learner_page_keeps_to_the_budget(db, count, user):
    counts = learner_pages(db, count, user)
    assert set(counts) == {
        "course page, content just changed", "course page", "dashboard", "module page", "heartbeat", "quiz page",
        "attempt page", "quiz submission", "result page",
    }  # fmt: skip
    assert counts["course page, content just changed"] == counts["course page"] + 4


def test_the_count_does_not_grow_with_the_course_the_attempt_or_the_history(db, count, user):
    before = learner_pages(db, count, user)

    add_modules(db, 4)
    q = set_rules(db, quiz(db, "alpha-quiz"), draw=6)  # every question in the bank, not 3
    assert q.draw == 6
    fail_attempts(db, user, "alpha-quiz", 3)
    other_learners(db, 3)
    db.commit()

    after = learner_pages(db, count, user)
    assert after == before


def test_further_along_the_course_the_pages_keep_to_the_budget(db, count, user):
    """Past the first module: passed quizzes, an open second module, the final assessment's pages."""
    pass_quiz(db, user, "alpha-quiz")
    courses.open_module(db, user.id, db.scalar(select(Module).where(Module.slug == "beta")))  # type: ignore[arg-type]
    db.commit()
    count("GET", COURSE)  # fills the content catalogue (the user fixture changed the quiz's rules)
    within_budget("course page", count("GET", COURSE))
    within_budget("dashboard", count("GET", "/dashboard"))
    within_budget("module page", count("GET", f"{COURSE}/modules/beta"))
    within_budget("heartbeat", count("POST", f"{COURSE}/modules/beta/heartbeat"))
    within_budget("passed quiz page", count("GET", f"{COURSE}/quizzes/alpha-quiz"))
    passed = db.scalar(select(Attempt).where(Attempt.user_id == user.id, Attempt.passed.is_(True)))
    assert passed is not None
    within_budget("passed result page", count("GET", f"/attempts/{passed.id}/result"))
    # The timed final (30 minutes): its attempt page counts the extensions asked for.
    pass_quiz(db, user, "beta-quiz")
    gamma = db.scalar(select(Module).where(Module.slug == "gamma"))
    assert gamma is not None
    courses.mark_read(db, _status(db, user, gamma))
    final = start(db, user, quiz(db, "demo-final"))
    db.commit()
    within_budget("final quiz page", count("GET", f"{COURSE}/quizzes/demo-final"))
    within_budget("timed attempt page", count("GET", f"/attempts/{final.id}"))


def _status(db: Session, user: User, module: Module) -> Any:
    from tests.factories import record  # noqa: PLC0415 - kept next to its one use

    status = record(db, user).module(module.slug)
    assert status is not None
    status.progress = courses.open_module(db, user.id, module, dt.datetime.now(dt.UTC))
    return status


def test_a_course_with_no_enrolment_yet_keeps_to_the_budget(client, db, count, login):
    login(make_user(db))
    count("GET", COURSE)
    within_budget("course page, not enrolled", count("GET", COURSE))
    within_budget("dashboard, not enrolled", count("GET", "/dashboard"))


def test_the_anonymous_course_page_keeps_to_the_budget(client, db, count):
    count("GET", COURSE)
    within_budget("course page, anonymous", count("GET", COURSE))
    assert db.scalar(select(Course).where(Course.slug == "demo-course")) is not None


def test_a_page_or_heartbeat_without_the_orm_costs_a_statement_or_four(app, client, db, user):
    pages = PageStore(max_bytes=1024 * 1024)
    app.extensions["kaptrain.pages"] = pages
    engine = app.extensions["kaptrain.db"].engine

    def statements(method: str, url: str) -> list[str]:
        with counting(engine) as seen:
            assert client.open(url, method=method).status_code == 200
        return seen

    for url in (COURSE, "/dashboard", f"{COURSE}/modules/alpha", f"{COURSE}/quizzes/alpha-quiz"):
        for _ in range(2):
            statements("GET", url)  # drawn (the first view of the module opens it: a change), then kept
        hits = pages.hits
        seen = statements("GET", url)
        assert pages.hits == hits + 1, url
        # One statement checks the session and reads the versions; the module page also moves its clock, in a
        # statement that commits on its own (autocommit; on SQLite after waiting for the writers' turn).
        module_page = 2
        assert len(seen) == (module_page if "modules" in url else 1), _show(seen)
    # The heartbeat reads the opened module, the session's check and the learner's clock in one statement, outside
    # any transaction. One that credits nothing (a second beat at once) then writes the page's clocks in one
    # statement that commits on its own.
    sqlite = engine.dialect.name == "sqlite"
    statements("POST", f"{COURSE}/modules/alpha/heartbeat")
    seen = statements("POST", f"{COURSE}/modules/alpha/heartbeat")
    assert len(seen) == 2, _show(seen)
    # One that credits moves the clock if it is still where it was read, with the seat time: on PostgreSQL in one
    # statement, on SQLite in two in one transaction (the SAVEPOINT here stands in for its BEGIN).
    db.execute(
        text("UPDATE module_progress SET last_heartbeat_at = :t WHERE user_id = :u"),
        {"t": utcnow() - dt.timedelta(seconds=20), "u": user.id},
    )
    db.execute(
        text("UPDATE activity_clocks SET last_credit_at = :t WHERE user_id = :u"),
        {"t": utcnow() - dt.timedelta(seconds=20), "u": user.id},
    )
    seen = statements("POST", f"{COURSE}/modules/alpha/heartbeat")
    assert len(seen) == (4 if sqlite else 2), _show(seen)
    assert "last_credit_at = " in seen[-1 if not sqlite else -2], _show(seen)
