"""What seeded learners did, planned before anything is written: the course's shape (read once from the database)
and pure functions that plan each learner's path through it, following the site's rules (kaptrain.demo_seed writes
the plans).

A plan is a list of offsets in seconds from the learner's registration, placed in time at the end (the last
action between 5 minutes and ~300 days ago). Quizzes are taken in module order after each module was opened and
read for the course's minimum; attempts draw the quiz's questions from its published revisions and are graded with
the real graders, so credits, score and pass flag agree; at most `max_attempts` failures come before a pause of the
quiz's cooldown."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.content import revisions
from kaptrain.content.models import Course
from kaptrain.courses import services as courses
from kaptrain.quizzes.grading import correct_ids, grade
from kaptrain.quizzes.models import QuestionType, Quiz, QuizKind, Vignette
from kaptrain.quizzes.services import UNTIMED_SECONDS_PER_QUESTION

SEED_DOMAIN = "scale.example.org"


class SeedError(Exception):
    """The seed cannot run on this database; the message says why."""


class Stage(enum.StrEnum):
    """How far a seeded learner got."""

    ENROLLED = "enrolled"  # enrolled (half of them acknowledged the disclosures); no module opened
    PARTWAY = "partway"  # some modules complete, the next one opened, perhaps failed attempts at its quiz
    LEARNING_DONE = "learning_done"  # every module and the final passed; no evaluation yet
    EVALUATED = "evaluated"  # evaluation submitted, not attested
    CERTIFIED = "certified"  # attested, certificate issued


# Shares of the learners at each stage (percent). With the default pass chances below this gives about ten
# graded attempts per learner (100,000 at 10,000 learners) and 27% certified.
STAGE_SHARES = {
    Stage.ENROLLED: 20,
    Stage.PARTWAY: 45,
    Stage.LEARNING_DONE: 5,
    Stage.EVALUATED: 3,
    Stage.CERTIFIED: 27,
}
PASS_CHANCE = 0.37  # an attempt is planned to pass with this chance (80% pass marks are hard)
MAX_ATTEMPTS_PER_QUIZ = 12  # the plan passes at the latest on this attempt

HOUR = 3600.0
DAY = 24 * HOUR


# ---------------------------------------------------------------- the course, as the planner needs it


@dataclass(frozen=True, eq=False)  # hashed by identity: graded answers are memoised per question
class QuestionShape:
    """A published question revision that attempts may draw, with its option ids sorted out."""

    revision_id: int
    type: QuestionType
    options: tuple[dict[str, Any], ...]
    vignette_revision_id: int | None
    ids: tuple[str, ...] = ()
    correct: tuple[str, ...] = ()  # sorted, as an attempt stores a selection
    wrong: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuizShape:
    """A current quiz with its published rules and bank."""

    id: int
    settings_id: int
    draw: int
    passing_score: int
    max_attempts: int
    cooldown_hours: int
    time_limit_minutes: int | None
    partial_credit: bool
    questions: tuple[QuestionShape, ...]


@dataclass(frozen=True)
class ModuleShape:
    """A published module: its reading time and its current quiz (None: complete when marked read)."""

    id: int
    estimated_minutes: int
    quiz: QuizShape | None


@dataclass(frozen=True)
class CourseShape:
    """What the planner needs to know about the course."""

    id: int
    modules: tuple[ModuleShape, ...]
    final: QuizShape | None
    min_reading_percent: int
    ce_hours: Decimal
    objective_ids: tuple[str, ...]


def find_course(session: Session, slug: str | None) -> Course:
    """The published course to seed: by slug, or the first in the catalogue."""
    found = courses.get_course(session, slug) if slug else next(iter(courses.published_courses(session)), None)
    if found is None:
        raise SeedError(f"No published course {slug!r}." if slug else "No published course: run `content import`.")
    return found


def course_shape(session: Session, course: Course) -> CourseShape:
    """Read the course's published modules, current quizzes, their rules and banks."""
    quizzes = list(session.scalars(select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False))))
    shapes = {q.id: _quiz_shape(session, q) for q in quizzes}
    by_module = {q.module_id: shapes[q.id] for q in quizzes if q.kind == QuizKind.MODULE}
    final = next((shapes[q.id] for q in quizzes if q.kind == QuizKind.FINAL), None)
    modules = tuple(
        ModuleShape(m.id, rev.estimated_minutes, by_module.get(m.id))
        for m, rev in revisions.published_modules(session, course.id)
    )
    if not modules:
        raise SeedError(f"Course {course.slug} has no published module.")
    return CourseShape(
        course.id,
        modules,
        final,
        course.min_reading_percent,
        course.ce_hours,
        tuple(str(o["id"]) for o in course.objectives),
    )


