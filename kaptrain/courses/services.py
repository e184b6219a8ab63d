"""The learner's path: enrolment, disclosures, progress, seat time and the sequencing rule."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain.content.loader import latest_revision
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import as_utc, utcnow
from kaptrain.quizzes.models import Attempt, Quiz, QuizKind

# The page sends a heartbeat this often while the learner is active; each credits at most this much.
HEARTBEAT_SECONDS = 30


class State(enum.StrEnum):
    """Where a module stands for one learner."""

    COMPLETED = "completed"
    OPEN = "open"
    LOCKED = "locked"


@dataclass
class ModuleStatus:
    """One module as one learner sees it on the outline, dashboard and module page."""

    module: Module
    revision: ModuleRevision
    progress: ModuleProgress | None
    quiz: Quiz | None
    state: State
    blocked_by: str | None  # what to finish first, in words, when locked

    @property
    def seat_minutes(self) -> int:
        """Minutes of active reading recorded so far."""
        return (self.progress.seat_seconds if self.progress else 0) // 60


def published_courses(session: Session) -> list[Course]:
    """Courses in the catalogue."""
    return list(session.scalars(select(Course).where(Course.is_published.is_(True)).order_by(Course.title)))


def get_course(session: Session, slug: str) -> Course | None:
    """A published course by slug."""
    return session.scalar(select(Course).where(Course.slug == slug, Course.is_published.is_(True)))


def active_modules(course: Course) -> list[Module]:
    """The course's modules in order, leaving out retired ones."""
    return [m for m in course.modules if not m.is_retired]


def get_enrolment(session: Session, user_id: int, course_id: int) -> Enrolment | None:
    """The learner's enrolment in the course, if any."""
    return session.scalar(select(Enrolment).where(Enrolment.user_id == user_id, Enrolment.course_id == course_id))


def enrol(session: Session, user_id: int, course: Course) -> Enrolment:
    """Enrol a learner; enrolling twice returns the existing enrolment."""
    existing = get_enrolment(session, user_id, course.id)
    if existing:
        return existing
    enrolment = Enrolment(user_id=user_id, course_id=course.id)
    try:
        with session.begin_nested():
            session.add(enrolment)
    except IntegrityError:  # a second tab enrolled at the same moment
        found = get_enrolment(session, user_id, course.id)
        assert found is not None
        return found
    return enrolment


def acknowledge_disclosures(session: Session, enrolment: Enrolment) -> None:
    """Record that the learner read the course disclosures (first time only)."""
    if enrolment.disclosures_acknowledged_at is None:
        enrolment.disclosures_acknowledged_at = utcnow()
        session.flush()


def _progress_by_module(session: Session, user_id: int, modules: list[Module]) -> dict[int, ModuleProgress]:
    rows = session.scalars(
        select(ModuleProgress).where(
            ModuleProgress.user_id == user_id, ModuleProgress.module_id.in_([m.id for m in modules])
        )
    )
    return {p.module_id: p for p in rows}


def module_quizzes(session: Session, course: Course) -> dict[int, Quiz]:
    """The course's module quizzes, by module id."""
    rows = session.scalars(select(Quiz).where(Quiz.course_id == course.id, Quiz.kind == QuizKind.MODULE))
    return {q.module_id: q for q in rows if q.module_id is not None}


def final_quiz(session: Session, course: Course) -> Quiz | None:
    """The course's final assessment, if it has one."""
    return session.scalar(select(Quiz).where(Quiz.course_id == course.id, Quiz.kind == QuizKind.FINAL))


