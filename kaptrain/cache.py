"""Caches that are always right: each process keeps values computed from the database under a version token that
every request checks with one small query, so a change made through any server is seen by all on their next request.

The token is a row of the `settings` table (key `content_version`) holding a random value: a transaction that
changes content writes a new one (kaptrain.content.catalogue does it from a flush event, so no caller can forget),
and a token is never reused, not even after a rollback or a restore, so a value cached under it can only be the
content it names. Reading the token and then the content in one transaction means a value is never older than its
token. A transaction that changed content itself neither uses nor fills the shared copy (what it sees is not yet
committed). Values cached here are shared by the requests (and threads) of one process: they must never change.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from sqlalchemy import JSON, String, column, event, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from kaptrain.db import UTCDateTime, utcnow

T = TypeVar("T")

VERSION_KEY = "content_version"
# The settings table of kaptrain.admin.settings, named in Core so this ground-floor module imports no domain.
_settings = table("settings", column("key", String), column("value", JSON), column("updated_at", UTCDateTime()))

_VERSION = "kaptrain.content_version"  # session.info: (token,) read or written in this transaction
_WROTE = "kaptrain.content_written"  # session.info: this transaction changed content


def content_version(session: Session) -> str | None:
    """The content version token, read once per transaction (None on a database that never had content)."""
    memo: tuple[str | None] | None = session.info.get(_VERSION)
    if memo is None:
        value = session.scalar(select(_settings.c.value).where(_settings.c.key == VERSION_KEY))
        memo = (str(value) if value is not None else None,)
        session.info[_VERSION] = memo
    return memo[0]


def bump_content_version(session: Session) -> str:
    """Give the content a new version token in the session's transaction (called whenever content is flushed)."""
    token = secrets.token_hex(12)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_settings).values(key=VERSION_KEY, value=token, updated_at=utcnow())
    session.connection().execute(
        statement.on_conflict_do_update(
            index_elements=[_settings.c.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
    session.info[_VERSION] = (token,)
    session.info[_WROTE] = True
    return token


def wrote_content(session: Session) -> bool:
    """Whether this transaction changed content (its view of it is not committed, so not for sharing)."""
    return bool(session.info.get(_WROTE))


def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction, not a savepoint inside it, has ended
        session.info.pop(_VERSION, None)
        session.info.pop(_WROTE, None)


event.listen(Session, "after_transaction_end", _forget)


class ProcessCache:
    """Values kept by one app in one process, each under the version token it was computed at (one per name)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str | None, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, version: str | None, load: Callable[[], T]) -> T:
        """The value cached under name at this version, or load() stored there (replacing older versions)."""
        entry = self._entries.get(name)
        if entry is not None and entry[0] == version:
            found: T = entry[1]
            return found
        value = load()  # two requests missing together both load; either result is right
        with self._lock:
            self._entries[name] = (version, value)
        return value

    def clear(self) -> None:
        """Drop everything (tests; a process never needs it, the version check does it)."""
        with self._lock:
            self._entries.clear()


def init_cache(app: Flask) -> ProcessCache:
    """Give the app its process-local cache."""
    store = ProcessCache()
    app.extensions["kaptrain.cache"] = store
    return store


def process_cache() -> ProcessCache | None:
    """The current app's cache, or None outside an application context."""
    if not has_app_context():
        return None
    store: ProcessCache | None = current_app.extensions.get("kaptrain.cache")
    return store
