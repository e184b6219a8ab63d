"""Quiz models: banks, versioned questions, attempts and per-learner accommodations."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaptrain.content.models import Course, Module
from kaptrain.db import Base, one_of, own_revision, utcnow


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
    """A question bank; its rules (draw, pass mark, attempts, time) live in revisions. Slugs are unique per course."""

    __tablename__ = "quizzes"
    __table_args__ = (
        UniqueConstraint("course_id", "slug"),
        one_of("kind", QuizKind),
        own_revision("published_revision_id", "quiz_settings_revisions", "quiz_id"),
        own_revision("file_revision_id", "quiz_settings_revisions", "quiz_id"),
    )

    # Part of the keys to its own revisions, so not autoincrementing by default: say it is.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    # A module has at most one current quiz (checked on import); retired quizzes keep their module.
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    slug: Mapped[str] = mapped_column(String(100))
    previous_slugs: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # Retired quizzes were removed from the files: no longer taken, no longer gating, attempts kept.
    is_retired: Mapped[bool] = mapped_column(default=False, server_default=false())
    kind: Mapped[QuizKind] = mapped_column(_enum(QuizKind))
    # The published revision of the rules every new attempt is taken under (each attempt records the one it used).
    published_revision_id: Mapped[int | None] = mapped_column()
    # The rules revision the bank file last matched (import and export); see Module.file_revision_id.
    file_revision_id: Mapped[int | None] = mapped_column()

    course: Mapped[Course] = relationship(lazy="joined")
    module: Mapped[Module | None] = relationship(lazy="joined")
    settings: Mapped[QuizSettingsRevision] = relationship(foreign_keys=[published_revision_id], lazy="joined")

    # The published settings, read as attributes of the quiz.
    @property
    def title(self) -> str:
        """The quiz's title."""
        return self.settings.title

    @property
    def draw(self) -> int:
        """How many questions an attempt draws from the bank."""
        return self.settings.draw

    @property
    def passing_score(self) -> int:
        """The pass mark, in percent."""
        return self.settings.passing_score

    @property
    def max_attempts(self) -> int:
        """Attempts allowed before a cooldown."""
        return self.settings.max_attempts

    @property
    def cooldown_hours(self) -> int:
        """Hours to wait after using every attempt."""
        return self.settings.cooldown_hours

    @property
    def time_limit_minutes(self) -> int | None:
        """The time limit, or None when untimed."""
        return self.settings.time_limit_minutes

    @property
    def reveal_answers(self) -> Reveal:
        """When the review shows the correct answers."""
        return self.settings.reveal_answers

    @property
    def partial_credit(self) -> bool:
        """Whether multiple-answer questions earn partial credit."""
        return self.settings.partial_credit

    @property
    def allow_extension(self) -> bool:
        """Whether a learner may ask for more time on a timed attempt."""
        return self.settings.allow_extension


