"""The learner's path: catalogue, enrolment, disclosures, opening and reading modules, seat time.

Whether a module or the course is complete is not decided here: kaptrain.courses.completion derives it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain import activity
from kaptrain.content.models import Course, Module
from kaptrain.courses.completion import ModuleStatus
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import insert_ignoring_conflict, utcnow

# The page sends a heartbeat this often while the learner is active; each credits at most this much.
HEARTBEAT_SECONDS = 30


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
    """Enrol a learner; enrolling twice (or from two tabs at once) returns the one enrolment."""
    insert_ignoring_conflict(session, Enrolment, user_id=user_id, course_id=course.id, enrolled_at=utcnow())
    enrolment = get_enrolment(session, user_id, course.id)
    assert enrolment is not None  # inserted above, or by a concurrent request that committed first
    return enrolment


def acknowledge_disclosures(session: Session, enrolment: Enrolment) -> None:
    """Record that the learner read the course disclosures (first time only)."""
    if enrolment.disclosures_acknowledged_at is None:
        enrolment.disclosures_acknowledged_at = utcnow()
        session.flush()


def open_module(session: Session, user_id: int, module: Module, now: dt.datetime | None = None) -> ModuleProgress:
    """Record that the learner opened the module and start its seat-time clock (race-safe on first visit)."""
    now = now or utcnow()
    insert_ignoring_conflict(
        session, ModuleProgress, user_id=user_id, module_id=module.id, first_opened_at=now, last_seen_at=now
    )
    progress = session.scalar(
        select(ModuleProgress)
        .where(ModuleProgress.user_id == user_id, ModuleProgress.module_id == module.id)
        .execution_options(populate_existing=True)
    )
    assert progress is not None
    progress.last_seen_at = progress.last_heartbeat_at = now
    session.flush()
    return progress


def record_heartbeat(session: Session, progress: ModuleProgress, now: dt.datetime | None = None) -> int:
    """Credit active reading since this page's last heartbeat, never time another page already earned.

    At most one interval is credited per heartbeat, and the learner's single activity clock means two
    modules (or tabs) heartbeating in parallel for an hour credit one hour, not two. Returns the total."""
    now = now or utcnow()
    credited = activity.credit(session, progress.user_id, progress.last_heartbeat_at or now, now, HEARTBEAT_SECONDS)
    progress.seat_seconds += credited.seconds
    # The page's clock moves to what was credited, so fractions of a second are not lost between beats.
    progress.last_heartbeat_at = min(credited.until, now)
    progress.last_seen_at = now
    session.flush()
    return progress.seat_seconds


def mark_read(session: Session, status: ModuleStatus) -> None:
    """The learner finished reading (a module without a quiz is then complete, by the completion rule)."""
    if status.progress is None:
        return
    status.progress.read_at = status.progress.read_at or utcnow()
    session.flush()


def enrolments_for(session: Session, user_id: int) -> list[Enrolment]:
    """A learner's enrolments, newest first."""
    return list(
        session.scalars(select(Enrolment).where(Enrolment.user_id == user_id).order_by(Enrolment.enrolled_at.desc()))
    )