def _quiz_shape(session: Session, quiz: Quiz) -> QuizShape:
    rows = session.execute(select(Vignette.id, Vignette.published_revision_id).where(Vignette.quiz_id == quiz.id))
    cases = {vignette_id: revision_id for vignette_id, revision_id in rows}
    bank = tuple(
        QuestionShape(
            rev.id,
            rev.type,
            tuple(rev.options),
            cases.get(rev.vignette_id) if rev.vignette_id else None,
            tuple(str(o["id"]) for o in rev.options),
            tuple(sorted(correct_ids(rev.options))),
            tuple(str(o["id"]) for o in rev.options if not o["correct"]),
        )
        for _, rev in revisions.published_questions(session, quiz.id)
    )
    if not bank or quiz.published_revision_id is None:
        raise SeedError(f"Quiz {quiz.slug} has no published rules or questions to draw.")
    rules = quiz.settings
    return QuizShape(
        quiz.id,
        quiz.published_revision_id,
        min(rules.draw, len(bank)),
        rules.passing_score,
        rules.max_attempts,
        rules.cooldown_hours,
        rules.time_limit_minutes,
        rules.partial_credit,
        bank,
    )


# ---------------------------------------------------------------- plans (pure: no database)


@dataclass
class ItemPlan:
    """One drawn question and the answer given."""

    question_revision_id: int
    vignette_revision_id: int | None
    option_order: list[str]
    selected: list[str]
    credit: float


@dataclass
class AttemptPlan:
    """One submitted, graded attempt (times in seconds from the learner's registration)."""

    quiz: QuizShape
    number: int
    started: float
    submitted: float
    items: list[ItemPlan]
    score: float
    passed: bool
    active_seconds: int


@dataclass
class ProgressPlan:
    """A module the learner opened."""

    module_id: int
    opened: float
    last_seen: float
    read: float | None
    seat_seconds: int


@dataclass
class LearnerPlan:
    """Everything one seeded learner did, as offsets in seconds from `origin` (their registration)."""

    index: int
    stage: Stage
    origin: dt.datetime
    enrolled: float
    acknowledged: float | None
    email_confirmed: bool
    progress: list[ProgressPlan] = field(default_factory=list)
    attempts: list[AttemptPlan] = field(default_factory=list)
    evaluated: float | None = None
    attested: float | None = None
    end: float = 0.0  # the last thing they did

    def at(self, offset: float) -> dt.datetime:
        """The moment `offset` seconds after registration."""
        return self.origin + dt.timedelta(seconds=offset)

    @property
    def active_seconds(self) -> int:
        """Reading plus quiz time, as the completion rule adds it up."""
        return sum(p.seat_seconds for p in self.progress) + sum(a.active_seconds for a in self.attempts)

    @property
    def email(self) -> str:
        """The learner's address, unique per index."""
        return f"learner{self.index:05d}@{SEED_DOMAIN}"


def stage_list(learners: int, rng: random.Random) -> list[Stage]:
    """Exactly STAGE_SHARES of `learners` at each stage (largest remainders), in random order."""
    total = sum(STAGE_SHARES.values())
    exact = {s: learners * share / total for s, share in STAGE_SHARES.items()}
    counts = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - counts[s], reverse=True)[: learners - sum(counts.values())]:
        counts[s] += 1
    stages = [s for s, n in counts.items() for _ in range(n)]
    rng.shuffle(stages)
    return stages


def plan_learner(index: int, stage: Stage, shape: CourseShape, rng: random.Random, now: dt.datetime) -> LearnerPlan:
    """Plan what one learner did in the course, following the site's rules, ending at most ~300 days ago."""
    t = rng.uniform(60, 2 * HOUR)  # enrolled this long after registering
    confirmed = stage in (Stage.EVALUATED, Stage.CERTIFIED) or rng.random() < 0.9  # certificates need it
    plan = LearnerPlan(index, stage, now, t, None, confirmed)
    if stage == Stage.ENROLLED and rng.random() < 0.5:
        plan.end = t
        return _place_in_time(plan, rng, now)
    t += rng.uniform(60, 600)
    plan.acknowledged = t
    if stage == Stage.ENROLLED:
        plan.end = t
        return _place_in_time(plan, rng, now)
    done_modules = len(shape.modules)
    if stage == Stage.PARTWAY:
        done_modules = rng.randint(0, len(shape.modules) if shape.final else len(shape.modules) - 1)
    for position, module in enumerate(shape.modules):
        if position > done_modules:
            break
        t += rng.uniform(10 * 60, 3 * DAY)
        current = position == done_modules  # the module a PARTWAY learner is working on
        t = _read_module(plan, shape, module, t, rng, finish=not current)
        if module.quiz is not None:
            t = _take_quiz(plan, module.quiz, t, rng, pass_it=not current)
    if stage == Stage.PARTWAY and done_modules == len(shape.modules) and shape.final is not None:
        t = _take_quiz(plan, shape.final, t + rng.uniform(HOUR, 2 * DAY), rng, pass_it=False)
    elif stage != Stage.PARTWAY and shape.final is not None:
        t = _take_quiz(plan, shape.final, t + rng.uniform(HOUR, 2 * DAY), rng, pass_it=True)
    if stage in (Stage.EVALUATED, Stage.CERTIFIED):
        t += rng.uniform(5 * 60, 5 * DAY)
        plan.evaluated = t
    if stage == Stage.CERTIFIED:
        t += rng.uniform(60, 30 * 60)
        plan.attested = t
    plan.end = t
    return _place_in_time(plan, rng, now)


