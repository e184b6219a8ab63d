"""Database layer: the declarative Base with a naming convention, UTC datetimes, and one session per request
that is committed (or rolled back) at a single point."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import fcntl
import logging
import os
import sqlite3
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, has_request_context, request
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    ForeignKeyConstraint,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, UOWTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A datetime that is always timezone-aware UTC in Python, whatever the database or its session time zone.

    PostgreSQL returns timestamptz in the connection's time zone and SQLite returns naive values; both are
    normalised here, so no caller has to remember which database it is on."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Store UTC (naive on SQLite, which has no time zone type)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: use kaptrain.db.utcnow()")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Hand back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def one_of(column: str, values: type[enum.Enum], name: str | None = None) -> CheckConstraint:
    """A CHECK that `column` holds one of the enum's values (enums are stored as plain strings, which the
    database would otherwise accept whatever they say). Named ck_<table>_<column> unless told."""
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


def own_revision(
    column: str, revisions: str, owner: str, item: str = "id", use_alter: bool = True
) -> ForeignKeyConstraint:
    """A foreign key from a pointer at a revision (an item's published or file revision, the rules an attempt was
    taken under) to a revision of that same item: (column, item) -> revisions (id, owner), so another item's
    revision is refused. Named like a plain key on `column` (fk_<table>_<column>_<revisions>); NULL points at none.
    `item` is this table's column naming the item: its own id, or (attempts) the quiz's."""
    return ForeignKeyConstraint(
        [column, item], [f"{revisions}.id", f"{revisions}.{owner}"], ondelete="RESTRICT", use_alter=use_alter
    )


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def zone_or_utc(key: str | None) -> dt.tzinfo:
    """The time zone named by an IANA key; UTC for none, "UTC", or a key the tz database no longer has."""
    if not key or key == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a zone removed from the tz database since
        return dt.UTC


def as_utc(value: dt.datetime) -> dt.datetime:
    """Treat a naive datetime as UTC (values read from the database are already aware)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_writing = threading.local()  # .now: this thread holds a place in a SQLite write queue


class QueuedConnection(sqlite3.Connection):
    """A SQLite connection whose writers queue for the write lock instead of polling for it.

    SQLite lets one writer in at a time; one that finds the lock taken retries with sleeps that grow to 100 ms,
    so under load the lock sits free while every writer sleeps (the benchmark's quiz submissions: 88 a second,
    p99 1.2 s). A writer here first takes an exclusive flock on a file beside the database, which the kernel
    hands to the next waiter, in this process or another, the moment it is let go, and holds it until its
    transaction ends. busy_timeout still covers writers that do not queue (another program, the sqlite3 shell).
    """

    queue_fd: int | None = None
    _queued = False

    def open_queue(self, path: str) -> None:
        """Queue this connection's writers on `path` (an in-memory database has nobody to queue with)."""
        self.queue_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def queue(self) -> None:
        """Wait for this connection's turn to write (the GIL is let go while waiting); `commit`/`rollback` end it.

        A thread already writing through another connection does not queue again (it would wait for itself):
        that second writer falls back on busy_timeout, as it did before there was a queue."""
        if self.queue_fd is not None and not self._queued and not getattr(_writing, "now", False):
            fcntl.flock(self.queue_fd, fcntl.LOCK_EX)
            self._queued = _writing.now = True

    def _leave(self) -> None:
        if self._queued and self.queue_fd is not None:
            fcntl.flock(self.queue_fd, fcntl.LOCK_UN)
            self._queued = _writing.now = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._leave()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._close_queue()

    def __del__(self) -> None:
        self._close_queue()  # a connection garbage-collected without close()

    def _close_queue(self) -> None:
        self._leave()
        if self.queue_fd is not None:
            os.close(self.queue_fd)  # which also lets go of the flock, were it still held
            self.queue_fd = None


def begin_writing(dbapi_connection: Any, execute: Callable[[str], Any]) -> None:
    """Begin a write transaction on a SQLite DB-API connection: queue for the lock, then BEGIN IMMEDIATE."""
    if isinstance(dbapi_connection, QueuedConnection):
        dbapi_connection.queue()
    try:
        execute("BEGIN IMMEDIATE")
    except BaseException:
        if isinstance(dbapi_connection, QueuedConnection):
            dbapi_connection._leave()  # noqa: SLF001 - nothing began, so nothing will commit or roll back
        raise


