"""Cached learner pages (kaptrain.pagecache): served again only while nothing they show has changed.

Every other test of the learner pages runs with the cache on as well (a second view of a page within a test is
served from it), so a page that outlived its data would fail them too; these tests check the mechanism itself."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import re
import threading
from collections.abc import Callable

import pytest
from flask import Flask, flash
from flask.testing import FlaskClient
from sqlalchemy import Executable, inspect, select, text, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from kaptrain import activity, pagecache
from kaptrain.accounts.models import Role, User
from kaptrain.admin.settings import set_settings
from kaptrain.certificates.models import CertificateFile, RevocationReason
from kaptrain.certificates.services import revoke
from kaptrain.content.models import Module
from kaptrain.courses import services as courses
from kaptrain.courses.models import ModuleProgress
from kaptrain.db import Base, utcnow
from kaptrain.pagecache import GLOBAL_TABLES, LEARNER_TABLES, UNSHOWN_TABLES
from kaptrain.quizzes import services as quizzes
from tests.conftest import sign_in
from tests.factories import (
    certified,
    correct_answers,
    course,
    enrolled,
    holders_pdf,
    make_user,
    pass_quiz,
    purge_user,
    quiz,
    set_rules,
    start,
)

MODULE = "/courses/demo-course/modules/alpha"
COURSE = "/courses/demo-course"
QUIZ = "/courses/demo-course/quizzes/alpha-quiz"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def served(app: Flask, client: FlaskClient, path: str) -> tuple[str, bool]:
    """The page's text, and whether it came from the cache."""
    before = app.extensions["kaptrain.pages"].hits
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True), app.extensions["kaptrain.pages"].hits > before


def without_tokens(page: str) -> str:
    return TOKEN.sub("", re.sub(r'data-csrf="[^"]*"', "", page))


# --- the table lists match the database ---------------------------------------------------------------------------


def test_every_table_is_watched_or_said_to_be_unshown() -> None:
    tables = set(Base.metadata.tables) | {"alembic_version"}
    groups = LEARNER_TABLES | GLOBAL_TABLES | set(UNSHOWN_TABLES)
    assert tables - groups == set(), "new tables: put each in LEARNER_TABLES, GLOBAL_TABLES or UNSHOWN_TABLES"
    assert groups - tables == set(), "these tables no longer exist"
    assert not (LEARNER_TABLES & GLOBAL_TABLES) and not ((LEARNER_TABLES | GLOBAL_TABLES) & set(UNSHOWN_TABLES))


def test_the_database_has_a_trigger_on_every_watched_table(db: Session) -> None:
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text(
                "SELECT DISTINCT event_object_table FROM information_schema.triggers WHERE trigger_name LIKE 'pages_%'"
            )
        )
    else:
        rows = connection.execute(
            text("SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'pages_%'")
        )
    assert {r[0] for r in rows} == LEARNER_TABLES | GLOBAL_TABLES | {"users"}
    assert "pages_version" in {c["name"] for c in inspect(connection).get_columns("users")}


# --- what a hit is --------------------------------------------------------------------------------------------------


def test_a_second_view_is_served_from_the_cache_with_a_working_form_token(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None
) -> None:
    first, cached = served(app, client, MODULE)
    assert not cached
    second, cached = served(app, client, MODULE)  # the first view opened the module (a change): drawn again
    third, cached_third = served(app, client, MODULE)
    assert cached_third and without_tokens(third) == without_tokens(second)
    token = next(a or b for a, b in TOKEN.findall(third))
    assert "\x00" not in third
    response = client.post(f"{MODULE}/read", data={"csrf_token": token})
    assert response.status_code == 302  # the token put into the cached page is this session's and valid


