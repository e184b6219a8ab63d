"""Job functions for tests/test_jobs.py: top-level and importable, so an RQ worker process can run them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, g
from sqlalchemy import text

from kaptrain.accounts import services as accounts
from kaptrain.db import get_session

PASSWORD = "worker job password 1"  # noqa: S105 - test account
SEEN: list[dict[str, Any]] = []


def write_text(path: str, content: str, *, suffix: str = "") -> None:
    """Write content + suffix to path."""
    Path(path).write_text(content + suffix, encoding="utf-8")


def fail(message: str) -> None:
    """Always raise."""
    raise RuntimeError(message)


def create_learner(email: str, full_name: str) -> None:
    """Create an account through the app's session and commit, as real jobs that write must."""
    accounts.create_user(get_session(), email, PASSWORD, accounts.Profile(full_name, "Psychologist"))
    get_session().commit()


def record_session() -> None:
    """Note what the job's context looks like: a fresh g, its session, and the pool's checked-out connections."""
    had_session = "db_session" in g
    session = get_session()
    session.execute(text("SELECT 1"))
    engine = current_app.extensions["kaptrain.db"].engine
    SEEN.append({"had_session": had_session, "session": session, "checked_out": engine.pool.checkedout()})