@contextlib.contextmanager
def queued_statement(dbapi_connection: Any) -> Iterator[None]:
    """Wait for the writers' turn on a SQLite DB-API connection, for one statement that commits on its own
    (autocommit): the statement takes the write lock itself, so no BEGIN and COMMIT are sent while the lock is
    held."""
    if not isinstance(dbapi_connection, QueuedConnection):
        yield
        return
    dbapi_connection.queue()
    try:
        yield
    finally:
        dbapi_connection._leave()  # noqa: SLF001 - the statement committed (or failed) on its own


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL, a busy timeout, real transactions and queued writers."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 15, "factory": QueuedConnection})
    database = engine.url.database or ""
    on_disk = database not in ("", ":memory:") and not database.startswith("file:")

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; take it over (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        if on_disk and isinstance(dbapi_conn, QueuedConnection):
            dbapi_conn.open_queue(f"{database}-writers")

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        # A writer takes the write lock up front (IMMEDIATE), so two requests racing to grade one attempt
        # queue for it instead of failing with a stale snapshot. A reader begins DEFERRED and
        # never takes the write lock, so concurrent reads all proceed (WAL).
        if conn.get_execution_options().get("kaptrain_writer", True):
            begin_writing(conn.connection.dbapi_connection, conn.exec_driver_sql)
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """Holds the engine and hands out one session per application context."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.bind: Engine | Connection = engine
        self._reader = engine.execution_options(kaptrain_writer=False)
        self._factory = sessionmaker(expire_on_commit=False)
        event.listen(self._factory, "after_flush", _note_write)
        event.listen(self._factory, "do_orm_execute", _note_bulk_write)

    def new_session(self, writer: bool = True) -> Session:
        """A new session on the current bind (tests swap in a connection with an open transaction).

        A reader session on SQLite begins its transactions DEFERRED, so it never takes the write lock."""
        if isinstance(self.bind, Connection):
            session = self._factory(bind=self.bind, join_transaction_mode="create_savepoint")
        else:
            session = self._factory(bind=self.bind if writer else self._reader)
        session.info["reader"] = not writer
        return session


def _note_write(session: Session, _flush: UOWTransaction) -> None:
    _refuse_reader_writes(session)
    session.info["wrote"] = True


def _note_bulk_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _refuse_reader_writes(state.session)
        state.session.info["wrote"] = True


def _refuse_reader_writes(session: Session) -> None:
    """A GET view that writes must say so (may_write): its session is a reader, whose DEFERRED transaction on SQLite
    may fail to take the write lock (SQLITE_BUSY_SNAPSHOT: a 500) when another request wrote meanwhile. The tests
    share one connection, where that cannot happen, so there the write itself fails; elsewhere it is logged."""
    if not session.info.get("reader") or not has_request_context():
        return
    message = f"{request.method} {request.path} wrote in a reader session: mark its view with @may_write"
    if current_app.testing:
        raise RuntimeError(message)
    log.warning(message)


def has_writes(session: Session) -> bool:
    """Whether the session changed anything since its transaction began (flushed or pending)."""
    return bool(session.info.get("wrote") or session.new or session.dirty or session.deleted)


def may_write(view: Any) -> Any:
    """Mark a GET view that can write (e.g. it closes an expired attempt), so it begins as a writer."""
    view.kaptrain_writes = True
    return view


def _request_writes() -> bool:
    if not has_request_context():
        return True  # CLI commands and jobs
    if request.method not in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "kaptrain_writes", False))


def init_db(app: Flask) -> Database:
    """Create the engine for the app and close the request's session at teardown."""
    from kaptrain.accounts.sealing import use_keys  # noqa: PLC0415 - the accounts models import this module

    database = Database(make_engine(app.config["DATABASE_URL"]))
    opening = [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), *(app.config.get("SEALING_LEGACY_KEYS") or ())]
    use_keys(database.engine.dialect, app.secret_key or "", opening)
    app.extensions["kaptrain.db"] = database

    @app.after_request
    def _commit_point(response: Response) -> Response:
        # THE commit point of a request: views and services only flush. Only a successful response
        # commits, and only if something was written; an error page (4xx/5xx) keeps nothing half-done,
        # and a request that changed nothing (every plain GET) ends its read transaction without a commit.
        finish_request(commit=response.status_code < 400)
        return response

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    return database


def get_session() -> Session:
    """The session of the current application context, created on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["kaptrain.db"].new_session(writer=_request_writes())
    session: Session = g.db_session
    return session


def finish_request(commit: bool) -> None:
    """Commit the request's session when it wrote something and commit is asked; otherwise roll back.

    Error handlers call this with commit=False before rendering, so a failed flush never leaves the
    session unusable for the error page."""
    session: Session | None = g.get("db_session")
    if session is None:
        return
    if commit and has_writes(session):
        session.commit()  # runs the after_commit callbacks (jobs) once the rows are visible to others
        session.info.pop("wrote", None)
        return
    try:
        session.rollback()
    except SQLAlchemyError:
        # The connection itself failed: drop the session, so whatever runs next (an error page) gets a new one.
        log.exception("Rolling back the request's session failed; it is discarded")
        g.pop("db_session", None)
        with contextlib.suppress(SQLAlchemyError):
            session.close()
        return
    session.info.pop("wrote", None)


def after_commit(callback: Callable[[], None], session: Session | None = None) -> None:
    """Run callback once the session's transaction commits; drop it if the transaction rolls back.

    Jobs enqueued by a request, a CLI command or another job must see the rows their caller wrote, and must
    not run at all for work that was rolled back. The session defaults to the app context's; with no
    transaction in progress the callback runs at once."""
    if session is None and has_app_context():
        session = g.get("db_session")
    if session is None or not session.in_transaction() or session.info.get("committed"):
        callback()
        return
    session.info.setdefault("after_commit", []).append(callback)


def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released, not the transaction: the rows are not visible to others yet
    # While the callbacks run the transaction is over, so one registering another runs it at once.
    session.info["committed"] = True
    try:
        for callback in session.info.pop("after_commit", []):
            callback()
    finally:
        session.info.pop("committed", None)


def _drop_after_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint rolled back: the outer transaction goes on
        session.info.pop("after_commit", None)


def dialect_insert(session: Session) -> Callable[..., Any]:
    """The INSERT construct of the session's database, which knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_ignoring_conflict(session: Session, model: type[Base], **values: Any) -> None:
    """INSERT the row unless a unique constraint says it exists: a race-safe first half of get-or-create.

    On PostgreSQL a concurrent insert of the same key waits for the other transaction and then does
    nothing, so the SELECT that follows finds the row instead of raising IntegrityError."""
    session.execute(dialect_insert(session)(model).values(**values).on_conflict_do_nothing())


# On every Session, not only the app's factory: a job registered on any session runs after its commit.
event.listen(Session, "after_commit", _run_after_commit)
event.listen(Session, "after_rollback", _drop_after_commit)
