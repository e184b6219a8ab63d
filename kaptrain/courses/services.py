"""The learner's path: catalogue, enrolment, disclosures, opening and reading modules, seat time.

Whether a module or the course is complete is not decided here: kaptrain.courses.completion derives it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain import activity, pagecache
from kaptrain.content import catalogue
from kaptrain.content.models import Course, Module
from kaptrain.courses.completion import ModuleStatus
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import dialect_insert, insert_ignoring_conflict, utcnow

# The page sends a heartbeat this often while the learner is active; each credits at most this much.
HEARTBEAT_SECONDS = 30
# A learner counts as active while the page is visible and they scrolled, typed, touched or moved the pointer within
# this long: a dense paragraph or a table can take a couple of minutes of reading without a scroll. Longer than that
# with no sign of life (a page left open while away) is not counted.
READING_IDLE_SECONDS = 180


def published_courses(session: Session) -> list[Course]:
    """Courses in the catalogue."""
    return list(session.scalars(select(Course).where(Course.is_published.is_(True)).order_by(Course.title)))


def get_course(session: Session, slug: str) -> Course | None:
    """A published course by slug."""
    return session.scalar(select(Course).where(Course.slug == slug, Course.is_published.is_(True)))


def catalogue_courses(session: Session) -> list[Course]:
    """The catalogue's courses from the content cache (shared and read-only: for pages, never to change)."""
    return catalogue.current(session).published


def catalogue_course(session: Session, slug: str) -> Course | None:
    """A published course by slug from the content cache (shared and read-only: for pages, never to change)."""
    found = catalogue.current(session).by_slug(slug)
    return found.course if found is not None and found.course.is_published else None


def active_modules(course: Course) -> list[Module]:
    """The course's modules in order, leaving out retired ones and those never published."""
    return [m for m in course.modules if m.is_live]


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
    """Record that the learner opened the module and start its seat-time clock (race-safe on first visit).

    One statement: the first visit inserts the progress row, a later one (or a concurrent first one) moves its
    clocks; either way the row comes back."""
    now = now or utcnow()
    statement = dialect_insert(session)(ModuleProgress).values(
        user_id=user_id, module_id=module.id, first_opened_at=now, last_seen_at=now, last_heartbeat_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ModuleProgress.user_id, ModuleProgress.module_id],
        set_={"last_seen_at": now, "last_heartbeat_at": now},
    ).returning(ModuleProgress)
    progress: ModuleProgress = session.scalars(statement, execution_options={"populate_existing": True}).one()
    return progress


TOUCH_SQL = (
    "UPDATE module_progress SET last_seen_at = :now, last_heartbeat_at = :now "
    "WHERE user_id = :user AND module_id = :module"
)


def touch_module(user_id: int, module_id: int) -> None:
    """Move the clocks of a module the learner opened before, as opening it again does: one statement, committed
    on its own (a module page served from kaptrain.pagecache does this and nothing else)."""
    pagecache.run_sql(TOUCH_SQL, {"now": utcnow(), "user": user_id, "module": module_id}, write=True)


def opened_progress(session: Session, user_id: int, course_slug: str, module_slug: str) -> ModuleProgress | None:
    """The learner's progress in a module they opened, if it is still live in a published course (one statement)."""
    return session.scalar(
        select(ModuleProgress)
        .join(Module, Module.id == ModuleProgress.module_id)
        .join(Course, Course.id == Module.course_id)
        .where(
            ModuleProgress.user_id == user_id,
            Module.slug == module_slug,
            Module.is_retired.is_(False),
            Module.published_revision_id.is_not(None),
            Course.slug == course_slug,
            Course.is_published.is_(True),
        )
    )


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


