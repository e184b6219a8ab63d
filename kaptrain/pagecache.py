"""Rendered learner pages, kept per process under versions the database maintains, so a page is never stale.

A learner's course page, module page, quiz page and dashboard depend on three things: the learner's own records,
what every learner sees (content, quiz rules, course and site settings), and sometimes the clock (a quiz pause
or an attempt's deadline running out). The database versions the first two with triggers (migration
0011_page_versions): every change to a learner's enrolment, progress, attempts, certificates, evaluation,
attestation, accommodations or account row adds one to `users.pages_version`, and every change to content or
settings adds one to the `cache_epochs` row "pages". No code path can forget to do it, since the database does.

A page is served from here only when all of these hold, checked with one small SQL statement and no ORM: a GET
without a query string to one of CACHED_ENDPOINTS; a logged-in learner (not staff: their pages and two-factor
rule differ) whose session is still valid by the same tests as kaptrain.auth (session version, active account,
the absolute session age, Flask-Login's session protection); no flash message waiting; and a page stored under
the learner's current two versions that has not reached the moment its view said it would change (`changes_at`).
Anything else goes the normal way, and a successful normal render is stored under the versions read *before* it
read anything, so a page can only ever be stored under versions as old as its data or older.

Pages carry the session's CSRF token: it is stored as a placeholder and a fresh token is put in on the way out.
What a view does besides rendering (the module page moves the seat-time clock) it registers with `on_hit`, and
that runs on every hit too. PAGE_CACHE_MB sets the size per process (0 turns the cache off).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from flask import Flask, Response, current_app, g, has_request_context, request, session, url_for
from flask.globals import request_ctx
from flask_wtf.csrf import generate_csrf
from sqlalchemy import String, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.wrappers import Response as BaseResponse

from kaptrain.db import (
    Base,
    Database,
    UTCDateTime,
    after_commit,
    begin_writing,
    has_writes,
    queued_statement,
    utcnow,
)
from kaptrain.extensions import csrf

log = logging.getLogger(__name__)

CACHED_ENDPOINTS = frozenset({"courses.course", "courses.module", "courses.dashboard", "quizzes.quiz"})
PLACEHOLDER = "\x00csrf\x00"  # no rendered page can contain NUL (the site refuses it in every input)
TOKEN_REUSE_SECONDS = 60  # a cached page's CSRF token is signed again once it is this old
MAX_TOKENS = 20_000  # signed tokens remembered per process (the store is emptied when full)

# What the triggers of migration 0011 watch (tests/test_page_cache.py holds the database to these lists).
LEARNER_TABLES = frozenset(
    {
        "accommodations",
        "attempts",
        "attempt_items",
        "attestations",
        "certificates",
        "enrolments",
        "evaluations",
        "module_progress",
    }
)
GLOBAL_TABLES = frozenset(
    {
        "courses",
        "modules",
        "module_revisions",
        "questions",
        "question_revisions",
        "quizzes",
        "quiz_settings_revisions",
        "settings",
        "vignettes",
        "vignette_revisions",
    }
)
# Tables no cached page reads, each with the reason; a new table must be put in one of the three groups.
UNSHOWN_TABLES = {
    "accommodation_changes": "the staff history of accommodations (the grants themselves are watched)",
    "account_tokens": "email links, shown only on account pages",
    "activity_clocks": "when time was last credited; the credited seconds live in progress and attempts",
    "alembic_version": "the schema version",
    "audit_log": "staff pages only",
    "cache_epochs": "the versions themselves",
    "certificate_files": "the stored PDF, downloaded, never shown on a page (the certificate row is watched)",
    "drafts": "unpublished authoring work; learners see only published revisions",
    "ended_sessions": "logged-out logins: every session check (STAMP_SQL, SESSION_SQL) refuses them itself",
    "recovery_codes": "account pages only",
    "status_lists": "the public revocation list of credentials",
    "uploads": "files served at their own addresses; pages show them through module revisions",
    "users": "watched by its own trigger: a change to any column a page can show bumps that learner's version",
}


class CacheEpoch(Base):
    """A version counter the database moves (see migration 0011_page_versions): the row "pages"."""

    __tablename__ = "cache_epochs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(server_default="0")


@dataclass(frozen=True)
class Entry:
    """A stored page: its HTML with the CSRF placeholder, and when (if ever) it stops being right."""

    body: str | bytes
    changes_at: dt.datetime | None
    on_hit: Callable[[], None] | None

    @property
    def size(self) -> int:
        """Bytes held (roughly: characters)."""
        return len(self.body)


class PageStore:
    """A least-recently-used store of pages bounded by total size, shared by the threads of one process."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # the session's raw token -> (signed token, when signed)

    def get(self, key: tuple[Any, ...], now: dt.datetime) -> Entry | None:
        """The entry under key if it is still right at `now`, marked as recently used; counts hits and misses."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (entry.changes_at is not None and now >= entry.changes_at):
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[Any, ...], entry: Entry) -> None:
        """Store entry, dropping the least recently used ones beyond the size limit."""
        if entry.size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += entry.size - (old.size if old else 0)
            self._entries[key] = entry
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def __len__(self) -> int:
        return len(self._entries)

    def fresh_token(self, raw: object) -> str | None:
        """The signed CSRF token kept for a session's raw token, if it was signed under TOKEN_REUSE_SECONDS ago."""
        found = self._tokens.get(raw) if isinstance(raw, str) else None
        return found[0] if found is not None and time.monotonic() - found[1] < TOKEN_REUSE_SECONDS else None

    def csrf_token(self) -> str:
        """The session's CSRF token for a page served from here: Flask-WTF's, signed at most TOKEN_REUSE_SECONDS
        ago (signing one per page was a sixth of a hit's cost; a token then lives that much less than its
        WTF_CSRF_TIME_LIMIT)."""
        name = current_app.config["WTF_CSRF_FIELD_NAME"]
        found = self.fresh_token(session.get(name))
        if found is not None:
            setattr(g, name, found)  # where Flask-WTF looks for the request's token
            return found
        token: str = generate_csrf()
        if len(self._tokens) >= MAX_TOKENS:
            self._tokens.clear()
        self._tokens[session[name]] = (token, time.monotonic())
        return token

    def clear(self) -> None:
        """Drop every page."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def init_page_cache(app: Flask) -> None:
    """Serve cached learner pages before anything else looks at the request; store good renders after."""
    megabytes = int(app.config.get("PAGE_CACHE_MB", 64))
    if megabytes <= 0:
        app.extensions["kaptrain.pages"] = None
        return
    app.extensions["kaptrain.pages"] = PageStore(megabytes * 1024 * 1024)
    # First of all before-request functions: the two-factor rule (a blueprint's) would load the user otherwise.
    app.before_request_funcs.setdefault(None, []).insert(0, _serve_cached)
    app.after_request(_store_rendered)


def store() -> PageStore | None:
    """The current app's page store (None when turned off)."""
    found: PageStore | None = current_app.extensions.get("kaptrain.pages")
    return found


