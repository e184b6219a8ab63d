"""The transcript's data: modules, scores and attempts, the final assessment, time, claim and certificate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.authoring import services as authoring
from kaptrain.certificates.transcript import build_transcript, format_duration, quarter_hours
from kaptrain.content.models import Module
from kaptrain.courses import services as courses
from kaptrain.quizzes import services as quizzes
from tests.factories import certified, correct_answers, enrolled, make_user, quiz, record, start


@pytest.fixture(autouse=True)
def _app_context(app):  # type: ignore[no-untyped-def]
    """Issuing reads the app's settings and renders a template: services run inside an app context."""
    with app.app_context():
        yield


def test_a_new_learner_has_an_empty_transcript(db):
    user = make_user(db, full_name="Ana Ruiz")
    enrolment = enrolled(db, user)
    t = build_transcript(db, user, enrolment)
    assert t.learner_name == "Ana Ruiz" and t.course_title == "Demo Course for Tests" and t.max_hours == Decimal("3.5")
    assert [(m.position, m.title, m.completed_at) for m in t.modules] == [
        (1, "Module Alpha", None),
        (2, "Module Beta", None),
        (3, "Module Gamma", None),
    ]
    assert t.modules[0].quiz is not None and t.modules[0].quiz.attempts == 0 and t.modules[0].quiz.score is None
    assert t.modules[2].quiz is None  # no quiz: complete when marked as read
    assert t.final is not None and t.final.passed_at is None
    assert not t.requirements_met and t.certificate is None and t.certificate_status == ""
    assert t.hours_claimed is None and t.evaluated_at is None and t.attested_at is None


def test_the_transcript_reports_the_passing_attempt_and_every_attempt_taken(db):
    user = make_user(db)
    enrolment = enrolled(db, user)
    alpha = quiz(db, "alpha-quiz")
    courses.open_module(db, user.id, alpha.module)
    failed = start(db, user, alpha)
    quizzes.submit_attempt(db, failed, correct_answers(failed, right=False))
    progress = record(db, user).modules[0].progress
    progress.seat_seconds = 600
    db.flush()
    certificate = certified(db, user, "2.5")  # passes alpha (2nd attempt), beta, reads gamma, passes the final
    t = build_transcript(db, user, enrolment)
    alpha_line = t.modules[0].quiz
    assert alpha_line is not None and alpha_line.attempts == 2 and alpha_line.score == 100
    assert alpha_line.passed_at == t.modules[0].completed_at and t.modules[0].reading_minutes == 10
    assert t.modules[1].quiz is not None and t.modules[1].quiz.attempts == 1
    assert t.modules[2].completed_at is not None and t.modules[2].quiz is None
    assert t.final is not None and t.final.attempts == 1 and t.final.score == 100
    assert t.requirements_met and t.completed_at is not None
    assert t.evaluated_at is not None and t.attested_at is not None and t.hours_claimed == Decimal("2.5")
    assert t.active_seconds >= 600
    assert t.certificate is certificate and t.certificate_status == "Issued"


def test_modules_retired_after_the_learner_completed_them_stay_on_the_transcript(db):
    user, opened_only = make_user(db), make_user(db)
    enrolment = enrolled(db, user)
    enrolled(db, opened_only)
    certified(db, user, "2.5")
    courses.open_module(db, opened_only.id, record(db, opened_only).modules[2].module)
    author = make_user(db, role=Role.INSTRUCTOR)
    beta, gamma = (db.scalars(select(Module).where(Module.slug == slug)).one() for slug in ("beta", "gamma"))
    authoring.set_retired(db, beta, True, author)  # had a quiz, which the learner passed
    authoring.set_retired(db, gamma, True, author)  # no quiz: complete when marked as read
    t = build_transcript(db, user, enrolment)
    assert [m.title for m in t.modules] == ["Module Alpha"]
    assert [(m.title, m.quiz.score if m.quiz else None) for m in t.retired_modules] == [
        ("Module Beta", 100),
        ("Module Gamma", None),
    ]
    assert all(m.completed_at is not None for m in t.retired_modules)
    # Opening a module is not completing it: nothing retired is on that learner's transcript.
    assert build_transcript(db, opened_only, record(db, opened_only).enrolment).retired_modules == []
    authoring.set_retired(db, gamma, False, author)
    assert [m.title for m in build_transcript(db, user, enrolment).retired_modules] == ["Module Beta"]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 minutes"),
        (59, "0 minutes"),
        (60, "1 minute"),
        (2700, "45 minutes"),
        (3600, "1 hour"),
        (3660, "1 hour 1 minute"),
        (11_100, "3 hours 5 minutes"),
    ],
)
def test_durations_are_said_in_hours_and_minutes(seconds, words):
    assert format_duration(seconds) == words


@pytest.mark.parametrize(
    ("seconds", "hours"),
    [(0, "0.00"), (400, "0.00"), (450, "0.25"), (3600, "1.00"), (11_100, "3.00"), (11_700, "3.25")],
)
def test_measured_time_rounds_to_the_nearest_quarter_hour(seconds, hours):
    assert quarter_hours(seconds) == Decimal(hours)
