"""Where every learner of a course stands, worked out by the database a page at a time.

The rule mirrors kaptrain.courses.completion (a module is done when its current quiz is passed, or when it
has none, when it was marked read) and kaptrain.quizzes.services.quiz_state (attempts come in blocks; a
learner who failed every attempt of a block waits for the cooldown). Each learner's step and stuck flag are
SQL expressions over the enrolments, so the counts, the filters and the page of learners cost the same two
statements whatever the number of learners. Read-only: nothing here writes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, ColumnElement, String, Subquery, and_, case, cast, func, literal, null, or_, select
from sqlalchemy.orm import Session, lazyload

from kaptrain.accounts.models import User
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation
from kaptrain.content.models import Course, Module
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import as_utc, utcnow
from kaptrain.quizzes.models import Accommodation, Attempt, AttemptStatus, Quiz, QuizKind

STEP_LABELS = {
    "disclosures": "Course disclosures",
    "final": "Final assessment",
    "evaluation": "Course evaluation",
    "attestation": "Attestation",
    "certificate": "Certificate awaiting approval",
    "revoked": "Certificate revoked",
    "done": "Completed",
}


_AFTER_MODULES = tuple(STEP_LABELS)[1:]  # in the course's order, as STEP_LABELS lists them


def step_order(step: str) -> tuple[int, int]:
    """Where a step comes in the course: disclosures, the modules in order, then the final and what follows."""
    if step.startswith("module-"):
        number = step.removeprefix("module-")
        return 1, int(number) if number.isdigit() else 0
    return (0, 0) if step == "disclosures" else (2, _AFTER_MODULES.index(step) if step in _AFTER_MODULES else 99)


def step_label(step: str) -> str:
    """The words for a step key ("module-3" is "Module 3")."""
    return f"Module {step.removeprefix('module-')}" if step.startswith("module-") else STEP_LABELS[step]


@dataclass
class LearnerRow:
    """One learner's standing in the course."""

    user: User
    step: str  # "disclosures", "module-<position>", "final", "evaluation", "attestation", "certificate", "revoked",
    # or "done"
    step_label: str
    last_activity: dt.datetime
    quiz: Quiz | None = None  # the quiz of the current step, if it has one
    attempts_used: int = 0
    attempts_allowed: int = 0
    stuck: bool = False
    cooldown_until: dt.datetime | None = None


@dataclass
class Overview:
    """One page of learners, with the course-wide counts the page shows."""

    rows: list[LearnerRow]
    total: int  # enrolled learners
    stuck_total: int
    matching: int  # learners the filters leave
    steps: list[tuple[str, str]]  # (step, label) of each step some learner is at, by key
    page: int
    pages: int


@dataclass(frozen=True)
class _Shape:
    """What the rule needs from the course: its live modules in order and its current quizzes."""

    modules: list[Module]
    quizzes: dict[int, Quiz]
    module_quiz: dict[int, Quiz]
    final: Quiz | None


def overview(
    session: Session,
    course: Course,
    stuck_only: bool = False,
    step: str = "",
    page: int = 1,
    per_page: int = 50,
    now: dt.datetime | None = None,
    name: str = "",
) -> Overview:
    """A page of the course's learners by name (filtered by step, stuck and a part of the name or email address),
    and the counts for all of them.

    An unknown step filters nothing; a page past the end shows the last one."""
    now = now or utcnow()
    shape = _shape(session, course)
    standing = _standing(session, course, shape)
    summary = session.execute(
        select(standing.c.step, func.count(), func.sum(case((standing.c.stuck, 1), else_=0))).group_by(standing.c.step)
    ).all()
    by_step = {s: (int(n), int(k or 0)) for s, n, k in summary}
    step = step if step in by_step else ""
    filters: list[ColumnElement[bool]] = [standing.c.stuck] if stuck_only else []
    filters += [standing.c.step == step] if step else []
    name = " ".join(name.split())
    if name:  # one more count, only when searching
        part = name.lower()
        filters.append(
            or_(
                func.lower(standing.c.full_name).contains(part, autoescape=True),
                func.lower(standing.c.email).contains(part, autoescape=True),
            )
        )
        matching = session.scalar(select(func.count()).select_from(standing).where(*filters)) or 0
    else:
        matching = sum(k if stuck_only else n for s, (n, k) in by_step.items() if not step or s == step)
    pages = max(1, math.ceil(matching / per_page))
    page = min(max(1, page), pages)
    shown = (
        select(standing)
        .where(*filters)
        .order_by(standing.c.full_name, standing.c.user_id)
        .limit(per_page)
        .offset((page - 1) * per_page)
        .subquery()
    )
    return Overview(
        rows=_rows(session, course, shape, shown, now),
        total=sum(n for n, _k in by_step.values()),
        stuck_total=sum(k for _n, k in by_step.values()),
        matching=matching,
        steps=[(s, step_label(s)) for s in sorted(by_step, key=step_order)],
        page=page,
        pages=pages,
    )


