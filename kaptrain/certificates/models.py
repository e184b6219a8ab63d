"""Certificate models: the course evaluation, the learner's attestation, certificates and their stored PDFs.

A certificate copies what it certifies (the holder's name, credential and licence, the course title, hours,
designations and statements) at issuance, so a later edit of a profile or a course never changes an
issued record. Records are never deleted: a re-issue supersedes, a revocation revokes."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    and_,
    event,
    text,
)
from sqlalchemy.orm import Mapped, Session, UOWTransaction, deferred, foreign, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from kaptrain.content.models import Course
from kaptrain.courses.models import Enrolment
from kaptrain.db import Base, as_utc, one_of, utcnow, zone_or_utc


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class Evaluation(Base):
    """The learner's course evaluation, the form CE providers use (one per learner and course)."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("user_id", "course_id"),
        CheckConstraint(
            "relevance BETWEEN 1 AND 5 AND quality BETWEEN 1 AND 5 AND overall BETWEEN 1 AND 5", name="ratings"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    # {objective id: "met" | "partly" | "not_met"}; ids are stable in course.yaml, so answers survive edits.
    objectives_met: Mapped[dict[str, Any]]
    relevance: Mapped[int]  # 1-5: relevance to the learner's practice
    quality: Mapped[int]  # 1-5: quality of the material
    overall: Mapped[int]  # 1-5
    free_of_bias: Mapped[bool]  # the content was free of commercial bias
    bias_comment: Mapped[str] = mapped_column(Text, default="")
    comments: Mapped[str] = mapped_column(Text, default="")
    # Commitment to change, the outcome question CE accreditors ask for: "yes" | "already" | "no" | "unsure"
    # ("": evaluations made before migration 0015), and what the learner plans to change.
    practice_change: Mapped[str] = mapped_column(String(20), default="", server_default="")
    change_plan: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Was the content evidence-based and balanced, clear about what is established and what is not (off-label use
    # included)? "yes" | "partly" | "no" ("": evaluations made before migration 0023), and what was not.
    evidence_balanced: Mapped[str] = mapped_column(String(10), default="", server_default="")
    evidence_comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    # About how many hours the learner spent on the course, reading outside the site included (optional).
    hours_spent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Attestation(Base):
    """The learner's statement that they completed the course themselves, with the hours they claim."""

    __tablename__ = "attestations"
    __table_args__ = (
        UniqueConstraint("user_id", "course_id"),
        CheckConstraint("hours_claimed > 0", name="hours_claimed"),
        CheckConstraint("active_seconds >= 0", name="active_seconds"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    statement: Mapped[str] = mapped_column(Text)  # the exact words attested
    hours_claimed: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    active_seconds: Mapped[int]  # the active time the site had measured when the claim was made
    # What the learner said of how they studied (optional; for a provider reviewing a claim above that time).
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    attested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CertificateStatus(enum.StrEnum):
    """Where a certificate stands. "Expired" is not stored: it follows from expires_at."""

    PENDING = "pending"  # waiting for an administrator's approval
    ACTIVE = "active"
    SUPERSEDED = "superseded"  # replaced by a re-issue
    REVOKED = "revoked"


class RevocationReason(enum.StrEnum):
    """Why a certificate was revoked, as the public verification page names it."""

    ISSUED_IN_ERROR = "issued_in_error"
    REQUIREMENTS_NOT_MET = "requirements_not_met"
    ACADEMIC_MISCONDUCT = "academic_misconduct"
    COURSE_WITHDRAWN = "course_withdrawn"
    OTHER = "other"

    @property
    def label(self) -> str:
        """The reason in words."""
        return {
            "issued_in_error": "issued in error",
            "requirements_not_met": "course requirements not met",
            "academic_misconduct": "academic misconduct",
            "course_withdrawn": "course withdrawn",
            "other": "other reason",
        }[self.value]


# The statuses of a certificate that is in force or about to be.
CURRENT_CERTIFICATE = "status IN ('pending', 'active')"


class Certificate(Base):
    """A completion certificate: what it certifies (copied at issuance), its number, code and status."""

    __tablename__ = "certificates"
    __table_args__ = (
        # The completions report: its date range and order, and its count and hours read from the index alone.
        Index("ix_certificates_issued_at_status_hours", "issued_at", "status", "hours"),
        # The certificate that replaced this one. Partial: most certificates replace none, and an index full of
        # NULLs looks useless to SQLite's statistics, which then scan the table once per certificate exported.
        # Unique too: a certificate is replaced by one re-issue at most (the CE report lists "superseded by").
        Index(
            "uq_certificates_supersedes_id",
            "supersedes_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NOT NULL"),
            postgresql_where=text("supersedes_id IS NOT NULL"),
        ),
        # At most one certificate in force or waiting for approval per learner and course: a re-issue supersedes
        # the old one before the new one is made, and two attestations racing cannot both get one.
        Index(
            "uq_certificates_one_current",
            "user_id",
            "course_id",
            unique=True,
            sqlite_where=text(CURRENT_CERTIFICATE),
            postgresql_where=text(CURRENT_CERTIFICATE),
        ),
        # Each certificate's own place in the revocation status lists (signing.status_position).
        Index("uq_certificates_status_slot", "status_slot", unique=True),
        one_of("status", CertificateStatus),
        # Issued means numbered and dated (the number is set from the id in the issuing transaction).
        CheckConstraint("status = 'pending' OR (number IS NOT NULL AND issued_at IS NOT NULL)", name="issued"),
        # Revoked exactly when it has a revocation time and a reason the verification page can name.
        CheckConstraint(
            "(status = 'revoked' AND revoked_at IS NOT NULL AND revocation_reason IS NOT NULL)"
            " OR (status <> 'revoked' AND revoked_at IS NULL AND revocation_reason IS NULL)",
            name="revoked",
        ),
        CheckConstraint(
            "(status = 'superseded' AND superseded_at IS NOT NULL)"
            " OR (status <> 'superseded' AND superseded_at IS NULL)",
            name="superseded",
        ),
        one_of("revocation_reason", RevocationReason),
        CheckConstraint("hours > 0 AND hours <= max_hours", name="hours"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # KAP-<year>-<id>: set from the row's id in the issuing transaction, so two issued at once never clash.
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    # The unguessable code in the verification URL (128 random bits); never derived from the number.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    status: Mapped[CertificateStatus] = mapped_column(_enum(CertificateStatus), index=True)

    holder_name: Mapped[str] = mapped_column(String(200))
    holder_credential: Mapped[str] = mapped_column(String(100), default="")
    licence_number: Mapped[str] = mapped_column(String(100), default="")
    jurisdiction: Mapped[str] = mapped_column(String(100), default="")
    course_title: Mapped[str] = mapped_column(String(300))
    hours: Mapped[Decimal] = mapped_column(Numeric(5, 2))  # the hours claimed, within the course maximum
    max_hours: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    designations: Mapped[list[Any]] = mapped_column(default=list)
    delivery_format: Mapped[str] = mapped_column(String(300))
    provider: Mapped[str] = mapped_column(String(300))
    accreditation_statement: Mapped[str | None] = mapped_column(Text)
    signatory_name: Mapped[str] = mapped_column(String(200))
    signatory_title: Mapped[str] = mapped_column(String(200))

    # Where its bit is in the status lists: slot // LIST_SIZE + 1 is the list, slot % LIST_SIZE the index. Drawn at
    # random when its credential is first signed, so a position says nothing about the number (W3C Bitstring
    # Status List: herd privacy); certificates from before migration 0014 keep their id, which their credentials
    # already name.
    status_slot: Mapped[int | None] = mapped_column()
    # The holder's time zone when the certificate was made: its dates are the days there (local_day). "UTC" for
    # certificates from before migration 0013, as they were printed.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[dt.datetime]
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    expiry_reminded_at: Mapped[dt.datetime | None]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    issue_reason: Mapped[str] = mapped_column(Text, default="")  # e.g. a record migrated from another system

    revoked_at: Mapped[dt.datetime | None]
    revocation_reason: Mapped[RevocationReason | None] = mapped_column(_enum(RevocationReason))
    revocation_note: Mapped[str] = mapped_column(Text, default="")
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id", ondelete="RESTRICT"))
    superseded_at: Mapped[dt.datetime | None]
    # When the holder asked for a corrected version (their profile's name, credential or licence now differs from
    # what it prints); an administrator's re-issue supersedes it, which ends the request, or they decline it with a
    # note the holder reads (the last refusal is kept: an administrator answering a new request sees it).
    correction_requested_at: Mapped[dt.datetime | None]
    correction_declined_at: Mapped[dt.datetime | None]
    correction_declined_note: Mapped[str] = mapped_column(Text, default="")
    # The signed Open Badges 3.0 credential (kaptrain.certificates.signing), also embedded in the PDF.
    credential: Mapped[dict[str, Any] | None] = deferred(mapped_column(JSON))

    course: Mapped[Course] = relationship(lazy="joined")
    supersedes: Mapped[Certificate | None] = relationship(remote_side=[id], lazy="joined")

    def local_day(self, moment: dt.datetime) -> dt.date:
        """The day of a moment as the certificate states it: in the holder's time zone at issue."""
        return as_utc(moment).astimezone(zone_or_utc(self.time_zone)).date()

    @property
    def completion_day(self) -> dt.date:
        """The completion day the certificate states (its PDF, email, verification page, API and CE report)."""
        return self.local_day(self.completed_at)

    def is_expired(self, now: dt.datetime) -> bool:
        """An active certificate whose validity period has ended."""
        return self.status == CertificateStatus.ACTIVE and self.expires_at is not None and now >= self.expires_at

    def __repr__(self) -> str:
        return f"<Certificate {self.number or self.id} {self.status.value}>"


class CertificateFile(Base):
    """The certificate's PDF, rendered once at issuance (or re-render) and served as stored."""

    __tablename__ = "certificate_files"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="RESTRICT"), primary_key=True)
    pdf: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    sha256: Mapped[str] = mapped_column(String(64))
    # The digests of the renderings this one replaced (a re-render keeps the number, code and credential): a holder
    # may still show a PDF downloaded before, and the verification page recognises it as a file the site issued.
    earlier_sha256: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    rendered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StatusList(Base):
    """A W3C Bitstring Status List of revoked certificates, signed and served as it is until a bit changes."""

    __tablename__ = "status_lists"
    __table_args__ = (CheckConstraint("number >= 0", name="number"),)

    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    encoded: Mapped[str] = mapped_column(Text)  # GZIP + base64url of the bits (multibase 'u')
    credential: Mapped[dict[str, Any]]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# The steps after the learning (kaptrain.certificates.services adds them to every course record) read the
# learner's evaluation and attestation from the enrolment, loaded in the statement that loads it: the course page
# and the dashboard need no query of their own for them. Defined here, so the courses domain never names them.
Enrolment.evaluation = relationship(
    Evaluation,
    primaryjoin=lambda: and_(
        foreign(Evaluation.user_id) == Enrolment.user_id, foreign(Evaluation.course_id) == Enrolment.course_id
    ),
    viewonly=True,
    uselist=False,
    lazy="joined",
)
Enrolment.attestation = relationship(
    Attestation,
    primaryjoin=lambda: and_(
        foreign(Attestation.user_id) == Enrolment.user_id, foreign(Attestation.course_id) == Enrolment.course_id
    ),
    viewonly=True,
    uselist=False,
    lazy="joined",
)


def evaluation_of(enrolment: Enrolment) -> Evaluation | None:
    """The learner's evaluation of the enrolment's course, if submitted."""
    found: Evaluation | None = enrolment.evaluation  # type: ignore[attr-defined]
    return found


def attestation_of(enrolment: Enrolment) -> Attestation | None:
    """The learner's attestation for the enrolment's course, if made."""
    found: Attestation | None = enrolment.attestation  # type: ignore[attr-defined]
    return found


def _keep_enrolments_current(session: Session, _flush: UOWTransaction) -> None:
    # A viewonly relationship is not updated by a flush: an enrolment loaded before its evaluation or attestation
    # was added would go on saying there is none for the rest of the transaction.
    added = [o for o in session.new if isinstance(o, Evaluation | Attestation)]
    if not added:
        return
    for enrolment in [o for o in session.identity_map.values() if isinstance(o, Enrolment)]:
        for row in added:
            if (row.user_id, row.course_id) == (enrolment.user_id, enrolment.course_id):
                set_committed_value(enrolment, "evaluation" if isinstance(row, Evaluation) else "attestation", row)


event.listen(Session, "after_flush", _keep_enrolments_current)
