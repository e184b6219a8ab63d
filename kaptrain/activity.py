"""Active time: one clock per learner, so time is credited once however many pages or quizzes are open.

The CE hours a learner may claim rest on this figure. Every credit runs from the later of the learner's
last credit and the start of the activity being credited, and is capped, so parallel tabs, replayed
heartbeats and quizzes left open cannot inflate it."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

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
    begin = max(start, clock.last_credit_at)
    gap = (end - begin).total_seconds()
    if gap <= 0:
        return Credit(0, begin)
    if gap > cap_seconds:
        seconds = cap_seconds
        clock.last_credit_at = end  # time beyond the cap (idle, away) is forfeited, not carried over
    else:
        seconds = int(gap)
        # Whole seconds are credited; the fraction stays on the clock for the next credit.
        clock.last_credit_at = begin + dt.timedelta(seconds=seconds)
    session.flush()
    return Credit(seconds, clock.last_credit_at)
