"""The bare baseline of bench/scale.py: Flask + Jinja with no database, no session, no extensions.

Served by gunicorn with the same settings as the site, in the same run:
- GET /page/<bytes>: a page of about that many bytes rendered from a Jinja template (sections of escaped
  paragraphs, the shape of a learner page), the ceiling a learner page of that size is compared with;
- POST /post: reads the form and answers a small JSON body, the ceiling of heartbeat and quiz submission;
- GET /bytes/<bytes>: a stored-file-like response of that many bytes as a PDF attachment, the ceiling of a
  certificate download;
- POST /write/beat and POST /write/submission (only with BARE_DATABASE_URL set, on a table bench/scale.py makes):
  the same number of reads and writes as a heartbeat and a quiz submission, made the plainest way (the DB-API
  driver, a connection kept per thread, no session, no checks): how fast a route can go that must write what they
  write, against the bare POST.

    .venv/bin/gunicorn --pythonpath bench bare_app:app
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue

app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
TEMPLATE = "bare_page.html"
SENTENCE = (
    "Ketamine's dissociative effects & their meaning for the client are explored in preparation, "
    "during the session and in integration; the therapist <em>listens</em> before interpreting. "
)
NAV = [("Courses", "/courses"), ("My learning", "/dashboard"), ("Account", "/account"), ("Log out", "/logout")]


@functools.cache
def _sections(size: int) -> list[dict[str, Any]]:
    """Sections whose rendered page is about `size` bytes (measured once per size, then cached)."""
    with app.test_request_context():
        overhead = len(render_template(TEMPLATE, **_context([])).encode())
        paragraph = SENTENCE * 3
        one = len(render_template(TEMPLATE, **_context([_section(1, [paragraph])])).encode()) - overhead
        count = max(0, (size - overhead) // max(1, one))
        sections = [_section(i, [paragraph]) for i in range(count)]
        short = size - len(render_template(TEMPLATE, **_context(sections)).encode())
        if short > 40:  # a last, shorter paragraph makes up the difference
            sections.append(_section(count, ["x" * (short - 40)]))
        return sections


def _section(number: int, paragraphs: list[str]) -> dict[str, Any]:
    return {"heading": f"Section {number + 1}", "paragraphs": paragraphs}


def _context(sections: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": "A page of the same size", "nav": NAV, "sections": sections, "footer": "bare Flask + Jinja"}


@app.get("/page/<int:size>")
def page(size: int) -> ResponseReturnValue:
    """A Jinja page of about `size` bytes."""
    return render_template(TEMPLATE, **_context(_sections(size)))


@app.post("/post")
def post() -> ResponseReturnValue:
    """A bare POST route: read the form, answer a little JSON."""
    return jsonify(ok=True, fields=len(request.form))


@functools.cache
def _blob(size: int) -> bytes:
    return b"%PDF-1.7\n" + b"0" * max(0, size - 9)


@app.get("/bytes/<int:size>")
def blob(size: int) -> ResponseReturnValue:
    """A bare response of `size` bytes, sent as a PDF attachment like a stored certificate."""
    response = Response(_blob(size), mimetype="application/pdf")
    response.headers.set("Content-Disposition", "attachment", filename="bare.pdf")
    return response


# ---------------------------------------------------------------- the same writes, the plainest way

DATABASE_URL = os.environ.get("BARE_DATABASE_URL", "")
TABLE = "bench_bare_rows"
BLOCK = 16  # rows per submission: the attempt, its 12 drawn questions, the learner's clock and two spare
# Each site request writes its own learner's rows, so the twin's concurrent requests should rarely share one: with
# 4,096 blocks, two of 64 requests in flight pick the same block about 1.5% of the time.
ROWS = 4096 * BLOCK
_local = threading.local()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(sep=" ")  # text, as the site's SQLite stores its times


def _connection() -> Any:
    """This thread's connection, kept open (as the site's plain statements keep theirs), in autocommit."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        if DATABASE_URL.startswith("sqlite"):
            conn = sqlite3.connect(DATABASE_URL.split("///", 1)[1], isolation_level=None, timeout=30)
        else:
            import psycopg  # noqa: PLC0415 - only when measuring PostgreSQL

            conn = psycopg.connect(DATABASE_URL.replace("+psycopg", ""), autocommit=True)
        _local.conn = conn
    return conn


def _sql(statement: str) -> str:
    return statement if DATABASE_URL.startswith("sqlite") else statement.replace("?", "%s")


@contextmanager
def _transaction(conn: Any) -> Iterator[None]:
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")  # the write lock at once, as the site's writers take it
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    else:
        with conn.transaction():
            yield


@app.post("/write/beat")
def write_beat() -> ResponseReturnValue:
    """A heartbeat's database work: read one row, then write it in one statement (autocommit)."""
    conn = _connection()
    row = random.randrange(ROWS)  # noqa: S311 - not for security
    conn.execute(_sql(f"SELECT n, at FROM {TABLE} WHERE id = ?"), (row,)).fetchone()  # noqa: S608 - constants
    conn.execute(_sql(f"UPDATE {TABLE} SET n = n + 1, at = ? WHERE id = ?"), (_now(), row))  # noqa: S608
    return jsonify(ok=True, fields=len(request.form))


@app.post("/write/submission")
def write_submission() -> ResponseReturnValue:
    """A quiz submission's database work: read its rows in one statement, then one transaction of three statements
    (the attempt, its 12 answers in one UPDATE ... FROM VALUES, the learner's clock), rows in ascending order."""
    conn = _connection()
    first = random.randrange(ROWS // BLOCK) * BLOCK  # noqa: S311 - not for security
    read = _sql(f"SELECT id, n, at FROM {TABLE} WHERE id BETWEEN ? AND ? ORDER BY id")  # noqa: S608 - constants
    conn.execute(read, (first, first + 13)).fetchall()
    now = _now()
    answers = ", ".join(f"({first + 1 + k}, {k})" for k in range(12))
    with _transaction(conn):
        conn.execute(_sql(f"UPDATE {TABLE} SET n = n + 1, at = ? WHERE id = ?"), (now, first))  # noqa: S608
        conn.execute(
            f"WITH v (id, k) AS (VALUES {answers}) UPDATE {TABLE} SET n = v.k FROM v WHERE {TABLE}.id = v.id"  # noqa: S608
        )
        conn.execute(_sql(f"UPDATE {TABLE} SET at = ? WHERE id = ?"), (now, first + 13))  # noqa: S608
    return jsonify(ok=True, fields=len(request.form))
