"""The CE report: one row per issued certificate, with what accrediting bodies ask a provider to keep.

Pure reading: the CLI writes the rows as CSV (`flask certificates export`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased, lazyload

from kaptrain.accounts.models import User
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation
from kaptrain.content.models import Course
from kaptrain.courses.models import Enrolment
from kaptrain.db import as_utc
from kaptrain.quizzes.models import Attempt, AttemptStatus, Quiz, QuizKind

COLUMNS = (
    "number",
    "status",
    "issued_on",
    "completed_on",
    "holder_name",
    "holder_credential",
    "profession",  # from the holder's profile now (certificates do not print it)
    "licence_number",
    "jurisdiction",
    "email",
    "course_slug",
    "course_title",
    "hours_certified",
    "hours_claimed",  # as attested; empty for a certificate issued by hand
    "hours_reduced_because",  # why an administrator certified fewer hours than claimed
    "issued_by",  # "automatic" (the learner's own claim, issued at once), the approving administrator, or the CLI
    "issue_reason",  # why it was issued by hand (a completion recorded elsewhere) or re-issued (what changed)
    "course_max_hours",
    "credit_types",
    "provider",
    "revoked_on",
    "revocation_reason",
    "revocation_note",  # the administrator's own words (the public page gives only the reason's category)
    "superseded_by",
    "supersedes",
    "enrolled_on",  # empty for a certificate issued by hand to someone never enrolled on the site
    "disclosures_acknowledged_on",
    "final_assessment_percent",  # the score of the attempt that first passed (the one that completed the course)
    "final_assessment_passed_on",  # ... and its day
    "final_assessment_attempts",  # graded attempts at the final assessment, failed and passed
    "evaluation_submitted_on",
    "attested_on",
    "active_minutes",
    "time_zone",  # the zone of every *_on day above: the holder's when the certificate was made
    "issued_at_utc",
)


def _day(certificate: Certificate, moment: dt.datetime | None) -> str:
    """A day of the certificate's record as the certificate states its days: in the holder's zone at issue."""
    return certificate.local_day(moment).isoformat() if moment is not None else ""


ISSUING_ACTIONS = ("certificate.issue", "certificate.issue_manual", "certificate.approve", "certificate.reissue")


def _issue_records(session: Session, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """For each certificate id: who issued it, in words, why fewer hours were certified than claimed (if so, carried
    through re-issues: services.hours_reasons), and a re-issue's reason (what changed), from the audit log (a few
    queries a batch)."""
    if not ids:
        return {}
    actor = aliased(User)
    entries = session.execute(
        select(AuditEntry.subject_id, AuditEntry.action, AuditEntry.actor_label, AuditEntry.details, actor.full_name)
        .outerjoin(actor, actor.id == AuditEntry.actor_id)
        .where(
            AuditEntry.subject_type == "certificate",
            AuditEntry.subject_id.in_(ids),
            AuditEntry.action.in_(ISSUING_ACTIONS),
        )
        .order_by(AuditEntry.id)
    )
    issued_by: dict[int, str] = {}
    reissued_because: dict[int, str] = {}
    for subject_id, action, label, details, name in entries:
        if action == "certificate.issue":
            issued_by[subject_id] = "automatic"
        else:
            issued_by[subject_id] = name or label
            if action == "certificate.reissue":
                reissued_because[subject_id] = str((details or {}).get("reason") or "")
    reduced = services.hours_reasons(session, ids)
    return {i: (issued_by.get(i, ""), reduced.get(i, ""), reissued_because.get(i, "")) for i in ids}


def ce_report(
    session: Session, since: dt.date | None, until: dt.date | None = None, batch: int = 1000
) -> Iterator[list[str]]:
    """Rows (in COLUMNS order) of the certificates issued from `since` to `until` inclusive (UTC), oldest first.

    Active, superseded and revoked certificates alike; pending ones were never issued. Rows are read `batch`
    at a time (a server-side cursor on PostgreSQL), so an export of any size runs in constant memory."""
    newer, older = aliased(Certificate), aliased(Certificate)
    same_learning = {
        model: and_(model.user_id == Certificate.user_id, model.course_id == Certificate.course_id)
        for model in (Evaluation, Attestation, Enrolment)
    }
    window = [Certificate.status != CertificateStatus.PENDING]
    if since is not None:
        window.append(Certificate.issued_at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until is not None:
        window.append(Certificate.issued_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC))
    # The final assessment: the score and day of the attempt that first passed, one attempt's both (a later, better
    # attempt does not change when the course was completed), and how many graded attempts the learner made.
    finals = (
        select(
            Attempt.user_id,
            Quiz.course_id,
            Attempt.score,
            Attempt.submitted_at,
            Attempt.passed,
            func.count().over(partition_by=(Attempt.user_id, Quiz.course_id)).label("attempts"),
            func.row_number()
            .over(
                partition_by=(Attempt.user_id, Quiz.course_id),
                order_by=(Attempt.passed.desc(), Attempt.submitted_at, Attempt.id),
            )
            .label("n"),
        )
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .where(Quiz.kind == QuizKind.FINAL, Attempt.status == AttemptStatus.SUBMITTED)
        .subquery()
    )
    final = select(finals).where(finals.c.n == 1).subquery()
    rows = session.execute(
        select(
            Certificate,
            User.email,
            User.profession,
            final.c.score,
            final.c.submitted_at,
            final.c.passed,
            final.c.attempts,
            Course.slug,
            newer.number,
            older.number,
            Evaluation.submitted_at,
            Attestation.attested_at,
            Attestation.active_seconds,
            Attestation.hours_claimed,
            Enrolment.enrolled_at,
            Enrolment.disclosures_acknowledged_at,
        )
        .join(User, User.id == Certificate.user_id)
        .join(Course, Course.id == Certificate.course_id)
        .outerjoin(newer, newer.supersedes_id == Certificate.id)
        .outerjoin(older, older.id == Certificate.supersedes_id)
        .outerjoin(Evaluation, same_learning[Evaluation])
        .outerjoin(Attestation, same_learning[Attestation])
        .outerjoin(Enrolment, same_learning[Enrolment])
        .outerjoin(final, and_(final.c.user_id == Certificate.user_id, final.c.course_id == Certificate.course_id))
        .where(*window)
        .order_by(Certificate.issued_at, Certificate.id)
        .options(lazyload("*"))  # everything needed is in the row
        .execution_options(yield_per=batch)
    )
    for batch_rows in rows.partitions():
        records = _issue_records(session, [row[0].id for row in batch_rows])
        for row in batch_rows:
            yield _row(row, records[row[0].id])
            session.expunge(row[0])  # keep the identity map from growing with the export


def _row(row: Any, record: tuple[str, str, str]) -> list[str]:
    """One certificate's line of the report."""
    c, email, profession, final_score, final_at, final_passed, final_attempts, slug = row[:8]
    superseded_by, supersedes, evaluated_at, attested_at, active_seconds, claimed, enrolled_at, acknowledged_at = row[
        8:
    ]
    if not final_passed:  # never passed (a certificate issued by hand): the attempts only
        final_score = final_at = None
    issued_by, reduced_because, reissued_because = record
    # Credit designations are printed on a certificate only with an accreditation statement.
    credits = [str(d["credit_type"]) for d in c.designations] if c.accreditation_statement else []
    return [
        c.number or "",
        c.status.value,
        _day(c, c.issued_at),
        c.completion_day.isoformat(),
        c.holder_name,
        c.holder_credential,
        profession or "",
        c.licence_number,
        c.jurisdiction,
        email,
        slug,
        c.course_title,
        f"{c.hours:f}",
        "" if claimed is None else f"{claimed:f}",
        reduced_because if claimed is None or c.hours < claimed else "",
        issued_by,
        reissued_because or c.issue_reason or "",
        f"{c.max_hours:f}",
        "; ".join(credits),
        c.provider,
        _day(c, c.revoked_at),
        c.revocation_reason.label if c.revocation_reason else "",
        c.revocation_note or "",
        superseded_by or "",
        supersedes or "",
        _day(c, enrolled_at),
        _day(c, acknowledged_at),
        "" if final_score is None else f"{final_score:g}",
        _day(c, final_at),
        "" if final_attempts is None else str(final_attempts),
        _day(c, evaluated_at),
        _day(c, attested_at),
        "" if active_seconds is None else str(active_seconds // 60),
        c.time_zone or "UTC",
        as_utc(c.issued_at).isoformat(timespec="seconds") if c.issued_at else "",
    ]