def test_cached_pages_share_a_signed_token_for_a_minute_then_get_a_new_one(
    app: Flask, client: FlaskClient, learner: User, csrf_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed: list[str] = []
    real_sign = pagecache.generate_csrf
    monkeypatch.setattr(pagecache, "generate_csrf", lambda: signed.append(real_sign()) or signed[-1])
    served(app, client, MODULE)  # opened, so that it can be marked read below
    served(app, client, COURSE)
    pages = [served(app, client, COURSE) for _ in range(2)]
    assert all(cached for _, cached in pages)
    first, second = (next(a or b for a, b in TOKEN.findall(page)) for page, _ in pages)
    assert first == second and len(signed) == 1  # signed once, put into both
    real = pagecache.time.monotonic
    monkeypatch.setattr(pagecache.time, "monotonic", lambda: real() + pagecache.TOKEN_REUSE_SECONDS + 1)
    later, cached = served(app, client, COURSE)
    assert cached and len(signed) == 2  # a minute on: signed again
    fresh = next(a or b for a, b in TOKEN.findall(later))
    for token in (first, fresh):  # both are this session's, and valid
        assert client.post(f"{MODULE}/read", data={"csrf_token": token}).status_code == 302


def test_a_hit_on_the_module_page_moves_its_clock_as_a_view_does(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    served(app, client, MODULE)
    served(app, client, MODULE)
    progress = db.scalar(select(ModuleProgress).where(ModuleProgress.user_id == learner.id))
    assert progress is not None
    db.execute(
        update(ModuleProgress)
        .where(ModuleProgress.id == progress.id)
        .values(last_seen_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    )
    db.commit()
    _, cached = served(app, client, MODULE)
    assert cached
    db.expire_all()
    assert db.get(ModuleProgress, progress.id).last_seen_at > utcnow() - dt.timedelta(minutes=1)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", [COURSE, "/dashboard", QUIZ])
def test_learner_pages_are_cached(app: Flask, client: FlaskClient, learner: User, path: str) -> None:
    served(app, client, MODULE)
    first, _ = served(app, client, path)
    again, cached = served(app, client, path)
    assert cached and without_tokens(again) == without_tokens(first)


def test_staff_and_visitors_are_never_served_from_the_cache(
    app: Flask, client: FlaskClient, db: Session, login: Callable[..., object]
) -> None:
    for _ in range(3):
        assert not served(app, client, COURSE)[1]  # not logged in
    login(make_user(db, role=Role.INSTRUCTOR))
    for _ in range(3):
        assert not served(app, client, COURSE)[1]


def test_a_page_with_a_message_waiting_is_not_served_nor_kept(app: Flask, client: FlaskClient, learner: User) -> None:
    served(app, client, COURSE)
    served(app, client, COURSE)
    client.post("/courses/demo-course/enrol")  # flashes "You are enrolled" (already enrolled: the same message)
    page, cached = served(app, client, COURSE)
    assert not cached and "You are enrolled" in page
    page, cached = served(app, client, COURSE)
    assert "You are enrolled" not in page


def test_a_page_that_shows_a_message_flashed_while_it_was_drawn_is_not_kept(
    app: Flask, client: FlaskClient, learner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaptrain.courses import views  # noqa: PLC0415

    real = views.completion.learner_record

    def flashing(*args: object, **kwargs: object) -> object:
        flash("A message shown once.")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(views.completion, "learner_record", flashing)
    page, _ = served(app, client, COURSE)
    assert "A message shown once." in page
    monkeypatch.setattr(views.completion, "learner_record", real)
    page, cached = served(app, client, COURSE)
    assert not cached and "A message shown once." not in page


def test_turned_off_with_zero_megabytes(extra_app: Callable[..., Flask]) -> None:
    assert extra_app(PAGE_CACHE_MB=0).extensions["kaptrain.pages"] is None


def test_the_store_keeps_to_its_size() -> None:
    pages = pagecache.PageStore(max_bytes=100)
    for i in range(5):
        pages.put((i,), pagecache.Entry("x" * 40, None, None))
    now = utcnow()
    assert len(pages) == 2 and pages.get((4,), now) is not None and pages.get((0,), now) is None


# --- what makes a page drawn again -----------------------------------------------------------------------------------


def test_passing_a_quiz_changes_the_course_page(app: Flask, client: FlaskClient, learner: User, db: Session) -> None:
    served(app, client, MODULE)
    before, _ = served(app, client, COURSE)
    assert served(app, client, COURSE)[1]
    pass_quiz(db, learner, "alpha-quiz")
    db.commit()
    after, cached = served(app, client, COURSE)
    assert not cached and after != before


def test_a_change_made_in_plain_sql_is_seen(app: Flask, client: FlaskClient, learner: User, db: Session) -> None:
    served(app, client, MODULE)
    served(app, client, MODULE)
    assert served(app, client, MODULE)[1]
    # No ORM, no application code: the database's trigger moves the learner's page version.
    db.execute(
        text("UPDATE module_progress SET seat_seconds = seat_seconds + 600 WHERE user_id = :u"), {"u": learner.id}
    )
    db.commit()
    assert not served(app, client, MODULE)[1]


def test_a_change_of_name_or_time_zone_is_seen(app: Flask, client: FlaskClient, learner: User, db: Session) -> None:
    served(app, client, "/dashboard")
    assert served(app, client, "/dashboard")[1]
    db.execute(update(User).where(User.id == learner.id).values(time_zone="America/New_York"))
    db.commit()
    assert not served(app, client, "/dashboard")[1]


def test_a_sign_in_alone_keeps_the_pages(app: Flask, client: FlaskClient, learner: User, db: Session) -> None:
    served(app, client, "/dashboard")
    served(app, client, "/dashboard")
    db.execute(update(User).where(User.id == learner.id).values(last_login_at=utcnow()))
    db.commit()
    assert served(app, client, "/dashboard")[1]


def test_settings_and_quiz_rules_change_every_learners_pages(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    admin = make_user(db, role=Role.ADMIN)
    served(app, client, QUIZ)
    assert served(app, client, QUIZ)[1]
    set_rules(db, quiz(db, "alpha-quiz"), passing_score=90)
    db.commit()
    page, cached = served(app, client, QUIZ)
    assert not cached and "Pass mark: 90%" in page
    served(app, client, COURSE)
    assert served(app, client, COURSE)[1]
    set_settings(db, {"accreditation_statement": "Approved by a test body."}, admin)
    db.commit()
    assert not served(app, client, COURSE)[1]


def test_logging_out_everywhere_ends_the_cached_pages_of_every_session(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    served(app, client, "/dashboard")
    assert served(app, client, "/dashboard")[1]
    _end_sessions(db, learner)
    assert _sent_to_log_in(client.get("/dashboard"))


def test_a_cookie_copied_before_its_browser_logged_out_gets_no_cached_page_beat_or_pdf(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    _, pdf = holders_pdf(app, db, learner)
    served(app, client, "/dashboard")
    assert served(app, client, "/dashboard")[1]
    client.get(MODULE)
    assert client.post(f"{MODULE}/heartbeat").status_code == 200
    copied = client.get_cookie("session")
    assert copied is not None
    other = app.test_client()  # the same learner on another device
    sign_in(other, db, learner)
    assert other.get("/dashboard").status_code == 200
    assert client.post("/logout").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", copied.value)
    assert _sent_to_log_in(replay.get("/dashboard"))
    assert _sent_to_log_in(replay.post(f"{MODULE}/heartbeat"))
    assert _sent_to_log_in(replay.get(pdf))
    # Only that browser logged out: the other device is still signed in, its pages and download served.
    assert other.get("/dashboard").status_code == 200 and other.get(pdf).status_code == 200


def _end_sessions(db: Session, learner: User) -> None:
    db.execute(update(User).where(User.id == learner.id).values(session_version=User.session_version + 1))
    db.commit()


def _sent_to_log_in(response: TestResponse) -> bool:
    return response.status_code == 401 or (response.status_code == 302 and "/login" in response.location)


def test_the_fast_heartbeat_and_submission_refuse_a_session_ended_elsewhere(
    app: Flask, client: FlaskClient, learner: User, db: Session, fast_submissions: list[bool]
) -> None:
    client.get(MODULE)
    assert client.post(f"{MODULE}/heartbeat").status_code == 200
    attempt = open_attempt(db, learner)
    db.commit()
    other_tab = app.test_client()  # a session of its own: the heartbeat's normal way below ends the first one
    sign_in(other_tab, db, learner)
    seat = db.scalar(select(ModuleProgress.seat_seconds).where(ModuleProgress.user_id == learner.id))
    opened = utcnow() - dt.timedelta(seconds=45)  # a heartbeat that got through would credit 30 seconds
    db.execute(update(ModuleProgress).where(ModuleProgress.user_id == learner.id).values(last_heartbeat_at=opened))
    db.execute(text("DELETE FROM activity_clocks WHERE user_id = :u"), {"u": learner.id})
    _end_sessions(db, learner)
    assert _sent_to_log_in(client.post(f"{MODULE}/heartbeat"))
    assert _sent_to_log_in(other_tab.post(f"/attempts/{attempt.id}/submit", data=correct_answers(attempt)))
    assert fast_submissions == [False]  # the fast way found no good session and left it to the normal way
    db.expire_all()
    assert db.scalar(select(ModuleProgress.seat_seconds).where(ModuleProgress.user_id == learner.id)) == seat
    still = db.get(quizzes.Attempt, attempt.id)
    assert still is not None and still.status == quizzes.AttemptStatus.OPEN


def test_the_fast_pdf_download_refuses_a_session_ended_elsewhere(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    _, path = holders_pdf(app, db, learner)
    assert client.get(path).status_code == 200
    _end_sessions(db, learner)
    assert _sent_to_log_in(client.get(path))


def test_a_pause_that_ends_opens_the_quiz_without_any_change(
    app: Flask, client: FlaskClient, learner: User, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = set_rules(db, quiz(db, "alpha-quiz"), max_attempts=1, cooldown_hours=1)
    served(app, client, MODULE)
    db.execute(
        update(ModuleProgress).where(ModuleProgress.user_id == learner.id).values(seat_seconds=3600, read_at=utcnow())
    )
    attempt = start(db, learner, alpha)
    quizzes.submit_attempt(db, attempt, correct_answers(attempt, right=False))
    db.commit()
    paused, _ = served(app, client, QUIZ)
    assert "You can try again after" in paused and served(app, client, QUIZ)[1]
    later = utcnow() + dt.timedelta(hours=1, minutes=1)
    monkeypatch.setattr(pagecache, "utcnow", lambda: later)
    monkeypatch.setattr(quizzes, "utcnow", lambda: later)
    page, cached = served(app, client, QUIZ)
    assert not cached and "Start the quiz" in page


def test_enrolment_of_another_learner_leaves_this_learners_pages(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    served(app, client, "/dashboard")
    assert served(app, client, "/dashboard")[1]
    enrolled(db, make_user(db))
    db.commit()
    assert served(app, client, "/dashboard")[1]
    assert course(db) is not None


# --- the holder's PDF download without the ORM -------------------------------------------------------------------


def test_the_holders_pdf_comes_the_fast_way_and_follows_its_stored_file(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    from kaptrain.certificates import views  # noqa: PLC0415

    certificate, path = holders_pdf(app, db, learner)
    first = client.get(path)
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    assert f"{certificate.number}.pdf" in first.headers["Content-Disposition"]
    assert len(views._stored_pdfs) >= 1  # served by the fast way, which keeps the bytes
    stored = db.scalar(select(CertificateFile).where(CertificateFile.certificate_id == certificate.id))
    assert stored is not None
    stored.pdf, stored.sha256 = b"%PDF-1.7 re-rendered", hashlib.sha256(b"%PDF-1.7 re-rendered").hexdigest()
    db.commit()
    assert client.get(path).data == b"%PDF-1.7 re-rendered"  # a new file has a new digest: never the old bytes


def test_someone_elses_or_a_revoked_pdf_still_gets_the_normal_answer(
    app: Flask, client: FlaskClient, learner: User, db: Session, login: Callable[..., object]
) -> None:
    holder = make_user(db)
    enrolled(db, holder)
    with app.app_context():
        certificate = certified(db, holder)
        db.commit()
    assert client.get(f"/certificates/{certificate.id}.pdf").status_code == 404  # not the learner's own
    client = app.test_client()
    sign_in(client, db, holder)
    assert client.get(f"/certificates/{certificate.id}.pdf").status_code == 200
    with app.app_context():
        revoke(db, certificate, RevocationReason.ISSUED_IN_ERROR, "A test.", actor_label="test")
        db.commit()
    response = client.get(f"/certificates/{certificate.id}.pdf")
    assert response.status_code == 404 and "revoked" in response.get_data(as_text=True)


def test_pages_are_kept_before_compression_and_compressed_again_when_served(
    app: Flask, client: FlaskClient, learner: User
) -> None:
    served(app, client, MODULE)
    first = client.get(MODULE, headers={"Accept-Encoding": "gzip"})
    before = app.extensions["kaptrain.pages"].hits
    second = client.get(MODULE, headers={"Accept-Encoding": "gzip"})
    assert app.extensions["kaptrain.pages"].hits == before + 1
    assert first.headers["Content-Encoding"] == second.headers["Content-Encoding"] == "gzip"
    pages = [without_tokens(gzip.decompress(r.data).decode()) for r in (first, second)]
    assert pages[0] == pages[1] and "<h1" in pages[1]


# --- the heartbeat without the ORM ---------------------------------------------------------------------------------


def test_the_heartbeat_fast_way_credits_as_the_rule_says(
    app: Flask, client: FlaskClient, learner: User, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaptrain.courses import services as courses  # noqa: PLC0415

    client.get(MODULE)
    fast = courses.record_heartbeat_fast
    calls: list[int | None] = []
    monkeypatch.setattr(courses, "record_heartbeat_fast", lambda *a: calls.append(fast(*a)) or calls[-1])
    opened = utcnow() - dt.timedelta(seconds=45)
    db.execute(update(ModuleProgress).where(ModuleProgress.user_id == learner.id).values(last_heartbeat_at=opened))
    db.execute(text("DELETE FROM activity_clocks WHERE user_id = :u"), {"u": learner.id})
    db.commit()
    first = client.post(f"{MODULE}/heartbeat").get_json()["seat_seconds"]
    assert first == 30  # at most one interval per heartbeat
    assert client.post(f"{MODULE}/heartbeat").get_json()["seat_seconds"] == 30  # the clock is spent: nothing more
    assert calls == [30, 30]
    db.expire_all()
    progress = db.scalar(select(ModuleProgress).where(ModuleProgress.user_id == learner.id))
    assert progress is not None and progress.seat_seconds == 30


def test_a_heartbeat_that_credits_nothing_keeps_the_learners_stored_pages(
    app: Flask, client: FlaskClient, learner: User, db: Session
) -> None:
    """Seat time is on the learner's pages, so a beat that credits moves their page version; one that credits
    nothing (a second beat at once) changes nothing they see and keeps it."""
    client.get(MODULE)

    def version() -> int:
        db.expire_all()
        found = db.scalar(select(User.pages_version).where(User.id == learner.id))
        assert found is not None
        return found

    now = utcnow()
    db.execute(
        update(ModuleProgress)
        .where(ModuleProgress.user_id == learner.id)
        .values(last_heartbeat_at=now - dt.timedelta(seconds=45))
    )
    activity.credit(db, learner.id, now - dt.timedelta(seconds=45), now, 0)
    db.commit()
    before = version()
    credited = client.post(f"{MODULE}/heartbeat").get_json()["seat_seconds"]
    assert version() > before
    after_credit = version()
    assert client.post(f"{MODULE}/heartbeat").get_json()["seat_seconds"] == credited  # nothing more to credit
    assert version() == after_credit


def test_a_heartbeat_whose_clock_moved_after_it_was_read_credits_only_what_is_left(
    app: Flask, client: FlaskClient, learner: User, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast heartbeat reads the learner's clock outside any transaction; another tab or a quiz may credit the
    same time before it writes. Its compare and set then fails and it credits the locked way, from the clock's
    new place: the 30 seconds it read as due are not credited a second time."""
    client.get(MODULE)
    now = utcnow()
    db.execute(
        update(ModuleProgress)
        .where(ModuleProgress.user_id == learner.id)
        .values(last_heartbeat_at=now - dt.timedelta(seconds=45), seat_seconds=0)
    )
    activity.credit(db, learner.id, now - dt.timedelta(seconds=45), now, 0)  # the learner's clock, 45 s back
    clock = text("UPDATE activity_clocks SET last_credit_at = :t WHERE user_id = :u")
    db.commit()
    rule = activity.credit_span
    moved: list[activity.Credit] = []

    def another_tab_credits_first(*args: dt.datetime | int) -> activity.Credit:
        found = rule(*args)  # type: ignore[arg-type]
        if not moved:  # the other tab credits the same span, and a little more, in between
            db.execute(clock, {"t": utcnow() - dt.timedelta(seconds=3), "u": learner.id})
            moved.append(found)
        return found

    monkeypatch.setattr(activity, "credit_span", another_tab_credits_first)
    seat = client.post(f"{MODULE}/heartbeat").get_json()["seat_seconds"]
    assert moved and moved[0].seconds == 30  # what the beat read as due
    assert 3 <= seat <= 5  # what was left after the other tab's credit


def test_the_heartbeat_fast_way_checks_the_csrf_token(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None
) -> None:
    page = client.get(MODULE).get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', page)
    assert token is not None
    refused = client.post(f"{MODULE}/heartbeat")
    assert refused.status_code == 400 and "form expired" in refused.get_data(as_text=True)
    accepted = client.post(f"{MODULE}/heartbeat", headers={"X-CSRFToken": token.group(1)})
    assert accepted.status_code == 200 and "seat_seconds" in accepted.get_json()


def test_a_heartbeat_for_a_module_never_opened_gets_the_normal_answer(
    app: Flask, client: FlaskClient, learner: User
) -> None:
    assert client.post("/courses/demo-course/modules/alpha/heartbeat").status_code == 409


@pytest.fixture
def fast_submissions(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each quiz submission's fast way answered (True: graded there; False: left to the normal way)."""
    from kaptrain.quizzes import fast  # noqa: PLC0415

    real = fast.submit
    calls: list[bool] = []
    monkeypatch.setattr(fast, "submit", lambda *a: calls.append(real(*a)) or calls[-1])
    return calls


def open_attempt(db: Session, learner: User) -> quizzes.Attempt:
    """The learner opens the alpha module and starts its quiz."""
    q = quiz(db, "alpha-quiz")
    assert q.module is not None
    courses.open_module(db, learner.id, q.module)
    return start(db, learner, q)


def test_a_quiz_submission_comes_the_fast_way_and_is_graded_as_the_normal_way_grades(
    app: Flask, client: FlaskClient, learner: User, db: Session, fast_submissions: list[bool]
) -> None:
    calls = fast_submissions
    attempt = open_attempt(db, learner)
    form = correct_answers(attempt)
    first = attempt.items[0]
    form[f"q-{first.id}"] = correct_answers(attempt, right=False)[f"q-{first.id}"]  # one wrong, the rest right
    started = utcnow() - dt.timedelta(seconds=100)
    db.execute(update(quizzes.Attempt).where(quizzes.Attempt.id == attempt.id).values(started_at=started))
    db.execute(text("DELETE FROM activity_clocks WHERE user_id = :u"), {"u": learner.id})
    db.commit()
    result = f"/attempts/{attempt.id}/result"

    response = client.post(f"/attempts/{attempt.id}/submit", data=form)
    assert response.status_code == 302 and response.location.endswith(result)
    assert calls == [True]
    db.expire_all()
    graded = db.get(quizzes.Attempt, attempt.id)
    assert graded is not None and graded.status == quizzes.AttemptStatus.SUBMITTED and not graded.late
    answers = quizzes.read_answers(graded, form)
    credits, score = quizzes.score_answers(graded.items, answers, graded.settings.partial_credit)
    assert graded.score == score < 100 and graded.passed == (score >= graded.passing_score)
    expected = [(sorted(answers[i.id]), credits[i.id]) for i in graded.items]
    assert [(i.selected, i.credit) for i in graded.items] == expected
    assert graded.submitted_at is not None and 99 <= graded.active_seconds <= 101  # the time since it started

    again = client.post(f"/attempts/{attempt.id}/submit", data=correct_answers(graded))
    assert again.status_code == 302 and again.location.endswith(result)  # the normal way: the first result stands
    assert calls == [True, False]
    db.expire_all()
    assert db.get(quizzes.Attempt, attempt.id).score == score  # type: ignore[union-attr]


def _meanwhile(monkeypatch: pytest.MonkeyPatch, db: Session, change: Executable, **params: object) -> list[bool]:
    """Run `change` once, right after the fast submission has read the attempt and worked out the time (as another
    tab or request might, before it writes); the list says that it ran."""
    rule, ran = activity.credit_span, []

    def then_change(*args: dt.datetime | int) -> activity.Credit:
        found = rule(*args)  # type: ignore[arg-type]
        if not ran:
            db.execute(change, params)
            ran.append(True)
        return found

    monkeypatch.setattr(activity, "credit_span", then_change)
    return ran


def test_a_submission_whose_clock_moved_after_it_was_read_credits_only_what_is_left(
    app: Flask,
    client: FlaskClient,
    learner: User,
    db: Session,
    fast_submissions: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast submission reads the learner's clock outside any transaction; a heartbeat in another tab may
    credit the same time before it writes. Its compare and set then fails and the attempt is credited the locked
    way, from the clock's new place: the time is not credited twice."""
    attempt = open_attempt(db, learner)
    begun = utcnow() - dt.timedelta(seconds=100)
    db.execute(update(quizzes.Attempt).where(quizzes.Attempt.id == attempt.id).values(started_at=begun))
    activity.credit(db, learner.id, begun, begun, 0)  # the learner's time credited up to when it began
    form = correct_answers(attempt)
    db.commit()
    clock = text("UPDATE activity_clocks SET last_credit_at = :t WHERE user_id = :u")
    ran = _meanwhile(monkeypatch, db, clock, t=utcnow() - dt.timedelta(seconds=10), u=learner.id)
    assert client.post(f"/attempts/{attempt.id}/submit", data=form).status_code == 302
    assert ran and fast_submissions == [True]
    db.expire_all()
    graded = db.get(quizzes.Attempt, attempt.id)
    assert graded is not None and graded.status == quizzes.AttemptStatus.SUBMITTED
    assert 9 <= graded.active_seconds <= 12  # only what the other tab had not credited
    assert db.get(activity.ActivityClock, learner.id).last_credit_at >= utcnow() - dt.timedelta(seconds=2)  # type: ignore[union-attr]


def test_a_submission_given_more_time_after_it_was_read_is_graded_the_normal_way(
    app: Flask,
    client: FlaskClient,
    learner: User,
    db: Session,
    fast_submissions: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The time an attempt may credit is capped by its deadline; a deadline moved ("I need more time" in another
    tab) between the fast way's read and its write makes the claim miss, and the normal way grades it under the
    deadline as it now stands."""
    q = set_rules(db, quiz(db, "alpha-quiz"), time_limit_minutes=10)
    assert q.module is not None
    courses.open_module(db, learner.id, q.module)
    attempt = start(db, learner, q)
    assert attempt.deadline_at is not None
    form = correct_answers(attempt)
    db.commit()
    later = attempt.deadline_at + dt.timedelta(minutes=5)
    extend = update(quizzes.Attempt).where(quizzes.Attempt.id == attempt.id).values(deadline_at=later)
    ran = _meanwhile(monkeypatch, db, extend)
    assert client.post(f"/attempts/{attempt.id}/submit", data=form).status_code == 302
    assert ran and fast_submissions == [False]
    db.expire_all()
    graded = db.get(quizzes.Attempt, attempt.id)
    assert graded is not None and graded.status == quizzes.AttemptStatus.SUBMITTED and graded.score == 100


def test_submissions_the_fast_way_cannot_handle_get_the_normal_answer(
    app: Flask, client: FlaskClient, learner: User, db: Session, fast_submissions: list[bool]
) -> None:
    calls = fast_submissions
    attempt = open_attempt(db, learner)
    form = correct_answers(attempt)
    other = make_user(db)
    enrolled(db, other)
    db.commit()
    blank = dict(list(form.items())[1:])
    assert client.post(f"/attempts/{attempt.id}/submit", data=blank).status_code == 302  # back to the form
    foreign = {f"q-{attempt.items[0].id + 10_000}": ["0"], **blank}
    assert client.post(f"/attempts/{attempt.id}/submit", data=foreign).status_code == 400
    assert calls == [False, False]
    stranger = app.test_client()
    sign_in(stranger, db, other)
    assert stranger.post(f"/attempts/{attempt.id}/submit", data=form).status_code == 404  # not theirs
    db.execute(
        update(quizzes.Attempt)
        .where(quizzes.Attempt.id == attempt.id)
        .values(deadline_at=utcnow() - dt.timedelta(minutes=5))
    )
    db.commit()
    late = client.post(f"/attempts/{attempt.id}/submit", data=form, follow_redirects=True)
    assert "time limit ran out" in late.get_data(as_text=True)
    assert calls == [False, False, False, False]
    db.expire_all()
    closed = db.get(quizzes.Attempt, attempt.id)
    assert closed is not None and closed.late and closed.status == quizzes.AttemptStatus.SUBMITTED


# --- concurrency: the version moves last ------------------------------------------------------------------------------


def test_two_transactions_of_one_learner_never_wait_for_each_other_in_a_circle(app: Flask) -> None:
    """PostgreSQL: a heartbeat locks the learner's clock and then writes progress; a quiz submission writes its
    attempt and then locks the clock. Were the page version moved at once, each would hold what the other waits
    for (a deadlock, one of them refused). It moves at COMMIT, so the second simply waits for the first."""
    engine = app.extensions["kaptrain.db"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no two transactions hold locks together")
    with Session(engine) as setup:
        someone = make_user(setup)
        enrolled(setup, someone)
        alpha = setup.scalar(select(Module).where(Module.slug == "alpha"))
        assert alpha is not None
        courses.open_module(setup, someone.id, alpha)
        activity.credit(setup, someone.id, utcnow(), utcnow(), 0)
        setup.commit()
        user_id, version = someone.id, setup.scalar(select(User.pages_version).where(User.id == someone.id))
    clock = text("UPDATE activity_clocks SET last_credit_at = last_credit_at WHERE user_id = :u")
    first, second = engine.connect(), engine.connect()
    try:
        first.execute(clock, {"u": user_id})  # the heartbeat holds the clock
        second.execute(
            text("UPDATE enrolments SET disclosures_acknowledged_at = now() WHERE user_id = :u"), {"u": user_id}
        )
        waiting = threading.Thread(target=lambda: second.execute(clock, {"u": user_id}))  # waits for the clock
        waiting.start()
        first.execute(
            text("UPDATE module_progress SET seat_seconds = seat_seconds + 30 WHERE user_id = :u"), {"u": user_id}
        )
        first.commit()
        waiting.join(10)
        assert not waiting.is_alive()
        second.commit()
        with engine.connect() as check:
            assert check.scalar(select(User.pages_version).where(User.id == user_id)) == version + 2
    finally:
        first.close()
        second.close()
        with Session(engine) as cleanup:
            purge_user(cleanup, user_id)
            cleanup.commit()


def test_plain_statements_keep_their_own_connections_outside_the_pool(
    app: Flask, extra_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    other = extra_app()  # bound to the engine, as in production (the test fixtures bind one connection)
    engine = other.extensions["kaptrain.db"].engine
    with other.app_context():
        assert pagecache.run_sql("SELECT :a + :b", {"a": 1, "b": 2}) == (3,)
        plain = other.extensions["kaptrain.plain"]
        (own,) = plain._idle  # noqa: SLF001 - one connection, idle again
        moment = utcnow()
        found = pagecache.run_sql(
            "SELECT version FROM cache_epochs WHERE name = 'pages' AND :t IS NOT NULL", {"t": moment}
        )
        assert found is not None
        with pagecache.statements(write=True) as run:
            (after,) = run("UPDATE cache_epochs SET version = version + 1 WHERE name = 'pages' RETURNING version", {})
            with pagecache.statements() as run_beside:  # a second at once: a second connection
                assert run_beside("SELECT 1", {}) == [(1,)]
        assert after == (found[0] + 1,)
        with pytest.raises(ZeroDivisionError), pagecache.statements(write=True) as run:
            run("UPDATE cache_epochs SET version = version + 1 WHERE name = 'pages'", {})
            raise ZeroDivisionError  # an error inside: nothing is kept, and the connection stays
        assert pagecache.run_sql("SELECT version FROM cache_epochs WHERE name = 'pages'", {}) == (found[0] + 1,)
        assert len(plain._idle) == 2 and own in plain._idle  # noqa: SLF001
        assert engine.pool.checkedout() == 0  # outside the pool: no checkout, no ping
        for connection in plain._idle:  # noqa: SLF001
            connection.close()  # the connections die (a database restart): those statements fail ...
        for _ in range(2):
            with pytest.raises(Exception, match="closed"):
                pagecache.run_sql("SELECT 1", {})
        assert plain._idle == []  # noqa: SLF001 - ... and are dropped
        assert pagecache.run_sql("SELECT 1", {}) == (1,)  # a new one
    engine.dispose()
    assert plain._idle == []  # noqa: SLF001 - disposing of the engine closed it


def test_a_forked_child_leaves_its_parents_connections_alone(extra_app: Callable[..., Flask]) -> None:
    other = extra_app()
    with other.app_context():
        assert pagecache.run_sql("SELECT 1", {}) == (1,)  # the parent now holds an idle connection
        plain = other.extensions["kaptrain.plain"]
        pid = os.fork()
        if pid == 0:  # the child: an RQ work horse or a PDF renderer would be here
            code = 1
            try:
                plain.close_idle()  # an engine.dispose() in the child ...
                code = 0 if pagecache.run_sql("SELECT 2", {}) == (2,) else 1  # ... and statements of its own
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # Closing the inherited connection in the child would have ended this one's session (PostgreSQL).
        assert pagecache.run_sql("SELECT 3", {}) == (3,)


def test_a_learner_page_is_served_the_normal_way_when_plain_statements_fail(
    app: Flask, extra_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    other = extra_app()  # on the engine: the user is committed for real, and removed at the end
    engine = other.extensions["kaptrain.db"].engine
    with Session(engine) as s:
        user = make_user(s)
        enrolled(s, user)
        s.commit()
        user_id = user.id
    try:
        client = other.test_client()
        with other.extensions["kaptrain.db"].new_session() as s:  # keeps what it read after a commit
            sign_in(client, s, s.get(User, user_id))
        assert client.get(COURSE).status_code == 200
        with other.app_context():
            idle = other.extensions["kaptrain.plain"]._idle  # noqa: SLF001
            assert idle
            for connection in idle:
                connection.close()
        assert client.get(COURSE).status_code == 200
        assert "serving it the normal way" in caplog.text
    finally:
        with Session(engine) as s:
            purge_user(s, user_id)
            s.commit()
