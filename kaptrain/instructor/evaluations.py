"""The summary of a course's evaluations: ratings, objectives met, commercial bias, balance and evidence, hours spent,
comments; and its CSV.

Evaluations are anonymous to instructors, who can nevertheless see on the learners page who has reached the step
after the evaluation. So results are released in whole groups of EVALUATION_MIN_GROUP (the first group once that
many learners have answered, the next when as many more have), comments and CSV rows come in an order that says
nothing about who answered when (sorted by what they say), and no date is shown with them, nor on a learner's record
for instructors (a day or a month could single a learner out): a new evaluation never shows up alone, as the one row
or comment that changed since the last look.

The hours a learner spent on the course are shown only as the median of the released evaluations, and are not in
the CSV: instructors see each learner's hours claimed on the learner's record, and many learners give the same
figure for both, so an evaluation row carrying its hours could be matched to its learner, comments and all.
(Administrators, who may see who wrote each evaluation, see the hours on the person's record.)
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy.orm import Session

from kaptrain import csvout
from kaptrain.certificates.models import Evaluation
from kaptrain.certificates.services import EVIDENCE_ANSWERS, OBJECTIVE_ANSWERS, PRACTICE_CHANGE_ANSWERS, RATINGS
from kaptrain.content.models import Course

QUESTIONS = {
    "relevance": "Relevance to my practice",
    "quality": "Quality of the material",
    "overall": "Overall rating",
}
CSV_COLUMNS = (
    *("relevance", "quality", "overall", "free_of_bias", "bias_comment", "evidence_balanced", "evidence_comment"),
    *("practice_change", "change_plan", "comments"),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # see kaptrain.certificates.report


@dataclass
class Rating:
    """One 1-5 question: how many gave each rating, and the mean."""

    name: str
    label: str
    counts: dict[int, int]
    mean: float | None


@dataclass
class Summary:
    """Everything the evaluation page shows: the released evaluations, out of how many made."""

    total: int  # evaluations made
    count: int  # evaluations released to instructors (whole groups)
    ratings: list[Rating]
    objectives: list[tuple[str, dict[str, int]]]  # (objective text, {answer: count})
    bias_reported: int
    bias_comments: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    # Commitment to change: {answer label: count} (evaluations from before the question left out), and the plans.
    practice_change: dict[str, int] = field(default_factory=dict)
    change_plans: list[str] = field(default_factory=list)
    # Balance and evidence: {answer label: count} (evaluations from before the question left out), and the comments
    # of those who answered partly or no.
    evidence: dict[str, int] = field(default_factory=dict)
    evidence_comments: list[str] = field(default_factory=list)
    # Hours spent on the course: how many answered (the question is optional), and the median of their answers.
    hours_answered: int = 0
    hours_median: Decimal | None = None


def count(session: Session, course_id: int) -> int:
    """How many learners have evaluated the course."""
    return int(session.scalar(select(func.count()).where(Evaluation.course_id == course_id)) or 0)


def released(total: int, group: int) -> int:
    """How many of `total` evaluations instructors see: whole groups of `group` (all of them when group <= 1)."""
    return total if group <= 1 else total - total % group


def _released_filter(session: Session, course_id: int, shown: int) -> ColumnElement[bool]:
    """The released evaluations of the course: the first `shown` made (by id), as a WHERE clause."""
    if shown <= 0:
        return and_(Evaluation.course_id == course_id, false())
    last = session.scalar(
        select(Evaluation.id).where(Evaluation.course_id == course_id).order_by(Evaluation.id).offset(shown - 1)
    )
    return and_(Evaluation.course_id == course_id, Evaluation.id <= last)


def summarise(session: Session, course: Course, group: int) -> Summary:
    """Count, ratings and objectives of the released evaluations of the course (grouped in SQL where it can be)."""
    total = count(session, course.id)
    shown = released(total, group)
    mine = _released_filter(session, course.id, shown)
    ratings = []
    for name, label in QUESTIONS.items():
        column = getattr(Evaluation, name)
        counts = dict.fromkeys(RATINGS, 0)
        for rating, n in session.execute(select(column, func.count()).where(mine).group_by(column)):
            counts[int(rating)] = int(n)
        points = sum(r * n for r, n in counts.items())
        ratings.append(Rating(name, label, counts, points / shown if shown else None))
    answers: dict[str, Counter[str]] = {o["id"]: Counter() for o in course.objectives}
    for met in session.scalars(select(Evaluation.objectives_met).where(mine)):
        for objective_id, answer in met.items():
            answers.setdefault(objective_id, Counter())[answer] += 1
    texts = {o["id"]: o["text"] for o in course.objectives}
    objectives = [(texts.get(i, i), {a: c[a] for a in OBJECTIVE_ANSWERS}) for i, c in answers.items()]
    biased = select(Evaluation.bias_comment).where(mine, Evaluation.free_of_bias.is_(False))
    bias = list(session.scalars(biased.order_by(Evaluation.bias_comment)))
    commented = select(Evaluation.comments).where(mine, Evaluation.comments != "").order_by(Evaluation.comments)
    comments = list(session.scalars(commented))
    grouped = select(Evaluation.practice_change, func.count()).where(mine).group_by(Evaluation.practice_change)
    answered = {value: int(n) for value, n in session.execute(grouped)}
    change = {label: int(answered.get(value, 0)) for value, label in PRACTICE_CHANGE_ANSWERS.items()}
    planned = select(Evaluation.change_plan).where(mine, Evaluation.change_plan != "").order_by(Evaluation.change_plan)
    summary = Summary(total, shown, ratings, objectives, len(bias), [b for b in bias if b], comments)
    summary.practice_change, summary.change_plans = change, list(session.scalars(planned))
    _evidence(session, mine, summary)
    return summary


def _evidence(session: Session, mine: ColumnElement[bool], summary: Summary) -> None:
    """The balance and evidence answers, their comments, and the hours spent of the released evaluations."""
    grouped = select(Evaluation.evidence_balanced, func.count()).where(mine).group_by(Evaluation.evidence_balanced)
    answered = {value: int(n) for value, n in session.execute(grouped)}
    summary.evidence = {label: answered.get(value, 0) for value, label in EVIDENCE_ANSWERS.items()}
    # As bias comments: those given with the answer that asks for one, sorted by what they say.
    unbalanced = Evaluation.evidence_balanced.in_(("partly", "no"))
    said = select(Evaluation.evidence_comment).where(mine, unbalanced, Evaluation.evidence_comment != "")
    summary.evidence_comments = list(session.scalars(said.order_by(Evaluation.evidence_comment)))
    hours = [h for h in session.scalars(select(Evaluation.hours_spent).where(mine)) if h is not None]
    summary.hours_answered = len(hours)
    summary.hours_median = statistics.median(hours) if hours else None


def csv_lines(session: Session, course_id: int, ids: list[str], group: int, batch: int = 500) -> Iterator[str]:
    """The released evaluations of the course as CSV, one column per objective id (no names: evaluations are read
    as a group), in batches, sorted by what they say. Takes ids, not the course: the lines are produced after the
    request's commit point."""
    total = count(session, course_id)
    mine = _released_filter(session, course_id, released(total, group))
    columns = (
        Evaluation.relevance, Evaluation.quality, Evaluation.overall, Evaluation.free_of_bias,
        Evaluation.bias_comment, Evaluation.evidence_balanced, Evaluation.evidence_comment,
        Evaluation.practice_change, Evaluation.change_plan, Evaluation.comments,
    )  # fmt: skip
    rows = session.execute(
        select(*columns, Evaluation.objectives_met).where(mine).order_by(*columns).execution_options(yield_per=batch)
    )
    return csvout.lines(
        [*CSV_COLUMNS, *(f"objective:{i}" for i in ids)],
        (
            [relevance, quality, overall, "yes" if free else "no", bias, balanced, unbalanced, change, plan, comments]
            + [met.get(i, "") for i in ids]
            for relevance, quality, overall, free, bias, balanced, unbalanced, change, plan, comments, met in rows
        ),
    )