def _shape(session: Session, course: Course) -> _Shape:
    quizzes = list(
        session.scalars(
            select(Quiz)
            .where(Quiz.course_id == course.id, Quiz.is_retired.is_(False))
            .options(lazyload(Quiz.course), lazyload(Quiz.module))  # both are at hand: only the rules are needed
        )
    )
    return _Shape(
        modules=[m for m in course.modules if m.is_live],
        quizzes={q.id: q for q in quizzes},
        module_quiz={q.module_id: q for q in quizzes if q.kind == QuizKind.MODULE and q.module_id is not None},
        final=next((q for q in quizzes if q.kind == QuizKind.FINAL), None),
    )


def _standing(session: Session, course: Course, shape: _Shape) -> Subquery:
    """One row per enrolled learner: user_id, full_name, step, quiz_id (of the step), used and last_failure (in
    the current block of that quiz), extra (attempts granted) and stuck."""
    steps = _steps(course, shape)
    blocks = _blocks(session, shape, steps)
    extra = func.coalesce(Accommodation.extra_attempts, 0)
    used = func.coalesce(blocks.c.used, 0)
    max_attempts = {q.id: q.max_attempts for q in shape.quizzes.values()}
    allowed = (case(max_attempts, value=steps.c.quiz_id, else_=None) if max_attempts else null()) + extra
    return (
        select(
            steps.c.user_id,
            steps.c.full_name,
            steps.c.email,
            steps.c.step,
            steps.c.quiz_id,
            used.label("used"),
            blocks.c.last_failure,
            extra.label("extra"),
            and_(steps.c.quiz_id.is_not(None), used >= allowed).label("stuck"),
        )
        .outerjoin(blocks, blocks.c.user_id == steps.c.user_id)
        .outerjoin(
            Accommodation,
            and_(
                Accommodation.user_id == steps.c.user_id,
                Accommodation.quiz_id == steps.c.quiz_id,
                Accommodation.withdrawn_at.is_(None),
            ),
        )
        .subquery()
    )


