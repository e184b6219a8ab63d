"""The item analysis worked out by the database equals the one computed attempt by attempt in memory.

`in_memory` is the analysis as it was computed before it moved into SQL (every graded attempt loaded with its
items); on varied data (partial credit, unanswered items, revised questions, open attempts, a question never
published, another quiz's attempts) the SQL version gives the same figures."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.content import revisions
from kaptrain.quizzes import analysis
from kaptrain.quizzes.models import Attempt, AttemptItem, AttemptStatus, Question, QuestionRevision, Quiz
from tests.factories import quiz

AT = dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC)


def in_memory(db: Session, q: Quiz) -> analysis.QuizStats:
    """The analysis as computed before: each graded attempt with its items, running sums in Python."""
    bins: Counter[int] = Counter()
    count = passed = 0
    pairs: dict[int, list[tuple[float, float]]] = defaultdict(list)
    choices: dict[int, Counter[str]] = defaultdict(Counter)
    answered: Counter[int] = Counter()
    graded = select(Attempt).where(Attempt.quiz_id == q.id, Attempt.status == AttemptStatus.SUBMITTED)
    for a in db.scalars(graded):
        count, passed = count + 1, passed + bool(a.passed)
        bins[min(int((a.score or 0) // 10), 9)] += 1
        n = len(a.items)
        total = sum(i.credit or 0 for i in a.items)
        for item in a.items:
            credit = 1.0 if (item.credit or 0) >= 1.0 else 0.0
            rest = (total - (item.credit or 0)) / (n - 1) if n > 1 else 0.0
            pairs[item.revision.question_id].append((credit, rest))
            choices[item.question_revision_id].update(item.selected or [])
            answered[item.question_revision_id] += 1
    histogram = [(f"{b * 10}–{b * 10 + 9 if b < 9 else 100}%", bins.get(b, 0)) for b in range(10)]
    items = []
    for question in db.scalars(select(Question).where(Question.quiz_id == q.id).order_by(Question.position)):
        revs = list(db.scalars(select(QuestionRevision).where(QuestionRevision.question_id == question.id)))
        current = next((r for r in revs if r.id == question.published_revision_id), None)
        if current is None:
            continue
        data = pairs.get(question.id, [])
        stats = analysis.ItemStats(key=question.key, stem=current.stem, revisions=len(revs), drawn=len(data))
        if data:
            stats.facility = sum(i for i, _r in data) / len(data)
            stats.discrimination = analysis.point_biserial([i for i, _r in data], [r for _i, r in data])
        stats.option_counts = [
            (o["id"], o["text"], bool(o["correct"]), choices[current.id].get(o["id"], 0)) for o in current.options
        ]
        stats.current_drawn = answered[current.id]
        stats.flags = analysis._flags(stats, 20)  # noqa: SLF001 - the same flag rule on both sides
        items.append(stats)
    return analysis.QuizStats(count, passed, histogram, items)


def revise(db: Session, question: Question, stem: str) -> QuestionRevision:
    """Publish a new revision of a question (same options, new wording), as an instructor's edit would."""
    current = revisions.published(db, question)
    assert isinstance(current, QuestionRevision)
    data = {**revisions.revision_data(revisions.QUESTION, current), "stem": stem}
    revision = revisions.add_revision(db, question, revisions.revision_values(revisions.QUESTION, data), None)
    assert isinstance(revision, QuestionRevision)
    revisions.publish(question, revision)
    db.flush()
    return revision


def learner(db: Session, n: int) -> User:
    """A learner row (no password hashing: these learners never log in)."""
    user = User(email=f"analysis{n}@example.org", full_name=f"L {n}", profession="Nurse", password_hash="x",
                role=Role.LEARNER, created_at=AT)  # fmt: skip
    db.add(user)
    db.flush()
    return user


