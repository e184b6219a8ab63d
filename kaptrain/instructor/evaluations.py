"""The summary of a course's evaluations: ratings, objectives met, commercial bias, comments; and its CSV."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain import csvout
from kaptrain.certificates.models import Evaluation
from kaptrain.certificates.services import OBJECTIVE_ANSWERS, RATINGS
from kaptrain.content.models import Course

QUESTIONS = {
    "relevance": "Relevance to my practice",
    "quality": "Quality of the material",
    "overall": "Overall rating",
}
CSV_COLUMNS = ("submitted_on", "relevance", "quality", "overall", "free_of_bias", "bias_comment", "comments")
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
    """Everything the evaluation page shows."""

    count: int
    ratings: list[Rating]
    objectives: list[tuple[str, dict[str, int]]]  # (objective text, {answer: count})
    bias_reported: int
    bias_comments: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def count(session: Session, course: Course) -> int:
    """How many learners have evaluated the course."""
    return int(session.scalar(select(func.count()).where(Evaluation.course_id == course.id)) or 0)


def summarise(session: Session, course: Course) -> Summary:
    """Count, ratings and objectives of every evaluation of the course (grouped in SQL where it can be)."""
    mine = Evaluation.course_id == course.id
    total = count(session, course)
    ratings = []
    for name, label in QUESTIONS.items():
        column = getattr(Evaluation, name)
        counts = dict.fromkeys(RATINGS, 0)
        for rating, n in session.execute(select(column, func.count()).where(mine).group_by(column)):
            counts[int(rating)] = int(n)
        points = sum(r * n for r, n in counts.items())
        ratings.append(Rating(name, label, counts, points / total if total else None))
    answers: dict[str, Counter[str]] = {o["id"]: Counter() for o in course.objectives}
    for met in session.scalars(select(Evaluation.objectives_met).where(mine)):
        for objective_id, answer in met.items():
            answers.setdefault(objective_id, Counter())[answer] += 1
    texts = {o["id"]: o["text"] for o in course.objectives}
    objectives = [(texts.get(i, i), {a: c[a] for a in OBJECTIVE_ANSWERS}) for i, c in answers.items()]
    in_order = Evaluation.id
    biased = select(Evaluation.bias_comment).where(mine, Evaluation.free_of_bias.is_(False)).order_by(in_order)
    bias = list(session.scalars(biased))
    commented = select(Evaluation.comments).where(mine, Evaluation.comments != "").order_by(in_order)
    comments = list(session.scalars(commented))
    return Summary(total, ratings, objectives, len(bias), [b for b in bias if b], comments)


def csv_lines(session: Session, course_id: int, ids: list[str], batch: int = 500) -> Iterator[str]:
    """Every evaluation of the course as CSV, one column per objective id (no names: evaluations are read as a
    group), in batches. Takes ids, not the course: the lines are produced after the request's commit point."""
    rows = session.execute(
        select(
            Evaluation.submitted_at, Evaluation.relevance, Evaluation.quality, Evaluation.overall,
            Evaluation.free_of_bias, Evaluation.bias_comment, Evaluation.comments, Evaluation.objectives_met,
        ).where(Evaluation.course_id == course_id).order_by(Evaluation.id).execution_options(yield_per=batch)
    )  # fmt: skip
    return csvout.lines(
        [*CSV_COLUMNS, *(f"objective:{i}" for i in ids)],
        (
            [at.date().isoformat(), relevance, quality, overall, "yes" if free else "no", bias, comments]
            + [met.get(i, "") for i in ids]
            for at, relevance, quality, overall, free, bias, comments, met in rows
        ),
    )
