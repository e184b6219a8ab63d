"""THE completion rule: what a learner has done in a course, derived from the facts every time it is asked.

Nothing here is stamped. A module is complete when its current quiz has a passed attempt, or, when it has
no current quiz, when the learner marked it read (or passed a quiz it used to have). The course's
requirements are met when the disclosures are acknowledged, every module is complete and the final
assessment is passed. Steps that come after the learning (the course evaluation and the learner's
attestation) are added by the domains that own them through POST_COURSE_STEPS; "completed" means the
requirements are met and those steps are done too.

Every caller (quiz pages, mark-read, dashboard, course page, certificates) asks `course_record`.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from kaptrain.content import catalogue
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.quizzes.models import Attempt, Quiz, QuizKind


class State(enum.StrEnum):
    """Where a module stands for one learner."""

    COMPLETED = "completed"
    OPEN = "open"
    LOCKED = "locked"


class StepKind(enum.StrEnum):
    """The kinds of requirement a course has, in the order a learner meets them."""

    DISCLOSURES = "disclosures"
    MODULE = "module"
    FINAL = "final"
    EVALUATION = "evaluation"
    EMAIL = "email"  # confirm the email address (shown only to learners who have not yet)
    ATTESTATION = "attestation"


@dataclass
class ModuleStatus:
    """One module as one learner sees it on the outline, dashboard and module page."""

    module: Module
    revision: ModuleRevision
    progress: ModuleProgress | None
    quiz: Quiz | None  # the module's current quiz; None when it has none (complete when read)
    state: State
    blocked_by: str | None  # what to finish first, in words, when locked
    done_at: dt.datetime | None

    @property
    def seat_minutes(self) -> int:
        """Minutes of active reading recorded so far."""
        return (self.progress.seat_seconds if self.progress else 0) // 60


@dataclass(frozen=True)
class Step:
    """One requirement of the course: done or not, and why, in words a learner understands."""

    kind: StepKind
    key: str  # the module slug, or the step kind for course-level steps
    title: str
    done: bool
    done_at: dt.datetime | None
    why: str
    locked: bool = False


@dataclass
class CourseRecord:
    """A learner's standing in one course: modules, final assessment and every requirement as a step."""

    course: Course
    enrolment: Enrolment | None
    modules: list[ModuleStatus]
    final: Quiz | None
    steps: list[Step] = field(default_factory=list)
    active_seconds: int = 0  # module reading time plus quiz time, credited once (kaptrain.activity)

    @property
    def requirements_met(self) -> bool:
        """The learning is done: disclosures, every module and the final assessment."""
        return all(s.done for s in self.steps if s.kind not in POST_COURSE_KINDS)

    @property
    def completed(self) -> bool:
        """Requirements met and every post-course step (evaluation, attestation) done."""
        return bool(self.modules) and all(s.done for s in self.steps)

    @property
    def completed_at(self) -> dt.datetime | None:
        """When the last step was done, once every step is."""
        if not self.completed:
            return None
        return max((s.done_at for s in self.steps if s.done_at), default=None)

    @property
    def next_step(self) -> Step | None:
        """The first step not yet done, which the dashboard and course page point to."""
        return next((s for s in self.steps if not s.done), None)

    @property
    def modules_done(self) -> int:
        """How many modules are complete."""
        return sum(m.state == State.COMPLETED for m in self.modules)

    @property
    def percent(self) -> int:
        """Share of steps done, for progress bars."""
        return round(100 * sum(s.done for s in self.steps) / len(self.steps)) if self.steps else 0

    def module(self, slug: str) -> ModuleStatus | None:
        """The status of the module with this slug, if it is in the course."""
        return next((m for m in self.modules if m.module.slug == slug), None)


POST_COURSE_KINDS = frozenset({StepKind.EVALUATION, StepKind.EMAIL, StepKind.ATTESTATION})

# Domains that add steps after the learning (certificates: evaluation, attestation) append a function here.
POST_COURSE_STEPS: list[Callable[[Session, CourseRecord], Step | None]] = []


def course_record(
    session: Session,
    user_id: int,
    course: Course,
    enrolment: Enrolment | None,
    progress: dict[int, ModuleProgress] | None = None,
) -> CourseRecord:
    """Work out the learner's record in the course from the facts: progress rows and passed attempts.

    The course's modules and quizzes come from the content catalogue (cached per content version); the learner's
    facts take two statements, or one when the caller loaded the progress with the enrolment (`learner_record`)."""
    return learner_records(session, user_id, [(course, enrolment)], progress)[0]