def changes_at(moment: dt.datetime | None) -> None:
    """Say, from a view, when the page being rendered stops being right by the clock alone (None: never)."""
    if moment is not None:
        earlier = g.get("page_changes_at")
        g.page_changes_at = moment if earlier is None else min(earlier, moment)


def on_hit(action: Callable[[], None]) -> None:
    """Register, from a view, what must also happen each time its page is served from the cache."""
    g.page_on_hit = action


def _session_user() -> Learner | None:
    from kaptrain.auth import login_is_current  # noqa: PLC0415 - auth imports this module's peers
    from kaptrain.extensions import login_manager  # noqa: PLC0415

    if "_flashes" in session or not login_is_current(session.get("login_at"), current_app.config["SESSION_HOURS"]):
        return None
    if login_manager.session_protection and session.get("_id") != login_manager._session_identifier_generator():  # noqa: SLF001
        return None
    return session_learner(session.get("_user_id"), session.get("sid"))


def session_learner(token: object, sid: object = "") -> Learner | None:
    """The learner a Flask-Login session id ("id:version") and the cookie's login id (kaptrain.accounts.
    browser_sessions) name, not yet checked against the database."""
    from kaptrain.accounts.services import parse_session_token  # noqa: PLC0415 - accounts imports this module's peers

    found = parse_session_token(token) if isinstance(token, str) else None
    login = sid if isinstance(sid, str) and len(sid) <= 64 else ""
    return Learner(*found, login) if found else None


# True while the cookie's login has not been logged out (kaptrain.accounts.browser_sessions); `:sid` is "" for a
# cookie from before logins had ids, which nothing ends but a move of the session version.
NOT_ENDED_SQL = "NOT EXISTS (SELECT 1 FROM ended_sessions x WHERE x.sid = :sid)"

