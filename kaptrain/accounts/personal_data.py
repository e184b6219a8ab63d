"""Everything the site keeps about a person, as one JSON document they can download from their account page (the
right of access and to data portability, GDPR articles 15 and 20; what a learner expects of any course site).

It holds their account (never the password hash, the two-factor secret or recovery codes), enrolments, module
progress, every quiz attempt with the question asked and the answer they gave (not the answer key: the question
banks are reused), course evaluations, attestations, certificates, and the audit entries about them or their
certificates. Times are UTC, in ISO 8601.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from kaptrain.accounts.models import User
from kaptrain.audit import AuditEntry
from kaptrain.certificates.models import Attestation, Certificate, Evaluation
from kaptrain.certificates.services import verification_url
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.quizzes.models import Attempt, AttemptItem

FORMAT = "kaptrain personal data, version 1"


def personal_data(session: Session, person: User, now: dt.datetime) -> dict[str, Any]:
    """The document for `person` (see the module's text)."""
    titles: dict[int, str] = {row.id: row.title for row in session.execute(select(Course.id, Course.title))}
    # A module's title as it is published now (or its address name, for one never published or since retired).
    published = select(Module.id, ModuleRevision.title).outerjoin(
        ModuleRevision, ModuleRevision.id == Module.published_revision_id
    )
    modules = {row.id: row.title for row in session.execute(published)}
    certificates = session.scalars(
        select(Certificate).where(Certificate.user_id == person.id).order_by(Certificate.requested_at)
    ).all()
    return {
        "format": FORMAT,
        "exported_at": _time(now),
        "account": _account(person),
        "enrolments": [_enrolment(e) for e in _mine(session, Enrolment, person, Enrolment.enrolled_at)],
        "module_progress": [
            _progress(p, modules) for p in _mine(session, ModuleProgress, person, ModuleProgress.first_opened_at)
        ],
        "quiz_attempts": [_attempt(a) for a in _attempts(session, person)],
        "course_evaluations": [
            _evaluation(e, titles) for e in _mine(session, Evaluation, person, Evaluation.submitted_at)
        ],
        "attestations": [_attestation(a, titles) for a in _mine(session, Attestation, person, Attestation.attested_at)],
        "certificates": [_certificate(c) for c in certificates],
        "audit_log": [_audit(e, person) for e in _audit_entries(session, person, [c.id for c in certificates])],
    }


def _mine(session: Session, model: Any, person: User, order: Any) -> Iterable[Any]:
    return session.scalars(select(model).where(model.user_id == person.id).order_by(order, model.id)).all()


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _hours(value: Decimal) -> str:
    return f"{value:.2f}"


def _account(person: User) -> dict[str, Any]:
    return {
        "email": person.email,
        "email_confirmed_at": _time(person.email_confirmed_at),
        "full_name": person.full_name,
        "profession": person.profession,
        "credential": person.credential,
        "licence_number": person.licence_number,
        "jurisdiction": person.jurisdiction,
        "time_zone": person.time_zone,
        "role": person.role.value,
        "active": person.is_active,
        "created_at": _time(person.created_at),
        "last_login_at": _time(person.last_login_at),
        "two_factor_sign_in": person.totp_enabled_at is not None,
    }


def _enrolment(enrolment: Enrolment) -> dict[str, Any]:
    return {
        "course": enrolment.course.title,
        "enrolled_at": _time(enrolment.enrolled_at),
        "disclosures_acknowledged_at": _time(enrolment.disclosures_acknowledged_at),
        "claim_returned_at": _time(enrolment.claim_returned_at),
        "claim_returned_note": enrolment.claim_returned_note or None,
    }


def _progress(progress: ModuleProgress, modules: dict[int, str | None]) -> dict[str, Any]:
    return {
        "module": modules.get(progress.module_id) or progress.module.slug,
        "first_opened_at": _time(progress.first_opened_at),
        "last_seen_at": _time(progress.last_seen_at),
        "read_at": _time(progress.read_at),
        "active_reading_seconds": progress.seat_seconds,
    }


def _attempts(session: Session, person: User) -> Iterable[Attempt]:
    query = (
        select(Attempt)
        .where(Attempt.user_id == person.id)
        .order_by(Attempt.started_at, Attempt.id)
        .options(selectinload(Attempt.items))
    )
    return session.scalars(query).all()


def _attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "quiz": attempt.quiz.title,
        "attempt": attempt.number,
        "status": attempt.status.value,
        "started_at": _time(attempt.started_at),
        "deadline_at": _time(attempt.deadline_at),
        "submitted_at": _time(attempt.submitted_at),
        "late": attempt.late,
        "score_percent": attempt.score,
        "passing_score_percent": attempt.passing_score,
        "passed": attempt.passed,
        "active_seconds": attempt.active_seconds,
        "answers": [_answer(item) for item in sorted(attempt.items, key=lambda i: i.position)],
    }


