"""What the fuzz tests share: the hypothesis profile, hostile values, and the checks every answer must pass.

The profile "kaptrain-fuzz": no deadline (a request on PostgreSQL may take a while), no example database (nothing
is written into the checkout), derandomised when CI is set (CI=1: the same examples every run, so a CI failure
reproduces), and the health checks that would only complain about slow, fixture-built examples switched off.
`fuzz(n)` gives n examples per test; KAPTRAIN_FUZZ_EXAMPLES=500 gives 500 to every test instead. Hypothesis's own
caches go to the temporary folder (kaptrain-hypothesis), not into the checkout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import select
from sqlalchemy.engine import Connection
from werkzeug.test import TestResponse

from kaptrain.db import Base, Database

# Hypothesis keeps caches (constants it found in the code, Unicode tables) beside the checkout unless told otherwise:
# keep them in the temporary folder (HYPOTHESIS_STORAGE_DIRECTORY, when set, still wins).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "kaptrain-hypothesis")

PROFILE = "kaptrain-fuzz"
EXAMPLES = int(os.environ.get("KAPTRAIN_FUZZ_EXAMPLES") or 0)
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

settings.register_profile(
    PROFILE,
    deadline=None,
    database=None,
    derandomize=IN_CI,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # fixtures build the world once; each example rolls back its own work
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)


def fuzz(examples: int) -> settings:
    """The fuzz profile with this many examples per test (KAPTRAIN_FUZZ_EXAMPLES, when set, wins)."""
    return settings(settings.get_profile(PROFILE), max_examples=EXAMPLES or examples)


# ---------------------------------------------------------------- hostile values

SPECIAL_TEXT = (
    "",
    " ",
    "   \t ",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "line\nbreak",
    "\r\n",
    "\u202eevil\u202c",  # right-to-left override
    "\u200b",
    "\ufeffbom",
    "\u0085",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-0",
    "0",
    "-1",
    "1.5",
    "0x1f",
    "1_000",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
    "\u00b2",  # SUPERSCRIPT TWO: str.isdigit() says yes, int() says no
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    str(10**40),
    "true",
    "false",
    "null",
    "None",
    "[]",
    "{}",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR '1'='1",
    "1; DROP TABLE users; --",
    "%s%s%n",
    "{{ 7*7 }}",
    "../../etc/passwd",
    "admin",
    "instructor",
    "learner",
    "user@example.org",
    "a@b",
    "@",
    "😀" * 5,
)

long_text = st.tuples(
    st.sampled_from(["x", "é", "<b>", "\x00", "9", " ", "😀"]), st.sampled_from([256, 4097, 100_000])
).map(lambda t: t[0] * t[1])
numbers_as_text = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%d %B %Y", "%Y-%m-%dT%H:%M:%S", "%y-%m-%d")
dates_as_text = st.one_of(
    st.tuples(st.dates(), st.sampled_from(DATE_FORMATS)).map(lambda t: t[0].strftime(t[1])),
    st.sampled_from(["2026-02-30", "2026-13-01", "0000-00-00", "99999-01-01", "2026-1-1", "1/2/3", "tomorrow"]),
)
control_text = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Mn"]), max_size=12)
hostile_text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(max_size=40),
    control_text,
    numbers_as_text,
    dates_as_text,
    long_text,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
file_names = st.one_of(
    st.sampled_from(["image.png", "photo.JPG", "x.svg", "", ".", "../../etc/passwd", "a\x00.png", "é.gif", "x" * 300]),
    st.text(max_size=30),
)


# ---------------------------------------------------------------- what every answer must look like

TRACEBACK_MARKERS = ("Traceback (most recent call last)", "werkzeug.debug", 'File "/')
SITE_LAYOUT = 'class="skip-link"'  # every page rendered from templates/base.html has it
# A refusal a person can act on: the error page, a field marked invalid, or a message announced as an alert or a
# status (a form's error summary, a flashed message, a verdict).
REFUSAL_MARKERS = ('class="error-page"', 'aria-invalid="true"', 'role="alert"', 'role="status"')


def assert_readable(response: TestResponse, context: str, errors: list[str]) -> None:
    """No 500 and no traceback; a refusal is a site page (or JSON) that says what went wrong in words."""
    logged = "\n".join(errors)
    assert response.status_code < 500, f"{context}: {response.status_code}\n{logged}"
    assert not errors, f"{context}: the app logged an unexpected error\n{logged}"
    body = response.get_data(as_text=True) if response.mimetype.startswith(("text/", "application/json")) else ""
    for marker in TRACEBACK_MARKERS:
        assert marker not in body, f"{context}: the answer shows a traceback"
    if response.status_code < 400:
        return
    if response.is_json:
        payload = response.get_json()
        assert isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"], context
        return
    assert response.mimetype == "text/html", f"{context}: a {response.status_code} answered as {response.mimetype}"
    assert SITE_LAYOUT in body, f"{context}: a {response.status_code} without the site's layout:\n{body[:500]}"
    assert any(m in body for m in REFUSAL_MARKERS), f"{context}: a {response.status_code} that says nothing:\n{body}"


class ErrorLog(logging.Handler):
    """Collects what the app logs at ERROR (an unhandled exception is logged there before the 500 page)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message and its traceback."""
        self.records.append(self.format(record))


@contextlib.contextmanager
def app_errors() -> Iterator[list[str]]:
    """Everything the kaptrain loggers report at ERROR while the block runs."""
    handler = ErrorLog()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("kaptrain")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


# ---------------------------------------------------------------- the database: what changed, and undoing it


def bound_connection(app: Flask) -> Connection:
    """The connection holding the test's transaction (the `db` fixture binds the app to it)."""
    database: Database = app.extensions["kaptrain.db"]
    assert isinstance(database.bind, Connection), "use the db fixture: requests must run in the test's transaction"
    return database.bind


def _plain(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


def fingerprint(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: compared before and after a refused request."""
    out = {}
    for table in Base.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows = connection.execute(select(table).order_by(*order)).all()
        out[table.name] = [tuple(_plain(v) for v in row) for row in rows]
    return out


def changed_tables(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """The tables whose rows differ."""
    return [name for name in before if before[name] != after.get(name)]


@contextlib.contextmanager
def rolled_back(app: Flask, clients: list[FlaskClient]) -> Iterator[Connection]:
    """Run one example in a savepoint that is rolled back afterwards, and give the clients their cookies back
    (an example that logs out or changes a password must not change who the next example is)."""
    connection = bound_connection(app)
    jars = [dict(c._cookies or {}) for c in clients]  # noqa: SLF001 - werkzeug keeps the jar here
    savepoint = connection.begin_nested()
    try:
        yield connection
    finally:
        if savepoint.is_active:
            savepoint.rollback()
        for client, jar in zip(clients, jars, strict=True):
            client._cookies = dict(jar)  # noqa: SLF001