STAMP_SQL = (
    "SELECT u.session_version, u.is_active, u.role, u.pages_version, e.version "  # noqa: S608 - constants
    f"FROM users u, cache_epochs e WHERE u.id = :user AND e.name = 'pages' AND {NOT_ENDED_SQL}"
)


Params = dict[str, Any] | list[dict[str, Any]]  # a list: the statement once per item (executemany), no rows back
Run = Callable[[str, Params], list[tuple[Any, ...]]]


class _Plain:
    """Plain statements on one database: its placeholders and datetime processors, worked out once, and its own
    idle DB-API connections.

    The connections are opened through the engine (so they have its settings) and then kept out of its pool, so a
    request pays neither the pool's checkout and reset nor, on PostgreSQL, its ping: taking one is a list pop.
    There are as many as requests ever ran plain statements at once in this process; one that fails is closed,
    and the engine's dispose() closes the idle ones."""

    def __init__(self, database: Database) -> None:
        dialect = database.engine.dialect
        self.engine = database.engine
        self.sqlite = dialect.name == "sqlite"
        self.to_datetime = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        self.from_datetime = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
        self.named = dialect.paramstyle in ("qmark", "named")
        self._sql: dict[str, str] = {}
        self._idle: list[Any] = []
        self._inherited: list[Any] = []  # a forked child's copies of its parent's connections, left alone
        self._pid = os.getpid()
        event.listen(self.engine, "engine_disposed", lambda _engine: self.close_idle())

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters as the ORM would send them (datetimes stored as UTCDateTime stores them)."""
        convert = self.to_datetime
        if convert is None:
            return params
        return {k: convert(v) if isinstance(v, dt.datetime) else v for k, v in params.items()}

    def sql(self, statement: str) -> str:
        """`statement` with :name placeholders in the driver's own style."""
        found = self._sql.get(statement)
        if found is None:
            found = self._sql[statement] = re.sub(r":(\w+)", r":\1" if self.named else r"%(\1)s", statement)
        return found

    def execute(self, cursor: Any, statement: str, params: Params) -> None:
        """Send one statement: the one place plain statements reach the driver (tests/kill_server.py watches it,
        as it watches the engine's statements)."""
        if isinstance(params, list):
            cursor.executemany(self.sql(statement), [self.bind(one) for one in params])
        else:
            cursor.execute(self.sql(statement), self.bind(params))

    def commit(self, connection: Any) -> None:
        """Commit a write transaction (watched by tests/kill_server.py, as `execute` is)."""
        connection.commit()

    def take(self) -> Any:
        """An idle connection, or a new one."""
        self._after_fork()
        try:
            return self._idle.pop()
        except IndexError:
            proxied = self.engine.raw_connection()
            proxied.detach()
            return proxied.dbapi_connection

    def _after_fork(self) -> None:
        # A forked child (an RQ work horse, a PDF renderer) must neither use nor close the parent's connections:
        # closing one, even by letting it be garbage-collected, would end the parent's session on PostgreSQL.
        if self._pid != os.getpid():
            self._inherited, self._idle, self._pid = self._idle, [], os.getpid()

    def give_back(self, connection: Any) -> None:
        """Keep a connection that is idle again."""
        self._idle.append(connection)

    def close_idle(self) -> None:
        """Close every idle connection (the engine is being disposed of)."""
        self._after_fork()
        while self._idle:
            with contextlib.suppress(Exception):
                self._idle.pop().close()


def _plain() -> _Plain:
    found: _Plain | None = current_app.extensions.get("kaptrain.plain")
    database: Database = current_app.extensions["kaptrain.db"]
    if found is None or found.engine is not database.engine:
        found = current_app.extensions["kaptrain.plain"] = _Plain(database)
    return found


