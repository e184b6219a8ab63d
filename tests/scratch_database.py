"""A database of its own for a test module, of the kind the suite runs on: a temporary SQLite file, or (with
TEST_DATABASE_URL on PostgreSQL) a new database beside the test database, dropped afterwards.

For tests whose work must be committed and seen by other processes, which the `db` fixture's rolled-back
transaction cannot give (tests/test_kill.py, tests/test_integrity_migration.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


def scratch_database(folder: Path, suffix: str) -> Iterator[str]:
    """Yield the URL of an empty database named for suffix; remove it afterwards."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield f"sqlite:///{folder / f'{suffix}.sqlite3'}"
        return
    parsed = make_url(url)
    name = f"{parsed.database}_{suffix}_{os.getpid()}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
