"""Races: two tabs starting an attempt, several requests submitting one. Real commits, real threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain.quizzes import services
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.factories import correct_answers, enrolled, make_user, purge_user, quiz

WORKERS = 4


@pytest.fixture
def committed(app) -> Iterator[tuple[Any, int]]:
    """A learner committed to the shared test database, removed (with their attempts) afterwards."""
    engine = app.extensions["kaptrain.db"].engine
    with Session(engine) as s:
        user = make_user(s)
        enrolled(s, user)
        s.commit()
        user_id = user.id
    yield engine, user_id
    with Session(engine) as s:
        purge_user(s, user_id)
        s.commit()


def race(engine: Any, job: Callable[[Session], Any]) -> list[Any]:
    """Run job in WORKERS threads, each with its own session, released together."""
    barrier = threading.Barrier(WORKERS)
    results: list[Any] = [None] * WORKERS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with Session(engine) as s:
                barrier.wait(timeout=10)
                results[i] = job(s)
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_two_tabs_starting_at_once_get_one_attempt(committed):
    engine, user_id = committed

    def job(s: Session) -> int:
        return services.start_attempt(s, user_id, quiz(s, "alpha-quiz"), None).id

    ids = race(engine, job)
    assert len(set(ids)) == 1
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Attempt).where(Attempt.user_id == user_id)) == 1


def test_concurrent_submissions_are_graded_once(committed, monkeypatch):
    engine, user_id = committed
    with Session(engine) as s:
        attempt = services.start_attempt(s, user_id, quiz(s, "alpha-quiz"), None)
        s.commit()
        attempt_id = attempt.id
        form = correct_answers(attempt)
    claims: list[bool] = []
    real_claim = services._grade_once

    def counting_claim(*args: Any, **kwargs: Any) -> bool:
        won = real_claim(*args, **kwargs)
        claims.append(won)
        return won

    monkeypatch.setattr(services, "_grade_once", counting_claim)

    def job(s: Session) -> float | None:
        return services.submit_attempt(s, s.get(Attempt, attempt_id), form).score

    scores = race(engine, job)
    assert claims.count(True) == 1  # exactly one request graded it
    assert set(scores) == {100.0}  # every request reports the same result
    with Session(engine) as s:
        a = s.get(Attempt, attempt_id)
        assert a.status == AttemptStatus.SUBMITTED and a.passed