@contextlib.contextmanager
def statements(*, write: bool = False, one_write: bool = False) -> Iterator[Run]:
    """Run statements on a plain DB-API connection: a tenth of the cost of an ORM round trip. Parameters are
    written :name; datetimes are stored as the ORM stores them. With write=True the statements are one
    transaction, committed at the end (on SQLite it begins IMMEDIATE, queued as the site's writing requests
    are); otherwise each statement reads what is committed (PostgreSQL: autocommit; SQLite: no transaction is
    left open, so the next read sees every commit), and one_write=True says that one of them writes, as a
    transaction of its own (on SQLite it waits for the writers' turn, see `run_sql`)."""
    database: Database = current_app.extensions["kaptrain.db"]
    plain = _plain()
    if isinstance(database.bind, Connection):  # tests: the connection that holds the test's transaction
        connection = database.bind

        def run_in_test(sql: str, params: Params) -> list[tuple[Any, ...]]:
            bound = [plain.bind(one) for one in params] if isinstance(params, list) else plain.bind(params)
            result = connection.execute(text(sql), bound)
            return [tuple(row) for row in result] if result.returns_rows else []

        with connection.begin_nested() if write else contextlib.nullcontext():
            yield run_in_test
        return
    raw = plain.take()
    try:
        cursor = raw.cursor()

        def run(sql: str, params: Params) -> list[tuple[Any, ...]]:
            plain.execute(cursor, sql, params)
            return (
                [tuple(row) for row in cursor.fetchall()] if not isinstance(params, list) and cursor.description else []
            )

        if plain.sqlite:
            if write:
                begin_writing(raw, lambda begin: plain.execute(cursor, begin, {}))
        else:
            raw.autocommit = not write  # a read is one round trip: no BEGIN and ROLLBACK
        with queued_statement(raw) if one_write and plain.sqlite else contextlib.nullcontext():
            yield run
        if write:
            plain.commit(raw)
    except BaseException:
        _roll_back_or_close(plain, raw)
        raise
    plain.give_back(raw)


def _roll_back_or_close(plain: _Plain, raw: Any) -> None:
    try:
        raw.rollback()  # a refusal raised inside the block (a 404): the connection is still good
    except Exception:  # noqa: BLE001 - the connection itself failed: closed, and never used again
        with contextlib.suppress(Exception):
            raw.close()
        return
    plain.give_back(raw)


def run_sql(sql: str, params: dict[str, Any], *, write: bool = False) -> tuple[Any, ...] | None:
    """One statement (see `statements`); its first row, if any. One that writes runs in autocommit too, a
    transaction of its own, with no BEGIN and COMMIT around it: on PostgreSQL one round trip instead of three; on
    SQLite it waits for the writers' turn as a write transaction does, and the lock is held for one call instead of
    three."""
    with statements(one_write=write) as run:
        rows = run(sql, params)
    return rows[0] if rows else None


def on_sqlite() -> bool:
    """Whether plain statements run on SQLite (which has no UPDATE inside WITH)."""
    return _plain().sqlite


def read_datetime(value: Any) -> dt.datetime | None:
    """A datetime read by `statements`, as the ORM would hand it back (aware, UTC)."""
    processor = _plain().from_datetime
    result: dt.datetime | None = processor(value) if processor else value
    return result


class Learner(NamedTuple):
    """Who a fast path serves: the session's user id, session version and login id, not yet checked against the
    database."""

    user_id: int
    session_version: int
    sid: str = ""

    def params(self) -> dict[str, Any]:
        """The parameters of SESSION_SQL."""
        return {"user": self.user_id, "session": self.session_version, "yes": True, "sid": self.sid}


# A fast path's first statement joins users as u on this, so the one statement that finds what it needs also checks
# what STAMP_SQL checks for a cached page (same session version, not logged out, active, a learner): a round trip
# fewer.
SESSION_SQL = (
    f"u.id = :user AND u.session_version = :session AND u.is_active = :yes AND u.role = 'learner' AND {NOT_ENDED_SQL}"
)

NO_FORM: ImmutableMultiDict[str, str] = ImmutableMultiDict()  # what a GET's fast path is given: nothing to parse
# Set in the WSGI environ by kaptrain.fastlane when a fast path it ran answered None (the normal way must answer).
DECLINED = "kaptrain.fast_path_declined"
FastPath = Callable[[Learner, dict[str, Any], MultiDict[str, str]], BaseResponse | None]
_FAST_PATHS: dict[tuple[str, str], FastPath] = {}


def fast_path(endpoint: str, method: str = "GET") -> Callable[[FastPath], FastPath]:
    """Register a learner's way through an endpoint that needs no ORM: called with the session's learner, the
    URL's values and the form sent (empty for a GET) once the session cookie (and, for a POST, its CSRF token) is
    checked as for a cached page, in Flask's request or in kaptrain.fastlane's, which has none. Its
    first statement must check the learner against the database with SESSION_SQL; it answers, or returns None to
    let the request go the normal way (which it must also do when that check finds nothing)."""

    def register(handler: FastPath) -> FastPath:
        _FAST_PATHS[endpoint, method] = handler
        return handler

    return register


