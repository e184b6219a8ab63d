"""Item analysis for instructors: facility, discrimination, option choices, score distribution.

Worked out on each view by the database, from the graded attempts themselves (grouped sums), rather than from
tallies kept up to date as attempts are graded. Sums over the attempts are right whatever wrote them (grading,
an expired attempt closed later, the scale seed, a purge of old records), give concurrent submissions no shared
counter row to queue on, and at 100,000 attempts cost four statements and about half a second of SQLite time
per view (bench/staff_pages.py), helped by a covering index on attempt_items."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Text, case, cast, func, select
from sqlalchemy.orm import Session

from kaptrain import csvout
from kaptrain.quizzes.models import Attempt, AttemptItem, AttemptStatus, Question, QuestionRevision, Quiz

TOO_EASY = 0.90
TOO_HARD = 0.30
WEAK_DISCRIMINATION = 0.20  # below it a question barely tells stronger learners from weaker ones
CSV_COLUMNS = ["question", "revisions", "times_drawn", "facility", "discrimination", "flags", "option_choices", "stem"]


@dataclass
class ItemStats:
    """Figures for one question (all its revisions together; option counts for the current one)."""

    key: str
    stem: str
    revisions: int
    drawn: int = 0
    facility: float | None = None  # share answered fully correctly
    discrimination: float | None = None  # point-biserial of item vs rest-of-test score
    option_counts: list[tuple[str, str, bool, int]] = field(default_factory=list)
    current_drawn: int = 0  # of `drawn`, the answers to the current revision (the one the option counts are for)
    flags: list[str] = field(default_factory=list)


@dataclass
class QuizStats:
    """Figures for one quiz."""

    attempts: int
    passed: int
    histogram: list[tuple[str, int]]
    items: list[ItemStats]

    @property
    def pass_rate(self) -> float | None:
        """Share of graded attempts that passed."""
        return self.passed / self.attempts if self.attempts else None


def point_biserial(item_scores: list[float], rest_scores: list[float]) -> float | None:
    """Correlation between a 0/1 item score and the rest-of-test score; None when undefined."""
    n = len(item_scores)
    if n < 2:
        return None
    mean_i = sum(item_scores) / n
    mean_r = sum(rest_scores) / n
    cov = sum((i - mean_i) * (r - mean_r) for i, r in zip(item_scores, rest_scores, strict=True))
    var_i = sum((i - mean_i) ** 2 for i in item_scores)
    var_r = sum((r - mean_r) ** 2 for r in rest_scores)
    if var_i == 0 or var_r == 0:
        return None
    return cov / math.sqrt(var_i * var_r)


@dataclass
class _Pairs:
    """Sums over (item score, rest score) pairs, added up by the database: enough for the mean and the correlation."""

    n: int = 0
    sum_i: float = 0.0
    sum_r: float = 0.0
    sum_ii: float = 0.0
    sum_rr: float = 0.0
    sum_ir: float = 0.0

    def correlation(self) -> float | None:
        """The same figure as point_biserial over the pairs; None when undefined."""
        if self.n < 2:
            return None
        var_i = self.sum_ii - self.sum_i**2 / self.n
        var_r = self.sum_rr - self.sum_r**2 / self.n
        if var_i <= 1e-12 or var_r <= 1e-12:
            return None
        return (self.sum_ir - self.sum_i * self.sum_r / self.n) / math.sqrt(var_i * var_r)


def quiz_stats(session: Session, quiz: Quiz, min_attempts: int = 20) -> QuizStats:
    """Compute the item analysis of every graded attempt of a quiz, in four grouped queries.

    Every figure is an aggregate the database works out (counts, and sums of products for the correlation), so
    a view costs the same few statements and a few hundred result rows whatever the number of attempts. Quality
    flags are raised only for questions answered at least `min_attempts` times: below that a facility or a
    correlation says more about chance than about the question."""
    count, passed, histogram = _attempt_figures(session, quiz.id)
    revision_rows = session.execute(
        select(QuestionRevision.id, QuestionRevision.question_id)
        .join(Question, Question.id == QuestionRevision.question_id)
        .where(Question.quiz_id == quiz.id)
    )
    question_of = {revision_id: question_id for revision_id, question_id in revision_rows}
    pairs, choices, answered = _item_figures(session, quiz.id, question_of)
    revisions = Counter(question_of.values())
    bank = session.execute(
        select(Question.id, Question.key, QuestionRevision.id, QuestionRevision.stem, QuestionRevision.options)
        .join(QuestionRevision, QuestionRevision.id == Question.published_revision_id)  # unpublished: never asked
        .where(Question.quiz_id == quiz.id)
        .order_by(Question.position, Question.id)
    )
    items = []
    for question_id, key, revision_id, stem, options in bank:
        data = pairs.get(question_id, _Pairs())
        stats = ItemStats(key=key, stem=stem, revisions=revisions[question_id], drawn=data.n)
        if data.n:
            stats.facility = data.sum_i / data.n
            stats.discrimination = data.correlation()
        counts = choices.get(revision_id, Counter())
        stats.current_drawn = answered.get(revision_id, 0)
        stats.option_counts = [(o["id"], o["text"], bool(o["correct"]), counts.get(o["id"], 0)) for o in options]
        stats.flags = _flags(stats, min_attempts)
        items.append(stats)
    return QuizStats(count, passed, histogram, items)


def _graded(quiz_id: int) -> list[ColumnElement[bool]]:
    return [Attempt.quiz_id == quiz_id, Attempt.status == AttemptStatus.SUBMITTED]


def _attempt_figures(session: Session, quiz_id: int) -> tuple[int, int, list[tuple[str, int]]]:
    """Graded attempts, passes and the score histogram (bands of ten points, 100% in the top band)."""
    score = func.coalesce(Attempt.score, 0.0)
    # A comparison per band rather than floor(score / 10): the same band as Python's `score // 10` on both
    # databases (PostgreSQL rounds a cast to integer, and SQLite may lack floor()).
    band = case(*((score >= 10 * b, b) for b in range(9, 0, -1)), else_=0)
    rows = session.execute(
        select(band, func.count(), func.sum(case((Attempt.passed.is_(True), 1), else_=0)))
        .where(*_graded(quiz_id))
        .group_by(band)
    )
    bins: dict[int, int] = {}
    count = passed = 0
    for b, n, p in rows:
        bins[int(b)] = int(n)
        count, passed = count + int(n), passed + int(p or 0)
    histogram = [(f"{b * 10}–{b * 10 + 9 if b < 9 else 100}%", bins.get(b, 0)) for b in range(10)]
    return count, passed, histogram


def _item_figures(
    session: Session, quiz_id: int, question_of: dict[int, int]
) -> tuple[dict[int, _Pairs], dict[int, Counter[str]], Counter[int]]:
    """In one pass over the answers of the quiz's graded attempts: per question (all its revisions together),
    the sums that give the facility and the point-biserial correlation of full credit on the question with the
    mean credit on the rest of the same attempt; per revision, how often each option was chosen, and how often
    the revision was answered.

    The database groups the answers by revision and by the answer given, as stored (the JSON text of the list
    of option ids chosen): a few rows per question, whatever the number of attempts. Sums are additive, so the
    revisions of a question are added up here, and each distinct answer is read once to count its options."""
    credit = func.coalesce(AttemptItem.credit, 0.0)
    attempt = (
        select(AttemptItem.attempt_id, func.count().label("n"), func.sum(credit).label("total"))
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .where(*_graded(quiz_id))
        .group_by(AttemptItem.attempt_id)
        .subquery()
    )
    full = case((credit >= 1.0, 1.0), else_=0.0)
    rest = case((attempt.c.n > 1, (attempt.c.total - credit) / (attempt.c.n - 1)), else_=0.0)
    answers = (
        select(
            AttemptItem.question_revision_id.label("revision_id"),
            cast(AttemptItem.selected, Text).label("answer"),
            full.label("i"),
            rest.label("r"),
        )
        .select_from(AttemptItem)
        .join(attempt, attempt.c.attempt_id == AttemptItem.attempt_id)
        .subquery()
    )
    i, r = answers.c.i, answers.c.r
    sums = (func.sum(i), func.sum(r), func.sum(i * i), func.sum(r * r), func.sum(i * r))
    rows = session.execute(
        select(answers.c.revision_id, answers.c.answer, func.count(), *sums).group_by(
            answers.c.revision_id, answers.c.answer
        )
    )
    pairs: dict[int, _Pairs] = {}
    choices: dict[int, Counter[str]] = defaultdict(Counter)
    answered: Counter[int] = Counter()
    for revision_id, answer, n, *values in rows:
        question_id = question_of.get(revision_id)
        if question_id is None:
            continue  # not a question of this bank (cannot happen: attempts draw from their own quiz)
        p = pairs.setdefault(question_id, _Pairs())
        p.n += int(n)
        answered[revision_id] += int(n)
        p.sum_i, p.sum_r, p.sum_ii, p.sum_rr, p.sum_ir = (
            a + float(b or 0) for a, b in zip((p.sum_i, p.sum_r, p.sum_ii, p.sum_rr, p.sum_ir), values, strict=True)
        )
        chosen = json.loads(answer) if answer else None
        for option_id in chosen if isinstance(chosen, list) else []:
            choices[revision_id][str(option_id)] += int(n)
    return pairs, choices, answered


def _flags(stats: ItemStats, min_attempts: int) -> list[str]:
    if stats.drawn < min_attempts:
        return [f"too few answers to judge ({stats.drawn} of {min_attempts})"] if stats.drawn else []
    flags = []
    if stats.facility is not None and stats.facility > TOO_EASY:
        flags.append("too easy")
    if stats.facility is not None and stats.facility < TOO_HARD:
        flags.append("too hard")
    if stats.discrimination is not None and stats.discrimination < 0:
        flags.append("negative discrimination")
    elif stats.discrimination is not None and stats.discrimination < WEAK_DISCRIMINATION:
        flags.append("weak discrimination")
    return flags


def stats_csv(stats: QuizStats) -> str:
    """The item analysis as CSV, one row per question."""
    return "".join(stats_csv_lines(stats))


def stats_csv_lines(stats: QuizStats) -> Iterator[str]:
    """The item analysis as CSV text, one line at a time (the download streams it)."""
    return csvout.lines(
        CSV_COLUMNS,
        (
            [
                s.key,
                s.revisions,
                s.drawn,
                "" if s.facility is None else f"{s.facility:.3f}",
                "" if s.discrimination is None else f"{s.discrimination:.3f}",
                "; ".join(s.flags),
                "; ".join(f"{oid}{'*' if ok else ''}={n}" for oid, _t, ok, n in s.option_counts),
                s.stem,
            ]
            for s in stats.items
        ),
    )
