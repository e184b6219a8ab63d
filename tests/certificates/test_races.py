"""Two administrators acting on one certificate at the same moment: the changes are made one after the other, and
the second finds the first's result (on PostgreSQL the certificate's row is locked; SQLite has one writer)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kaptrain.audit import AuditEntry
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus, RevocationReason, StatusList
from tests.factories import certified, enrolled, make_user, purge_user, run_at_once

AT_ONCE = 4


@pytest.fixture
def certificate_id(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A learner's active certificate, committed to the shared test database; removed afterwards."""
    monkeypatch.setattr(services, "certificate_pdf", lambda *args, **kwargs: b"%PDF-1.7 test")
    monkeypatch.setattr(services, "_email_after_commit", lambda *args: None)
    engine = app.extensions["kaptrain.db"].engine
    with app.app_context(), Session(engine) as s:
        user = make_user(s, email=f"race-{uuid.uuid4().hex[:8]}@example.org")
        enrolled(s, user)
        found = certified(s, user, "3.25")
        s.commit()
        user_id, found_id = user.id, found.id
    yield found_id
    with Session(engine) as s:
        purge_user(s, user_id)
        s.execute(delete(StatusList))  # signed with this run's key: it would stand in other tests' way
        s.commit()


def at_once(app: Flask, certificate_id: int, act: Callable[[Session, Certificate], object]) -> list[BaseException]:
    """Run `act` on the certificate from AT_ONCE threads, each in its own session; the errors they raised."""
    engine = app.extensions["kaptrain.db"].engine

    def one() -> None:
        with app.app_context(), Session(engine) as s:
            found = s.get(Certificate, certificate_id)
            assert found is not None
            act(s, found)
            s.commit()

    return run_at_once(AT_ONCE, one)


def versions(app: Flask, certificate_id: int) -> list[tuple[int, CertificateStatus]]:
    with Session(app.extensions["kaptrain.db"].engine) as s:
        first = s.get(Certificate, certificate_id)
        assert first is not None
        mine = select(Certificate.id, Certificate.status).where(Certificate.user_id == first.user_id)
        return [(row.id, row.status) for row in s.execute(mine.order_by(Certificate.id))]


def test_reissues_sent_at_once_make_one_new_version(app, certificate_id):
    errors = at_once(app, certificate_id, lambda s, c: services.reissue(s, c, actor_label="test", reason="name"))
    assert len(errors) == AT_ONCE - 1 and all(isinstance(e, services.CertificateError) for e in errors), errors
    statuses = [status for _id, status in versions(app, certificate_id)]
    assert statuses == [CertificateStatus.SUPERSEDED, CertificateStatus.ACTIVE]


def test_revocations_sent_at_once_revoke_once(app, certificate_id):
    reason = RevocationReason.ISSUED_IN_ERROR

    errors = at_once(app, certificate_id, lambda s, c: services.revoke(s, c, reason, "twice", actor_label="test"))
    assert len(errors) == AT_ONCE - 1 and all(isinstance(e, services.CertificateError) for e in errors), errors
    assert versions(app, certificate_id) == [(certificate_id, CertificateStatus.REVOKED)]


@pytest.fixture
def pending_id(app: Flask, certificate_id: int) -> int:
    """The same learner's certificate made to wait for approval again (as a claim under manual approval does)."""
    with Session(app.extensions["kaptrain.db"].engine) as s:
        found = s.get(Certificate, certificate_id)
        assert found is not None
        found.status, found.number, found.issued_at = CertificateStatus.PENDING, None, None
        s.commit()
    return certificate_id


def test_bulk_approval_jobs_sent_at_once_issue_once(app, pending_id, monkeypatch):
    """Bulk approval's jobs for one claim sent at once (two bulk runs, say): one number, one audit entry, one email;
    the others find it issued and leave it."""
    emailed: list[int] = []
    monkeypatch.setattr(services, "_email_after_commit", lambda _session, found_id, *args: emailed.append(found_id))
    errors = at_once(app, pending_id, lambda s, _c: services.approve_waiting(s, pending_id, actor_label="test"))
    assert errors == []
    assert [status for _id, status in versions(app, pending_id)] == [CertificateStatus.ACTIVE]
    with Session(app.extensions["kaptrain.db"].engine) as s:
        approvals = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "certificate.approve", AuditEntry.subject_id == pending_id)
        )
        assert len(list(approvals)) == 1
    assert emailed == [pending_id]