def learner_record(
    session: Session, user_id: int | None, course: Course, attempts: Iterable[Attempt] | None = None
) -> CourseRecord:
    """The record of a learner (None: a visitor) in a course, the enrolment and progress read in one statement.

    `attempts`: the learner's attempts in the course, when the caller loaded them (the quiz pages need them too)."""
    if user_id is None:
        return learner_records(session, 0, [(course, None)], {}, known_attempts={})[0]
    published = catalogue.current(session).by_id(course.id)
    module_ids = [m.id for m, _ in published.modules]
    rows = session.execute(
        select(Enrolment, ModuleProgress)
        .outerjoin(
            ModuleProgress,
            and_(ModuleProgress.user_id == Enrolment.user_id, ModuleProgress.module_id.in_(module_ids)),
        )
        .where(Enrolment.user_id == user_id, Enrolment.course_id == course.id)
    ).all()
    enrolment = rows[0][0] if rows else None
    progress = {p.module_id: p for _, p in rows if p is not None}
    known = attempt_facts(attempts) if attempts is not None else None
    if enrolment is None and known is None:
        known = {}  # attempts need an enrolment first
    return learner_records(session, user_id, [(course, enrolment)], progress, known)[0]


def learner_records(
    session: Session,
    user_id: int,
    courses: list[tuple[Course, Enrolment | None]],
    progress: dict[int, ModuleProgress] | None = None,
    known_attempts: dict[int, tuple[dt.datetime | None, int]] | None = None,
) -> list[CourseRecord]:
    """The learner's records in several courses (the dashboard), in two statements whatever their number."""
    shelf = catalogue.current(session)
    published = [shelf.by_id(course.id) for course, _ in courses]
    if progress is None:
        progress = _progress(session, user_id, [m.id for p in published for m, _ in p.modules])
    if known_attempts is None:
        known_attempts = _attempt_facts(session, user_id, [q.id for p in published for q in p.quizzes])
    return [
        _record(session, course, enrolment, structure, progress, known_attempts)
        for (course, enrolment), structure in zip(courses, published, strict=True)
    ]


def _record(
    session: Session,
    course: Course,
    enrolment: Enrolment | None,
    published: catalogue.PublishedCourse,
    progress: dict[int, ModuleProgress],
    attempts: dict[int, tuple[dt.datetime | None, int]],
) -> CourseRecord:
    quizzes = published.quizzes
    passed_at = {quiz_id: at for quiz_id, (at, _) in attempts.items() if at is not None}
    current = published.current_quizzes
    final = published.final

    statuses: list[ModuleStatus] = []
    previous: ModuleStatus | None = None
    for module, revision in published.modules:
        p = progress.get(module.id)
        quiz = current.get(module.id)
        if quiz is not None:
            done_at = passed_at.get(quiz.id)
        else:
            retired = [passed_at[q.id] for q in quizzes if q.module_id == module.id and q.id in passed_at]
            done_at = p.read_at if p is not None and p.read_at else min(retired, default=None)
        blocked = _blocked_by(enrolment, previous)
        state = State.COMPLETED if done_at else (State.LOCKED if blocked else State.OPEN)
        status = ModuleStatus(module, revision, p, quiz, state, blocked if state == State.LOCKED else None, done_at)
        statuses.append(status)
        previous = status

    record = CourseRecord(course, enrolment, statuses, final)
    module_ids = {m.id for m, _ in published.modules}
    record.active_seconds = sum(p.seat_seconds for p in progress.values() if p.module_id in module_ids) + sum(
        attempts[q.id][1] for q in quizzes if q.id in attempts
    )
    record.steps = _learning_steps(record, passed_at.get(final.id) if final else None)
    for extra in POST_COURSE_STEPS:
        step = extra(session, record)
        if step is not None:
            record.steps.append(step)
    return record


def _blocked_by(enrolment: Enrolment | None, previous: ModuleStatus | None) -> str | None:
    if enrolment is None:
        return "Enrol in the course"
    if enrolment.disclosures_acknowledged_at is None:
        return "Read and acknowledge the course disclosures"
    if previous is not None and previous.state != State.COMPLETED:
        what = "Pass the quiz for" if previous.quiz else "Finish"
        return f"{what} module {previous.module.position}: {previous.revision.title}"
    return None


def _learning_steps(record: CourseRecord, final_passed_at: dt.datetime | None) -> list[Step]:
    enrolment = record.enrolment
    acknowledged = enrolment.disclosures_acknowledged_at if enrolment else None
    steps = [
        Step(
            StepKind.DISCLOSURES,
            StepKind.DISCLOSURES.value,
            "Read and acknowledge the course disclosures",
            acknowledged is not None,
            acknowledged,
            "Acknowledged" if acknowledged else ("Enrol in the course first" if enrolment is None else "Not yet"),
            locked=enrolment is None,
        )
    ]
    for m in record.modules:
        if m.state == State.COMPLETED:
            why = "Quiz passed" if m.quiz else "Marked as read"
        elif m.blocked_by:
            why = f"Locked: first, {m.blocked_by[0].lower()}{m.blocked_by[1:]}"
        elif m.quiz:
            why = f"Read the module, then pass its quiz (pass mark {m.quiz.passing_score}%)"
        else:
            why = "Read the module and mark it as read"
        title = f"Module {m.module.position}: {m.revision.title}"
        done = m.state == State.COMPLETED
        steps.append(Step(StepKind.MODULE, m.module.slug, title, done, m.done_at, why, m.blocked_by is not None))
    if record.final is not None:
        unfinished = [m.module.position for m in record.modules if m.state != State.COMPLETED]
        if final_passed_at:
            why, locked = "Passed", False
        elif unfinished:
            why, locked = f"Locked: first, complete {_modules_named(unfinished)}", True
        else:
            why, locked = f"Pass the final assessment (pass mark {record.final.passing_score}%)", False
        done = final_passed_at is not None
        steps.append(Step(StepKind.FINAL, StepKind.FINAL.value, record.final.title, done, final_passed_at, why, locked))
    return steps


