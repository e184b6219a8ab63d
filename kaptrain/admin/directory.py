"""Read-only queries for the people console: search users, and one learner's whole CE record."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.accounts.services import is_closed
from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import Attestation, Certificate, Evaluation
from kaptrain.content.models import Course
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment
from kaptrain.quizzes.models import Accommodation, Attempt, Quiz

PER_PAGE = 25
STATUSES = ("active", "deactivated", "closed")
# Matches accounts.services.CLOSED_EMAIL for any id.
_CLOSED_LIKE = "closed-%@invalid.example"


@dataclass(frozen=True)
class PeopleQuery:
    """What the people list is narrowed to; empty values mean "any"."""

    text: str = ""
    role: Role | None = None
    status: str = ""
    course_id: int | None = None
    page: int = 1


@dataclass
class PersonRow:
    """One person in the list, with their standing in each course they are enrolled in."""

    user: User
    records: list[completion.CourseRecord]

    @property
    def status(self) -> str:
        """One of STATUSES."""
        return status_of(self.user)


def status_of(user: User) -> str:
    """Whether the account is active, deactivated, or closed at the person's request."""
    if is_closed(user):
        return "closed"
    return "active" if user.is_active else "deactivated"


@dataclass
class PeoplePage:
    """One page of the people list."""

    rows: list[PersonRow]
    total: int
    page: int
    pages: int


def all_courses(session: Session) -> list[Course]:
    """Every course, retired ones included (their learners still have records)."""
    return list(session.scalars(select(Course).order_by(Course.title)))


def _escape_like(text: str) -> str:
    # The search text is a literal: % and _ match themselves, not any characters.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: PeopleQuery) -> Select[User]:
    stmt = select(User)
    text = query.text.strip()
    if text:
        pattern = f"%{_escape_like(text)}%"
        stmt = stmt.where(or_(User.full_name.ilike(pattern, escape="\\"), User.email.ilike(pattern, escape="\\")))
    if query.role is not None:
        stmt = stmt.where(User.role == query.role)
    if query.status == "active":
        stmt = stmt.where(User.is_active.is_(True))
    elif query.status == "deactivated":
        stmt = stmt.where(User.is_active.is_(False), User.email.not_like(_CLOSED_LIKE))
    elif query.status == "closed":
        stmt = stmt.where(User.email.like(_CLOSED_LIKE))
    if query.course_id is not None:
        stmt = stmt.where(
            exists(select(Enrolment.id).where(Enrolment.user_id == User.id, Enrolment.course_id == query.course_id))
        )
    return stmt


def search_people(session: Session, query: PeopleQuery) -> PeoplePage:
    """One page of people matching the query, by name, with their course progress."""
    stmt = _filtered(query)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(1, query.page), pages)
    users = list(session.scalars(stmt.order_by(User.full_name, User.id).limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    by_user: dict[int, list[completion.CourseRecord]] = {u.id: [] for u in users}
    enrolments = session.scalars(
        select(Enrolment).where(Enrolment.user_id.in_(list(by_user))).order_by(Enrolment.enrolled_at)
    )
    for e in enrolments:
        by_user[e.user_id].append(completion.course_record(session, e.user_id, e.course, e))
    return PeoplePage([PersonRow(u, by_user[u.id]) for u in users], total, page, pages)


@dataclass
class CourseFile:
    """Everything about one learner in one course that a CE audit asks for."""

    record: completion.CourseRecord
    attempts: list[Attempt]
    evaluation: Evaluation | None
    attestation: Attestation | None


@dataclass
class LearnerRecord:
    """One person's full record: courses, attempts, certificates and accommodations."""

    user: User
    courses: list[CourseFile]
    certificates: list[Certificate]
    accommodations: list[tuple[Accommodation, Quiz]]
    # Attempts in courses the person is not (or no longer) enrolled in; kept, so shown.
    other_attempts: list[Attempt] = field(default_factory=list)


def learner_record(session: Session, user: User) -> LearnerRecord:
    """The whole record of one person, for the admin record page."""
    attempts = list(
        session.scalars(select(Attempt).where(Attempt.user_id == user.id).order_by(Attempt.started_at, Attempt.id))
    )
    files = []
    enrolled = set()
    for e in reversed(courses.enrolments_for(session, user.id)):
        enrolled.add(e.course_id)
        files.append(
            CourseFile(
                record=completion.course_record(session, user.id, e.course, e),
                attempts=[a for a in attempts if a.quiz.course_id == e.course_id],
                evaluation=certificates.get_evaluation(session, user.id, e.course_id),
                attestation=certificates.get_attestation(session, user.id, e.course_id),
            )
        )
    accommodations = [
        (acc, quiz)
        for acc, quiz in session.execute(
            select(Accommodation, Quiz)
            .join(Quiz, Quiz.id == Accommodation.quiz_id)
            .where(Accommodation.user_id == user.id)
            .order_by(Accommodation.granted_at.desc())
        )
    ]
    return LearnerRecord(
        user=user,
        courses=files,
        certificates=certificates.certificates_for(session, user.id),
        accommodations=accommodations,
        other_attempts=[a for a in attempts if a.quiz.course_id not in enrolled],
    )
