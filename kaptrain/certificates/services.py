"""Certificates: the evaluation and attestation steps, issuance, approval, revocation, re-issue, lookup.

Services flush and never commit: a view or CLI command commits once, and every action writes its audit
entry in the same transaction. Emails and bulk work go through kaptrain.jobs, after the commit."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.accounts.models import User
from kaptrain.admin.settings import certificate_settings, page_size
from kaptrain.certificates import signing
from kaptrain.certificates.models import (
    Attestation,
    Certificate,
    CertificateFile,
    CertificateStatus,
    Evaluation,
    RevocationReason,
    attestation_of,
    evaluation_of,
)
from kaptrain.certificates.pdf import CertificateView, CreditDesignation, certificate_pdf, format_date, format_hours
from kaptrain.content.models import Course
from kaptrain.courses.completion import POST_COURSE_STEPS, CourseRecord, Step, StepKind
from kaptrain.courses.models import Enrolment
from kaptrain.db import after_commit, utcnow, zone_or_utc

QUARTER_HOUR = Decimal("0.25")
RATINGS = range(1, 6)
OBJECTIVE_ANSWERS = {"met": "Met", "partly": "Partly met", "not_met": "Not met"}
# Will the learner change their practice as a result of the course? (Commitment to change.)
PRACTICE_CHANGE_ANSWERS = {
    "yes": "Yes, I plan to change something",
    "already": "No change needed: I already practise this way",
    "no": "No",
    "unsure": "Not sure yet",
}
# Was the content evidence-based and balanced, and clear about what is established and what is not (ACCME Standard 1)?
EVIDENCE_ANSWERS = {"yes": "Yes", "partly": "Partly", "no": "No"}
MAX_HOURS_SPENT = Decimal(100)  # "about how many hours did you spend": more is a typing slip, not an estimate
ATTESTATION_STATEMENT = (
    "I completed this course myself: I studied its modules and answered its quizzes and final assessment "
    "without anyone else answering for me, and the hours I claim are the time I actually spent on it."
)
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")


class CertificateError(Exception):
    """A certificate action that cannot be carried out; the message is shown to the person."""

    def __init__(self, message: str, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


# ---------------------------------------------------------------- the two steps after the learning


def get_evaluation(session: Session, user_id: int, course_id: int) -> Evaluation | None:
    """The learner's evaluation of the course, if submitted."""
    return session.scalar(select(Evaluation).where(Evaluation.user_id == user_id, Evaluation.course_id == course_id))


def get_attestation(session: Session, user_id: int, course_id: int) -> Attestation | None:
    """The learner's attestation for the course, if made."""
    return session.scalar(select(Attestation).where(Attestation.user_id == user_id, Attestation.course_id == course_id))


def _evaluation_step(session: Session, record: CourseRecord) -> Step:
    done = evaluation_of(record.enrolment) if record.enrolment else None  # loaded with the enrolment
    if done:
        why, locked = "Submitted", False
    elif not record.requirements_met:
        why, locked = "Locked: first, pass every module quiz and the final assessment", True
    else:
        why, locked = "Tell us whether the course met its objectives (about 3 minutes)", False
    when = done.submitted_at if done else None
    title = "Course evaluation"
    return Step(StepKind.EVALUATION, StepKind.EVALUATION.value, title, done is not None, when, why, locked)


def _email_step(session: Session, record: CourseRecord) -> Step | None:
    """ "Confirm your email address", for a learner who has not: no certificate goes to an unproven address."""
    holder = session.get(User, record.enrolment.user_id) if record.enrolment else None
    if holder is None or holder.is_email_confirmed:
        return None
    why = f"Follow the link we emailed to {holder.email}; your certificate is issued only to a confirmed address"
    return Step(StepKind.EMAIL, StepKind.EMAIL.value, "Confirm your email address", False, None, why)


def _attestation_step(session: Session, record: CourseRecord) -> Step:
    done = attestation_of(record.enrolment) if record.enrolment else None  # loaded with the enrolment
    evaluated = any(s.kind == StepKind.EVALUATION and s.done for s in record.steps)
    unconfirmed = any(s.kind == StepKind.EMAIL and not s.done for s in record.steps)
    if done:
        why, locked = f"Attested; {done.hours_claimed.normalize():f} hours claimed", False
    elif not evaluated:
        why, locked = "Locked: first, submit the course evaluation", True
    elif unconfirmed:
        why, locked = "Locked: first, confirm your email address", True
    else:
        why, locked = "Confirm you completed the course yourself and claim your hours", False
    when = done.attested_at if done else None
    title = "Attestation and hours claimed"
    return Step(StepKind.ATTESTATION, StepKind.ATTESTATION.value, title, done is not None, when, why, locked)


POST_COURSE_STEPS.extend([_evaluation_step, _email_step, _attestation_step])


@dataclass(frozen=True)
class EvaluationAnswers:
    """What the evaluation form collected."""

    objectives_met: dict[str, str]
    relevance: int
    quality: int
    overall: int
    free_of_bias: bool
    bias_comment: str = ""
    comments: str = ""
    practice_change: str = "unsure"
    change_plan: str = ""
    # Keyword-only and without a default: a caller says what the learner answered, never "yes" by omission.
    evidence_balanced: str = field(kw_only=True)
    evidence_comment: str = field(default="", kw_only=True)
    hours_spent: Decimal | None = field(default=None, kw_only=True)


