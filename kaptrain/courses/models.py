"""A learner's path through a course: enrolment, disclosure acknowledgement, module progress, active time.

These are CE records: foreign keys to people and content RESTRICT deletion (retire instead of delete)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaptrain.content.models import Course, Module
from kaptrain.db import Base, utcnow


class Enrolment(Base):
    """A learner enrolled in a course."""

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("user_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The learner read and acknowledged the course disclosures before module 1 (a CE requirement).
    disclosures_acknowledged_at: Mapped[dt.datetime | None]
    # An administrator returned the learner's hours claim instead of approving it (certificates.services.
    # return_claim): when, and the note the learner is shown until they attest again.
    claim_returned_at: Mapped[dt.datetime | None]
    claim_returned_note: Mapped[str] = mapped_column(Text, default="", server_default="")

    course: Mapped[Course] = relationship(lazy="joined")


class ModuleProgress(Base):
    """What one learner has done in one module: opened, read, seat time (completion is derived, not stored)."""

    __tablename__ = "module_progress"
    __table_args__ = (
        UniqueConstraint("user_id", "module_id"),
        CheckConstraint("seat_seconds >= 0", name="seat_seconds"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    first_opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]
    # Active time on the module page, from heartbeats; idle and hidden-tab time is not counted.
    seat_seconds: Mapped[int] = mapped_column(default=0)
    last_heartbeat_at: Mapped[dt.datetime | None]

    module: Mapped[Module] = relationship(lazy="joined")