class QuizSettingsRevision(Base):
    """One immutable version of a quiz's rules; attempts point at the one they were taken under."""

    __tablename__ = "quiz_settings_revisions"
    __table_args__ = (
        UniqueConstraint("quiz_id", "number"),
        UniqueConstraint("id", "quiz_id"),  # what a quiz's and its attempts' pointers at its own rules refer to
        # The rules the attempt gate and the grader rely on (the content schema asks the same of the files).
        CheckConstraint("number >= 1", name="number"),
        CheckConstraint("draw >= 1", name="draw"),
        CheckConstraint("passing_score BETWEEN 1 AND 100", name="passing_score"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        CheckConstraint("cooldown_hours >= 0", name="cooldown_hours"),
        CheckConstraint("time_limit_minutes IS NULL OR time_limit_minutes >= 1", name="time_limit_minutes"),
        one_of("reveal_answers", Reveal),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    draw: Mapped[int]
    passing_score: Mapped[int]
    max_attempts: Mapped[int]
    cooldown_hours: Mapped[int]
    time_limit_minutes: Mapped[int | None]
    reveal_answers: Mapped[Reveal] = mapped_column(_enum(Reveal))
    partial_credit: Mapped[bool]
    allow_extension: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Question(Base):
    """A question's identity in its bank (its key); its wording lives in revisions."""

    __tablename__ = "questions"
    __table_args__ = (
        UniqueConstraint("quiz_id", "key"),
        own_revision("published_revision_id", "question_revisions", "question_id"),
        own_revision("file_revision_id", "question_revisions", "question_id"),
    )

    # Part of the keys to its own revisions, so not autoincrementing by default: say it is.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)
    # Retired questions are no longer drawn; attempts that asked them still show them.
    is_retired: Mapped[bool] = mapped_column(default=False)
    # What new attempts draw; None until first published (a question added in the browser as a draft).
    published_revision_id: Mapped[int | None] = mapped_column()
    # The revision the bank file last matched (import and export); see Module.file_revision_id.
    file_revision_id: Mapped[int | None] = mapped_column()


class Vignette(Base):
    """A case shared by several questions of a bank; its text lives in revisions."""

    __tablename__ = "vignettes"
    __table_args__ = (
        UniqueConstraint("quiz_id", "key"),
        own_revision("published_revision_id", "vignette_revisions", "vignette_id"),
        own_revision("file_revision_id", "vignette_revisions", "vignette_id"),
    )

    # Part of the keys to its own revisions, so not autoincrementing by default: say it is.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    published_revision_id: Mapped[int | None] = mapped_column()
    file_revision_id: Mapped[int | None] = mapped_column()


class VignetteRevision(Base):
    """One immutable version of a case; an attempt item records the one its learner read."""

    __tablename__ = "vignette_revisions"
    __table_args__ = (
        UniqueConstraint("vignette_id", "number"),
        UniqueConstraint("id", "vignette_id"),  # what a case's pointers at its own revisions refer to
        CheckConstraint("number >= 1", name="number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vignette_id: Mapped[int] = mapped_column(ForeignKey("vignettes.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    vignette: Mapped[Vignette] = relationship(foreign_keys=[vignette_id], lazy="joined")


class QuestionRevision(Base):
    """One immutable version of a question: what a learner was actually asked."""

    __tablename__ = "question_revisions"
    __table_args__ = (
        UniqueConstraint("question_id", "number"),
        UniqueConstraint("id", "question_id"),  # what a question's pointers at its own revisions refer to
        CheckConstraint("number >= 1", name="number"),
        one_of("type", QuestionType),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int]
    type: Mapped[QuestionType] = mapped_column(_enum(QuestionType))
    section: Mapped[str] = mapped_column(String(300))
    # The module a final-assessment question belongs to (module quizzes: their quiz's module).
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    # The shared case the question refers to; which version of it a learner read is on the attempt item.
    vignette_id: Mapped[int | None] = mapped_column(ForeignKey("vignettes.id", ondelete="RESTRICT"), index=True)
    stem: Mapped[str] = mapped_column(Text)
    # [{"id": "a", "text": "...", "correct": bool}, ...] in file order; never sent to a page as is.
    options: Mapped[list[Any]]
    explanation: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    question: Mapped[Question] = relationship(foreign_keys=[question_id], lazy="joined")
    module: Mapped[Module | None] = relationship(lazy="joined")
    vignette: Mapped[Vignette | None] = relationship(lazy="joined")


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
        # A quiz's graded attempts (item analysis), found without reading the attempts themselves.
        Index("ix_attempts_quiz_id_status", "quiz_id", "status"),
        one_of("status", AttemptStatus),
        # Open, or graded in full: grading claims the attempt and writes its score in one UPDATE, so no reader
        # ever sees a submitted attempt without a score, nor an open one with a result.
        CheckConstraint(
            "(status = 'open' AND submitted_at IS NULL AND score IS NULL AND passed IS NULL)"
            " OR (status = 'submitted' AND submitted_at IS NOT NULL AND score IS NOT NULL AND passed IS NOT NULL)",
            name="open_or_graded",
        ),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score"),
        # The pass flag the completion rule reads is the score against the pass mark the attempt was taken under.
        CheckConstraint("passed IS NULL OR passed = (score >= passing_score)", name="passed_by_score"),
        CheckConstraint("passing_score BETWEEN 1 AND 100", name="passing_score"),
        CheckConstraint("number >= 1", name="number"),
        CheckConstraint("active_seconds >= 0", name="active_seconds"),
        # Taken under the rules of its own quiz.
        own_revision("settings_id", "quiz_settings_revisions", "quiz_id", item="quiz_id", use_alter=False),
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
    # The quiz's rules when this attempt began (draw, pass mark, time limit, answer policy).
    settings_id: Mapped[int] = mapped_column(index=True)
    # Active time credited for this attempt (start to submit, capped; overlapping page time not counted twice).
    active_seconds: Mapped[int] = mapped_column(default=0, server_default="0")

    quiz: Mapped[Quiz] = relationship(lazy="joined")
    settings: Mapped[QuizSettingsRevision] = relationship(foreign_keys=[settings_id], lazy="joined")
    items: Mapped[list[AttemptItem]] = relationship(
        back_populates="attempt", order_by="AttemptItem.position", lazy="selectin"
    )


class AttemptItem(Base):
    """One drawn question in an attempt: its revision, shown option order and the answer given."""

    __tablename__ = "attempt_items"
    __table_args__ = (
        UniqueConstraint("attempt_id", "position"),
        # Item analysis reads each graded attempt's revisions and credits from this index alone (a covering
        # index): a million answers are summed without visiting the rows, which also hold the JSON answers.
        Index("ix_attempt_items_attempt_id_revision_credit", "attempt_id", "question_revision_id", "credit"),
        CheckConstraint("position >= 0", name="position"),
        CheckConstraint("credit IS NULL OR (credit >= 0 AND credit <= 1)", name="credit"),  # a share of one mark
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int]
    question_revision_id: Mapped[int] = mapped_column(
        ForeignKey("question_revisions.id", ondelete="RESTRICT"), index=True
    )
    # The version of the question's case this learner read (None: the question has no case).
    vignette_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("vignette_revisions.id", ondelete="RESTRICT"), index=True
    )
    option_order: Mapped[list[Any]]
    selected: Mapped[list[Any] | None]
    credit: Mapped[float | None]

    attempt: Mapped[Attempt] = relationship(back_populates="items")
    revision: Mapped[QuestionRevision] = relationship(lazy="joined")
    vignette: Mapped[VignetteRevision | None] = relationship(lazy="joined")

    @property
    def question_type(self) -> QuestionType:
        """The drawn question's type (how it is answered and graded)."""
        return self.revision.type

    @property
    def question_options(self) -> list[dict[str, Any]]:
        """The drawn question's options, with which are correct."""
        return self.revision.options


class Accommodation(Base):
    """Extra time or attempts an administrator granted one learner on one quiz (the current grant).

    Edits change this row and withdrawal stamps withdrawn_at; every change is kept in AccommodationChange."""

    __tablename__ = "accommodations"
    __table_args__ = (
        UniqueConstraint("user_id", "quiz_id"),
        CheckConstraint("extra_minutes >= 0", name="extra_minutes"),
        CheckConstraint("extra_attempts >= 0", name="extra_attempts"),
    )

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
    __table_args__ = (one_of("action", AccommodationAction),)

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