_OPENED_SQL = (
    "SELECT p.id, p.last_heartbeat_at, p.seat_seconds, k.last_credit_at FROM module_progress p "  # noqa: S608 - constants
    "JOIN modules m ON m.id = p.module_id JOIN courses c ON c.id = m.course_id "
    f"JOIN users u ON {pagecache.SESSION_SQL} "
    "LEFT JOIN activity_clocks k ON k.user_id = p.user_id "
    "WHERE p.user_id = :user AND m.slug = :module AND c.slug = :course "
    "AND m.is_retired = :no AND m.published_revision_id IS NOT NULL AND c.is_published = :yes"
)
_BEAT_SQL = (
    "UPDATE module_progress SET seat_seconds = seat_seconds + :seconds, last_heartbeat_at = :beat, "
    "last_seen_at = :now WHERE id = :id"
)
# A beat that credits nothing leaves seat_seconds out of its SET: the learner's pages show it, so naming it would
# fire the trigger that moves their page version (kaptrain.pagecache) and throw their stored pages away.
_IDLE_BEAT_SQL = "UPDATE module_progress SET last_heartbeat_at = :beat, last_seen_at = :now WHERE id = :id"
# PostgreSQL moves the clock and credits the page in one statement, in autocommit: when the clock is no longer
# where it was read, neither happens.
_MOVE_AND_BEAT_SQL = (
    f"WITH moved AS ({activity.MOVE_CLOCK_SQL} RETURNING user_id) {_BEAT_SQL} "  # noqa: S608 - constants
    "AND EXISTS (SELECT 1 FROM moved) RETURNING seat_seconds"
)


def record_heartbeat_fast(learner: pagecache.Learner, course_slug: str, module_slug: str) -> int | None:
    """`opened_progress` and `record_heartbeat` in plain statements for kaptrain.pagecache's fast path, by the same
    rule (activity.credit_span). None when the module is not one the learner opened (or the session is no longer
    good).

    Nothing is read inside a write transaction. One statement reads the page's and the learner's clocks; a beat
    that credits nothing then writes the page's clocks in one statement and answers the seat time as read (no
    RETURNING: on SQLite the write lock is then held for one step of the statement, not two), and one that
    credits moves the learner's clock only if it is still where it was read (compare and set), together with the
    page's seat time. The rare beat that finds the clock moved meanwhile (another tab, a quiz) or not yet made
    credits the locked way."""
    where = {**learner.params(), "module": module_slug, "course": course_slug, "no": False}
    found = pagecache.run_sql(_OPENED_SQL, where)
    if found is None:
        return None
    progress_id, last_heartbeat, seat, last_credit = found
    now = utcnow()
    start = pagecache.read_datetime(last_heartbeat) or now
    clock = pagecache.read_datetime(last_credit)
    credited = activity.credit_span(start, now, clock or start, HEARTBEAT_SECONDS)
    beat = _beat(credited, now, progress_id)
    if not credited.seconds:
        pagecache.run_sql(_IDLE_BEAT_SQL, beat, write=True)
        return int(seat)
    if clock is None:
        row = None
    elif pagecache.on_sqlite():
        with pagecache.statements(write=True) as run:
            moved = activity.move_clock(run, learner.user_id, last_credit, credited.until)
            rows = run(f"{_BEAT_SQL} RETURNING seat_seconds", beat) if moved else []
        row = rows[0] if rows else None
    else:
        # The clock is compared with the value as it was read, not converted and back.
        clock_moves = {**beat, "user": learner.user_id, "until": credited.until, "seen": last_credit}
        row = pagecache.run_sql(_MOVE_AND_BEAT_SQL, clock_moves, write=True)
    return int(row[0]) if row else _record_heartbeat_locked(learner, progress_id)


def _record_heartbeat_locked(learner: pagecache.Learner, progress_id: int) -> int | None:
    now = utcnow()
    with pagecache.statements(write=True) as run:
        found = run("SELECT last_heartbeat_at FROM module_progress WHERE id = :id", {"id": progress_id})
        if not found:
            return None
        start = pagecache.read_datetime(found[0][0]) or now
        credited = activity.credit_with(run, pagecache.read_datetime, learner.user_id, start, now, HEARTBEAT_SECONDS)
        ((seat,),) = run(f"{_BEAT_SQL} RETURNING seat_seconds", _beat(credited, now, progress_id))
    return int(seat)


def _beat(credited: activity.Credit, now: dt.datetime, progress_id: int) -> dict[str, object]:
    # The page's clock moves to what was credited, so fractions of a second are not lost between beats.
    return {"seconds": credited.seconds, "beat": min(credited.until, now), "now": now, "id": progress_id}


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
