"""The CE report: one row per issued certificate, with what accrediting bodies ask a provider to keep.

Pure reading: the CLI writes the rows as CSV (`flask certificates export`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased, lazyload

from kaptrain.accounts.models import User
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation
from kaptrain.content.models import Course
from kaptrain.db import as_utc

COLUMNS = (
    "number",
    "status",
    "issued_on",
    "completed_on",
    "holder_name",
    "holder_credential",
    "licence_number",
    "jurisdiction",
    "email",
    "course_slug",
    "course_title",
    "hours_certified",
    "hours_claimed",  # as attested; empty for a certificate issued by hand
    "course_max_hours",
    "credit_types",
    "provider",
    "revoked_on",
    "revocation_reason",
    "superseded_by",
    "supersedes",
    "evaluation_submitted_on",
    "attested_on",
    "active_minutes",
    "time_zone",  # the zone of every *_on day above: the holder's when the certificate was made
    "issued_at_utc",
)


def _day(certificate: Certificate, moment: dt.datetime | None) -> str:
    """A day of the certificate's record as the certificate states its days: in the holder's zone at issue."""
    return certificate.local_day(moment).isoformat() if moment is not None else ""


def ce_report(
    session: Session, since: dt.date | None, until: dt.date | None = None, batch: int = 1000
) -> Iterator[list[str]]:
    """Rows (in COLUMNS order) of the certificates issued from `since` to `until` inclusive (UTC), oldest first.

    Active, superseded and revoked certificates alike; pending ones were never issued. Rows are read `batch`
    at a time (a server-side cursor on PostgreSQL), so an export of any size runs in constant memory."""
    newer, older = aliased(Certificate), aliased(Certificate)
    same_learning = {
        model: and_(model.user_id == Certificate.user_id, model.course_id == Certificate.course_id)
        for model in (Evaluation, Attestation)
    }
    window = [Certificate.status != CertificateStatus.PENDING]
    if since is not None:
        window.append(Certificate.issued_at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until is not None:
        window.append(Certificate.issued_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC))
    rows = session.execute(
        select(
            Certificate,
            User.email,
            Course.slug,
            newer.number,
            older.number,
            Evaluation.submitted_at,
            Attestation.attested_at,
            Attestation.active_seconds,
            Attestation.hours_claimed,
        )
        .join(User, User.id == Certificate.user_id)
        .join(Course, Course.id == Certificate.course_id)
        .outerjoin(newer, newer.supersedes_id == Certificate.id)
        .outerjoin(older, older.id == Certificate.supersedes_id)
        .outerjoin(Evaluation, same_learning[Evaluation])
        .outerjoin(Attestation, same_learning[Attestation])
        .where(*window)
        .order_by(Certificate.issued_at, Certificate.id)
        .options(lazyload("*"))  # everything needed is in the row
        .execution_options(yield_per=batch)
    )
    for c, email, slug, superseded_by, supersedes, evaluated_at, attested_at, active_seconds, claimed in rows:
        # Credit designations are printed on a certificate only with an accreditation statement.
        credits = [str(d["credit_type"]) for d in c.designations] if c.accreditation_statement else []
        yield [
            c.number or "",
            c.status.value,
            _day(c, c.issued_at),
            c.completion_day.isoformat(),
            c.holder_name,
            c.holder_credential,
            c.licence_number,
            c.jurisdiction,
            email,
            slug,
            c.course_title,
            f"{c.hours:f}",
            "" if claimed is None else f"{claimed:f}",
            f"{c.max_hours:f}",
            "; ".join(credits),
            c.provider,
            _day(c, c.revoked_at),
            c.revocation_reason.label if c.revocation_reason else "",
            superseded_by or "",
            supersedes or "",
            _day(c, evaluated_at),
            _day(c, attested_at),
            "" if active_seconds is None else str(active_seconds // 60),
            c.time_zone or "UTC",
            as_utc(c.issued_at).isoformat(timespec="seconds") if c.issued_at else "",
        ]
        session.expunge(c)  # keep the identity map from growing with the export
