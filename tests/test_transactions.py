"""One commit point per request, read requests that never take SQLite's write lock, race-safe first visits,
RESTRICT keys on CE records, and UTC times whatever the database session's time zone."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain import pagecache
from kaptrain.accounts.models import User
from kaptrain.content.models import Course, Module
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import after_commit, finish_request, get_session
from kaptrain.quizzes.models import Attempt
from tests.factories import course, enrolled, make_user, pass_quiz, purge_user


@pytest.fixture
def commits() -> Iterator[list[Session]]:
    """Every session commit made while the test runs."""
    seen: list[Session] = []

    def count(session: Session) -> None:
        seen.append(session)

    event.listen(Session, "after_commit", count)
    yield seen
    event.remove(Session, "after_commit", count)


def test_read_pages_commit_nothing(client, db, learner, commits):
    pages = ("/", "/courses", "/courses/demo-course", "/dashboard", "/courses/demo-course/disclosures")
    for url in (*pages, "/courses/demo-course/quizzes/alpha-quiz"):
        assert client.get(url).status_code == 200, url
    assert commits == []


def test_a_write_commits_once_at_the_end_of_the_request(client, db, learner, commits):
    client.get("/courses/demo-course/modules/alpha")
    assert len(commits) == 1
    assert client.post("/courses/demo-course/modules/alpha/read").status_code == 302
    assert len(commits) == 2


def test_an_error_response_keeps_nothing_the_request_wrote(extra_app, database_url):
    app: Flask = extra_app()

    @app.post("/_test/write-then-refuse")
    def write_then_refuse() -> Any:
        session = get_session()
        session.add(User(email="half@example.org", full_name="Half Written", profession="x", password_hash="x"))
        session.flush()
        return "refused", 409

    response = app.test_client().post("/_test/write-then-refuse")
    assert response.status_code == 409
    with Session(app.extensions["kaptrain.db"].engine) as s:
        assert s.scalar(select(User.id).where(User.email == "half@example.org")) is None


def test_two_read_requests_proceed_together_on_sqlite(extra_app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock is what this checks")
    app: Flask = extra_app()
    with app.test_request_context("/courses", method="GET"):
        first = get_session()
        first.scalar(select(func.count()).select_from(Course))  # the first request's transaction is open
        elapsed: list[float] = []

        def second_request() -> None:
            with app.test_request_context("/courses", method="GET"):
                began = time.monotonic()
                get_session().scalar(select(func.count()).select_from(Course))
                finish_request(commit=False)
                elapsed.append(time.monotonic() - began)

        thread = threading.Thread(target=second_request)
        thread.start()
        thread.join(timeout=10)  # a reader that took the write lock would wait out the 15 s busy timeout
        finish_request(commit=False)
    assert elapsed and elapsed[0] < 2


def test_racing_writers_queue_instead_of_failing_on_sqlite(extra_app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock is what this checks")
    app: Flask = extra_app()
    done: list[str] = []
    with app.test_request_context("/x", method="POST"):
        get_session().scalar(select(func.count()).select_from(Course))  # writer 1 holds the write lock

        def second_writer() -> None:
            with app.test_request_context("/x", method="POST"):
                get_session().scalar(select(func.count()).select_from(Course))
                finish_request(commit=True)
                done.append("second")

        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.3)
        assert done == []  # queued behind the first writer
        finish_request(commit=True)
        thread.join(timeout=10)
    assert done == ["second"]


def _hand_overs(app: Flask, next_writer: Callable[[], object], wait: float) -> list[float]:
    """Five times: a request holds the writers' turn while next_writer, in a thread, waits behind it. How long after
    the request committed next_writer was done, sorted."""
    delays: list[float] = []
    for _ in range(5):
        with app.test_request_context("/x", method="POST"):
            get_session().scalar(select(func.count()).select_from(Course))  # this writer holds the lock
            done: list[float] = []
            thread = threading.Thread(target=lambda done=done: (next_writer(), done.append(time.monotonic())))
            thread.start()
            time.sleep(wait)
            assert done == []  # it waits behind the request
            committed = time.monotonic()
            finish_request(commit=True)
            thread.join(timeout=20)
        assert done
        delays.append(done[0] - committed)
    return sorted(delays)


def test_a_queued_writer_starts_as_soon_as_the_one_before_it_commits_on_sqlite(app, extra_app, database_url):
    """Writers wait in a queue the kernel wakes, not in SQLite's busy handler, which sleeps up to 100 ms a try:
    under load that left the lock idle while every writer slept (kaptrain.db.QueuedConnection)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock is what this checks")
    other: Flask = extra_app()  # on the migrated database of `app`, with connections of its own

    def next_writer() -> None:
        with other.test_request_context("/x", method="POST"):
            get_session().scalar(select(func.count()).select_from(Course))
            finish_request(commit=True)

    # Waiting 0.4 s puts a polling writer in its 100 ms sleeps: its hand-over would average about 50 ms.
    delays = _hand_overs(other, next_writer, wait=0.4)
    assert delays[2] < 0.025, delays  # the median hand-over


