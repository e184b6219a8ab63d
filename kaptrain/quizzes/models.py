"""Quiz models: banks, versioned questions, attempts and per-learner accommodations."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaptrain.content.models import Course, Module
from kaptrain.db import Base, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class QuizKind(enum.StrEnum):
    """A module quiz completes its module; the final assessment completes the course."""

    MODULE = "module"
    FINAL = "final"


class Reveal(enum.StrEnum):
    """When the correct answers are shown in a learner's review."""

    AFTER_PASS = "after_pass"  # noqa: S105 - not a password
    ALWAYS = "always"
    NEVER = "never"


class QuestionType(enum.StrEnum):
    """The question types the grader registry knows."""

    SINGLE = "single"
    MULTIPLE = "multiple"
    TRUE_FALSE = "true_false"


class AttemptStatus(enum.StrEnum):
    """An attempt is open until it is submitted (or graded at its deadline)."""

    OPEN = "open"
    SUBMITTED = "submitted"


class Quiz(Base):
    """A question bank and the rules for attempts drawn from it. Slugs are unique within a course."""

    __tablename__ = "quizzes"
    __table_args__ = (UniqueConstraint("course_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    # A module has at most one current quiz (checked on import); retired quizzes keep their module.
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    slug: Mapped[str] = mapped_column(String(100))
    previous_slugs: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # Retired quizzes were removed from the files: no longer taken, no longer gating, attempts kept.
    is_retired: Mapped[bool] = mapped_column(default=False, server_default=false())
    kind: Mapped[QuizKind] = mapped_column(_enum(QuizKind))
    title: Mapped[str] = mapped_column(String(300))
    draw: Mapped[int] = mapped_column(default=10)
    passing_score: Mapped[int] = mapped_column(default=80)
    max_attempts: Mapped[int] = mapped_column(default=3)
    cooldown_hours: Mapped[int] = mapped_column(default=24)
    time_limit_minutes: Mapped[int | None]
    reveal_answers: Mapped[Reveal] = mapped_column(_enum(Reveal), default=Reveal.AFTER_PASS)
    partial_credit: Mapped[bool] = mapped_column(default=False)

    course: Mapped[Course] = relationship(lazy="joined")
    module: Mapped[Module | None] = relationship(lazy="joined")


class Question(Base):
    """A question's identity in its bank (its key); its wording lives in revisions."""

    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("quiz_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)
    # Retired questions are no longer drawn; attempts that asked them still show them.
    is_retired: Mapped[bool] = mapped_column(default=False)


class QuestionRevision(Base):
    """One immutable version of a question: what a learner was actually asked."""

    __tablename__ = "question_revisions"
    __table_args__ = (UniqueConstraint("question_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int]
    type: Mapped[QuestionType] = mapped_column(_enum(QuestionType))
    section: Mapped[str] = mapped_column(String(300))
    module_slug: Mapped[str | None] = mapped_column(String(100))
    vignette_key: Mapped[str | None] = mapped_column(String(100))
    vignette_title: Mapped[str | None] = mapped_column(String(300))
    vignette_text: Mapped[str | None] = mapped_column(Text)
    stem: Mapped[str] = mapped_column(Text)
    # [{"id": "a", "text": "...", "correct": bool}, ...] in file order; never sent to a page as is.
    options: Mapped[list[Any]]
    explanation: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    question: Mapped[Question] = relationship(lazy="joined")


class Attempt(Base):
    """One learner's attempt at a quiz: the drawn questions, the answers and the grade."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("user_id", "quiz_id", "number"),
        # At most one open attempt per learner and quiz, enforced by the database.
        Index(
            "uq_attempts_one_open",
            "user_id",
            "quiz_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int]
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus), default=AttemptStatus.OPEN)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[dt.datetime | None]
    submitted_at: Mapped[dt.datetime | None]
    late: Mapped[bool] = mapped_column(default=False)
    score: Mapped[float | None]
    passed: Mapped[bool | None]
    passing_score: Mapped[int]
    # Active time credited for this attempt (start to submit, capped; overlapping page time not counted twice).
    active_seconds: Mapped[int] = mapped_column(default=0, server_default="0")

    quiz: Mapped[Quiz] = relationship(lazy="joined")
    items: Mapped[list[AttemptItem]] = relationship(
        back_populates="attempt", order_by="AttemptItem.position", lazy="selectin"
    )


class AttemptItem(Base):
    """One drawn question in an attempt: its revision, shown option order and the answer given."""

    __tablename__ = "attempt_items"
    __table_args__ = (UniqueConstraint("attempt_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int]
    question_revision_id: Mapped[int] = mapped_column(
        ForeignKey("question_revisions.id", ondelete="RESTRICT"), index=True
    )
    option_order: Mapped[list[Any]]
    selected: Mapped[list[Any] | None]
    credit: Mapped[float | None]

    attempt: Mapped[Attempt] = relationship(back_populates="items")
    revision: Mapped[QuestionRevision] = relationship(lazy="joined")


class Accommodation(Base):
    """Extra time or attempts an administrator granted one learner on one quiz (the current grant).

    Edits change this row and withdrawal stamps withdrawn_at; every change is kept in AccommodationChange."""

    __tablename__ = "accommodations"
    __table_args__ = (UniqueConstraint("user_id", "quiz_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), index=True)
    extra_minutes: Mapped[int] = mapped_column(default=0)
    extra_attempts: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(Text, default="")  # the reason, required since 0006
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A withdrawn grant no longer applies; granting again reinstates the row.
    withdrawn_at: Mapped[dt.datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    changes: Mapped[list[AccommodationChange]] = relationship(
        back_populates="accommodation", order_by="AccommodationChange.id", lazy="selectin"
    )

    @property
    def is_withdrawn(self) -> bool:
        """Whether the grant was withdrawn (and so no longer applies)."""
        return self.withdrawn_at is not None


class AccommodationAction(enum.StrEnum):
    """What one change did to a grant."""

    GRANTED = "granted"
    EDITED = "edited"
    WITHDRAWN = "withdrawn"


class AccommodationChange(Base):
    """One change to an accommodation: who, when, what it was before and after, and why. Never edited."""

    __tablename__ = "accommodation_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    accommodation_id: Mapped[int] = mapped_column(ForeignKey("accommodations.id", ondelete="RESTRICT"), index=True)
    action: Mapped[AccommodationAction] = mapped_column(_enum(AccommodationAction))
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # {"extra_minutes": int, "extra_attempts": int, "note": str}; before is None for a first grant.
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text, default="")

    accommodation: Mapped[Accommodation] = relationship(back_populates="changes")
