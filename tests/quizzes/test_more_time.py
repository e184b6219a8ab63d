""" "I need more time": a learner adds time to a timed attempt where the quiz allows it; refused otherwise."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from kaptrain.audit import AuditEntry
from kaptrain.quizzes import services, timing
from kaptrain.quizzes.models import Attempt, AttemptStatus, QuizSettingsRevision
from tests.factories import correct_answers, enrolled, make_user, quiz
from tests.quizzes.test_attempts import start, start_final


def _attempt(db, attempt_id: int) -> Attempt:
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    assert attempt is not None
    return attempt


def _allow(db, attempt_id: int, allowed: bool = True) -> None:
    """Turn the setting on for the rules the attempt was taken under (the authoring side sets it on a quiz)."""
    settings_id = _attempt(db, attempt_id).settings_id
    db.execute(
        update(QuizSettingsRevision).where(QuizSettingsRevision.id == settings_id).values(allow_extension=allowed)
    )
    db.commit()


def test_asking_for_more_time_moves_the_deadline_and_keeps_the_answers_sent(client, db, learner):
    attempt_id = start_final(client, db, learner)
    _allow(db, attempt_id)
    before = _attempt(db, attempt_id).deadline_at
    page = client.get(f"/attempts/{attempt_id}").data.decode()
    assert "I need more time (+10 minutes)</button>" in page
    assert 'data-extend-minutes="10"' in page and "10 more times at most" in page
    form = correct_answers(_attempt(db, attempt_id))
    response = client.post(f"/attempts/{attempt_id}/extend", data=form)
    assert response.status_code == 302 and response.location.endswith(f"/attempts/{attempt_id}")
    assert b"10 minutes were added: submit by" in client.get(response.location).data
    attempt = _attempt(db, attempt_id)
    assert attempt.deadline_at == before + dt.timedelta(minutes=10)
    assert all(i.selected for i in attempt.items)  # the answers sent with the request were saved
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "attempt.extend")).one()
    assert entry.subject_id == attempt_id and entry.actor_id == learner.id and entry.details["number"] == 1


def test_more_time_is_refused_when_the_quiz_does_not_allow_it(client, db, learner):
    attempt_id = start_final(client, db, learner)
    before = _attempt(db, attempt_id).deadline_at
    assert "I need more time" not in client.get(f"/attempts/{attempt_id}").data.decode()
    response = client.post(f"/attempts/{attempt_id}/extend", data={})
    assert response.status_code == 302
    assert b"This quiz does not let learners add time themselves." in client.get(response.location).data
    assert _attempt(db, attempt_id).deadline_at == before
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "attempt.extend")) is None


def test_more_time_is_bounded(client, db, learner):
    attempt_id = start_final(client, db, learner)
    _allow(db, attempt_id)
    before = _attempt(db, attempt_id).deadline_at
    for _ in range(timing.MAX_EXTENSIONS):
        client.post(f"/attempts/{attempt_id}/extend", data={})
    assert "I need more time" not in client.get(f"/attempts/{attempt_id}").data.decode()
    response = client.post(f"/attempts/{attempt_id}/extend", data={})
    assert b"You have already added time 10 times (100 minutes)" in client.get(response.location).data
    limit = dt.timedelta(minutes=timing.MAX_EXTENSIONS * timing.EXTENSION_MINUTES)
    assert _attempt(db, attempt_id).deadline_at == before + limit


def test_an_untimed_quiz_has_no_time_to_add(client, db, learner):
    attempt_id = start(client)
    _allow(db, attempt_id)
    assert "I need more time" not in client.get(f"/attempts/{attempt_id}").data.decode()
    response = client.post(f"/attempts/{attempt_id}/extend", data={})
    assert b"This quiz has no time limit" in client.get(response.location).data
    assert _attempt(db, attempt_id).deadline_at is None


def test_no_time_is_added_once_the_time_ran_out(client, db, learner):
    attempt_id = start_final(client, db, learner)
    _allow(db, attempt_id)
    attempt = _attempt(db, attempt_id)
    attempt.deadline_at = attempt.deadline_at - dt.timedelta(minutes=31)
    db.commit()
    response = client.post(f"/attempts/{attempt_id}/extend", data={})
    assert response.location.endswith("/result")  # closed at this first observation instead
    closed = _attempt(db, attempt_id)
    assert closed.status == AttemptStatus.SUBMITTED and closed.late


def test_no_time_is_added_to_a_submitted_attempt(db):
    user = make_user(db)
    enrolled(db, user)
    attempt = timing_attempt(db, user)
    services.submit_attempt(db, attempt, correct_answers(attempt))
    assert attempt.status == AttemptStatus.SUBMITTED
    with pytest.raises(services.QuizError, match="has been submitted") as refused:
        timing.extend_attempt(db, attempt)
    assert refused.value.status == 409


def timing_attempt(db, user) -> Attempt:
    """An open attempt with a deadline and extensions allowed, made directly through the service."""
    attempt = services.start_attempt(db, user.id, quiz(db, "alpha-quiz"), None)
    attempt.deadline_at = attempt.started_at + dt.timedelta(minutes=20)
    attempt.settings.allow_extension = True
    db.flush()
    return attempt


def test_nobody_adds_time_to_someone_elses_attempt(client, db, learner):
    other = make_user(db)
    enrolled(db, other)
    theirs = timing_attempt(db, other)
    before = theirs.deadline_at
    db.commit()
    assert client.post(f"/attempts/{theirs.id}/extend", data={}).status_code == 404
    assert _attempt(db, theirs.id).deadline_at == before
