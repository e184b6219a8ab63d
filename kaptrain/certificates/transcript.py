"""A learner's transcript of one course: modules, quiz scores, the final assessment, time, claim and certificate."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.courses import completion
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.quizzes.models import Attempt, AttemptStatus, Quiz, QuizSettingsRevision

# What the transcript says about a certificate, by its public verdict.
STATUS_WORDS = {
    "valid": "Issued",
    "pending": "Waiting for an administrator's approval",
    "expired": "Expired",
    "revoked": "Revoked",
    "superseded": "Replaced by a re-issue",
}


@dataclass(frozen=True)
class QuizLine:
    """A quiz as the transcript reports it: when it was passed, the passing score and the attempts taken."""

    title: str
    passed_at: dt.datetime | None
    score: float | None  # the passing attempt's score in per cent; None until passed
    attempts: int  # attempts submitted


@dataclass(frozen=True)
class ModuleLine:
    """One module: when it was completed, the reading time measured and its quiz."""

    position: int
    title: str
    completed_at: dt.datetime | None
    reading_minutes: int
    quiz: QuizLine | None  # None: the module has no quiz and is complete when marked as read


@dataclass(frozen=True)
class Transcript:
    """Everything the transcript page and PDF show, gathered once."""

    learner_name: str
    credential: str
    licence_number: str
    jurisdiction: str
    course_title: str
    provider: str
    max_hours: Decimal
    enrolled_at: dt.datetime
    disclosures_at: dt.datetime | None
    modules: list[ModuleLine]
    # Modules the learner completed that have since been retired from the course: they stay on the record.
    retired_modules: list[ModuleLine]
    final: QuizLine | None
    active_seconds: int
    requirements_met: bool
    completed_at: dt.datetime | None
    evaluated_at: dt.datetime | None
    attested_at: dt.datetime | None
    hours_claimed: Decimal | None
    certificate: Certificate | None

    @property
    def certificate_status(self) -> str:
        """The certificate's status in words ("" when there is none)."""
        if self.certificate is None:
            return ""
        return STATUS_WORDS[services.public_status(self.certificate).verdict]


def build_transcript(session: Session, user: User, enrolment: Enrolment) -> Transcript:
    """Gather the learner's transcript for the course they are enrolled in, from the completion rule and records."""
    course = enrolment.course
    record = completion.course_record(session, user.id, course, enrolment)
    attempts = _attempts_by_quiz(session, user.id, course)
    modules = [
        ModuleLine(s.module.position, s.revision.title, s.done_at, s.seat_minutes, _module_quiz(s, attempts))
        for s in record.modules
    ]
    evaluation = services.get_evaluation(session, user.id, course.id)
    attestation = services.get_attestation(session, user.id, course.id)
    return Transcript(
        learner_name=user.full_name,
        credential=user.credential,
        licence_number=user.licence_number,
        jurisdiction=user.jurisdiction,
        course_title=course.title,
        provider=course.provider,
        max_hours=course.ce_hours,
        enrolled_at=enrolment.enrolled_at,
        disclosures_at=enrolment.disclosures_acknowledged_at,
        modules=modules,
        retired_modules=_retired_modules(session, user.id, course, attempts),
        final=_quiz_line(record.final.title, attempts[record.final.id].attempts) if record.final else None,
        active_seconds=record.active_seconds,
        requirements_met=record.requirements_met,
        completed_at=record.completed_at,
        evaluated_at=evaluation.submitted_at if evaluation else None,
        attested_at=attestation.attested_at if attestation else None,
        hours_claimed=attestation.hours_claimed if attestation else None,
        certificate=current_certificate(session, user.id, course.id),
    )


def current_certificate(session: Session, user_id: int, course_id: int) -> Certificate | None:
    """The learner's certificate for the course: the active or pending one, else the latest (revoked) one."""
    mine = [c for c in services.certificates_for(session, user_id) if c.course_id == course_id]
    current = (CertificateStatus.ACTIVE, CertificateStatus.PENDING)
    return next((c for c in mine if c.status in current), mine[0] if mine else None)


@dataclass(frozen=True)
class _Submitted:
    """One submitted attempt, as much of it as the transcript needs."""

    submitted_at: dt.datetime
    score: float | None
    passed: bool