def _place_in_time(plan: LearnerPlan, rng: random.Random, now: dt.datetime) -> LearnerPlan:
    # The last action happened between 5 minutes and ~300 days ago, more often recently.
    recency = 5 * 60 + rng.expovariate(1 / (60 * DAY)) % (300 * DAY)
    plan.origin = now - dt.timedelta(seconds=plan.end + recency)
    return plan


def _read_module(
    plan: LearnerPlan, shape: CourseShape, module: ModuleShape, t: float, rng: random.Random, finish: bool
) -> float:
    """Open and read a module (enough for its quiz); a module without a quiz is marked read when finished."""
    required = math.ceil(module.estimated_minutes * shape.min_reading_percent / 100) * 60
    seat = max(required, int(module.estimated_minutes * 60 * rng.uniform(0.5, 1.4)))
    if not finish and module.quiz is None:
        seat = int(seat * rng.uniform(0.1, 0.9))  # still reading it
    end = t + seat * rng.uniform(1.0, 1.5)
    marked = finish and (module.quiz is None or rng.random() < 0.4)
    plan.progress.append(ProgressPlan(module.id, t, end, end if marked else None, seat))
    return end


def _take_quiz(plan: LearnerPlan, quiz: QuizShape, t: float, rng: random.Random, pass_it: bool) -> float:
    """Attempts at one quiz until the planned pass; without pass_it, 0 to max_attempts - 1 failures."""
    failures_wanted = None if pass_it else rng.choice([0, 0, 0, 1, 1, 2])
    if failures_wanted is not None:
        failures_wanted = min(failures_wanted, quiz.max_attempts - 1)
    number = 0
    in_block = 0
    while True:
        if failures_wanted is not None and number >= failures_wanted:
            return t
        number += 1
        if number > 2 * MAX_ATTEMPTS_PER_QUIZ:  # even fully right answers fail: the bank cannot be passed
            raise SeedError(f"Quiz {quiz.id} cannot be passed with its own correct answers; check its bank.")
        t += rng.uniform(60, 30 * 60)
        want_pass = pass_it and (number >= MAX_ATTEMPTS_PER_QUIZ or rng.random() < PASS_CHANCE)
        attempt = _attempt(quiz, number, t, rng, want_pass)
        plan.attempts.append(attempt)
        t = attempt.submitted
        if attempt.passed:
            return t
        in_block += 1
        if quiz.cooldown_hours and in_block >= quiz.max_attempts:
            t += quiz.cooldown_hours * HOUR + rng.uniform(HOUR, 3 * DAY)  # the pause the rules ask for
            in_block = 0
        elif quiz.cooldown_hours:
            t += rng.uniform(5 * 60, min(20 * HOUR, quiz.cooldown_hours * HOUR * 0.8))
        else:
            t += rng.uniform(5 * 60, DAY)


def _attempt(quiz: QuizShape, number: int, started: float, rng: random.Random, want_pass: bool) -> AttemptPlan:
    """Draw the quiz's questions, answer `right` of them correctly and grade the answers with the real graders."""
    drawn = rng.sample(quiz.questions, quiz.draw)
    n = len(drawn)
    need = -(-quiz.passing_score * n // 100)  # the fewest fully right answers that pass
    right = rng.randint(need, n) if want_pass or need == 0 else rng.randint(max(0, need - 4), need - 1)
    right_positions = set(rng.sample(range(n), right))
    items = []
    for position, question in enumerate(drawn):
        order = list(question.ids)
        rng.shuffle(order)
        if position in right_positions:
            selected = question.correct
        elif question.wrong:
            selected = (rng.choice(question.wrong),)
        else:  # every option is right: leave one out
            selected = question.correct[:-1] or question.correct
        credit = _credit(question, selected, quiz.partial_credit)
        items.append(ItemPlan(question.revision_id, question.vignette_revision_id, order, list(selected), credit))
    score = round(100 * sum(i.credit for i in items) / n, 2)
    cap = quiz.time_limit_minutes * 60 if quiz.time_limit_minutes else UNTIMED_SECONDS_PER_QUESTION * n
    duration = rng.uniform(40, 120) * n  # untimed: always under the cap of 180 s a question
    if quiz.time_limit_minutes:
        duration = min(duration, cap - 60)
    return AttemptPlan(
        quiz, number, started, started + duration, items, score, score >= quiz.passing_score, int(min(duration, cap))
    )


@functools.cache
def _credit(question: QuestionShape, selected: tuple[str, ...], partial: bool) -> float:
    """The real grader's credit for an answer (memoised: a bank has few distinct answers)."""
    return grade(question.type, question.options, frozenset(selected), partial)
