"""Evaluation, attestation, issuance, numbers, revocation and re-issue, as services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from kaptrain.audit import AuditEntry
from kaptrain.certificates import services
from kaptrain.certificates.models import CertificateStatus, RevocationReason
from kaptrain.courses.completion import StepKind
from kaptrain.db import utcnow
from tests.factories import certified, complete_learning, enrolled, evaluation_answers, make_user, record


@pytest.fixture(autouse=True)
def _app_context(app):  # type: ignore[no-untyped-def]
    """Issuing reads the app's settings and renders a template: services run inside an app context."""
    with app.app_context():
        yield


def test_course_completes_through_evaluation_and_attestation_and_the_certificate_is_issued(db):
    user = make_user(db, full_name="Ana Ruiz")
    enrolled(db, user)
    certificate = certified(db, user, "3.25")
    assert certificate.status == CertificateStatus.ACTIVE
    assert certificate.number.startswith("KAP-") and certificate.number.endswith(f"{certificate.id:06d}")
    assert certificate.hours == Decimal("3.25") and certificate.holder_name == "Ana Ruiz"
    assert services.stored_pdf(db, certificate)[:5] == b"%PDF-"
    now = record(db, user)
    assert now.completed and now.completed_at is not None
    assert [s.kind for s in now.steps if s.done][-2:] == [StepKind.EVALUATION, StepKind.ATTESTATION]
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.subject_id == certificate.id)).all()
    assert actions == ["certificate.issue"]


def test_the_certificate_is_completed_at_the_attestation_not_at_the_last_quiz(db):
    user = make_user(db)
    enrolled(db, user)
    done = complete_learning(db, user)
    services.submit_evaluation(db, done, evaluation_answers(done.course))
    before = record(db, user)
    last_step = max(s.done_at for s in before.steps if s.done_at)
    attested = utcnow() + dt.timedelta(days=3)  # the learner comes back days after the final assessment
    certificate = services.attest(db, before, user, Decimal("2"), now=attested)
    assert certificate.completed_at == attested and last_step < attested


def test_a_later_profile_edit_does_not_change_the_issued_certificate(db):
    user = make_user(db, full_name="Ana Ruiz")
    enrolled(db, user)
    certificate = certified(db, user)
    user.full_name = "Ana Ruiz-Lopez"
    db.flush()
    assert certificate.holder_name == "Ana Ruiz"
    new = services.reissue(db, certificate, actor_label="test")
    assert new.holder_name == "Ana Ruiz-Lopez" and new.supersedes_id == certificate.id
    assert certificate.status == CertificateStatus.SUPERSEDED and new.number != certificate.number
    assert services.public_status(certificate).verdict == "superseded"


def test_revoked_certificate_says_so_publicly(db):
    user = make_user(db)
    enrolled(db, user)
    certificate = certified(db, user)
    services.revoke(db, certificate, RevocationReason.ISSUED_IN_ERROR, "duplicate", actor_label="test")
    status = services.public_status(certificate)
    assert status.verdict == "revoked" and status.as_json()["revocation_reason"] == "issued in error"
    with pytest.raises(services.CertificateError):
        services.revoke(db, certificate, RevocationReason.OTHER, "again")


@pytest.mark.parametrize(
    ("raw", "message"),
    [("3.1", "quarter-hour"), ("9", "at most 3.5"), ("0", "more than 0"), ("abc", "as a number"), ("NaN", "more")],
)
def test_hours_claims_must_be_quarter_hours_within_the_maximum(raw, message):
    with pytest.raises(services.CertificateError, match=message):
        services.parse_hours(raw, Decimal("3.5"))


def test_evaluation_and_attestation_wait_for_the_learning(db):
    user = make_user(db)
    enrolled(db, user)
    early = record(db, user)
    with pytest.raises(services.CertificateError) as err:
        services.submit_evaluation(db, early, evaluation_answers(early.course))
    assert err.value.status == 403
    done = complete_learning(db, user)
    with pytest.raises(services.CertificateError, match="evaluation first"):
        services.attest(db, done, user, Decimal("1"))
    services.submit_evaluation(db, done, evaluation_answers(done.course))
    with pytest.raises(services.CertificateError, match="already submitted"):
        services.submit_evaluation(db, record(db, user), evaluation_answers(done.course))


def test_manual_approval_waits_for_an_administrator(db):
    user = make_user(db)
    enrolled(db, user)
    done = complete_learning(db, user)
    done.course.certificate_approval = "manual"
    services.submit_evaluation(db, done, evaluation_answers(done.course))
    certificate = services.attest(db, record(db, user), user, Decimal("2"))
    assert certificate.status == CertificateStatus.PENDING and certificate.number is None
    assert services.public_status(certificate).verdict == "pending"
    services.approve(db, certificate, actor_label="test")
    assert certificate.status == CertificateStatus.ACTIVE and certificate.number


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),  # a leap year
        (dt.date(2028, 2, 29), 12, dt.date(2029, 2, 28)),
        (dt.date(2026, 12, 31), 1, dt.date(2027, 1, 31)),  # into the next year
        (dt.date(2026, 3, 15), 24, dt.date(2028, 3, 15)),
    ],
)
def test_a_validity_period_ends_on_the_same_day_or_the_months_last(start: dt.date, months: int, end: dt.date) -> None:
    moment = dt.datetime.combine(start, dt.time(23, 30), tzinfo=dt.UTC)
    assert services._add_months(moment, months) == dt.datetime.combine(end, dt.time(23, 30), tzinfo=dt.UTC)  # noqa: SLF001