def submit_evaluation(session: Session, record: CourseRecord, answers: EvaluationAnswers) -> Evaluation:
    """Record the learner's evaluation (once, after the learning requirements are met)."""
    enrolment = record.enrolment
    if enrolment is None or not record.requirements_met:
        raise CertificateError("The evaluation opens once every module quiz and the final assessment are passed.", 403)
    ids = {o["id"] for o in record.course.objectives}
    if set(answers.objectives_met) != ids or not set(answers.objectives_met.values()) <= set(OBJECTIVE_ANSWERS):
        raise CertificateError("Answer the question for every learning objective.", 400, "objectives")
    for name in ("relevance", "quality", "overall"):
        if getattr(answers, name) not in RATINGS:
            raise CertificateError("Choose a rating from 1 to 5.", 400, name)
    if not answers.free_of_bias and not answers.bias_comment.strip():
        raise CertificateError("Tell us where you saw commercial bias, so it can be corrected.", 400, "bias_comment")
    if answers.evidence_balanced not in EVIDENCE_ANSWERS:
        raise CertificateError(EVIDENCE_UNANSWERED, 400, "evidence_balanced")
    if answers.evidence_balanced != "yes" and not answers.evidence_comment.strip():
        raise CertificateError(EVIDENCE_UNEXPLAINED, 400, "evidence_comment")
    if answers.hours_spent is not None:
        _quarter_hours(answers.hours_spent, MAX_HOURS_SPENT, HOURS_SPENT_WORDS)
    if answers.practice_change not in PRACTICE_CHANGE_ANSWERS:
        raise CertificateError("Say whether you will change your practice.", 400, "practice_change")
    evaluation = Evaluation(
        user_id=enrolment.user_id,
        course_id=record.course.id,
        objectives_met=dict(answers.objectives_met),
        relevance=answers.relevance,
        quality=answers.quality,
        overall=answers.overall,
        free_of_bias=answers.free_of_bias,
        bias_comment=answers.bias_comment.strip(),
        comments=answers.comments.strip(),
        practice_change=answers.practice_change,
        change_plan=answers.change_plan.strip(),
        evidence_balanced=answers.evidence_balanced,
        evidence_comment=answers.evidence_comment.strip(),
        hours_spent=None if answers.hours_spent is None else answers.hours_spent.quantize(Decimal("0.01")),
    )
    try:
        with session.begin_nested():
            session.add(evaluation)
    except IntegrityError:  # submitted twice (two tabs, a double click)
        raise CertificateError("You have already submitted the evaluation for this course.") from None
    return evaluation


@dataclass(frozen=True)
class HoursWords:
    """What a field of hours says when refused: its name, and a message for each way a number can be wrong."""

    field: str
    not_a_number: str
    not_positive: str
    too_many: str  # formatted with the maximum, as `most`
    steps: str


HOURS_CLAIMED_WORDS = HoursWords(
    "hours",
    "Enter the hours as a number, e.g. 7.5.",
    "Enter more than 0 hours.",
    "This course carries at most {most} hours.",
    "Enter hours in quarter-hour steps (e.g. 6.25, 6.5, 6.75).",
)
# The evaluation's question is too long to head its errors in the page's summary (forms.html), so each says what
# it is about.
HOURS_SPENT_WORDS = HoursWords(
    "hours_spent",
    "Enter the hours you spent as a number, e.g. 7.5, or leave it empty.",
    "Enter more than 0 hours spent, or leave it empty.",
    "Enter at most {most} hours spent on the course.",
    "Enter the hours you spent in quarter-hour steps (e.g. 6.25, 6.5, 6.75).",
)
EVIDENCE_UNANSWERED = "Say whether the content was evidence-based and balanced: yes, partly or no."
EVIDENCE_UNEXPLAINED = "Tell us what was unbalanced or unclear about the evidence, so it can be corrected."


def _quarter_hours(hours: Decimal, maximum: Decimal, words: HoursWords) -> Decimal:
    """`hours` if it is a number of quarter hours, more than 0 and at most `maximum`, to two places."""
    if not hours.is_finite() or hours <= 0:
        raise CertificateError(words.not_positive, 400, words.field)
    if hours > maximum:
        raise CertificateError(words.too_many.format(most=format_hours(maximum)), 400, words.field)
    if hours % QUARTER_HOUR:
        raise CertificateError(words.steps, 400, words.field)
    return hours.quantize(Decimal("0.01"))


def _typed_hours(raw: str, words: HoursWords) -> Decimal:
    """The number typed in a field of hours, or its refusal."""
    try:
        return Decimal(raw.strip())
    except (InvalidOperation, AttributeError):
        raise CertificateError(words.not_a_number, 400, words.field) from None


def parse_hours(raw: str, maximum: Decimal) -> Decimal:
    """Hours claimed: a number of quarter hours, more than 0 and at most the course's maximum."""
    return _quarter_hours(_typed_hours(raw, HOURS_CLAIMED_WORDS), maximum, HOURS_CLAIMED_WORDS)


def parse_hours_spent(raw: str) -> Decimal | None:
    """The evaluation's hours spent on the course: none when left empty, else quarter hours as parse_hours takes
    them, more than 0 and at most MAX_HOURS_SPENT."""
    if not raw.strip():
        return None
    return _quarter_hours(_typed_hours(raw, HOURS_SPENT_WORDS), MAX_HOURS_SPENT, HOURS_SPENT_WORDS)


def attest(
    session: Session,
    record: CourseRecord,
    user: User,
    hours: Decimal,
    now: dt.datetime | None = None,
    note: str = "",
) -> Certificate:
    """Record the attestation and hours claimed, and request the certificate (issued now or on approval)."""
    now = now or utcnow()
    course = record.course
    if record.enrolment is None or not record.requirements_met:
        raise CertificateError("Pass every module quiz and the final assessment first.", 403)
    if get_evaluation(session, user.id, course.id) is None:
        raise CertificateError("Submit the course evaluation first.", 403)
    if not user.is_email_confirmed:
        raise CertificateError(
            f"Confirm your email address first: follow the link we emailed to {user.email}, or send it again "
            "from your account page.",
            403,
        )
    held = held_by_hand(session, user.id, course.id)
    if held is not None:
        raise CertificateError(already_held(held), 409)
    attestation = Attestation(
        user_id=user.id,
        course_id=course.id,
        statement=ATTESTATION_STATEMENT,
        hours_claimed=hours,
        active_seconds=record.active_seconds,
        attested_at=now,
        note=note.strip(),
    )
    try:
        with session.begin_nested():
            session.add(attestation)
    except IntegrityError:
        raise CertificateError("You have already made your attestation for this course.") from None
    record.enrolment.claim_returned_at, record.enrolment.claim_returned_note = None, ""  # answered by this claim
    # This attestation is the course's last step, so the course is completed now: every other step was done before
    # it (max() only keeps a step stamped ahead of this clock from ending up after its own completion).
    completed_at = max([now, *(s.done_at for s in record.steps if s.done_at)])
    certificate = new_certificate(session, user, course, hours, completed_at)
    review = claim_needs_review(hours, record.active_seconds)
    if certificate_settings(session, course).approval == "automatic" and not review:
        issue(session, certificate, actor_id=user.id, action="certificate.issue")
    else:
        details = {"held": "claim over measured time"} if review else {}
        audit.record(session, "certificate.request", "certificate", certificate.id, actor_id=user.id, **details)
    return certificate


