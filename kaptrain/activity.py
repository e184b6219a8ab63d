"""Active time: one clock per learner, so time is credited once however many pages or quizzes are open.

The CE hours a learner may claim rest on this figure. Every credit runs from the later of the learner's
last credit and the start of the activity being credited, and is capped, so parallel tabs, replayed
heartbeats and quizzes left open cannot inflate it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, Session, mapped_column

from kaptrain.db import Base, dialect_insert, utcnow


class ActivityClock(Base):
    """When a learner's active time was last credited, across every module, quiz and tab."""

    __tablename__ = "activity_clocks"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    last_credit_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def _locked_clock(session: Session, user_id: int, start: dt.datetime) -> ActivityClock:
    # The row lock (PostgreSQL) or the write transaction (SQLite) serialises a learner's credits, so two
    # heartbeats arriving together cannot both read the same last_credit_at. One statement creates the clock or
    # locks the one there (ON CONFLICT DO UPDATE takes the row lock, as SELECT ... FOR UPDATE would) and reads it.
    statement = dialect_insert(session)(ActivityClock).values(user_id=user_id, last_credit_at=start)
    statement = statement.on_conflict_do_update(
        index_elements=[ActivityClock.user_id], set_={"last_credit_at": ActivityClock.last_credit_at}
    ).returning(ActivityClock)
    clock: ActivityClock = session.scalars(statement, execution_options={"populate_existing": True}).one()
    return clock


class Credit(NamedTuple):
    """Seconds credited, and the instant the learner's time is now credited up to."""

    seconds: int
    until: dt.datetime


def credit(session: Session, user_id: int, start: dt.datetime, end: dt.datetime, cap_seconds: int) -> Credit:
    """Credit the active time between start and end not already credited, at most cap_seconds.

    Seconds is 0 when the span was already counted by another page or quiz."""
    clock = _locked_clock(session, user_id, start)
    credited = credit_span(start, end, clock.last_credit_at, cap_seconds)
    if credited.seconds:
        clock.last_credit_at = credited.until
        session.flush()
    return credited


CLOCK_SQL = (
    "INSERT INTO activity_clocks (user_id, last_credit_at) VALUES (:user, :start) "
    "ON CONFLICT (user_id) DO UPDATE SET last_credit_at = activity_clocks.last_credit_at RETURNING last_credit_at"
)


# Compare and set: moves the clock only if it still holds what was read (:seen), so no read needs the row lock.
MOVE_CLOCK_SQL = "UPDATE activity_clocks SET last_credit_at = :until WHERE user_id = :user AND last_credit_at = :seen"


def move_clock(
    run: Callable[[str, dict[str, Any]], list[tuple[Any, ...]]], user_id: int, seen: Any, until: dt.datetime
) -> bool:
    """Move the learner's clock to `until` if it still holds `seen` (the value as read, not converted and back);
    False if it moved meanwhile (or there is none)."""
    return bool(run(f"{MOVE_CLOCK_SQL} RETURNING user_id", {"user": user_id, "seen": seen, "until": until}))


def credit_with(
    run: Callable[[str, dict[str, Any]], list[tuple[Any, ...]]],
    read_datetime: Callable[[Any], dt.datetime | None],
    user_id: int,
    start: dt.datetime,
    end: dt.datetime,
    cap_seconds: int,
) -> Credit:
    """`credit` through plain statements (kaptrain.pagecache.statements, in a write transaction): the same rule,
    the same row lock."""
    ((last,),) = run(CLOCK_SQL, {"user": user_id, "start": start})
    credited = credit_span(start, end, read_datetime(last) or start, cap_seconds)
    if credited.seconds:
        run(
            "UPDATE activity_clocks SET last_credit_at = :until WHERE user_id = :user",
            {"until": credited.until, "user": user_id},
        )
    return credited


def credit_span(start: dt.datetime, end: dt.datetime, last_credit_at: dt.datetime, cap_seconds: int) -> Credit:
    """The rule of `credit`, given the learner's clock: the seconds to credit and where the clock moves to."""
    begin = max(start, last_credit_at)
    gap = (end - begin).total_seconds()
    if gap <= 0:
        return Credit(0, begin)
    if gap > cap_seconds:
        return Credit(cap_seconds, end)  # time beyond the cap (idle, away) is forfeited, not carried over
    # Whole seconds are credited; the fraction stays on the clock for the next credit.
    seconds = int(gap)
    return Credit(seconds, begin + dt.timedelta(seconds=seconds))