def attempts(db: Session, q: Quiz, rng: random.Random, learners: int, status: AttemptStatus) -> None:
    """Attempts drawing 1 to 4 questions from the published revisions, with full, partial, no and missing credit."""
    bank = [r for _q, r in revisions.published_questions(db, q.id)]
    for _n in range(learners):
        user = learner(db, rng.randrange(10**9))
        drawn = rng.sample(bank, rng.randint(1, min(4, len(bank))))
        credits = [rng.choice([1.0, 1.0, 0.0, 0.5, None]) for _ in drawn]
        total = sum(c or 0 for c in credits)
        score = round(100 * total / len(drawn), 2)
        submitted = status == AttemptStatus.SUBMITTED
        attempt = Attempt(
            user_id=user.id, quiz_id=q.id, number=1, status=status, started_at=AT,
            submitted_at=AT if submitted else None, score=score if submitted else None,
            passed=score >= 80 if submitted else None, passing_score=80, settings_id=q.published_revision_id,
        )  # fmt: skip
        db.add(attempt)
        db.flush()
        for position, (revision, credit) in enumerate(zip(drawn, credits, strict=True)):
            ids = [o["id"] for o in revision.options]
            selected = rng.choice([None, [], [rng.choice(ids)], sorted(rng.sample(ids, min(2, len(ids))))])
            db.add(AttemptItem(attempt_id=attempt.id, position=position, question_revision_id=revision.id,
                               option_order=ids, selected=selected if submitted else None, credit=credit))  # fmt: skip
    db.flush()


def assert_same(got: analysis.QuizStats, expected: analysis.QuizStats) -> None:
    """Every figure the page and the CSV show."""
    assert (got.attempts, got.passed, got.histogram) == (expected.attempts, expected.passed, expected.histogram)
    assert [s.key for s in got.items] == [s.key for s in expected.items]
    for g, e in zip(got.items, expected.items, strict=True):
        assert (g.stem, g.revisions, g.drawn, g.current_drawn, g.option_counts, g.flags) == (
            e.stem, e.revisions, e.drawn, e.current_drawn, e.option_counts, e.flags
        ), g.key  # fmt: skip
        for mine, theirs in ((g.facility, e.facility), (g.discrimination, e.discrimination)):
            assert (mine is None) == (theirs is None), g.key
            assert mine is None or mine == pytest.approx(theirs, abs=1e-9), g.key
    assert analysis.stats_csv(got) == analysis.stats_csv(expected)


@pytest.mark.parametrize("seed", [11, 12])
def test_the_sql_analysis_equals_the_attempt_by_attempt_one(db, seed):
    rng = random.Random(seed)
    alpha = quiz(db, "alpha-quiz")
    attempts(db, alpha, rng, 25, AttemptStatus.SUBMITTED)
    first = db.scalar(select(Question).where(Question.quiz_id == alpha.id, Question.key == "alpha-q1"))
    assert first is not None
    revise(db, first, "alpha question 1, reworded?")  # earlier answers still count; option counts are the new one's
    attempts(db, alpha, rng, 25, AttemptStatus.SUBMITTED)
    attempts(db, alpha, rng, 5, AttemptStatus.OPEN)  # not graded: not counted
    attempts(db, quiz(db, "beta-quiz"), rng, 10, AttemptStatus.SUBMITTED)  # another quiz
    db.add(Question(quiz_id=alpha.id, key="alpha-draft", position=99))  # never published: never asked, not shown
    db.flush()
    expected = in_memory(db, alpha)
    assert expected.attempts == 50 and any(s.revisions == 2 for s in expected.items)
    revised = next(s for s in expected.items if s.revisions == 2)
    assert 0 < revised.current_drawn < revised.drawn  # the option counts cover the answers since the revision
    assert_same(analysis.quiz_stats(db, alpha), expected)


def test_a_quiz_without_attempts(db):
    beta = quiz(db, "beta-quiz")
    stats = analysis.quiz_stats(db, beta)
    assert stats.attempts == 0 and stats.pass_rate is None and all(s.drawn == 0 for s in stats.items)
    assert_same(stats, in_memory(db, beta))


def test_the_analysis_costs_the_same_statements_for_any_number_of_attempts(db, app):
    rng = random.Random(3)
    alpha = quiz(db, "alpha-quiz")
    engine = app.extensions["kaptrain.db"].engine

    def statements() -> int:
        seen: list[str] = []

        def count(*_args: object) -> None:
            seen.append("x")

        event.listen(engine, "before_cursor_execute", count)
        try:
            analysis.quiz_stats(db, alpha)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    attempts(db, alpha, rng, 2, AttemptStatus.SUBMITTED)
    few = statements()
    attempts(db, alpha, rng, 40, AttemptStatus.SUBMITTED)
    assert statements() == few == 4