def module_statuses(session: Session, user_id: int, course: Course, enrolment: Enrolment | None) -> list[ModuleStatus]:
    """THE sequencing rule: module 1 opens after the disclosures are acknowledged; each later
    module opens when the one before it is complete (its quiz passed, or read if it has no quiz)."""
    modules = active_modules(course)
    progress = _progress_by_module(session, user_id, modules)
    quizzes = module_quizzes(session, course)
    out: list[ModuleStatus] = []
    previous: ModuleStatus | None = None
    for module in modules:
        revision = latest_revision(session, module)
        if revision is None:
            continue
        p = progress.get(module.id)
        blocked: str | None = None
        if enrolment is None:
            blocked = "Enrol in the course"
        elif enrolment.disclosures_acknowledged_at is None:
            blocked = "Read and acknowledge the course disclosures"
        elif previous is not None and previous.state != State.COMPLETED:
            what = "pass the quiz for" if previous.quiz else "finish"
            blocked = f"{what.capitalize()} module {previous.module.position}: {previous.revision.title}"
        if p is not None and p.completed_at is not None:
            state = State.COMPLETED
        else:
            state = State.LOCKED if blocked else State.OPEN
        status = ModuleStatus(
            module, revision, p, quizzes.get(module.id), state, blocked if state == State.LOCKED else None
        )
        out.append(status)
        previous = status
    return out


def next_step(statuses: list[ModuleStatus]) -> ModuleStatus | None:
    """The first module not yet completed, which the dashboard points to."""
    return next((s for s in statuses if s.state != State.COMPLETED), None)


def open_module(session: Session, user_id: int, module: Module) -> ModuleProgress:
    """Record that the learner opened the module and start the seat-time clock."""
    progress = session.scalar(
        select(ModuleProgress).where(ModuleProgress.user_id == user_id, ModuleProgress.module_id == module.id)
    )
    now = utcnow()
    if progress is None:
        progress = ModuleProgress(user_id=user_id, module_id=module.id, first_opened_at=now)
        session.add(progress)
    progress.last_seen_at = now
    progress.last_heartbeat_at = now
    session.flush()
    return progress


def record_heartbeat(session: Session, progress: ModuleProgress, now: dt.datetime | None = None) -> int:
    """Credit active seat time since the last heartbeat, at most one interval; returns the total."""
    now = now or utcnow()
    last = as_utc(progress.last_heartbeat_at) if progress.last_heartbeat_at else now
    gap = max(0, int((now - last).total_seconds()))
    progress.seat_seconds += min(gap, HEARTBEAT_SECONDS)
    progress.last_heartbeat_at = progress.last_seen_at = now
    session.flush()
    return progress.seat_seconds


def mark_read(session: Session, status: ModuleStatus) -> None:
    """The learner finished reading; a module without a quiz is complete when read."""
    if status.progress is None:
        return
    now = utcnow()
    status.progress.read_at = status.progress.read_at or now
    if status.quiz is None and status.progress.completed_at is None:
        status.progress.completed_at = now
    session.flush()


def complete_module(session: Session, user_id: int, module_id: int) -> None:
    """Mark a module complete (its quiz was passed)."""
    progress = session.scalar(
        select(ModuleProgress).where(ModuleProgress.user_id == user_id, ModuleProgress.module_id == module_id)
    )
    now = utcnow()
    if progress is None:
        progress = ModuleProgress(user_id=user_id, module_id=module_id, first_opened_at=now)
        session.add(progress)
    progress.completed_at = progress.completed_at or now
    session.flush()


def course_complete(session: Session, user_id: int, course: Course) -> bool:
    """Every module complete and, when the course has one, the final assessment passed."""
    enrolment = get_enrolment(session, user_id, course.id)
    statuses = module_statuses(session, user_id, course, enrolment)
    if not statuses or any(s.state != State.COMPLETED for s in statuses):
        return False
    final = final_quiz(session, course)
    if final is None:
        return True
    return bool(
        session.scalar(
            select(Attempt.id)
            .where(Attempt.user_id == user_id, Attempt.quiz_id == final.id, Attempt.passed.is_(True))
            .limit(1)
        )
    )


def refresh_completion(session: Session, user_id: int, course: Course) -> bool:
    """Stamp the enrolment complete when the course is; returns whether it is."""
    enrolment = get_enrolment(session, user_id, course.id)
    done = enrolment is not None and course_complete(session, user_id, course)
    if done and enrolment is not None and enrolment.completed_at is None:
        enrolment.completed_at = utcnow()
        session.flush()
    return done


def enrolments_for(session: Session, user_id: int) -> list[Enrolment]:
    """A learner's enrolments, newest first."""
    return list(
        session.scalars(select(Enrolment).where(Enrolment.user_id == user_id).order_by(Enrolment.enrolled_at.desc()))
    )
