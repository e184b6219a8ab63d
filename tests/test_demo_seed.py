"""The scale data set (`demo seed`): counts, and records the site's own rules read as it would have written them."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain import demo_seed
from kaptrain.accounts.models import User
from kaptrain.certificates import services, signing
from kaptrain.certificates.models import Certificate, CertificateFile, CertificateStatus, RevocationReason, StatusList
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.credentials import status_list
from kaptrain.db import utcnow
from kaptrain.quizzes.grading import grade
from kaptrain.quizzes.models import Attempt, AttemptStatus, Question, QuestionType
from kaptrain.quizzes.services import current_block
from tests.factories import course

LEARNERS = 30


@pytest.fixture
def seeded(app: Flask, db: Session) -> demo_seed.SeedReport:
    """Thirty seeded learners in the fixture course (one certificate rendered for real)."""
    with app.app_context():
        return demo_seed.seed(db, course(db), LEARNERS, real_certificates=1)


def _seeded_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).where(User.email.like(f"%@{demo_seed.SEED_DOMAIN}")).order_by(User.id)))


def test_counts_match_the_report_and_the_stage_mix(db: Session, seeded: demo_seed.SeedReport) -> None:
    expected = Counter(demo_seed.stage_list(LEARNERS, random.Random(0)))  # noqa: S311 - only the counts matter
    assert seeded.stages == {s.value: expected[s] for s in demo_seed.Stage}
    users = _seeded_users(db)
    assert len(users) == seeded.learners == LEARNERS
    ids = [u.id for u in users]
    assert db.scalar(select(func.count()).select_from(Enrolment).where(Enrolment.user_id.in_(ids))) == LEARNERS
    assert db.scalar(select(func.count()).select_from(Attempt).where(Attempt.user_id.in_(ids))) == seeded.attempts
    assert seeded.attempts > LEARNERS  # partway and finished learners take several quizzes
    certificates = list(db.scalars(select(Certificate).where(Certificate.user_id.in_(ids))))
    assert len(certificates) == seeded.certificates == expected[demo_seed.Stage.CERTIFIED]
    assert seeded.rendered == 1
    # Every seeded account shares one password hash (hashed once, not per row).
    assert len({u.password_hash for u in users}) == 1


def test_every_attempt_is_graded_from_its_items(db: Session, seeded: demo_seed.SeedReport) -> None:
    published = set(db.scalars(select(Question.published_revision_id)))
    attempts = list(db.scalars(select(Attempt).join(User).where(User.email.like(f"%@{demo_seed.SEED_DOMAIN}"))))
    assert len(attempts) == seeded.attempts
    for attempt in attempts:
        quiz = attempt.quiz
        assert attempt.status == AttemptStatus.SUBMITTED
        assert attempt.settings_id == quiz.published_revision_id
        assert attempt.passing_score == quiz.settings.passing_score
        assert len(attempt.items) == quiz.settings.draw
        assert attempt.started_at < attempt.submitted_at <= utcnow()  # type: ignore[operator]
        for item in attempt.items:
            revision = item.revision
            assert item.question_revision_id in published
            assert revision.question.quiz_id == quiz.id
            assert sorted(item.option_order) == sorted(o["id"] for o in revision.options)
            assert item.selected and set(item.selected) <= set(item.option_order)
            expected = grade(revision.type, revision.options, frozenset(item.selected), quiz.settings.partial_credit)
            assert item.credit == expected
            if revision.vignette_id is not None:
                assert item.vignette_revision_id == revision.vignette.published_revision_id  # type: ignore[union-attr]
        score = round(100 * sum(i.credit or 0 for i in attempt.items) / len(attempt.items), 2)
        assert attempt.score == score
        assert attempt.passed == (score >= attempt.passing_score)


def test_attempts_follow_the_rules(db: Session, seeded: demo_seed.SeedReport) -> None:
    """Numbered in time order, after the module was opened, never past the attempts a block allows."""
    users = _seeded_users(db)
    attempts: dict[tuple[int, int], list[Attempt]] = defaultdict(list)
    for a in db.scalars(select(Attempt).where(Attempt.user_id.in_([u.id for u in users])).order_by(Attempt.number)):
        attempts[a.user_id, a.quiz_id].append(a)
    opened = {(p.user_id, p.module_id): p.first_opened_at for p in db.scalars(select(ModuleProgress))}
    for (user_id, _quiz_id), taken in attempts.items():
        quiz = taken[0].quiz
        assert [a.number for a in taken] == list(range(1, len(taken) + 1))
        assert all(a.submitted_at < b.started_at for a, b in zip(taken, taken[1:], strict=False))  # type: ignore[operator]
        assert sum(bool(a.passed) for a in taken) <= 1 and (not any(a.passed for a in taken[:-1]))
        if quiz.module_id is not None:
            assert opened[user_id, quiz.module_id] < taken[0].started_at
        rules = quiz.settings
        failures: list[dt.datetime] = []
        for a in taken:  # as quiz_state counts them when the attempt starts
            used = len(current_block(failures, rules.cooldown_hours))
            if failures and a.started_at - failures[-1] >= dt.timedelta(hours=rules.cooldown_hours):
                used = 0  # paused long enough: a fresh block
            assert used < rules.max_attempts
            if not a.passed:
                failures.append(a.submitted_at)


def test_certificates_belong_to_complete_records(app: Flask, db: Session, seeded: demo_seed.SeedReport) -> None:
    c = course(db)
    records = {
        u.id: completion.course_record(db, u.id, c, courses.get_enrolment(db, u.id, c.id)) for u in _seeded_users(db)
    }
    certificates = list(db.scalars(select(Certificate).where(Certificate.user_id.in_(records))))
    for certificate in certificates:
        record = records[certificate.user_id]
        assert record.completed, [s for s in record.steps if not s.done]
        assert certificate.status == CertificateStatus.ACTIVE
        assert certificate.number and certificate.number.endswith(f"{certificate.id:06d}")
        assert certificate.hours <= c.ce_hours
        assert db.scalar(select(CertificateFile.sha256).where(CertificateFile.certificate_id == certificate.id))
    rendered = [x for x in certificates if x.credential is not None]
    assert len(rendered) == 1 and rendered[0].issue_reason == ""
    assert all(x.issue_reason == demo_seed.PLACEHOLDER_REASON for x in certificates if x.credential is None)
    # The completion rule agrees with the stage mix: learning done for these three stages, not for the others.
    stages = seeded.stages
    met = sum(stages[s] for s in ("learning_done", "evaluated", "certified"))
    assert sum(r.requirements_met for r in records.values()) == met
    assert sum(r.completed for r in records.values()) == stages["certified"] == len(certificates)
    not_started = [r for r in records.values() if not any(m.progress for m in r.modules)]
    assert len(not_started) == stages["enrolled"]


def test_a_second_seed_is_refused(app: Flask, db: Session, seeded: demo_seed.SeedReport) -> None:
    with app.app_context(), pytest.raises(demo_seed.SeedError, match="already holds 30 seeded learners"):
        demo_seed.seed(db, course(db), 5)


def test_the_command_seeds_with_a_progress_bar(runner: FlaskCliRunner, db: Session) -> None:
    result = runner.invoke(args=["demo", "seed", "--learners", "12", "--course", "demo-course"])
    assert result.exit_code == 0, result.output
    assert "12 learners" in result.output and "Seeding learners" in result.output
    assert len(_seeded_users(db)) == 12
    again = runner.invoke(args=["demo", "seed", "--learners", "12"])
    assert again.exit_code == 1 and "already holds 12 seeded learners" in again.output


def test_the_command_refuses_production(app: Flask, runner: FlaskCliRunner) -> None:
    app.config["ENV"] = "production"
    try:
        result = runner.invoke(args=["demo", "seed", "--learners", "3"])
    finally:
        app.config["ENV"] = "testing"
    assert result.exit_code == 1 and "never created in production" in result.output


def test_plans_average_about_ten_attempts_on_a_course_like_the_shipped_one() -> None:
    """Six 10-question module quizzes and a 25-question final, as shipped: ~100,000 attempts at 10,000 learners."""
    rng = random.Random(7)  # noqa: S311 - test data
    options = ({"id": "a", "correct": True}, {"id": "b", "correct": False})
    bank = tuple(
        demo_seed.QuestionShape(i, QuestionType.SINGLE, options, None, ("a", "b"), ("a",), ("b",)) for i in range(30)
    )
    quiz = demo_seed.QuizShape(1, 1, 10, 80, 3, 24, None, False, bank)
    final = demo_seed.QuizShape(2, 2, 25, 80, 3, 24, 60, False, bank)
    modules = tuple(demo_seed.ModuleShape(m, 40, quiz) for m in range(6))
    shape = demo_seed.CourseShape(1, modules, final, 0, Decimal("8"), ("o",))
    now = utcnow()
    plans = [demo_seed.plan_learner(i, s, shape, rng, now) for i, s in enumerate(demo_seed.stage_list(2000, rng))]
    per_learner = sum(len(p.attempts) for p in plans) / len(plans)
    assert 8 <= per_learner <= 13
    assert all(p.at(p.end) <= now for p in plans)


def test_hours_claimed_are_quarter_hours_within_the_course() -> None:
    assert demo_seed.hours_claimed(0, Decimal("8")) == Decimal("0.25")
    assert demo_seed.hours_claimed(3 * 3600 + 1000, Decimal("8")) == Decimal("3.25")
    assert demo_seed.hours_claimed(20 * 3600, Decimal("8")) == Decimal("8.00")


def test_a_seeded_certificate_can_be_revoked_and_reissued_like_any_other(
    app: Flask, db: Session, seeded: demo_seed.SeedReport
) -> None:
    """The walk-through: revoking or re-issuing a certificate made in bulk (never signed, so with no place in the
    status lists yet) failed with a 500."""
    bulk = [c for c in db.scalars(select(Certificate)) if c.credential is None]
    assert len(bulk) >= 2 and all(c.status_slot is None for c in bulk)
    with app.app_context():
        services.revoke(db, bulk[0], RevocationReason.ISSUED_IN_ERROR, "Seeded in error", actor_label="test")
        newer = services.reissue(db, bulk[1], actor_label="test", reason="Name corrected")
        for old in bulk[:2]:
            number, index = signing.status_position(old)
            listed = db.get(StatusList, number)
            assert listed is not None and status_list.is_set(listed.encoded, index), old.number
    assert bulk[0].status == CertificateStatus.REVOKED and bulk[1].status == CertificateStatus.SUPERSEDED
    assert newer.status == CertificateStatus.ACTIVE and newer.credential is not None
