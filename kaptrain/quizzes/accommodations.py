"""Accommodations: grant, edit and withdraw a learner's extra time or attempts, keeping every change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.db import utcnow
from kaptrain.quizzes.models import Accommodation, AccommodationAction, AccommodationChange, Quiz


class AccommodationError(ValueError):
    """A grant that cannot be made as asked; the message is shown to the administrator."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _terms(acc: Accommodation) -> dict[str, Any]:
    return {"extra_minutes": acc.extra_minutes, "extra_attempts": acc.extra_attempts, "note": acc.note}


def current_accommodation(session: Session, user_id: int, quiz_id: int) -> Accommodation | None:
    """The grant in force for this learner and quiz: None when there is none or it was withdrawn."""
    return session.scalar(
        select(Accommodation).where(
            Accommodation.user_id == user_id,
            Accommodation.quiz_id == quiz_id,
            Accommodation.withdrawn_at.is_(None),
        )
    )


def _log(
    session: Session,
    acc: Accommodation,
    action: AccommodationAction,
    before: dict[str, Any] | None,
    actor_id: int | None,
    reason: str,
) -> None:
    after = _terms(acc)
    # Appended through the relationship, so the grant's history in this session is current.
    acc.changes.append(
        AccommodationChange(action=action, changed_by_id=actor_id, before=before, after=after, reason=reason)
    )
    session.flush()
    audit.record(
        session, f"accommodation.{action.value}", "accommodation", acc.id, actor_id=actor_id,
        learner_id=acc.user_id, quiz_id=acc.quiz_id, before=before, after=after, reason=reason,
    )  # fmt: skip


def grant_accommodation(
    session: Session, user_id: int, quiz: Quiz, extra_minutes: int, extra_attempts: int, note: str, granted_by_id: int
) -> Accommodation:
    """Grant (or change) one learner's extra time and/or attempts on a quiz; the reason is required.

    A new grant, or one given again after withdrawal, is "granted"; a change to the grant in force is
    "edited". Either way the earlier terms stay in the grant's history."""
    note = note.strip()
    if extra_minutes < 0 or extra_attempts < 0:
        raise AccommodationError("Extra time and extra attempts cannot be negative.")
    if not note:
        raise AccommodationError("Give the reason for this accommodation; it is kept on record.", "note")
    if extra_minutes == 0 and extra_attempts == 0:
        raise AccommodationError("Grant extra minutes, extra attempts or both (to remove a grant, withdraw it).")
    acc = session.scalar(
        select(Accommodation).where(Accommodation.user_id == user_id, Accommodation.quiz_id == quiz.id)
    )
    if acc is None:
        acc = Accommodation(user_id=user_id, quiz_id=quiz.id)
        session.add(acc)
        before, action = None, AccommodationAction.GRANTED
    elif acc.is_withdrawn:
        before, action = None, AccommodationAction.GRANTED
    else:
        before, action = _terms(acc), AccommodationAction.EDITED
        if before == {"extra_minutes": extra_minutes, "extra_attempts": extra_attempts, "note": note}:
            return acc  # nothing changed: no history row, no audit entry
    acc.extra_minutes, acc.extra_attempts, acc.note = extra_minutes, extra_attempts, note
    acc.granted_by_id, acc.granted_at = granted_by_id, utcnow()
    acc.withdrawn_at = acc.withdrawn_by_id = None
    session.flush()
    _log(session, acc, action, before, granted_by_id, note)
    return acc


def withdraw_accommodation(session: Session, acc: Accommodation, reason: str, actor_id: int) -> Accommodation:
    """Withdraw a grant in force (it stops applying at once); the reason is required and kept."""
    reason = reason.strip()
    if acc.is_withdrawn:
        raise AccommodationError("This accommodation was already withdrawn.")
    if not reason:
        raise AccommodationError("Give the reason for withdrawing this accommodation.", "reason")
    acc.withdrawn_at, acc.withdrawn_by_id = utcnow(), actor_id
    session.flush()
    _log(session, acc, AccommodationAction.WITHDRAWN, _terms(acc), actor_id, reason)
    return acc