def review_factor() -> int:
    """CLAIM_REVIEW_FACTOR: how many times the measured time a claim may be before an administrator reviews it."""
    return int(current_app.config["CLAIM_REVIEW_FACTOR"])


def claim_needs_review(hours: Decimal, active_seconds: int) -> bool:
    """A claim of more than CLAIM_REVIEW_FACTOR times the active time the site measured (say, 7.5 hours after
    five minutes) waits for an administrator's approval, where certificates are otherwise issued at once."""
    factor = review_factor()
    return factor > 0 and hours * 3600 > factor * active_seconds


def over_claimed(attestation: Attestation) -> bool:
    """The attestation's claim needs an administrator's review (claim_needs_review)."""
    return claim_needs_review(attestation.hours_claimed, attestation.active_seconds)


def attestations_for(session: Session, certificates: list[Certificate]) -> dict[int, Attestation]:
    """Each certificate's attestation (the claim and the time measured when it was made), by certificate id; one
    statement. A certificate issued by hand has none."""
    if not certificates:
        return {}
    pairs = {(c.user_id, c.course_id): c.id for c in certificates}
    users = {user_id for user_id, _ in pairs}
    found = session.scalars(select(Attestation).where(Attestation.user_id.in_(users)))
    return {pairs[key]: a for a in found if (key := (a.user_id, a.course_id)) in pairs}


def hours_reasons(session: Session, ids: list[int]) -> dict[int, str]:
    """Why fewer hours were certified than claimed, by certificate id, for those of these certificates whose hours
    an administrator reduced: at approval (the entry on the certificate itself), at the re-issue that made it (the
    entry on the version it replaced), or on an earlier version whose hours it carries over. A few statements, one
    per generation of re-issues."""
    supersedes: dict[int, int | None] = {}
    hours: dict[int, Decimal] = {}
    wanted = set(ids)
    while wanted:
        rows = session.execute(
            select(Certificate.id, Certificate.supersedes_id, Certificate.hours).where(Certificate.id.in_(wanted))
        ).all()
        for cid, older, certified in rows:
            supersedes[cid], hours[cid] = older, certified
        wanted = {older for _cid, older, _h in rows if older is not None and older not in supersedes}
    approved: dict[int, str] = {}  # certificate id -> reason, for a reduction at its approval
    corrected: dict[int, str] = {}  # replaced version's id -> reason, for a correction at the re-issue
    entries = session.execute(
        select(audit.AuditEntry.subject_id, audit.AuditEntry.details).where(
            audit.AuditEntry.subject_type == "certificate",
            audit.AuditEntry.subject_id.in_(list(supersedes)),
            audit.AuditEntry.action == "certificate.hours_changed",
        )
    )
    for subject_id, details in entries:
        reason = str((details or {}).get("reason") or "")
        (approved if "certified" in (details or {}) else corrected)[subject_id] = reason

    def reason_for(cid: int) -> str | None:
        if cid in approved:
            return approved[cid]
        older = supersedes.get(cid)
        if older is None:
            return None
        if older in corrected:
            return corrected[older]
        return reason_for(older) if hours.get(older) == hours[cid] else None

    found = {cid: reason_for(cid) for cid in ids}
    return {cid: reason for cid, reason in found.items() if reason is not None}


def held_for_review(session: Session, certificates: list[Certificate]) -> set[int]:
    """The ids of the pending certificates among these whose claim waits for review: approved one at a time, from
    the certificate's page, never in bulk."""
    waiting = [c for c in certificates if c.status == CertificateStatus.PENDING]
    return {i for i, a in attestations_for(session, waiting).items() if over_claimed(a)}


# ---------------------------------------------------------------- issuance


def new_certificate(
    session: Session, user: User, course: Course, hours: Decimal, completed_at: dt.datetime, reason: str = ""
) -> Certificate:
    """A pending certificate with everything it certifies copied from the profile and the course now.

    Refused for an account whose email address is not confirmed: a certificate is a legal record, and its
    holder must be reachable at a proven address."""
    if not user.is_email_confirmed:
        raise CertificateError(
            f"{user.email} has not confirmed their email address, so no certificate can be issued to this account "
            "yet. They can send the confirmation link again from their account page.",
            403,
        )
    values = certificate_settings(session, course)
    certificate = Certificate(
        # 128 random bits as 32 hex digits: safe in a URL, a QR code and a command line (never starts with "-").
        code=secrets.token_hex(16),
        user_id=user.id,
        course_id=course.id,
        status=CertificateStatus.PENDING,
        course_title=course.title,
        hours=hours,
        max_hours=course.ce_hours,
        designations=capped_designations(course.credit_designations, hours),
        delivery_format=course.delivery_format,
        provider=values.provider,
        accreditation_statement=values.accreditation_statement,
        signatory_name=values.signatory_name,
        signatory_title=values.signatory_title,
        completed_at=completed_at,
        issue_reason=reason,
    )
    copy_holder(certificate, user)
    session.add(certificate)
    session.flush()
    return certificate


# What a certificate prints from the holder's profile: its column, the profile's, and the name a holder knows it by.
PRINTED_DETAILS = (
    ("holder_name", "full_name", "name"),
    ("holder_credential", "credential", "credential"),
    ("licence_number", "licence_number", "licence number"),
    ("jurisdiction", "jurisdiction", "licensing jurisdiction"),
)


def holder_digest(user: User) -> str:
    """A short fingerprint of what copy_holder would print for the user now: the approval page carries it, so an
    approval waits when the profile changed after the administrator looked (they approve what they saw)."""
    printed = (user.full_name, user.credential, user.licence_number, user.jurisdiction, user.time_zone or "UTC")
    return hashlib.sha256("\x1f".join(printed).encode()).hexdigest()[:16]


def copy_holder(certificate: Certificate, user: User) -> None:
    """The holder's details as the profile has them now: name, credential, licence and its jurisdiction, and the
    time zone the certificate's days are printed in."""
    for printed, profile, _label in PRINTED_DETAILS:
        setattr(certificate, printed, getattr(user, profile))
    certificate.time_zone = user.time_zone or "UTC"