def _steps(course: Course, shape: _Shape) -> CTE:
    """user_id, full_name, step and quiz_id (the step's quiz, if it is one) of every enrolled learner: the first
    step not done, in the order a learner meets them.

    What each learner has done comes from one grouped pass over the passed attempts (and over the progress of
    modules without a quiz), one flag per quiz or module, joined to the enrolments with the evaluations,
    attestations and active certificates: joins the databases answer with one hash or index each, rather than
    a lookup per learner and step. Materialized, so each learner's step is worked out once: as a plain subquery
    the databases would copy the expression into every place the step is used (the joins, the filters)."""
    learner = Enrolment.user_id
    quizzes = list(shape.module_quiz.values()) + ([shape.final] if shape.final is not None else [])
    passed = (
        select(
            Attempt.user_id,
            *(func.max(case((Attempt.quiz_id == q.id, 1), else_=0)).label(f"quiz_{q.id}") for q in quizzes),
        )
        .where(Attempt.quiz_id.in_([q.id for q in quizzes]), Attempt.passed.is_(True))
        .group_by(Attempt.user_id)
        .subquery("passed")
    )
    unquizzed = [m for m in shape.modules if m.id not in shape.module_quiz]
    read = (
        select(
            ModuleProgress.user_id,
            *(
                func.max(case((ModuleProgress.module_id == m.id, 1), else_=0)).label(f"module_{m.id}")
                for m in unquizzed
            ),
        )
        .where(ModuleProgress.module_id.in_([m.id for m in unquizzed]), ModuleProgress.read_at.is_not(None))
        .group_by(ModuleProgress.user_id)
        .subquery("read")
    )

    def holders(status: CertificateStatus, name: str) -> Subquery:
        return (
            select(Certificate.user_id)
            .where(Certificate.course_id == course.id, Certificate.status == status)
            .distinct()
            .subquery(name)
        )

    certified = holders(CertificateStatus.ACTIVE, "certified")
    revoked = holders(CertificateStatus.REVOKED, "revoked")
    waiting = holders(CertificateStatus.PENDING, "waiting")

    def not_passed(quiz: Quiz) -> ColumnElement[bool]:
        return func.coalesce(passed.c[f"quiz_{quiz.id}"], 0) == 0

    # (not done yet, step, its quiz), in the order a learner meets the steps.
    steps: list[tuple[ColumnElement[bool], str, int | None]] = [
        (Enrolment.disclosures_acknowledged_at.is_(None), "disclosures", None)
    ]
    for m in shape.modules:
        quiz = shape.module_quiz.get(m.id)
        if quiz is not None:
            steps.append((not_passed(quiz), f"module-{m.position}", quiz.id))
        else:
            steps.append((func.coalesce(read.c[f"module_{m.id}"], 0) == 0, f"module-{m.position}", None))
    if shape.final is not None:
        steps.append((not_passed(shape.final), "final", shape.final.id))
    steps += [
        (Evaluation.id.is_(None), "evaluation", None),
        (Attestation.id.is_(None), "attestation", None),
        # Revoked, with nothing issued or asked for since: not waiting for anyone's approval.
        (
            and_(certified.c.user_id.is_(None), waiting.c.user_id.is_(None), revoked.c.user_id.is_not(None)),
            "revoked",
            None,
        ),
        (certified.c.user_id.is_(None), "certificate", None),
    ]
    stmt = (
        select(
            learner.label("user_id"),
            User.full_name,
            User.email,
            case(*((undone, step) for undone, step, _q in steps), else_="done").label("step"),
            case(*((undone, quiz_id) for undone, _s, quiz_id in steps), else_=None).label("quiz_id"),
        )
        .join(User, User.id == learner)
        .outerjoin(passed, passed.c.user_id == learner)
        .outerjoin(Evaluation, and_(Evaluation.user_id == learner, Evaluation.course_id == course.id))
        .outerjoin(Attestation, and_(Attestation.user_id == learner, Attestation.course_id == course.id))
        .outerjoin(certified, certified.c.user_id == learner)
        .outerjoin(revoked, revoked.c.user_id == learner)
        .outerjoin(waiting, waiting.c.user_id == learner)
        .where(Enrolment.course_id == course.id)
    )
    if unquizzed:
        stmt = stmt.outerjoin(read, read.c.user_id == learner)
    return stmt.cte("steps").prefix_with("MATERIALIZED")


def _blocks(session: Session, shape: _Shape, steps: CTE) -> Subquery:
    """Per learner at a quiz step: how many failed attempts at that quiz are in the current block, and when the
    last one was.

    kaptrain.quizzes.services.current_block in SQL: a failure that came at least the cooldown after the
    previous one starts a new block (failures in attempt-number order)."""
    moment = func.coalesce(Attempt.submitted_at, Attempt.started_at)
    failures = (
        select(
            Attempt.user_id,
            Attempt.quiz_id,
            moment.label("t"),
            func.lag(moment).over(partition_by=Attempt.user_id, order_by=Attempt.number).label("previous"),
            func.row_number().over(partition_by=Attempt.user_id, order_by=Attempt.number).label("n"),
            func.count().over(partition_by=Attempt.user_id).label("failures"),
        )
        .join(steps, and_(steps.c.user_id == Attempt.user_id, steps.c.quiz_id == Attempt.quiz_id))
        .where(Attempt.status == AttemptStatus.SUBMITTED, or_(Attempt.passed.is_(False), Attempt.passed.is_(None)))
        .subquery()
    )
    hours = {q.id: q.cooldown_hours for q in shape.quizzes.values() if q.cooldown_hours}
    block_start: ColumnElement[int]
    if hours:
        pause = case(hours, value=failures.c.quiz_id, else_=None)
        starts_block = failures.c.t >= _plus_hours(session, failures.c.previous, pause)
        block_start = func.coalesce(func.max(case((starts_block, failures.c.n))), 1)
    else:
        block_start = literal(1)
    return (
        select(
            failures.c.user_id,
            (func.count() - block_start + 1).label("used"),
            func.max(case((failures.c.n == failures.c.failures, failures.c.t))).label("last_failure"),
        )
        .group_by(failures.c.user_id)
        .subquery()
    )


def _plus_hours(session: Session, moment: ColumnElement[Any], hours: ColumnElement[int]) -> ColumnElement[Any]:
    """`moment + hours`, compared exactly on both databases (NULL when either is NULL)."""
    if session.get_bind().dialect.name == "postgresql":
        return moment + func.make_interval(0, 0, 0, 0, hours)
    # SQLite keeps times as text, "YYYY-MM-DD HH:MM:SS.ffffff": whole seconds go through strftime (which
    # would round the fraction), and the microseconds are carried over as they are, so the text comparison
    # with another stored time is exact to the microsecond.
    shifted = func.strftime("%Y-%m-%d %H:%M:%S", func.substr(moment, 1, 19), "+" + cast(hours, String) + " hours")
    return shifted.op("||")(func.substr(moment, 20))