def _modules_named(positions: list[int]) -> str:
    """ "module 2", "modules 2 and 4", "modules 2-6" (a run), "modules 2, 4 and 5"."""
    if len(positions) == 1:
        return f"module {positions[0]}"
    if len(positions) > 2 and positions == list(range(positions[0], positions[-1] + 1)):
        return f"modules {positions[0]}–{positions[-1]}"
    return f"modules {', '.join(map(str, positions[:-1]))} and {positions[-1]}"


def quiz_gate(record: CourseRecord, quiz: Quiz) -> str | None:
    """Why the learner may not start this quiz now, or None when it is open to them."""
    if quiz.is_retired:
        return "This quiz has been retired and can no longer be taken; your past attempts stay available"
    if record.enrolment is None:
        return "Enrol in the course"
    if quiz.kind == QuizKind.FINAL:
        unfinished = [m for m in record.modules if m.state != State.COMPLETED]
        if len(unfinished) == 1:
            return f"Complete module {unfinished[0].module.position}: {unfinished[0].revision.title}"
        if unfinished:
            return f"Complete {_modules_named([m.module.position for m in unfinished])}"
        return None
    status = next((m for m in record.modules if m.module.id == quiz.module_id), None)
    if status is None or status.blocked_by and status.state == State.LOCKED:
        return status.blocked_by if status and status.blocked_by else "Enrol in the course"
    title = f"module {status.module.position}: {status.revision.title}"
    if status.progress is None:
        return f"Open and read {title}"
    left = reading_minutes_left(record.course, status)
    if left:
        return (
            f"Spend about {left} more minute{'s' if left != 1 else ''} of active reading in {title}; this course "
            f"asks for {required_reading_minutes(record.course, status)} minutes before its quiz"
        )
    return None


def required_reading_minutes(course: Course, status: ModuleStatus) -> int:
    """Active reading the course requires in this module before its quiz (0 when the setting is off)."""
    return math.ceil(status.revision.estimated_minutes * course.min_reading_percent / 100)


def reading_minutes_left(course: Course, status: ModuleStatus) -> int:
    """Minutes of active reading still needed before the module's quiz opens (0 when none)."""
    needed = required_reading_minutes(course, status) * 60
    done = status.progress.seat_seconds if status.progress else 0
    return math.ceil(max(0, needed - done) / 60)


def _progress(session: Session, user_id: int, module_ids: list[int]) -> dict[int, ModuleProgress]:
    rows = session.scalars(
        select(ModuleProgress).where(ModuleProgress.user_id == user_id, ModuleProgress.module_id.in_(module_ids))
    )
    return {p.module_id: p for p in rows}


def attempt_facts(attempts: Iterable[Attempt]) -> dict[int, tuple[dt.datetime | None, int]]:
    """What `_attempt_facts` reads, worked out from attempts already loaded."""
    facts: dict[int, tuple[dt.datetime | None, int]] = {}
    for a in attempts:
        first, seconds = facts.get(a.quiz_id, (None, 0))
        if a.passed is True and a.submitted_at is not None and (first is None or a.submitted_at < first):
            first = a.submitted_at
        facts[a.quiz_id] = (first, seconds + (a.active_seconds or 0))
    return facts


def _attempt_facts(session: Session, user_id: int, quiz_ids: list[int]) -> dict[int, tuple[dt.datetime | None, int]]:
    """For each quiz the learner attempted: when they first passed it (None: not yet), and the active seconds
    credited to its attempts."""
    rows = session.execute(
        select(
            Attempt.quiz_id,
            func.min(case((Attempt.passed.is_(True), Attempt.submitted_at)), type_=Attempt.submitted_at.type),
            func.coalesce(func.sum(Attempt.active_seconds), 0),
        )
        .where(Attempt.user_id == user_id, Attempt.quiz_id.in_(quiz_ids))
        .group_by(Attempt.quiz_id)
    )
    # The minimum is typed as the column, so it comes back an aware UTC datetime on both databases.
    return {quiz_id: (at, int(seconds or 0)) for quiz_id, at, seconds in rows}