def capped_designations(designations: list[dict[str, Any]], hours: Decimal) -> list[dict[str, Any]]:
    """Each accreditor's credit as a certificate for these hours states it: the hours certified, up to the hours
    that accreditor approved the course for (7.5 approved and 6 claimed: 6)."""
    return [{**d, "hours": f"{min(Decimal(str(d['hours'])), hours):f}"} for d in designations]


def issue(
    session: Session,
    certificate: Certificate,
    *,
    actor_id: int | None = None,
    actor_label: str | None = None,
    action: str = "certificate.issue",
    now: dt.datetime | None = None,
    reason: str | None = None,
) -> Certificate:
    """Make a pending certificate active: its number, dates and PDF; the learner is emailed after commit. The audit
    entry's reason is the certificate's issue reason unless one is given (a re-issue's)."""
    if certificate.status != CertificateStatus.PENDING:
        raise CertificateError(f"Certificate {certificate.number or certificate.id} is not waiting to be issued.")
    now = now or utcnow()
    prefix = current_app.config["CERTIFICATE_NUMBER_PREFIX"]
    # The year the holder's certificate is dated in, like every day it prints: not UTC's on New Year's Eve.
    certificate.number = f"{prefix}-{certificate.local_day(now).year}-{certificate.id:06d}"
    certificate.status = CertificateStatus.ACTIVE
    certificate.issued_at = now
    months = certificate.course.certificate_validity_months
    certificate.expires_at = _add_months(now, months) if months else None
    render_and_store(session, certificate)
    audit.record(
        session,
        action,
        "certificate",
        certificate.id,
        actor_id=actor_id,
        actor_label=actor_label,
        number=certificate.number,
        holder=certificate.holder_name,
        reason=certificate.issue_reason if reason is None else reason,
    )
    _email_after_commit(session, certificate.id)
    return certificate


# The kaptrain.certificates.tasks that mail, each given a certificate id.
CertificateEmail = Literal[
    "send_issued_email", "send_revoked_email", "send_correction_requested_email", "send_correction_declined_email"
]


def _email_after_commit(session: Session, certificate_id: int, task: CertificateEmail = "send_issued_email") -> None:
    # Function-local imports: tasks imports these services, and jobs brings in RQ and the CLI machinery.
    from kaptrain import jobs  # noqa: PLC0415
    from kaptrain.certificates import tasks  # noqa: PLC0415

    after_commit(functools.partial(jobs.enqueue, getattr(tasks, task), certificate_id), session)


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day `months` later, or that month's last day when it is shorter (31 January + 1: 28/29 February)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def verification_url(code: str) -> str:
    """The public address that verifies a certificate (printed on it and in its QR code)."""
    return f"{current_app.config['BASE_URL'].rstrip('/')}/verify/{code}"


def certificate_view(certificate: Certificate) -> CertificateView:
    """What the PDF shows, from the certificate's own copied fields only."""
    note = None
    if certificate.supersedes is not None:
        note = f"Re-issued; supersedes {certificate.supersedes.number}"
    return CertificateView(
        holder_name=certificate.holder_name,
        holder_credential=certificate.holder_credential,
        licence_number=certificate.licence_number,
        jurisdiction=certificate.jurisdiction,
        course_title=certificate.course_title,
        completed_on=certificate.completion_day,
        ce_hours=certificate.hours,
        designations=[
            CreditDesignation(d["credit_type"], Decimal(str(d["hours"])), d["statement"], d.get("provider_number", ""))
            for d in certificate.designations
        ],
        delivery_format=certificate.delivery_format,
        provider=certificate.provider,
        accreditation_statement=certificate.accreditation_statement,
        signatory_name=certificate.signatory_name,
        signatory_title=certificate.signatory_title,
        number=certificate.number or "",
        verification_url=verification_url(certificate.code),
        issued_on=certificate.local_day(certificate.issued_at or utcnow()),
        status_note=note,
    )


def render_and_store(session: Session, certificate: Certificate, resign: bool = False) -> CertificateFile:
    """Render the certificate's PDF, with its signed credential attached, and store it with the record.

    Its number and code never change. The credential is signed once (at issuance, or by the first re-render
    of a certificate issued before credentials existed) unless `resign` asks for a new signature."""

    def signed_credential() -> list[tuple[str, bytes, str]]:
        # Called while the renderer lays the page out (a forked renderer: on another CPU), since neither needs the
        # other's result until the PDF is written.
        if certificate.credential is None or resign:
            signing.assign_status_slot(session, certificate)
            certificate.credential = signing.credential_for(certificate, verification_url(certificate.code))
            # Its status list must exist (and be signed) before anyone looks its bit up.
            signing.refresh_status_list(session, signing.status_position(certificate)[0])
        credential = json.dumps(certificate.credential, indent=2, ensure_ascii=False).encode("utf-8")
        return [(signing.ATTACHMENT_NAME, credential, "Signed Open Badges 3.0 credential of this certificate")]

    pdf = certificate_pdf(certificate_view(certificate), page_size=page_size(session), attachments=signed_credential)
    stored = session.get(CertificateFile, certificate.id)
    if stored is None:
        stored = CertificateFile(certificate_id=certificate.id, earlier_sha256=[])
        session.add(stored)
    else:
        stored.earlier_sha256 = [*stored.earlier_sha256, stored.sha256]
    stored.pdf, stored.sha256, stored.rendered_at = pdf, hashlib.sha256(pdf).hexdigest(), utcnow()
    session.flush()
    return stored


def issued_this_pdf(session: Session, certificate: Certificate, pdf: bytes) -> bool:
    """Whether these bytes are a PDF the site issued for the certificate: its stored file, or one a re-render
    replaced."""
    stored = session.get(CertificateFile, certificate.id)
    digest = hashlib.sha256(pdf).hexdigest()
    return stored is not None and digest in (stored.sha256, *stored.earlier_sha256)


def stored_pdf(session: Session, certificate: Certificate) -> bytes | None:
    """The certificate's stored PDF."""
    return session.scalar(select(CertificateFile.pdf).where(CertificateFile.certificate_id == certificate.id))


