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
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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


POST_COURSE_KINDS = frozenset({StepKind.EVALUATION, StepKind.ATTESTATION})

# Domains that add steps after the learning (certificates: evaluation, attestation) append a function here.
POST_COURSE_STEPS: list[Callable[[Session, CourseRecord], Step | None]] = []


def course_record(session: Session, user_id: int, course: Course, enrolment: Enrolment | None) -> CourseRecord:
    """Work out the learner's record in the course from the facts: progress rows and passed attempts."""
    modules = [m for m in course.modules if not m.is_retired]
    revisions = _current_revisions(session, modules)
    progress = _progress(session, user_id, modules)
    quizzes = list(session.scalars(select(Quiz).where(Quiz.course_id == course.id)))
    passed_at = _first_passes(session, user_id, [q.id for q in quizzes])
    current = {q.module_id: q for q in quizzes if q.kind == QuizKind.MODULE and not q.is_retired}
    final = next((q for q in quizzes if q.kind == QuizKind.FINAL and not q.is_retired), None)

    statuses: list[ModuleStatus] = []
    previous: ModuleStatus | None = None
    for module in modules:
        revision = revisions.get(module.id)
        if revision is None:
            continue
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
    record.active_seconds = sum(p.seat_seconds for p in progress.values()) + _quiz_seconds(
        session, user_id, [q.id for q in quizzes]
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
        unfinished = next((m for m in record.modules if m.state != State.COMPLETED), None)
        if final_passed_at:
            why, locked = "Passed", False
        elif unfinished is not None:
            why, locked = f"Locked: first, complete module {unfinished.module.position}", True
        else:
            why, locked = f"Pass the final assessment (pass mark {record.final.passing_score}%)", False
        done = final_passed_at is not None
        steps.append(Step(StepKind.FINAL, StepKind.FINAL.value, record.final.title, done, final_passed_at, why, locked))
    return steps


def quiz_gate(record: CourseRecord, quiz: Quiz) -> str | None:
    """Why the learner may not start this quiz now, or None when it is open to them."""
    if quiz.is_retired:
        return "This quiz has been retired and can no longer be taken; your past attempts stay available"
    if record.enrolment is None:
        return "Enrol in the course"
    if quiz.kind == QuizKind.FINAL:
        unfinished = next((m for m in record.modules if m.state != State.COMPLETED), None)
        if unfinished is not None:
            return f"Complete module {unfinished.module.position}: {unfinished.revision.title}"
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


def _current_revisions(session: Session, modules: list[Module]) -> dict[int, ModuleRevision]:
    """Each module's highest-numbered revision, in one query."""
    latest = (
        select(ModuleRevision.module_id, func.max(ModuleRevision.number).label("number"))
        .where(ModuleRevision.module_id.in_([m.id for m in modules]))
        .group_by(ModuleRevision.module_id)
        .subquery()
    )
    rows = session.scalars(
        select(ModuleRevision).join(
            latest, (ModuleRevision.module_id == latest.c.module_id) & (ModuleRevision.number == latest.c.number)
        )
    )
    return {r.module_id: r for r in rows}


def _progress(session: Session, user_id: int, modules: list[Module]) -> dict[int, ModuleProgress]:
    rows = session.scalars(
        select(ModuleProgress).where(
            ModuleProgress.user_id == user_id, ModuleProgress.module_id.in_([m.id for m in modules])
        )
    )
    return {p.module_id: p for p in rows}


def _first_passes(session: Session, user_id: int, quiz_ids: list[int]) -> dict[int, dt.datetime]:
    """When the learner first passed each quiz."""
    rows = session.execute(
        select(Attempt.quiz_id, func.min(Attempt.submitted_at))
        .where(Attempt.user_id == user_id, Attempt.quiz_id.in_(quiz_ids), Attempt.passed.is_(True))
        .group_by(Attempt.quiz_id)
    )
    # min() keeps the column's type, so these come back as aware UTC datetimes on both databases.
    return {quiz_id: at for quiz_id, at in rows if at is not None}


def _quiz_seconds(session: Session, user_id: int, quiz_ids: list[int]) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Attempt.active_seconds), 0)).where(
            Attempt.user_id == user_id, Attempt.quiz_id.in_(quiz_ids)
        )
    )
    return int(total or 0)
