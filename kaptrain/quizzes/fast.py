"""Quiz submission in plain statements, for kaptrain.pagecache's fast path: the same checks and grading as
`services.submit_attempt` (shared: `check_answers`, `unanswered_in`, `score_answers`, `activity.credit_with`),
without the ORM. Anything out of the ordinary (not the learner's attempt, already graded, past its time, a blank
or a foreign answer) is left to the normal way, which says why."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from kaptrain import activity, pagecache
from kaptrain.quizzes import services
from kaptrain.quizzes.models import AttemptStatus, QuestionType

_ATTEMPT_SQL = (
    "SELECT a.status, a.deadline_at, a.started_at, a.passing_score, s.partial_credit FROM attempts a "  # noqa: S608 - a constant
    f"JOIN quiz_settings_revisions s ON s.id = a.settings_id JOIN users u ON {pagecache.SESSION_SQL} "
    "WHERE a.id = :id AND a.user_id = :user"
)
_ITEMS_SQL = (
    "SELECT i.id, i.position, i.option_order, r.type, r.options FROM attempt_items i "
    "JOIN question_revisions r ON r.id = i.question_revision_id WHERE i.attempt_id = :id ORDER BY i.position"
)
# The claim: open to submitted with the result in one statement, so a double submission grades once.
_CLAIM_SQL = (
    "UPDATE attempts SET status = :submitted, submitted_at = :now, score = :score, passed = :passed, late = :late "
    "WHERE id = :id AND status = :open RETURNING deadline_at"
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


def submit(learner: pagecache.Learner, attempt_id: int, form: dict[str, list[str]], now: dt.datetime) -> bool:
    """Grade the learner's open attempt from the form; False (nothing written) for anything the normal way must
    handle (the session no longer good among them)."""
    user_id = learner.user_id
    found = pagecache.run_sql(_ATTEMPT_SQL, {**learner.params(), "id": attempt_id})
    if found is None or found[0] != AttemptStatus.OPEN:
        return False
    _, deadline, started, passing_score, partial_credit = found
    deadline_at = pagecache.read_datetime(deadline)
    if deadline_at is not None and now > deadline_at + services.GRACE:
        return False
    with pagecache.statements() as run:
        items = [
            PlainItem(item_id, position, _json(order), QuestionType(kind), _json(options))
            for item_id, position, order, kind, options in run(_ITEMS_SQL, {"id": attempt_id})
        ]
    try:
        answers = services.check_answers(items, form)
    except services.QuizError:
        return False
    if services.unanswered_in(items, answers):
        return False
    credits, score = services.score_answers(items, answers, bool(partial_credit))
    started_at = pagecache.read_datetime(started)
    assert started_at is not None
    with pagecache.statements(write=True) as run:
        claimed = run(
            _CLAIM_SQL,
            {
                "submitted": AttemptStatus.SUBMITTED.value,
                "open": AttemptStatus.OPEN.value,
                "now": now,
                "score": score,
                "passed": score >= passing_score,
                "late": False,
                "id": attempt_id,
            },
        )
        if not claimed:
            return False  # graded by a request a moment ago: the normal way shows its result
        deadline_at = pagecache.read_datetime(claimed[0][0])  # as it stands, should time have been added
        cap = int((deadline_at - started_at).total_seconds()) if deadline_at else services.untimed_cap(len(items))
        credited = activity.credit_with(run, pagecache.read_datetime, user_id, started_at, now, cap)
        run(
            "UPDATE attempts SET active_seconds = :seconds WHERE id = :id",
            {"seconds": credited.seconds, "id": attempt_id},
        )
        run(
            "UPDATE attempt_items SET selected = :selected, credit = :credit WHERE id = :id",
            [
                {
                    "selected": json.dumps(sorted(answers.get(item.id, frozenset()))),
                    "credit": credits[item.id],
                    "id": item.id,
                }
                for item in items
            ],
        )
    return True
