"""Content models: a course, its modules and each module's immutable revisions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kaptrain.db import Base, own_revision, utcnow


class Course(Base):
    """A course in the catalogue; its settings come from the course file."""

    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("ce_hours > 0", name="ce_hours"),
        CheckConstraint("passing_score BETWEEN 1 AND 100", name="passing_score"),
        CheckConstraint("min_reading_percent BETWEEN 0 AND 100", name="min_reading_percent"),
        CheckConstraint("certificate_approval IN ('automatic', 'manual')", name="certificate_approval"),
        CheckConstraint(
            "certificate_validity_months IS NULL OR certificate_validity_months >= 1",
            name="certificate_validity_months",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(Text)
    ce_hours: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    passing_score: Mapped[int]
    provider: Mapped[str] = mapped_column(String(300))
    financial_disclosure: Mapped[str] = mapped_column(Text)
    off_label_statement: Mapped[str] = mapped_column(Text)
    disclaimer: Mapped[str] = mapped_column(Text)
    objectives: Mapped[list[Any]]  # [{"id": "stable-id", "text": "The clinician can ..."}]
    # Active reading a module needs before its quiz opens, as a percentage of its estimated time (0 = off).
    min_reading_percent: Mapped[int] = mapped_column(default=0, server_default="0")
    delivery_format: Mapped[str] = mapped_column(String(300), default="Enduring online material")
    # [{"credit_type": "APA", "hours": "8.0", "statement": "...", "provider_number": "..."}]
    credit_designations: Mapped[list[Any]] = mapped_column(default=list)
    certificate_approval: Mapped[str] = mapped_column(String(20), default="automatic")  # or "manual"
    certificate_validity_months: Mapped[int | None]
    signatory_name: Mapped[str] = mapped_column(String(200), default="")
    signatory_title: Mapped[str] = mapped_column(String(200), default="")
    released_on: Mapped[dt.date | None]  # enduring material: when it was released ...
    review_by: Mapped[dt.date | None]  # ... and when its content is due for review
    team: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # [{"name", "credentials", "role"}]
    is_published: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Loaded when read, not with every course: a course comes joined to enrolments, quizzes and attempts on every
    # learner page, and learner pages take modules from the content catalogue (kaptrain.content.catalogue).
    modules: Mapped[list[Module]] = relationship(back_populates="course", order_by="Module.position")

    def __repr__(self) -> str:
        return f"<Course {self.slug}>"


class Module(Base):
    """A module's identity and place in its course; what it says lives in its revisions."""

    __tablename__ = "modules"
    __table_args__ = (
        UniqueConstraint("course_id", "slug"),
        own_revision("published_revision_id", "module_revisions", "module_id"),
        own_revision("file_revision_id", "module_revisions", "module_id"),
    )

    # Part of the keys to its own revisions, so not autoincrementing by default: say it is.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    slug: Mapped[str] = mapped_column(String(100))
    # Slugs this module had before a declared rename; the import finds the module by them.
    previous_slugs: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    position: Mapped[int]
    # Retired modules left the course (removed from the files or retired in the browser): no longer shown or
    # required; learners' records that point at them remain.
    is_retired: Mapped[bool] = mapped_column(default=False)
    # What learners see. None until the module is first published (a module added in the browser as a draft).
    # A revision of this module (own_revision above).
    published_revision_id: Mapped[int | None] = mapped_column()
    # The revision the content files last matched (set by import and export): a published revision other than
    # this one was made in the browser, and an import does not replace it without --overwrite.
    file_revision_id: Mapped[int | None] = mapped_column()

    course: Mapped[Course] = relationship(back_populates="modules")
    revisions: Mapped[list[ModuleRevision]] = relationship(
        back_populates="module",
        order_by="ModuleRevision.number",
        lazy="raise_on_sql",
        foreign_keys="ModuleRevision.module_id",
    )

    @property
    def is_live(self) -> bool:
        """In the course for learners: published and not retired."""
        return not self.is_retired and self.published_revision_id is not None

    def __repr__(self) -> str:
        return f"<Module {self.slug}>"


class ModuleRevision(Base):
    """One immutable version of a module's text; the module's published_revision_id says which one learners see."""

    __tablename__ = "module_revisions"
    __table_args__ = (
        UniqueConstraint("module_id", "number"),
        UniqueConstraint("id", "module_id"),  # what a module's pointers at its own revisions refer to
        CheckConstraint("number >= 1", name="number"),
        CheckConstraint("estimated_minutes >= 1", name="estimated_minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    estimated_minutes: Mapped[int]
    last_reviewed: Mapped[dt.date]
    objectives: Mapped[list[Any]]
    references: Mapped[list[Any]]
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    module: Mapped[Module] = relationship(back_populates="revisions", foreign_keys=[module_id])

    def __repr__(self) -> str:
        return f"<ModuleRevision {self.module_id}#{self.number}>"
