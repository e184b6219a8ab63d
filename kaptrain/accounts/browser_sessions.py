"""One browser's login as a thing of its own: logging out ends it without ending the account's other sessions.

The session cookie is signed, not stored, so the server cannot forget one copy of it; it can only refuse it. Each
login puts a random session id in the cookie (`SID_KEY`); logging out records that id in `ended_sessions`, and
every check of a session (Flask-Login's loader, and the page cache's and fast paths' one statement) refuses a
cookie whose id is recorded there. "Log out everywhere", a password change and the like still move the account's
session version, which ends every cookie at once. A cookie from before session ids has none: logging it out
moves the version, as logging out did then.

An ended id is kept only while its cookie could still be current (SESSION_HOURS after its login, which the
checks refuse anyway after that); each logout deletes those older than that."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import MutableMapping
from typing import Any

from sqlalchemy import delete, exists
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kaptrain.accounts.models import EndedSession
from kaptrain.db import utcnow

SID_KEY = "sid"  # the cookie session's key holding this login's id


def start(cookie: MutableMapping[str, Any]) -> None:
    """Give a new login its session id (kept when the same browser's session is re-issued after a version move)."""
    if not isinstance(cookie.get(SID_KEY), str) or not cookie[SID_KEY]:
        cookie[SID_KEY] = secrets.token_urlsafe(24)


def sid_of(cookie: MutableMapping[str, Any] | dict[str, Any]) -> str:
    """The cookie's session id, or "" when it has none."""
    sid = cookie.get(SID_KEY)
    return sid if isinstance(sid, str) and len(sid) <= 64 else ""


def ended(sid: str) -> ColumnElement[bool]:
    """An ORM expression: the login with this id was logged out."""
    return exists().where(EndedSession.sid == sid)


def end(session: Session, sid: str, session_hours: int) -> None:
    """Record that the login with this id logged out, and forget ids whose cookies can no longer be current."""
    now = utcnow()
    session.execute(delete(EndedSession).where(EndedSession.ended_at < now - dt.timedelta(hours=session_hours)))
    if session.get(EndedSession, sid) is None:
        session.add(EndedSession(sid=sid, ended_at=now))
    session.flush()