def issue_without_course(
    session: Session,
    user: User,
    course: Course,
    reason: str,
    actor_label: str | None = None,
    *,
    actor_id: int | None = None,
    hours: Decimal | None = None,
    completed_on: dt.date | None = None,
) -> Certificate:
    """Issue a certificate for a completion recorded elsewhere (records migrated from another system), for the hours
    and the day of completion that record shows (the course's maximum and today when not given)."""
    hours = course.ce_hours if hours is None else hours
    completed_at = completion_moment(completed_on, user.time_zone) if completed_on else utcnow()
    if not Decimal(0) < hours <= course.ce_hours:
        most = f"{course.ce_hours.normalize():f}"
        raise CertificateError(f"The hours must be more than 0 and at most the course's {most}.", 400, "hours")
    if not reason.strip():
        raise CertificateError("Give the reason for issuing outside the course (e.g. the old system's record).")
    current = in_force(session, user.id, course.id)
    if current is not None:
        raise CertificateError(f"{user.email} already has certificate {current.number or 'pending'} for this course.")
    certificate = new_certificate(session, user, course, hours, completed_at, reason.strip())
    return issue(session, certificate, actor_id=actor_id, actor_label=actor_label, action="certificate.issue_manual")


EARLIEST_COMPLETION = dt.date(1990, 1, 1)  # no record migrated here is older; an earlier day is a typing slip


def completion_moment(day: dt.date, time_zone: str | None) -> dt.datetime:
    """Midday of a completion day in the holder's time zone, so that the certificate states that day; refused when
    it is in the future there or implausibly old."""
    zone = zone_or_utc(time_zone)
    if day > utcnow().astimezone(zone).date():
        raise CertificateError("The completion day cannot be in the future.", 400, "completed_on")
    if day < EARLIEST_COMPLETION:
        raise CertificateError(
            f"The completion day must be on or after {format_date(EARLIEST_COMPLETION)}.", 400, "completed_on"
        )
    return dt.datetime.combine(day, dt.time(12), tzinfo=zone).astimezone(dt.UTC)


def approve(
    session: Session,
    certificate: Certificate,
    actor_id: int | None = None,
    actor_label: str | None = None,
    *,
    hours: Decimal | None = None,
    reason: str = "",
) -> Certificate:
    """Issue a certificate that was waiting for an administrator's approval, for fewer hours than claimed when
    given (the provider certifies what it can stand behind; why is kept in the audit entry). The holder's details
    are read from the profile again: the account page promises that a change there is printed on certificates
    issued from then on, and this one is issued now. So are the provider's settings (its name, accreditation
    statement and signatory): a signatory named in Settings while claims waited signs them."""
    holder = session.get(User, certificate.user_id)
    if holder is not None:
        copy_holder(certificate, holder)
    course = session.get(Course, certificate.course_id)
    if course is not None:
        values = certificate_settings(session, course)
        certificate.provider = values.provider
        certificate.accreditation_statement = values.accreditation_statement
        certificate.signatory_name = values.signatory_name
        certificate.signatory_title = values.signatory_title
    if hours is not None and hours != certificate.hours:
        if not Decimal(0) < hours < certificate.hours:
            claimed = format_hours(certificate.hours)
            raise CertificateError(f"Certify at most the {claimed} hours claimed.", 400, "hours")
        if not reason.strip():
            raise CertificateError("Say why fewer hours are certified than claimed.", 400, "reason")
        audit.record(
            session,
            "certificate.hours_changed",
            "certificate",
            certificate.id,
            actor_id=actor_id,
            actor_label=actor_label,
            claimed=f"{certificate.hours:f}",
            certified=f"{hours:f}",
            reason=reason.strip(),
        )
        certificate.hours = hours
        certificate.designations = capped_designations(certificate.designations, hours)
    return issue(session, certificate, actor_id=actor_id, actor_label=actor_label, action="certificate.approve")


def approve_waiting(session: Session, certificate_id: int, actor_label: str) -> Certificate | None:
    """Bulk approval's step: issue the certificate if it is still waiting, else leave it (approved or returned
    meanwhile). Its row is held until the transaction ends (PostgreSQL: FOR UPDATE), as the approval page holds it,
    so an approval or a return sent at the same moment is made before or after this one, never beside it."""
    # Read again under the lock, even when the session has read it before.
    certificate = session.get(Certificate, certificate_id, with_for_update={"of": Certificate}, populate_existing=True)
    if certificate is None or certificate.status != CertificateStatus.PENDING:
        return None
    return approve(session, certificate, actor_label=actor_label)


def return_claim(session: Session, certificate: Certificate, note: str, actor_id: int | None = None) -> Enrolment:
    """Send a learner's claim back instead of approving it (the hours cannot be stood behind as claimed, say): the
    pending certificate and the attestation go, so the learner can attest again, and the note is kept on the
    enrolment for the learner to read (and emailed). The audit entry keeps what was claimed and why it came back."""
    if certificate.status != CertificateStatus.PENDING:
        raise CertificateError(f"This certificate is {certificate.status.value}, not waiting for approval.", 409)
    note = note.strip()
    if not note:
        raise CertificateError("Tell the learner why their claim is returned and what to do.", 400, "note")
    attestation = get_attestation(session, certificate.user_id, certificate.course_id)
    enrolment = session.scalar(
        select(Enrolment).where(Enrolment.user_id == certificate.user_id, Enrolment.course_id == certificate.course_id)
    )
    if attestation is None or enrolment is None:
        raise CertificateError(
            "Only a learner's own claim, made on the site after the course, can be returned; this certificate was "
            "requested otherwise.",
            409,
        )
    audit.record(
        session,
        "certificate.claim_returned",
        "certificate",
        certificate.id,
        actor_id=actor_id,
        user_id=certificate.user_id,
        course=certificate.course_title,
        claimed=f"{attestation.hours_claimed:f}",
        active_minutes=attestation.active_seconds // 60,
        attested_at=attestation.attested_at.isoformat(),
        note=note,
    )
    session.delete(certificate)
    session.delete(attestation)
    enrolment.claim_returned_at, enrolment.claim_returned_note = utcnow(), note
    session.flush()
    # Function-local imports, as in _email_after_commit.
    from kaptrain import jobs  # noqa: PLC0415
    from kaptrain.certificates import tasks  # noqa: PLC0415

    after_commit(functools.partial(jobs.enqueue, tasks.send_claim_returned_email, enrolment.id), session)
    return enrolment


