"""The audit log: who did what to which record, and when; written in the caller's transaction.

One entry point, `record(...)`. An action and its audit entry commit together or not at all."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from kaptrain.db import Base, utcnow


class AuditEntry(Base):
    """One administrative action on a record."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # The person, when the action came from the site; the CLI records the operating-system account instead.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)  # e.g. "certificate.revoke"
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


def cli_actor() -> str:
    """How a command-line action is attributed: the operating-system account that ran it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


def record(
    session: Session,
    action: str,
    subject_type: str,
    subject_id: int | None,
    *,
    actor_id: int | None = None,
    actor_label: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry to the session (flushed with the action it records)."""
    entry = AuditEntry(
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        actor_id=actor_id,
        actor_label=actor_label or (f"user:{actor_id}" if actor_id else cli_actor()),
        details=details,
    )
    session.add(entry)
    session.flush()
    return entry
