"""A timed attempt's clock as the learner may change it: "I need more time", where the quiz's rules allow it.

Each request adds EXTENSION_MINUTES to the open attempt's deadline, at most MAX_EXTENSIONS times (WCAG 2.2.1's
"Extend" option asks for at least ten); each one is written to the audit log, which is also where they are
counted. Quizzes that do not allow it keep their limit; an administrator can still grant extra time as an
accommodation. See docs/accessibility.md."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.db import utcnow
from kaptrain.quizzes.models import Attempt, AttemptStatus
from kaptrain.quizzes.services import GRACE, QuizError

EXTENSION_MINUTES = 10
MAX_EXTENSIONS = 10
ACTION = "attempt.extend"


def extensions_used(session: Session, attempt: Attempt) -> int:
    """How many times the learner has asked for more time on this attempt."""
    count = session.scalar(
        select(func.count())
        .select_from(audit.AuditEntry)
        .where(
            audit.AuditEntry.action == ACTION,
            audit.AuditEntry.subject_type == "attempt",
            audit.AuditEntry.subject_id == attempt.id,
        )
    )
    return int(count or 0)


def extensions_left(session: Session, attempt: Attempt, now: dt.datetime | None = None) -> int:
    """How many more times the learner may ask for more time now (0: not timed, not allowed, over or used up)."""
    now = now or utcnow()
    if attempt.status != AttemptStatus.OPEN or attempt.deadline_at is None or not attempt.settings.allow_extension:
        return 0
    if now > attempt.deadline_at + GRACE:
        return 0
    return max(0, MAX_EXTENSIONS - extensions_used(session, attempt))


def extend_attempt(session: Session, attempt: Attempt, now: dt.datetime | None = None) -> dt.datetime:
    """Add EXTENSION_MINUTES to the learner's open, timed attempt when its rules allow; returns the new deadline.

    The attempt row is locked first, so an extension and a submission (or a second extension) never interleave."""
    now = now or utcnow()
    row = session.execute(
        select(Attempt.status, Attempt.deadline_at).where(Attempt.id == attempt.id).with_for_update()
    ).one()
    if row.status != AttemptStatus.OPEN:
        raise QuizError("This attempt has been submitted, so there is no time to add.", 409)
    if row.deadline_at is None:
        raise QuizError("This quiz has no time limit: take the time you need.", 409)
    if not attempt.settings.allow_extension:
        raise QuizError(
            "This quiz does not let learners add time themselves. If you need more time because of a disability "
            "or another reason, ask the course administrator for an accommodation.",
            403,
        )
    if now > row.deadline_at + GRACE:
        raise QuizError("The time limit has already run out, so no time can be added.", 409)
    used = extensions_used(session, attempt)
    if used >= MAX_EXTENSIONS:
        raise QuizError(
            f"You have already added time {MAX_EXTENSIONS} times ({MAX_EXTENSIONS * EXTENSION_MINUTES} minutes), "
            "the most this quiz allows.",
            409,
        )
    attempt.deadline_at = row.deadline_at + dt.timedelta(minutes=EXTENSION_MINUTES)
    audit.record(
        session,
        ACTION,
        "attempt",
        attempt.id,
        actor_id=attempt.user_id,
        minutes=EXTENSION_MINUTES,
        number=used + 1,
        deadline=attempt.deadline_at.isoformat(),
    )
    session.flush()
    return attempt.deadline_at