def profile_changes(certificate: Certificate, user: User) -> list[str]:
    """What the certificate prints that the holder's profile now says otherwise ("name", "licence number" ...)."""
    return [
        label
        for printed, profile, label in PRINTED_DETAILS
        if (getattr(certificate, printed) or "") != (getattr(user, profile) or "")
    ]


def request_correction(session: Session, certificate: Certificate, user: User) -> bool:
    """The holder asks for a version printing their profile's details now; it waits on the administrators'
    Certificates page until one re-issues it. False when it was already asked for (a second click, another tab)."""
    _lock(session, certificate)
    if certificate.status != CertificateStatus.ACTIVE:
        raise CertificateError(
            f"Certificate {certificate.number} is {certificate.status.value}, so there is nothing to correct.", 409
        )
    changes = profile_changes(certificate, user)
    if not changes:
        raise CertificateError(
            "Your certificate already prints what your profile says. Correct your name, credential or licence on "
            "your account page first, then ask for a corrected certificate.",
            409,
        )
    if certificate.correction_requested_at is not None:
        return False
    certificate.correction_requested_at = utcnow()  # asked again after a refusal: the refusal stays for the record
    audit.record(
        session,
        "certificate.correction_requested",
        "certificate",
        certificate.id,
        actor_id=user.id,
        number=certificate.number,
        changed=", ".join(changes),
    )
    session.flush()
    _email_after_commit(session, certificate.id, "send_correction_requested_email")
    return True


def correction_waiting(certificate: Certificate) -> bool:
    """Whether the holder asked for a corrected version of this certificate in force and no one has answered yet."""
    return certificate.status == CertificateStatus.ACTIVE and certificate.correction_requested_at is not None


def no_correction_waiting(certificate: Certificate) -> str:
    """Why a correction request cannot be answered: there is none waiting."""
    return (
        f"No correction of certificate {certificate.number} is waiting: it was re-issued or answered already (by a "
        "second click, or by a colleague), or never asked for."
    )


def decline_correction(session: Session, certificate: Certificate, note: str, *, actor_id: int) -> None:
    """Answer a holder's correction request without re-issuing (the new details could not be confirmed, say): the
    request ends, and the holder reads the note on the dashboard and in an email, and may ask again."""
    _lock(session, certificate)
    if not correction_waiting(certificate):
        raise CertificateError(no_correction_waiting(certificate), 409)
    asked_at = certificate.correction_requested_at
    assert asked_at is not None  # correction_waiting
    certificate.correction_requested_at = None
    certificate.correction_declined_at, certificate.correction_declined_note = utcnow(), note
    audit.record(
        session,
        "certificate.correction_declined",
        "certificate",
        certificate.id,
        actor_id=actor_id,
        user_id=certificate.user_id,
        number=certificate.number,
        asked_at=asked_at.isoformat(),
        note=note,
    )
    session.flush()
    _email_after_commit(session, certificate.id, "send_correction_declined_email")


# A correction asked for by a holder whose account is still active (one deactivated or closed since waits for no one:
# a closed account's re-issue would print its pseudonym).
_CORRECTION_ASKED = (
    Certificate.status == CertificateStatus.ACTIVE,
    Certificate.correction_requested_at.is_not(None),
    User.is_active.is_(True),
)


def correction_requests(session: Session) -> list[tuple[Certificate, User]]:
    """Certificates in force whose holders asked for a corrected version, with each holder, oldest request first."""
    query = select(Certificate, User).join(User, User.id == Certificate.user_id).where(*_CORRECTION_ASKED)
    return [(c, u) for c, u in session.execute(query.order_by(Certificate.correction_requested_at))]


def waiting_count(session: Session) -> int:
    """How many certificates wait for an administrator: claims to approve, and corrections holders asked for."""
    pending = select(func.count()).select_from(Certificate).where(Certificate.status == CertificateStatus.PENDING)
    corrections = select(func.count()).select_from(Certificate).join(User, User.id == Certificate.user_id)
    return int(session.scalar(pending) or 0) + int(session.scalar(corrections.where(*_CORRECTION_ASKED)) or 0)


def pending_certificates(session: Session) -> list[Certificate]:
    """Certificates waiting for approval, oldest first."""
    return list(
        session.scalars(
            select(Certificate).where(Certificate.status == CertificateStatus.PENDING).order_by(Certificate.id)
        )
    )


def _lock(session: Session, certificate: Certificate) -> None:
    """Hold the certificate's row until the transaction ends and read it again (PostgreSQL: FOR UPDATE), so that two
    administrators revoking or re-issuing it at once act one after the other, the second on the first's result."""
    session.refresh(certificate, with_for_update={"of": Certificate})


def revoke(
    session: Session,
    certificate: Certificate,
    reason: RevocationReason,
    note: str,
    actor_id: int | None = None,
    actor_label: str | None = None,
) -> None:
    """Revoke an active certificate; the public verification page says so from now on."""
    _lock(session, certificate)
    if certificate.status != CertificateStatus.ACTIVE:
        raise CertificateError(f"Only an active certificate can be revoked; this one is {certificate.status.value}.")
    certificate.status = CertificateStatus.REVOKED
    certificate.revoked_at = utcnow()
    certificate.revocation_reason = reason
    certificate.revocation_note = note.strip()
    session.flush()
    # Its bit, in the same transaction, and those of the versions it replaced (set since they were superseded; the
    # lists of versions superseded before superseding set bits are brought up to date here).
    for number in _status_lists(session, _versions(certificate)):
        signing.refresh_status_list(session, number)
    audit.record(
        session,
        "certificate.revoke",
        "certificate",
        certificate.id,
        actor_id=actor_id,
        actor_label=actor_label,
        number=certificate.number,
        reason=reason.value,
        note=certificate.revocation_note,
    )
    _email_after_commit(session, certificate.id, "send_revoked_email")