@dataclass
class _QuizAttempts:
    """A quiz of the course with the learner's submitted attempts in it."""

    title: str = ""
    module_id: int | None = None
    attempts: list[_Submitted] = field(default_factory=list)


def _attempts_by_quiz(session: Session, user_id: int, course: Course) -> defaultdict[int, _QuizAttempts]:
    """The learner's submitted attempts in each of the course's quizzes, oldest first, in one query."""
    rows = session.execute(
        select(
            Attempt.quiz_id,
            QuizSettingsRevision.title,
            Quiz.module_id,
            Attempt.submitted_at,
            Attempt.score,
            Attempt.passed,
        )
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .join(QuizSettingsRevision, QuizSettingsRevision.id == Attempt.settings_id)
        .where(Attempt.user_id == user_id, Quiz.course_id == course.id, Attempt.status == AttemptStatus.SUBMITTED)
        .order_by(Attempt.submitted_at, Attempt.id)
    )
    found: defaultdict[int, _QuizAttempts] = defaultdict(_QuizAttempts)
    for quiz_id, title, module_id, submitted_at, score, passed in rows:
        quiz = found[quiz_id]
        quiz.title, quiz.module_id = title, module_id
        if submitted_at is not None:
            quiz.attempts.append(_Submitted(submitted_at, score, bool(passed)))
    return found


def _module_quiz(status: completion.ModuleStatus, attempts: defaultdict[int, _QuizAttempts]) -> QuizLine | None:
    """The module's current quiz; for a module whose quiz was retired, the retired quiz it was passed in."""
    if status.quiz is not None:
        return _quiz_line(status.quiz.title, attempts[status.quiz.id].attempts)
    retired = [q for q in list(attempts.values()) if q.module_id == status.module.id and q.attempts]
    passed = next((q for q in retired if any(a.passed for a in q.attempts)), None)
    return _quiz_line(passed.title, passed.attempts) if passed else None


def _retired_modules(
    session: Session, user_id: int, course: Course, attempts: defaultdict[int, _QuizAttempts]
) -> list[ModuleLine]:
    """The course's retired modules the learner had completed: by passing one of the module's quizzes or, for a
    module without a quiz, by marking it as read. Position 0: a retired module has no place in the course."""
    has_quiz = exists().where(Quiz.module_id == Module.id)
    rows = session.execute(
        select(Module.id, ModuleRevision.title, has_quiz, ModuleProgress.read_at, ModuleProgress.seat_seconds)
        .join(ModuleRevision, ModuleRevision.id == Module.published_revision_id)
        .outerjoin(ModuleProgress, and_(ModuleProgress.module_id == Module.id, ModuleProgress.user_id == user_id))
        .where(Module.course_id == course.id, Module.is_retired.is_(True))
        .order_by(Module.position, Module.id)
    )
    lines = []
    for module_id, title, with_quiz, read_at, seat_seconds in rows:
        passed = next(
            (q for q in attempts.values() if q.module_id == module_id and any(a.passed for a in q.attempts)), None
        )
        quiz = _quiz_line(passed.title, passed.attempts) if passed else None
        done_at = quiz.passed_at if quiz else (None if with_quiz else read_at)
        if done_at is not None:
            lines.append(ModuleLine(0, title, done_at, (seat_seconds or 0) // 60, quiz))
    return lines


def _quiz_line(title: str, attempts: list[_Submitted]) -> QuizLine:
    """The quiz's line: the first passing attempt's date and score, and how many attempts were submitted."""
    first_pass = next((a for a in attempts if a.passed), None)
    return QuizLine(
        title=title,
        passed_at=first_pass.submitted_at if first_pass else None,
        score=first_pass.score if first_pass else None,
        attempts=len(attempts),
    )


def format_duration(seconds: int) -> str:
    """Active time in hours and minutes, as people say it ("3 hours 5 minutes", "45 minutes")."""
    hours, minutes = divmod(max(0, seconds) // 60, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def quarter_hours(seconds: int) -> Decimal:
    """Active time as hours, to the nearest quarter hour (what an honest claim would round to)."""
    quarters = (Decimal(max(0, seconds)) / 900).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return (quarters / 4).quantize(Decimal("0.01"))
