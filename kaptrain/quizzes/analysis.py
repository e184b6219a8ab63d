"""Item analysis for instructors: facility, discrimination, option choices, score distribution."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.quizzes.models import Attempt, AttemptStatus, Question, QuestionRevision, Quiz

TOO_EASY = 0.90
TOO_HARD = 0.30
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
    """Running sums of (item score, rest score) pairs: enough for the mean and the correlation."""

    n: int = 0
    sum_i: float = 0.0
    sum_r: float = 0.0
    sum_ii: float = 0.0
    sum_rr: float = 0.0
    sum_ir: float = 0.0

    def add(self, i: float, r: float) -> None:
        """Count one pair."""
        self.n += 1
        self.sum_i, self.sum_r = self.sum_i + i, self.sum_r + r
        self.sum_ii, self.sum_rr, self.sum_ir = self.sum_ii + i * i, self.sum_rr + r * r, self.sum_ir + i * r

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
    """Compute the item analysis of every graded attempt of a quiz.

    Quality flags are raised only for questions answered at least `min_attempts` times: below that a
    facility or a correlation says more about chance than about the question."""
    # Read in batches and keep only running sums, so a quiz with any number of attempts fits in memory.
    stmt = select(Attempt).where(Attempt.quiz_id == quiz.id, Attempt.status == AttemptStatus.SUBMITTED)
    bins: Counter[int] = Counter()
    count = passed = 0
    pairs: dict[int, _Pairs] = defaultdict(_Pairs)  # per question: item credit vs rest-of-attempt fraction
    choices: dict[int, Counter[str]] = defaultdict(Counter)
    for a in session.scalars(stmt.execution_options(yield_per=500)):
        count, passed = count + 1, passed + bool(a.passed)
        bins[min(int((a.score or 0) // 10), 9)] += 1
        n = len(a.items)
        total = sum(i.credit or 0 for i in a.items)
        for item in a.items:
            credit = 1.0 if (item.credit or 0) >= 1.0 else 0.0
            rest = (total - (item.credit or 0)) / (n - 1) if n > 1 else 0.0
            pairs[item.revision.question_id].add(credit, rest)
            choices[item.question_revision_id].update(item.selected or [])
        session.expunge(a)
    histogram = [(f"{b * 10}–{b * 10 + 9 if b < 9 else 100}%", bins.get(b, 0)) for b in range(10)]
    items = []
    questions = session.scalars(select(Question).where(Question.quiz_id == quiz.id).order_by(Question.position))
    for q in questions:
        revs = list(
            session.scalars(
                select(QuestionRevision).where(QuestionRevision.question_id == q.id).order_by(QuestionRevision.number)
            )
        )
        current = revs[-1]
        data = pairs.get(q.id, _Pairs())
        stats = ItemStats(key=q.key, stem=current.stem, revisions=len(revs), drawn=data.n)
        if data.n:
            stats.facility = data.sum_i / data.n
            stats.discrimination = data.correlation()
        counts = choices.get(current.id, Counter())
        stats.option_counts = [
            (o["id"], o["text"], bool(o["correct"]), counts.get(o["id"], 0)) for o in current.options
        ]
        stats.flags = _flags(stats, min_attempts)
        items.append(stats)
    return QuizStats(count, passed, histogram, items)


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
    return flags


def stats_csv(stats: QuizStats) -> str:
    """The item analysis as CSV, one row per question."""
    return "".join(stats_csv_lines(stats))


def stats_csv_lines(stats: QuizStats) -> Iterator[str]:
    """The item analysis as CSV text, one line at a time (the download streams it)."""
    out = io.StringIO()
    writer = csv.writer(out)

    def line(values: Sequence[object]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(values)
        return out.getvalue()

    yield line(CSV_COLUMNS)
    for s in stats.items:
        yield line(
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
        )