def reissue(
    session: Session,
    certificate: Certificate,
    actor_id: int | None = None,
    actor_label: str | None = None,
    reason: str = "",
    hours: Decimal | None = None,
    seen_status: str | None = None,
    hours_reason: str | None = None,
) -> Certificate:
    """Issue a new version from the holder's current profile (a corrected name, say). An active certificate is
    superseded by it; a revoked one stays revoked, and the new one is its replacement (a revocation made in error,
    say), linked to it so that its verification page can say that a replacement exists. The reason, when given, is
    kept in the audit entry. `hours`, when given, corrects the hours certified (a revocation over disputed hours,
    say): at most the hours the learner claimed, or the course's maximum for a certificate issued by hand, with
    `hours_reason` saying why (what a CE record gives as the reason for the hours; without it, `reason`: the CLI's
    one reason serves both)."""
    _lock(session, certificate)
    why_hours = (reason if hours_reason is None else hours_reason).strip()
    if seen_status and seen_status != certificate.status.value:  # the status the administrator's page showed
        raise CertificateError(
            f"This certificate was {certificate.status.value} by someone else after this page was shown, so nothing "
            "was issued. Check its record above, then re-issue again if it is still needed.",
            409,
            "seen_status",
        )
    if hours is not None and hours != certificate.hours:
        _check_corrected_hours(
            session, certificate, hours, why_hours, "reason" if hours_reason is None else "hours_reason"
        )
    if certificate.status not in (CertificateStatus.ACTIVE, CertificateStatus.REVOKED):
        raise CertificateError(
            f"Only an active or revoked certificate can be re-issued; this one is {certificate.status.value}."
        )
    if certificate.status == CertificateStatus.REVOKED:
        _refuse_second_replacement(session, certificate)
    holder = session.get(User, certificate.user_id)
    assert holder is not None  # RESTRICT keeps holders
    if certificate.status == CertificateStatus.ACTIVE:
        certificate.status = CertificateStatus.SUPERSEDED
        certificate.superseded_at = utcnow()
        session.flush()
        # Its bit is set in the same transaction: the old file stops checking as in force with any verifier.
        for number in _status_lists(session, [certificate]):
            signing.refresh_status_list(session, number)
    new = new_certificate(
        session, holder, certificate.course, certificate.hours, certificate.completed_at, certificate.issue_reason
    )
    # What was certified stays as it was, its days too; only the holder's details come from the profile now (and
    # the hours, when corrected).
    new.max_hours, new.designations = certificate.max_hours, certificate.designations
    if hours is not None and hours != certificate.hours:
        # Each accreditor's hours as approved for the course (the old version's may have been capped lower), for
        # the designations the old version carried, capped at the corrected hours.
        approved = {d["credit_type"]: d for d in certificate.course.credit_designations}
        carried = [{**d, "hours": approved.get(d["credit_type"], d)["hours"]} for d in certificate.designations]
        new.hours, new.designations = hours, capped_designations(carried, hours)
    new.time_zone = certificate.time_zone
    # Accreditation is never given or taken away by a re-issue: a statement set in Settings after this completion
    # (or one withdrawn since) does not change what the completion was accredited for. The signatory signs anew.
    new.course_title, new.delivery_format, new.provider, new.accreditation_statement = (
        certificate.course_title,
        certificate.delivery_format,
        certificate.provider,
        certificate.accreditation_statement,
    )
    new.supersedes_id = certificate.id
    session.flush()
    session.refresh(new)
    why = reason.strip() or None
    issued = issue(session, new, actor_id=actor_id, actor_label=actor_label, action="certificate.reissue", reason=why)
    if hours is not None and hours != certificate.hours:
        # On the version the hours were changed from (hours_reasons reads it there), naming the new one.
        audit.record(
            session, "certificate.hours_changed", "certificate", certificate.id, actor_id=actor_id,
            actor_label=actor_label, before=f"{certificate.hours:f}", after=f"{hours:f}", reason=why_hours,
            reissued_as=issued.number,
        )  # fmt: skip
    return issued


def _check_corrected_hours(
    session: Session, certificate: Certificate, hours: Decimal, reason: str, reason_field: str
) -> None:
    """Hours a re-issue may certify instead: more than 0, at most what was claimed (or, issued by hand, the course's
    maximum printed on it), with the reason on record (asked for in `reason_field`)."""
    attestation = get_attestation(session, certificate.user_id, certificate.course_id)
    ceiling = attestation.hours_claimed if attestation is not None else certificate.max_hours
    if not Decimal(0) < hours <= ceiling:
        what = "the hours claimed" if attestation is not None else "the course's maximum"
        raise CertificateError(f"Certify more than 0 and at most {format_hours(ceiling)} hours, {what}.", 400, "hours")
    if not reason:
        raise CertificateError("Say why the hours are changed.", 400, reason_field)


def _refuse_second_replacement(session: Session, revoked: Certificate) -> None:
    """A revoked certificate is replaced at most once, and not while its holder holds another for the course."""
    replacement = replacement_of(session, revoked)
    if replacement is not None:
        raise CertificateError(f"Certificate {revoked.number} was already replaced by {replacement.number}.")
    current = in_force(session, revoked.user_id, revoked.course_id)
    if current is not None:
        raise CertificateError(
            f"The holder already has certificate {current.number or 'pending'} for this course; re-issue that one "
            "instead."
        )


def held_by_hand(session: Session, user_id: int, course_id: int) -> Certificate | None:
    """The learner's certificate for the course in force that an administrator issued by hand (a record from
    another system, say), not through the learner's own attestation."""
    certificate = in_force(session, user_id, course_id)
    return certificate if certificate is not None and certificate.issue_reason else None


def already_held(certificate: Certificate) -> str:
    """Why a learner who holds a certificate for the course (one an administrator issued by hand, say) cannot
    attest for a second."""
    which = f"certificate {certificate.number}" if certificate.number else "a certificate waiting for approval"
    return (
        f"You already hold {which} for this course, so no second certificate is issued for it. If your name, "
        "credential or licence has changed, correct it on your account page, then ask for a corrected certificate "
        "here, under the certificate."
    )


def in_force(session: Session, user_id: int, course_id: int) -> Certificate | None:
    """The learner's certificate for the course that is in force or waiting for approval (at most one)."""
    return session.scalar(
        select(Certificate).where(
            Certificate.user_id == user_id,
            Certificate.course_id == course_id,
            Certificate.status.in_([CertificateStatus.ACTIVE, CertificateStatus.PENDING]),
        )
    )


def replacement_of(session: Session, certificate: Certificate) -> Certificate | None:
    """The certificate issued to replace this one (a re-issue of it), if any."""
    return session.scalar(select(Certificate).where(Certificate.supersedes_id == certificate.id))


