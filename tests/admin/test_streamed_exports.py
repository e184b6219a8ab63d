"""Streamed CSV exports leave no transaction open once their last line is sent.

The request's session is closed at teardown, before a streamed body is produced; an export reading through it
would open a new transaction that nothing closes (on SQLite, an audited export holds the write lock until the
session happens to be garbage-collected). Each export reads in a session of its own and closes it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role
from kaptrain.db import Database
from tests.factories import certified, enrolled, make_user


@pytest.fixture
def sessions(app: Flask) -> Iterator[list[Session]]:
    """Every session the app opens while the test runs."""
    database: Database = app.extensions["kaptrain.db"]
    opened: list[Session] = []
    original = database.new_session

    def recording(writer: bool = True) -> Session:
        session = original(writer)
        opened.append(session)
        return session

    database.new_session = recording  # type: ignore[method-assign]
    yield opened
    database.new_session = original  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("role", "url"),
    [
        (Role.ADMIN, "/admin/reports/completions.csv"),
        (Role.INSTRUCTOR, "/instructor/courses/demo-course/evaluations.csv"),
    ],
)
def test_a_streamed_export_closes_what_it_opened(app, client, db, login, sessions, role, url, monkeypatch):
    monkeypatch.setitem(app.config, "EVALUATION_MIN_GROUP", 1)  # one learner's row is enough to stream here
    learner = make_user(db)
    enrolled(db, learner)
    with app.app_context():  # issuing reads the site's settings, and its email goes out at the commit
        certified(db, learner)
        db.commit()
    login(make_user(db, role=role))
    sessions.clear()
    response = client.get(url)
    assert response.is_streamed
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 2  # the header and the one learner's row
    response.close()
    assert sessions, "the export opened no session"
    assert not [s for s in sessions if s.in_transaction()], "a session was left with its transaction open"


def test_the_audit_log_export_closes_what_it_opened(app, client, db, login, sessions):
    learner = make_user(db)
    enrolled(db, learner)
    with app.app_context():
        certified(db, learner)
        db.commit()
    login(make_user(db, role=Role.ADMIN))
    sessions.clear()
    response = client.get("/admin/audit.csv")
    assert response.is_streamed
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("\ufeffat,actor,actor_email,action")
    assert any(",certificate.issue," in line for line in lines[1:]), lines
    response.close()
    assert sessions, "the export opened no session"
    assert not [s for s in sessions if s.in_transaction()], "a session was left with its transaction open"
