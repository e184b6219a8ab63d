"""Quiz submission in plain statements, for kaptrain.pagecache's fast path: the same checks and grading as
`services.submit_attempt` (shared: `check_answers`, `unanswered_in`, `score_answers`, `activity.credit_span`),
without the ORM. Anything out of the ordinary (not the learner's attempt, already graded, past its time, a blank
or a foreign answer) is left to the normal way, which says why.

One statement reads the attempt, its drawn questions and the learner's clock, outside any transaction; the
answers are graded and the time worked out; then one short write transaction claims the attempt with its result
and time, writes every answer in one statement, and moves the learner's clock only if it still holds what was read
(compare and set). A write lock held for few statements is what lets submissions follow each other quickly on
SQLite, which has one writer at a time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kaptrain import activity, pagecache
from kaptrain.quizzes import services
from kaptrain.quizzes.models import AttemptStatus, QuestionType

_READ_SQL = (
    "SELECT a.status, a.deadline_at, a.started_at, a.passing_score, s.partial_credit, c.last_credit_at, "  # noqa: S608 - a constant
    "i.id, i.position, i.option_order, r.type, r.options, i.selected FROM attempts a "
    f"JOIN quiz_settings_revisions s ON s.id = a.settings_id JOIN users u ON {pagecache.SESSION_SQL} "
    "JOIN attempt_items i ON i.attempt_id = a.id JOIN question_revisions r ON r.id = i.question_revision_id "
    "LEFT JOIN activity_clocks c ON c.user_id = a.user_id "
    "WHERE a.id = :id AND a.user_id = :user ORDER BY i.position"
)
# The claim: open to submitted with the result and the time in one statement, so a double submission grades once.
# It also holds only while the deadline is still the one read (the time credited is capped by it).
_CLAIM_SQL = (
    "UPDATE attempts SET status = :submitted, submitted_at = :now, score = :score, passed = :passed, "
    "late = :late, active_seconds = :seconds WHERE id = :id AND status = :open "
    "AND (deadline_at = :deadline OR (deadline_at IS NULL AND :untimed)) RETURNING id"
)


@dataclass(frozen=True)
class PlainItem:
    """A drawn question as `services.Answerable`, read with plain statements."""

    id: int
    position: int
    option_order: list[Any]
    question_type: QuestionType
    question_options: list[dict[str, Any]]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # SQLite gives the text, psycopg the value


def answers_sql(count: int, *, sqlite: bool) -> str:
    """One UPDATE writing `count` answers (:i<n> the item, :s<n> its selection as JSON text, :c<n> its credit)."""
    selected = "{}" if sqlite else "CAST({} AS JSON)"  # psycopg sends text, which PostgreSQL will not put in json
    rows = ", ".join(f"(:i{n}, {selected.format(f':s{n}')}, :c{n})" for n in range(count))
    return (
        f"WITH v (id, selected, credit) AS (VALUES {rows}) "  # noqa: S608 - placeholders only
        "UPDATE attempt_items SET selected = v.selected, credit = v.credit FROM v "
        "WHERE attempt_items.id = v.id AND attempt_items.attempt_id = :attempt"
    )


def write_answers(
    run: pagecache.Run,
    attempt_id: int,
    items: Sequence[PlainItem],
    answers: dict[int, frozenset[str]],
    credits: dict[int, float],
) -> None:
    """Every answer of the attempt and its credit, in one statement."""
    params: dict[str, Any] = {"attempt": attempt_id}
    for n, item in enumerate(items):
        params[f"i{n}"] = item.id
        params[f"s{n}"] = json.dumps(sorted(answers.get(item.id, frozenset())))
        params[f"c{n}"] = float(credits[item.id])
    run(answers_sql(len(items), sqlite=pagecache.on_sqlite()), params)


def submit(
    learner: pagecache.Learner, attempt_id: int, form: dict[str, list[str]], now: dt.datetime, shown: str | None = None
) -> bool:
    """Grade the learner's open attempt from the form; False (nothing written) for anything the normal way must
    handle (the session no longer good among them, a page showing other answers than those saved: `shown`)."""
    user_id = learner.user_id
    with pagecache.statements() as run:
        rows = run(_READ_SQL, {**learner.params(), "id": attempt_id})
    if not rows or rows[0][0] != AttemptStatus.OPEN:
        return False
    _, deadline, started, passing_score, partial_credit, seen = rows[0][:6]
    deadline_at, started_at = pagecache.read_datetime(deadline), pagecache.read_datetime(started)
    assert started_at is not None
    if deadline_at is not None and now > deadline_at + services.GRACE:
        return False
    items = [
        PlainItem(item_id, position, _json(order), QuestionType(kind), _json(options))
        for *_, item_id, position, order, kind, options, _selected in rows
    ]
    if shown is not None:
        saved = {row[6]: frozenset(_json(row[-1])) for row in rows if row[-1] and _json(row[-1])}
        if services.answers_fingerprint(items, saved) != shown:
            return False  # another tab saved since this page loaded: the normal way says so
    try:
        answers = services.check_answers(items, form)
    except services.QuizError:
        return False
    if services.unanswered_in(items, answers):
        return False
    credits, score = services.score_answers(items, answers, bool(partial_credit))
    cap = int((deadline_at - started_at).total_seconds()) if deadline_at else services.untimed_cap(len(items))
    clock = pagecache.read_datetime(seen)
    credited = activity.credit_span(started_at, now, clock or started_at, cap)
    claim = {
        "submitted": AttemptStatus.SUBMITTED.value,
        "open": AttemptStatus.OPEN.value,
        "now": now,
        "score": score,
        "passed": score >= passing_score,
        "late": False,
        "seconds": credited.seconds,
        "id": attempt_id,
        "deadline": deadline,  # compared as it was read, not converted and back
        "untimed": deadline is None,
    }
    with pagecache.statements(write=True) as run:
        if not run(_CLAIM_SQL, claim):
            return False  # graded by a request a moment ago, or given more time: the normal way answers
        write_answers(run, attempt_id, items, answers, credits)
        if credited.seconds and not (clock is not None and activity.move_clock(run, user_id, seen, credited.until)):
            # No clock yet, or another page or quiz moved it since it was read: credited the locked way instead.
            again = activity.credit_with(run, pagecache.read_datetime, user_id, started_at, now, cap)
            if again.seconds != credited.seconds:
                run(
                    "UPDATE attempts SET active_seconds = :seconds WHERE id = :id",
                    {"seconds": again.seconds, "id": attempt_id},
                )
    return True