def test_a_lone_plain_write_waits_its_turn_in_the_writers_queue_on_sqlite(app, extra_app, database_url):
    """pagecache.run_sql(write=True) sends no BEGIN or COMMIT (the statement commits on its own), but it still
    waits in the writers' queue, woken the moment the writer before it commits, not in SQLite's busy handler."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock is what this checks")
    other: Flask = extra_app()  # on the migrated database of `app`, with connections of its own
    bump = "UPDATE cache_epochs SET version = version + 1 WHERE name = 'pages' RETURNING version"
    versions: list[int] = []

    def lone_write() -> None:
        with other.app_context():
            row = pagecache.run_sql(bump, {}, write=True)
            versions.append(row[0] if row else -1)

    # After 0.45 s a polling writer would next look at 0.53 s (SQLite's busy handler): about 80 ms.
    delays = _hand_overs(other, lone_write, wait=0.45)
    assert delays[2] < 0.025, delays  # the median hand-over
    assert versions == list(range(versions[0], versions[0] + 5))  # each write committed, and left the queue


def test_concurrent_first_visits_give_one_row_and_no_error(app):
    engine = app.extensions["kaptrain.db"].engine
    with Session(engine) as s:
        user = make_user(s)
        s.commit()
        user_id, module_id, course_id = user.id, course(s).modules[0].id, course(s).id
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def first_visit() -> None:
        try:
            with Session(engine) as s:
                barrier.wait(timeout=10)
                courses.enrol(s, user_id, s.get(Course, course_id))
                courses.open_module(s, user_id, s.get(Module, module_id))
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_visit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        with Session(engine) as s:
            for model in (Enrolment, ModuleProgress):
                assert s.scalar(select(func.count()).select_from(model).where(model.user_id == user_id)) == 1
    finally:
        with Session(engine) as s:
            purge_user(s, user_id)
            s.commit()


def test_ce_records_are_never_deleted_by_a_cascade(db):
    user = make_user(db)
    enrolled(db, user)
    pass_quiz(db, user, "alpha-quiz")
    for statement in (delete(User).where(User.id == user.id), delete(Course).where(Course.slug == "demo-course")):
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(statement)
    assert db.scalar(select(func.count()).select_from(Enrolment).where(Enrolment.user_id == user.id)) == 1


def test_times_are_utc_whatever_the_database_session_time_zone(db, database_url):
    user = make_user(db)
    enrolled(db, user)
    attempt = pass_quiz(db, user, "alpha-quiz")
    stored = attempt.submitted_at
    if database_url.startswith("postgresql"):
        # A PostgreSQL session in New York used to hand back 02:11-05:00 and pages printed "02:11 UTC".
        db.execute(text("SET LOCAL timezone = 'America/New_York'"))
        assert db.scalar(text("SHOW timezone")) == "America/New_York"
    db.expire_all()
    loaded = db.scalar(select(Attempt.submitted_at).where(Attempt.id == attempt.id))
    assert loaded.tzinfo is not None and loaded.utcoffset() == dt.timedelta(0)
    assert loaded == stored and loaded.hour == stored.astimezone(dt.UTC).hour


def test_concurrent_registrations_with_one_email_give_one_account_and_a_clear_error(app):
    from kaptrain.accounts import services as accounts  # noqa: PLC0415 - only this test registers directly

    engine = app.extensions["kaptrain.db"].engine
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def register() -> None:
        with Session(engine) as s:
            barrier.wait(timeout=10)
            try:
                accounts.create_user(s, "race@example.org", "a long enough password", accounts.Profile("Race", "x"))
                s.commit()
                outcomes.append("created")
            except accounts.AccountError as exc:
                outcomes.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - what the test must not see
                outcomes.append(f"unexpected {type(exc).__name__}")

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert outcomes.count("created") == 1
        assert all(o.startswith("An account with this email already exists") for o in outcomes if o != "created")
    finally:
        with Session(engine) as s:
            user_id = s.scalar(select(User.id).where(User.email == "race@example.org"))
            if user_id is not None:
                purge_user(s, user_id)
                s.commit()


def test_after_commit_callbacks_run_after_the_commit_and_never_after_a_rollback(extra_app):
    app: Flask = extra_app()
    ran: list[str] = []
    for commit in (True, False):
        with app.test_request_context("/", method="POST"):
            session = get_session()
            session.execute(select(func.count()).select_from(User))
            session.info["wrote"] = True  # as a flush would
            # A job enqueued from within another after-commit callback (e.g. an email after an approval).
            before = list(ran)
            after_commit(lambda c=commit: after_commit(lambda: ran.append(f"commit={c}")))
            assert ran == before  # held until the commit
            finish_request(commit=commit)
    assert ran == ["commit=True"]


def test_after_commit_waits_for_the_real_commit_not_a_savepoint(extra_app):
    app: Flask = extra_app()
    ran: list[str] = []
    with app.test_request_context("/", method="POST"):
        session = get_session()
        session.execute(select(func.count()).select_from(User))
        session.info["wrote"] = True
        after_commit(lambda: ran.append("job"))
        with session.begin_nested():  # released: not yet the commit
            session.execute(select(func.count()).select_from(User))
        assert ran == []
        with pytest.raises(RuntimeError), session.begin_nested():  # rolled back: the outer work goes on
            raise RuntimeError("inner failure")
        finish_request(commit=True)
    assert ran == ["job"]
