"""Authoring models: an item's one working draft, and images uploaded for module text."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kaptrain.db import Base, utcnow

# The item kinds a draft can belong to: exactly one of these columns is set on each draft.
DRAFT_ITEMS = ("module_id", "question_id", "vignette_id", "quiz_id")


class Draft(Base):
    """The one working draft of a module, question, case or quiz's rules, as the content-file fields.

    `version` counts saves: an editor sends the version it loaded, and a save from an older one is refused
    (optimistic locking, enforced again by the UPDATE's WHERE clause through the mapper's version_id_col)."""

    __tablename__ = "drafts"
    __table_args__ = (
        CheckConstraint(
            " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in DRAFT_ITEMS) + " = 1",
            name="one_item",
        ),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), unique=True)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id", ondelete="RESTRICT"), unique=True)
    vignette_id: Mapped[int | None] = mapped_column(ForeignKey("vignettes.id", ondelete="RESTRICT"), unique=True)
    quiz_id: Mapped[int | None] = mapped_column(ForeignKey("quizzes.id", ondelete="RESTRICT"), unique=True)
    # The published revision id this draft started from (None: the item was new); publishing over a newer one
    # needs the author to say so.
    base_revision_id: Mapped[int | None]
    version: Mapped[int] = mapped_column(default=1)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __mapper_args__ = {"version_id_col": version}


class Upload(Base):
    """An image uploaded for module text: checked (sniffed type, size, pixels) and stored under a generated name."""

    __tablename__ = "uploads"
    __table_args__ = (CheckConstraint("size_bytes > 0 AND width > 0 AND height > 0", name="size"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)  # e.g. "3f9c...e1.png"
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
