"""The one completion rule, the quiz gate (module opened, reading time) and active time that cannot be inflated."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.courses.completion import State, Step, StepKind
from kaptrain.courses.models import ModuleProgress
from kaptrain.db import utcnow
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, Quiz, QuizKind
from tests.factories import (
    complete_learning,
    correct_answers,
    course,
    enrolled,
    make_user,
    pass_quiz,
    quiz,
    record,
    start,
)


def test_every_requirement_is_a_step_with_done_and_why(db):
    user = make_user(db)
    enrolled(db, user, acknowledged=False)
    steps = record(db, user).steps
    assert [s.kind for s in steps] == [
        StepKind.DISCLOSURES,
        StepKind.MODULE,
        StepKind.MODULE,
        StepKind.MODULE,
        StepKind.FINAL,
        StepKind.EVALUATION,
        StepKind.ATTESTATION,
    ]
    assert not any(s.done for s in steps)
    assert steps[1].why.startswith("Locked: first, read and acknowledge")
    assert steps[4].locked and "complete modules 1–3" in steps[4].why
    final = db.scalar(select(Quiz).where(Quiz.kind == QuizKind.FINAL))
    assert completion.quiz_gate(record(db, user), final) == "Complete modules 1–3"  # the quiz page says the same
    assert completion._modules_named([2, 4]) == "modules 2 and 4"  # noqa: SLF001 - the wording of a gap
    assert completion._modules_named([2, 4, 5]) == "modules 2, 4 and 5"  # noqa: SLF001


def test_post_course_steps_separate_requirements_met_from_completed(db, monkeypatch):
    user = make_user(db)
    enrolled(db, user)
    complete_learning(db, user)
    attestation = Step(StepKind.ATTESTATION, "attestation", "Attest", False, None, "Not yet")
    monkeypatch.setattr(completion, "POST_COURSE_STEPS", [lambda _s, _r: attestation])
    now = record(db, user)
    assert now.requirements_met and not now.completed and now.completed_at is None
    assert now.next_step is attestation


def test_a_module_quiz_cannot_be_taken_without_opening_the_module(client, db, learner):
    response = client.post("/courses/demo-course/quizzes/alpha-quiz/start")
    assert response.status_code == 403 and b"Open and read module 1: Module Alpha" in response.data
    page = client.get("/courses/demo-course/quizzes/alpha-quiz").data
    assert b"Open and read module 1: Module Alpha" in page and b"Start the quiz" not in page
    with pytest.raises(quizzes.QuizError):
        start(db, learner, quiz(db, "alpha-quiz"))
    assert db.scalar(select(Attempt.id)) is None
    client.get("/courses/demo-course/modules/alpha")
    assert client.post("/courses/demo-course/quizzes/alpha-quiz/start").status_code == 302


def test_minimum_reading_time_before_the_quiz_says_how_much_is_left(client, db, learner):
    c = course(db)
    c.min_reading_percent = 50  # alpha estimates 20 minutes: 10 minutes of active reading first
    db.commit()
    client.get("/courses/demo-course/modules/alpha")
    page = client.get("/courses/demo-course/quizzes/alpha-quiz").data
    assert b"Spend about 10 more minutes of active reading in module 1: Module Alpha" in page
    progress = db.scalar(select(ModuleProgress).where(ModuleProgress.user_id == learner.id))
    progress.seat_seconds = 7 * 60 + 30
    db.commit()
    assert b"about 3 more minutes" in client.get("/courses/demo-course/quizzes/alpha-quiz").data
    assert client.post("/courses/demo-course/quizzes/alpha-quiz/start").status_code == 403
    progress.seat_seconds = 10 * 60
    db.commit()
    assert client.post("/courses/demo-course/quizzes/alpha-quiz/start").status_code == 302


def two_modules_open(db):  # type: ignore[no-untyped-def]
    user = make_user(db)
    enrolled(db, user)
    pass_quiz(db, user, "alpha-quiz")
    modules = course(db).modules
    t0 = utcnow()
    a = courses.open_module(db, user.id, modules[0], t0)
    b = courses.open_module(db, user.id, modules[1], t0)
    a.seat_seconds = b.seat_seconds = 0
    return user, a, b, t0


def test_two_modules_heartbeating_in_parallel_for_an_hour_credit_one_hour(db):
    user, a, b, t0 = two_modules_open(db)
    for i in range(1, 121):  # an hour of 30-second beats from each page, the second 1 s after the first
        courses.record_heartbeat(db, a, t0 + dt.timedelta(seconds=30 * i))
        courses.record_heartbeat(db, b, t0 + dt.timedelta(seconds=30 * i + 1))
    assert a.seat_seconds + b.seat_seconds <= 3600 + 1
    assert record(db, user).active_seconds <= 3600 + 1 + sum(x.active_seconds for x in db.scalars(select(Attempt)))


def test_rapid_or_replayed_heartbeats_credit_no_more_than_wall_time(db):
    user, a, _b, t0 = two_modules_open(db)
    for _ in range(50):  # a script replaying the same beat
        courses.record_heartbeat(db, a, t0 + dt.timedelta(seconds=30))
    for i in range(1, 601):  # a beat every 0.1 s for a minute
        courses.record_heartbeat(db, a, t0 + dt.timedelta(seconds=30 + i / 10))
    assert a.seat_seconds == 90


def test_idle_gap_credits_at_most_one_interval(db):
    _user, a, _b, t0 = two_modules_open(db)
    courses.record_heartbeat(db, a, t0 + dt.timedelta(seconds=30))
    total = courses.record_heartbeat(db, a, t0 + dt.timedelta(hours=1))
    assert total == 30 + courses.HEARTBEAT_SECONDS


def test_quiz_time_counts_capped_and_not_twice(db):
    user = make_user(db)
    enrolled(db, user)
    q = quiz(db, "alpha-quiz")
    courses.open_module(db, user.id, q.module)
    attempt = start(db, user, q)
    attempt.started_at = utcnow() - dt.timedelta(minutes=4)
    quizzes.submit_attempt(db, attempt, correct_answers(attempt))
    assert 235 <= attempt.active_seconds <= 245  # four minutes, from start to submit
    # An untimed quiz left open for a day credits at most 3 minutes per question (3 questions here).
    other = make_user(db)
    enrolled(db, other)
    courses.open_module(db, other.id, q.module)
    slow = start(db, other, q)
    slow.started_at = utcnow() - dt.timedelta(days=1)
    quizzes.submit_attempt(db, slow, correct_answers(slow))
    assert slow.active_seconds == quizzes.UNTIMED_SECONDS_PER_QUESTION * 3


def test_reading_during_an_open_quiz_is_not_counted_twice(db):
    user = make_user(db)
    enrolled(db, user)
    q = quiz(db, "alpha-quiz")
    t0 = utcnow() - dt.timedelta(minutes=10)
    progress = courses.open_module(db, user.id, q.module, t0)
    attempt = start(db, user, q)
    attempt.started_at = t0
    for i in range(1, 21):  # the module page heartbeats in another tab for the whole 10 minutes
        courses.record_heartbeat(db, progress, t0 + dt.timedelta(seconds=30 * i))
    quizzes.submit_attempt(db, attempt, correct_answers(attempt))
    assert progress.seat_seconds + attempt.active_seconds <= 600 + 5


def test_heartbeat_route_cannot_be_inflated_from_two_tabs(client, db, learner):
    client.get("/courses/demo-course/modules/alpha")
    for _ in range(20):
        client.post("/courses/demo-course/modules/alpha/heartbeat")
    seconds = client.post("/courses/demo-course/modules/alpha/heartbeat").get_json()["seat_seconds"]
    assert seconds <= 5  # twenty-one beats within a second or two credit a second or two


def test_modules_complete_from_facts_not_stamps(db):
    """Removing a passed attempt's pass (e.g. a regrade) reopens the module: nothing was stamped."""
    user = make_user(db)
    enrolled(db, user)
    attempt = pass_quiz(db, user, "alpha-quiz")
    assert record(db, user).modules[0].state == State.COMPLETED
    attempt.score, attempt.passed = 50.0, False
    db.flush()
    assert record(db, user).modules[0].state == State.OPEN
