"""Attempt blocks and cooldowns, answer parsing, pass marks on the course page, item-analysis thresholds."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kaptrain.quizzes import analysis, services
from kaptrain.quizzes.models import Attempt
from tests.factories import correct_answers, enrolled, make_user, quiz, set_rules, start


def fail_once(db, user, q, when: dt.datetime) -> Attempt:  # type: ignore[no-untyped-def]
    attempt = start(db, user, q)
    services.submit_attempt(db, attempt, correct_answers(attempt, right=False))
    attempt.started_at = attempt.submitted_at = when
    db.flush()
    return attempt


@pytest.fixture
def failing(db):  # type: ignore[no-untyped-def]
    user = make_user(db)
    enrolled(db, user)
    q = quiz(db, "alpha-quiz")  # max_attempts 2, cooldown 24 h
    from kaptrain.courses import services as courses  # noqa: PLC0415 - only this fixture opens modules

    courses.open_module(db, user.id, q.module)
    return user, q


def test_granting_an_extra_attempt_never_starts_a_cooldown_by_itself(db, failing):
    user, q = failing
    now = dt.datetime.now(dt.UTC)
    # Two failures, a cooldown waited out, then one more failure: one attempt left in this block.
    fail_once(db, user, q, now - dt.timedelta(hours=30, minutes=1))
    fail_once(db, user, q, now - dt.timedelta(hours=30))
    fail_once(db, user, q, now - dt.timedelta(minutes=5))
    state = services.quiz_state(db, user.id, q, None)
    assert state.cooldown_until is None and state.attempts_left == 1
    services.grant_accommodation(db, user.id, q, 0, 1, "extra attempt", user.id)
    state = services.quiz_state(db, user.id, q, None)
    assert state.cooldown_until is None and state.attempts_left == 2  # (3 % 3 == 0 started a cooldown before)


def test_an_extra_attempt_granted_during_a_cooldown_can_be_used_now(db, failing):
    user, q = failing
    now = dt.datetime.now(dt.UTC)
    fail_once(db, user, q, now - dt.timedelta(minutes=10))
    fail_once(db, user, q, now - dt.timedelta(minutes=5))
    assert services.quiz_state(db, user.id, q, None).cooldown_until is not None
    services.grant_accommodation(db, user.id, q, 0, 1, "extra attempt", user.id)
    state = services.quiz_state(db, user.id, q, None)
    assert state.cooldown_until is None and state.attempts_left == 1 and state.can_start


@pytest.mark.parametrize("value", ["²", "١", "0x1", "-0", " 1", "1" * 40])
def test_answers_other_than_plain_ascii_numbers_are_refused_with_a_400(client, db, learner, value):
    client.get("/courses/demo-course/modules/alpha")
    response = client.post("/courses/demo-course/quizzes/alpha-quiz/start")
    attempt_id = int(response.location.rsplit("/", 1)[1])
    db.expire_all()
    form = correct_answers(db.get(Attempt, attempt_id))
    first = next(iter(form))
    form[first] = [value]
    response = client.post(f"/attempts/{attempt_id}/submit", data=form)
    assert response.status_code == 400 and b"not one of the options shown" in response.data
    key_form = {**correct_answers(db.get(Attempt, attempt_id)), f"q-{value}": ["0"]}
    response = client.post(f"/attempts/{attempt_id}/submit", data=key_form)
    assert response.status_code == 400
    db.expire_all()
    assert db.get(Attempt, attempt_id).status == "open"


def test_course_page_shows_each_quizs_own_pass_mark(client, db):
    q = quiz(db, "beta-quiz")
    set_rules(db, q, passing_score=70)
    db.commit()
    page = client.get("/courses/demo-course").data.decode()
    assert "quiz, pass mark 70%" in page and "quiz, pass mark 80%" in page
    assert "(each quiz below)" in page


def test_item_flags_wait_for_enough_answers(db):
    q = quiz(db, "alpha-quiz")
    set_rules(db, q, draw=6)
    for _ in range(3):
        user = make_user(db)
        enrolled(db, user)
        a = services.start_attempt(db, user.id, q, None)
        services.submit_attempt(db, a, correct_answers(a))
    few = analysis.quiz_stats(db, q, min_attempts=20)
    assert all(s.flags == ["too few answers to judge (3 of 20)"] for s in few.items)
    enough = analysis.quiz_stats(db, q, min_attempts=3)
    assert all(s.flags == ["too easy"] for s in enough.items)
    assert db.scalar(select(Attempt.id).where(Attempt.quiz_id == q.id)) is not None