def _rows(session: Session, course: Course, shape: _Shape, shown: Subquery, now: dt.datetime) -> list[LearnerRow]:
    """The page's learners with their last activity (enrolment, module visits, attempts), in name order."""
    learner = shown.c.user_id
    last_seen = select(func.max(ModuleProgress.last_seen_at)).where(
        ModuleProgress.user_id == learner, ModuleProgress.module_id.in_([m.id for m in shape.modules])
    )
    on_quizzes = [Attempt.user_id == learner, Attempt.quiz_id.in_(list(shape.quizzes))]
    last_started = select(func.max(Attempt.started_at)).where(*on_quizzes)
    last_submitted = select(func.max(Attempt.submitted_at)).where(*on_quizzes)
    result = session.execute(
        select(
            User,
            Enrolment.enrolled_at,
            shown.c.step,
            shown.c.quiz_id,
            shown.c.used,
            shown.c.last_failure,
            shown.c.extra,
            last_seen.scalar_subquery(),
            last_started.scalar_subquery(),
            last_submitted.scalar_subquery(),
        )
        .join(shown, User.id == learner)
        .join(Enrolment, and_(Enrolment.user_id == learner, Enrolment.course_id == course.id))
        .order_by(shown.c.full_name, learner)
    )
    rows = []
    for user, enrolled_at, step, quiz_id, used, last_failure, extra, *moments in result:
        row = LearnerRow(user, step, step_label(step), max(m for m in (enrolled_at, *moments) if m is not None))
        quiz = shape.quizzes.get(quiz_id) if quiz_id is not None else None
        if quiz is not None:
            _quiz_figures(row, quiz, int(used), last_failure, int(extra), now)
        rows.append(row)
    return rows


def _quiz_figures(
    row: LearnerRow, quiz: Quiz, used: int, last_failure: dt.datetime | None, extra: int, now: dt.datetime
) -> None:
    """Attempts used in the learner's current block, and whether they failed all of them."""
    row.quiz = quiz
    row.attempts_allowed = quiz.max_attempts + extra
    row.attempts_used = used
    row.stuck = used >= row.attempts_allowed
    if quiz.cooldown_hours and used and last_failure is not None:
        until = last_failure + dt.timedelta(hours=quiz.cooldown_hours)
        if row.stuck and now < until:
            row.cooldown_until = until


def attempt_history(session: Session, course: Course, user_id: int) -> list[Attempt]:
    """Every attempt the learner started at the course's quizzes, oldest first (with its quiz): what an instructor
    reads to see how someone came to be stuck, or passed at the last try."""
    found = session.scalars(
        select(Attempt)
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .where(Attempt.user_id == user_id, Quiz.course_id == course.id)
        .order_by(Attempt.started_at, Attempt.id)
        .options(lazyload(Attempt.items), lazyload(Attempt.settings))
    )
    return list(found)


# Headers in words and times a spreadsheet reads as times (UTC): the file is for people, not for another program.
CSV_HEADER = (
    "Name",
    "Email",
    "Current step",
    "Current quiz",
    "Attempts used",
    "Attempts allowed",
    "Stuck",
    "Can try again after (UTC)",
    "Last activity (UTC)",
)
_SHEET_TIME = "%Y-%m-%d %H:%M"


def csv_rows(
    session: Session, course: Course, stuck_only: bool = False, step: str = "", name: str = "", batch: int = 500
) -> Iterator[list[object]]:
    """The learners the list's filters leave, every page of them, as CSV rows (CSV_HEADER), a page of `batch` at a
    time: memory stays the same whatever the number of learners."""
    now = utcnow()
    page, pages = 1, 1
    while page <= pages:
        found = overview(session, course, stuck_only, step, page, batch, now=now, name=name)
        for r in found.rows:
            yield [
                r.user.full_name,
                r.user.email,
                r.step_label,
                r.quiz.title if r.quiz else "",
                r.attempts_used if r.quiz else "",
                r.attempts_allowed if r.quiz else "",
                "yes" if r.stuck else "no",
                as_utc(r.cooldown_until).strftime(_SHEET_TIME) if r.cooldown_until else "",
                as_utc(r.last_activity).strftime(_SHEET_TIME),
            ]
            session.expunge(r.user)  # keep the identity map from growing with the export
        page, pages = page + 1, found.pages