def _status_lists(session: Session, certificates: list[Certificate]) -> list[int]:
    """The status lists that hold these certificates' bits. A certificate never signed (one made in bulk by the
    demo seed, with a placeholder PDF) has no place yet: it is given one, so revoking or superseding it is
    recorded like any other's."""
    for certificate in certificates:
        signing.assign_status_slot(session, certificate)
    return sorted({signing.status_position(c)[0] for c in certificates})


def _versions(certificate: Certificate) -> list[Certificate]:
    """The certificate and every earlier version it replaced, newest first."""
    versions = [certificate]
    while versions[-1].supersedes is not None:
        versions.append(versions[-1].supersedes)
    return versions


def latest_version(session: Session, certificate: Certificate) -> Certificate:
    """The newest version of a certificate: itself, or the re-issue that replaced it (superseded or revoked), or the
    one that replaced that."""
    while certificate.status in (CertificateStatus.SUPERSEDED, CertificateStatus.REVOKED):
        newer = replacement_of(session, certificate)
        if newer is None:
            break
        certificate = newer
    return certificate


# ---------------------------------------------------------------- lookup


def find_by_number_and_surname(session: Session, number: str, surname: str) -> Certificate | None:
    """The certificate with this number, when its holder's printed name holds this family name (accents, case and
    hyphens aside). Any whole name in it will do, not only the last: family names come first in many countries,
    and a board may type one part of a compound name. A number alone finds nothing: numbers run in sequence and
    must not let anyone list the certificates."""
    wanted = _without_suffixes(_plain(surname).replace("-", " ").split())
    if not wanted or wanted[-1] in _NAME_SUFFIXES or (len("".join(wanted)) < 2 and not _family_first(wanted[0])):
        return None
    certificate = session.scalar(select(Certificate).where(Certificate.number == number.strip().upper()))
    if certificate is None:
        return None
    words = _without_suffixes(_plain(certificate.holder_name).replace("-", " ").split())
    n = len(wanted)
    matches = any(words[i : i + n] == wanted for i in range(len(words) - n + 1))
    # Parts typed joined: "Minjun" for "Min-jun", "OBrienSmith" for "O'Brien-Smith" (apostrophes are dropped by
    # _plain), as a form that takes one word may have them.
    joined = "".join(wanted)
    matches = matches or any(
        "".join(words[i:j]) == joined for i in range(len(words)) for j in range(i + 2, len(words) + 1)
    )
    # Chinese, Japanese and Korean names are often written without a space, the family name first: "王" finds "王芳".
    matches = matches or (n == 1 and any(_family_first(w) and w.startswith(wanted[0]) for w in words))
    return certificate if matches else None


def _without_suffixes(words: list[str]) -> list[str]:
    """A name's words without the generational suffixes at its end: "Jane Doe Jr." is found by "Doe"."""
    while len(words) > 1 and words[-1] in _NAME_SUFFIXES:
        words = words[:-1]
    return words


def _family_first(word: str) -> bool:
    """Whether a name is written in a script whose names put the family name first, with no space after it."""
    return bool(word) and unicodedata.name(word[0], "").startswith(("CJK UNIFIED", "HANGUL", "HIRAGANA", "KATAKANA"))


# Generational suffixes, which are nobody's surname.
_NAME_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v"})
# Letters NFKD does not take apart, as they are typed on an English keyboard ("Yilmaz" finds "Yılmaz").
_TRANSLITERATE = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe"})


def _plain(text: str) -> str:
    """Text for comparing names: no accents, no apostrophes (straight or curly: "O’Brien" is "obrien"), no invisible
    format characters, case folded, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    # Invisible format characters (a joiner inside "Ru<ZWJ>iz") do not make another name.
    plain = "".join(
        c
        for c in decomposed
        if not unicodedata.combining(c) and c not in _APOSTROPHES and unicodedata.category(c) != "Cf"
    )
    return " ".join(plain.translate(_TRANSLITERATE).split())


_APOSTROPHES = frozenset("'’‘ʼ`´")


def find_by_code(session: Session, code: str) -> Certificate | None:
    """The certificate with this verification code; a malformed code finds nothing without a query."""
    if not CODE_PATTERN.fullmatch(code):
        return None
    return session.scalar(select(Certificate).where(Certificate.code == code))


def certificates_for(session: Session, user_id: int) -> list[Certificate]:
    """A learner's certificates, newest first (superseded and revoked ones included)."""
    return list(
        session.scalars(select(Certificate).where(Certificate.user_id == user_id).order_by(Certificate.id.desc()))
    )


@dataclass(frozen=True)
class PublicStatus:
    """What anyone may learn about a certificate from its code."""

    verdict: str  # "valid", "revoked", "superseded", "expired", "pending"
    certificate: Certificate

    @property
    def is_valid(self) -> bool:
        """The certificate is in force."""
        return self.verdict == "valid"

    def as_json(self) -> dict[str, object]:
        """The public record as JSON (the API)."""
        c = self.certificate
        return {
            "status": self.verdict,
            "valid": self.is_valid,
            "number": c.number,
            "holder": {"name": c.holder_name, "credential": c.holder_credential or None},
            "course": {"title": c.course_title, "provider": c.provider, "delivery_format": c.delivery_format},
            "hours": f"{c.hours:f}",
            "designations": [{"credit_type": d["credit_type"], "hours": str(d["hours"])} for d in c.designations]
            if c.accreditation_statement
            else [],
            "completed_on": c.completion_day.isoformat(),
            "issued_on": c.local_day(c.issued_at).isoformat() if c.issued_at else None,
            "expires_on": c.local_day(c.expires_at).isoformat() if c.expires_at else None,
            "revoked_on": c.local_day(c.revoked_at).isoformat() if c.revoked_at else None,
            "revocation_reason": c.revocation_reason.label if c.revocation_reason else None,
            "verification_url": verification_url(c.code),
        }


def public_status(certificate: Certificate, now: dt.datetime | None = None) -> PublicStatus:
    """The verdict the public verification page and API give."""
    now = now or utcnow()
    if certificate.status == CertificateStatus.REVOKED:
        return PublicStatus("revoked", certificate)
    if certificate.status == CertificateStatus.SUPERSEDED:
        return PublicStatus("superseded", certificate)
    if certificate.status == CertificateStatus.PENDING:
        return PublicStatus("pending", certificate)
    if certificate.is_expired(now):
        return PublicStatus("expired", certificate)
    return PublicStatus("valid", certificate)