def fast_path_for(endpoint: str, method: str) -> FastPath | None:
    """The fast path registered for an endpoint and method (kaptrain.fastlane calls it without Flask's request)."""
    return _FAST_PATHS.get((endpoint, method))


def _serve_cached() -> BaseResponse | None:
    endpoint = request.endpoint or ""
    fast = None if DECLINED in request.environ else _FAST_PATHS.get((endpoint, request.method))
    if request.query_string or (fast is None and (request.method != "GET" or endpoint not in CACHED_ENDPOINTS)):
        return None
    pages = store()
    who = _session_user() if pages is not None else None
    if pages is None or who is None:
        return None
    if request.method != "GET" and current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect()  # this runs before Flask-WTF's own check: a bad token gets the site's 400 page here
    try:
        return _serve(pages, fast, who)
    except driver_error():
        # The database refused or a kept connection had died (that connection is closed): the normal way, whose
        # pool checks its connections, answers instead. A write here was rolled back, so nothing is done twice.
        log.warning("Plain statements failed for %s %s; serving it the normal way", request.method, request.path)
        return None


def location(endpoint: str, **values: Any) -> str:
    """The path of a page on this site, for a fast path's redirect: url_for in Flask's request; in the fast lane's,
    which has none, the same path from the site's routes under the lane's script root (`g.script_root`)."""
    if has_request_context():
        return url_for(endpoint, **values)
    adapter = current_app.url_map.bind("localhost", script_name=g.get("script_root") or "/")
    return adapter.build(endpoint, values)


def driver_error() -> type[Exception]:
    """The database driver's base error (what plain statements raise when the database refuses or is gone)."""
    error: type[Exception] = _plain().engine.dialect.loaded_dbapi.Error
    return error


def _serve(pages: PageStore, fast: FastPath | None, who: Learner) -> BaseResponse | None:
    if fast is not None:
        return fast(who, request.view_args or {}, NO_FORM if request.method == "GET" else request.form)
    key = page_key(who, request.path)
    if key is None:
        return None
    g.page_key = key
    body = hit(pages, key)
    if body is None:
        return None
    g.page_from_cache = True
    return Response(body.replace(PLACEHOLDER, pages.csrf_token()), mimetype="text/html")


def page_key(who: Learner, path: str) -> tuple[Any, ...] | None:
    """The key the learner's page at `path` is stored under now, after one statement that checks the session
    against the database and reads the two versions (None: the session is not a good learner's)."""
    stamp = run_sql(STAMP_SQL, {"user": who.user_id, "sid": who.sid})
    if stamp is None:
        return None
    version, active, role, learner_version, epoch = stamp
    if version != who.session_version or not active or str(role) != "learner":
        return None
    return (path, who.user_id, learner_version, epoch)


def hit(pages: PageStore, key: tuple[Any, ...]) -> str | None:
    """The stored page under key, still right now, with its CSRF placeholder; what its view does on every view
    (`on_hit`) is done. None: not stored, or no longer right by the clock."""
    entry = pages.get(key, utcnow())
    if entry is None or not isinstance(entry.body, str):
        return None
    if entry.on_hit is not None:
        entry.on_hit()
    return entry.body


def _store_rendered(response: Response) -> Response:
    key = g.get("page_key")
    if key is None or g.get("page_from_cache") or response.status_code != 200 or response.direct_passthrough:
        return response
    if response.mimetype != "text/html" or request_ctx.flashes or "_flashes" in session:
        return response  # a message was shown on this page (or is waiting for the next): not for showing again
    body = response.get_data(as_text=True)
    token = g.get("csrf_token")
    if token:
        body = body.replace(token, PLACEHOLDER)
    pages = store()
    assert pages is not None  # page_key is set only when there is a store
    entry = Entry(body, g.get("page_changes_at"), g.get("page_on_hit"))
    session_ = g.get("db_session")
    if session_ is not None and has_writes(session_):
        # Stored once the request's writes are committed (a rolled-back render must not be kept).
        after_commit(lambda: pages.put(key, entry), session_)
    else:
        pages.put(key, entry)
    return response


__all__ = [
    "SESSION_SQL",
    "CacheEpoch",
    "Learner",
    "changes_at",
    "fast_path",
    "hit",
    "init_page_cache",
    "on_hit",
    "on_sqlite",
    "page_key",
    "run_sql",
]
