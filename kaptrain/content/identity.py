"""How a module or a quiz is recognised on import: by its slug in the course, or by a declared earlier slug."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.content.models import Module
from kaptrain.quizzes.models import Quiz

Renameable = TypeVar("Renameable", Module, Quiz)


def find_by_slug(
    session: Session, model: type[Renameable], course_id: int, slug: str, previous: list[str]
) -> Renameable | None:
    """The course's row with this slug, or else the one a declared rename (previous_slugs) points at."""
    found = session.scalar(select(model).where(model.course_id == course_id, model.slug == slug))
    if found is None and previous:
        found = session.scalar(
            select(model).where(model.course_id == course_id, model.slug.in_(previous)).order_by(model.id).limit(1)
        )
    return found