def _answer(item: AttemptItem) -> dict[str, Any]:
    texts = {option["id"]: option["text"] for option in item.revision.options}
    return {
        "question": item.revision.stem,
        "options_shown": [texts.get(oid, "") for oid in item.option_order],
        "your_answer": [texts.get(oid, "") for oid in item.selected or []],
    }


def _evaluation(evaluation: Evaluation, titles: dict[int, str]) -> dict[str, Any]:
    return {
        "course": titles.get(evaluation.course_id, ""),
        "submitted_at": _time(evaluation.submitted_at),
        "objectives_met": evaluation.objectives_met,
        "relevance": evaluation.relevance,
        "quality": evaluation.quality,
        "overall": evaluation.overall,
        "free_of_commercial_bias": evaluation.free_of_bias,
        "bias_comment": evaluation.bias_comment,
        "evidence_based_and_balanced": evaluation.evidence_balanced,
        "evidence_comment": evaluation.evidence_comment,
        "hours_spent": None if evaluation.hours_spent is None else _hours(evaluation.hours_spent),
        "practice_change": evaluation.practice_change,
        "change_plan": evaluation.change_plan,
        "comments": evaluation.comments,
    }


def _attestation(attestation: Attestation, titles: dict[int, str]) -> dict[str, Any]:
    return {
        "course": titles.get(attestation.course_id, ""),
        "attested_at": _time(attestation.attested_at),
        "statement": attestation.statement,
        "hours_claimed": _hours(attestation.hours_claimed),
        "active_seconds_measured": attestation.active_seconds,
    }


def _certificate(certificate: Certificate) -> dict[str, Any]:
    number = certificate.number
    return {
        "number": number,
        "status": certificate.status.value,
        "course": certificate.course_title,
        "name_on_certificate": certificate.holder_name,
        "credential": certificate.holder_credential,
        "licence_number": certificate.licence_number,
        "jurisdiction": certificate.jurisdiction,
        "hours": _hours(certificate.hours),
        "completed_at": _time(certificate.completed_at),
        "requested_at": _time(certificate.requested_at),
        "issued_at": _time(certificate.issued_at),
        "expires_at": _time(certificate.expires_at),
        "revoked_at": _time(certificate.revoked_at),
        "revocation_reason": certificate.revocation_reason.value if certificate.revocation_reason else None,
        "correction_requested_at": _time(certificate.correction_requested_at),
        "correction_declined_at": _time(certificate.correction_declined_at),
        "correction_declined_note": certificate.correction_declined_note,
        # The site's public address (KAPTRAIN_BASE_URL), as printed on the certificate, not the request's Host.
        "verify_at": verification_url(certificate.code) if number else None,
    }


def _audit_entries(session: Session, person: User, certificate_ids: list[int]) -> Iterable[AuditEntry]:
    about = or_(
        AuditEntry.actor_id == person.id,
        (AuditEntry.subject_type == "user") & (AuditEntry.subject_id == person.id),
        (AuditEntry.subject_type == "certificate") & AuditEntry.subject_id.in_(certificate_ids or [-1]),
    )
    return session.scalars(select(AuditEntry).where(about).order_by(AuditEntry.at, AuditEntry.id)).all()


def _audit(entry: AuditEntry, person: User) -> dict[str, Any]:
    return {
        "at": _time(entry.at),
        "action": entry.action,
        "by": "you" if entry.actor_id == person.id else entry.actor_label,
        "details": entry.details,
    }
