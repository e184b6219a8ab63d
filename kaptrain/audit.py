"""The audit log: who did what to which record, when and from which address; written in the caller's transaction.

One entry point, `record(...)`. An action and its audit entry commit together or not at all. Entries are
append-only from the application: a flush that would change or delete one raises AuditLogImmutable."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import has_request_context, request
from sqlalchemy import ForeignKey, Index, Select, String, event, func, or_, select
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, UOWTransaction, mapped_column

from kaptrain import csvout
from kaptrain.db import Base, utcnow


class AuditEntry(Base):
    """One administrative action on a record."""

    __tablename__ = "audit_log"
    # A record's history (a person's page, the CE report's who-issued column) is looked up by its subject.
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # The person, when the action came from the site; the CLI records the operating-system account instead.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)  # e.g. "certificate.revoke"
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The client's address (ProxyFix has already applied X-Forwarded-For); None for the CLI and jobs.
    ip: Mapped[str | None] = mapped_column(String(45))


class AuditLogImmutable(RuntimeError):
    """Something tried to change or delete an audit entry."""


def _refuse_changes(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    # Checked at flush, for every session: the ORM never writes an UPDATE or DELETE to the audit log.
    if any(isinstance(o, AuditEntry) for o in session.deleted):
        raise AuditLogImmutable("Audit entries cannot be deleted.")
    for obj in session.dirty:
        if isinstance(obj, AuditEntry) and session.is_modified(obj):
            raise AuditLogImmutable("Audit entries cannot be changed.")


def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    # update(AuditEntry) / delete(AuditEntry) executed through a session bypass the flush.
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ is AuditEntry:
        raise AuditLogImmutable("Audit entries cannot be changed or deleted.")


event.listen(Session, "before_flush", _refuse_changes)
event.listen(Session, "do_orm_execute", _refuse_bulk_changes)


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(*_args: Any) -> None:
    raise AuditLogImmutable("Audit entries cannot be changed.")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(*_args: Any) -> None:
    raise AuditLogImmutable("Audit entries cannot be deleted.")


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
        ip=request.remote_addr if has_request_context() else None,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditFilter:
    """What the console narrows the log to; None (or "") means any."""

    action: str | None = None
    actor: str | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive


def search(flt: AuditFilter) -> Select[AuditEntry, str, str]:
    """Entries matching the filter, newest first, with the actor's name and email (None for the CLI)."""
    # Imported here: accounts.models is above the audit log in the dependency order (users are audited).
    from kaptrain.accounts.models import User  # noqa: PLC0415

    stmt = (
        select(AuditEntry, User.full_name, User.email)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    if flt.action:
        stmt = stmt.where(AuditEntry.action.startswith(flt.action.strip(), autoescape=True))
    if flt.actor:
        needle = flt.actor.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(AuditEntry.actor_label).contains(needle, autoescape=True),
                func.lower(User.email).contains(needle, autoescape=True),
                func.lower(User.full_name).contains(needle, autoescape=True),
            )
        )
    if flt.subject_type:
        stmt = stmt.where(AuditEntry.subject_type == flt.subject_type.strip())
    if flt.subject_id is not None:
        stmt = stmt.where(AuditEntry.subject_id == flt.subject_id)
    if flt.date_from:
        stmt = stmt.where(AuditEntry.at >= dt.datetime.combine(flt.date_from, dt.time(), dt.UTC))
    if flt.date_to:
        stmt = stmt.where(AuditEntry.at < dt.datetime.combine(flt.date_to + dt.timedelta(days=1), dt.time(), dt.UTC))
    return stmt


CSV_COLUMNS = ("at", "actor", "actor_email", "action", "subject_type", "subject_id", "ip", "details")


def csv_lines(session: Session, flt: AuditFilter, batch: int = 500) -> Iterator[str]:
    """The filtered log as CSV text, one line at a time, read from the database in batches (constant memory)."""
    return csvout.lines(CSV_COLUMNS, _csv_rows(session, flt, batch))


def _csv_rows(session: Session, flt: AuditFilter, batch: int) -> Iterator[list[str]]:
    result = session.execute(search(flt).execution_options(yield_per=batch))
    for entry, name, email in result:
        yield [
            entry.at.isoformat(),
            name or entry.actor_label,
            email or "",
            entry.action,
            entry.subject_type,
            "" if entry.subject_id is None else str(entry.subject_id),
            entry.ip or "",
            json.dumps(entry.details, ensure_ascii=False, sort_keys=True, default=str),
        ]
        session.expunge(entry)  # keep the identity map from growing with the export
