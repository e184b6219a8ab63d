"""The worker that tests/test_kill.py kills: the real app under gunicorn, plus pause points that only tests add.

Started as `gunicorn --preload --workers 1 tests.kill_server:app`, with the site's settings in KAPTRAIN_*
variables and KILL_MARKER_DIR naming a folder for markers. A request with the header `X-Kill-At` pauses the
worker at that point, after writing `<X-Kill-Token>.paused.json` into the folder: the worker's pid, where it
stopped, and whether COMMIT was already sent. The test then sends SIGKILL to that pid. The points:

- `N` (1, 2, ...): before the request's Nth SQL statement goes to the database (BEGIN included);
- `commit`: the request's work is done and flushed, COMMIT about to be sent;
- `after-commit`: COMMIT has returned, the response is not sent yet;
- `key-index`: the signing keyring's index is written and about to be renamed into place (first issuance only).

A request whose point never comes (N past its last statement) completes and leaves `<token>.done.json`: how many
statements it ran, and how many of them before COMMIT. `X-Kill-Mutant: commit-after-claim` makes quiz grading
commit half-way, so the test can show that it notices such a bug. A request without these headers runs
untouched. The app knows nothing of this: the hooks are SQLAlchemy events, a WSGI wrapper and wrappers around
os.replace and one quiz function, installed here only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from kaptrain import create_app, pagecache
from kaptrain.credentials import keys
from kaptrain.quizzes import fast as quiz_fast
from kaptrain.quizzes import services as quiz_services

MARKERS = Path(os.environ["KILL_MARKER_DIR"])
FIXTURES = Path(__file__).parent / "fixtures" / "content"

app = create_app(
    {"MODULES_DIR": str(FIXTURES / "modules"), "QUIZZES_DIR": str(FIXTURES / "quizzes"), "RATELIMIT_ENABLED": False}
)
engine = app.extensions["kaptrain.db"].engine


class Plan:
    """Where the request in hand is to stop, and how far it got (one request at a time: a sync worker)."""

    def __init__(self) -> None:
        self.arm(None, "")

    def arm(self, at: str | None, token: str | None, mutant: str | None = None) -> None:
        """Watch the request that starts now (at None: not at all)."""
        self.at, self.token, self.mutant = at, token, mutant
        self.statements = 0
        self.before_commit: int | None = None  # statements run before COMMIT was sent

    @property
    def committed(self) -> bool:
        """COMMIT was sent for this request's transaction."""
        return self.before_commit is not None

    def pause(self, point: str, sql: str = "") -> None:
        """Tell the test where this worker stopped, then wait to be killed."""
        marker = {
            "pid": os.getpid(), "point": point, "statement": self.statements, "committed": self.committed,
            "sql": " ".join(sql.split())[:160],
        }  # fmt: skip
        self.write("paused", marker)
        time.sleep(600)
        os._exit(3)  # not killed: the test has gone; never carry on from a pause

    def write(self, kind: str, data: dict[str, Any]) -> None:
        """Leave <token>.<kind>.json for the test, whole or not at all."""
        scratch = MARKERS / f".{self.token}.{kind}.tmp"
        scratch.write_text(json.dumps(data))
        _replace(scratch, MARKERS / f"{self.token}.{kind}.json")


plan = Plan()
_replace = os.replace


def _watched(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Arm the plan before Flask sees the request (so the login check's statements count too) and report after
    everything, the commit point and the jobs it ran included, before gunicorn sends the response."""

    def watched(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = (environ.get(f"HTTP_X_KILL_{name}") for name in ("AT", "TOKEN", "MUTANT"))
        plan.arm(*headers)
        try:
            return wsgi_app(environ, start_response)
        finally:
            if plan.at is not None:
                plan.write("done", {"statements": plan.statements, "before_commit": plan.before_commit})
            plan.arm(None, "")

    return watched


app.wsgi_app = _watched(app.wsgi_app)  # type: ignore[method-assign]


@event.listens_for(engine, "before_cursor_execute")
def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if plan.at is None:
        return
    plan.statements += 1
    if plan.at == str(plan.statements):
        plan.pause(f"statement {plan.statements}", statement)


@event.listens_for(engine, "commit")
def _commit(_conn: Any) -> None:
    if plan.at is None or plan.committed:
        return
    if plan.at == "commit":
        plan.pause("before COMMIT")
    plan.before_commit = plan.statements


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if plan.at == "after-commit" and not session.in_nested_transaction():
        plan.pause("after COMMIT")


def _replace_keyring_index(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
    if plan.at == "key-index" and Path(dst).name == keys.INDEX_FILE:
        plan.pause("keyring index written, not yet renamed")
    _replace(src, dst, *args, **kwargs)


os.replace = _replace_keyring_index


def _commit_after_claim(session: Session, attempt: Any) -> int:
    # The mutant `X-Kill-Mutant: commit-after-claim`: the bug the kill test exists to catch, a COMMIT between
    # claiming an attempt and writing its answers. Only test_kill's self-check sends it.
    if plan.mutant == "commit-after-claim":
        session.commit()
    return _credit_time(session, attempt)


_credit_time = quiz_services._credit_time
quiz_services._credit_time = _commit_after_claim


# Plain statements (kaptrain.pagecache: the heartbeat, the PDF download and quiz submission take that way) reach
# the driver through _Plain.execute and _Plain.commit: they are counted and paused at exactly like the engine's.
_plain_execute = pagecache._Plain.execute
_plain_commit = pagecache._Plain.commit


def _watched_execute(self: pagecache._Plain, cursor: Any, statement: str, params: dict[str, Any]) -> None:
    _statement(None, cursor, statement)
    _plain_execute(self, cursor, statement, params)


def _watched_commit(self: pagecache._Plain, connection: Any) -> None:
    _commit(None)
    _plain_commit(self, connection)
    if plan.at == "after-commit":
        plan.pause("after COMMIT")


def _commit_after_claim_plainly(run: Callable[..., Any], *args: Any) -> None:
    # The same mutant on the plain way of grading: COMMIT sent between the claim and the answers.
    if plan.mutant == "commit-after-claim":
        run("COMMIT", {})  # a statement like any other here (a kill before it finds nothing committed) ...
        _commit(None)  # ... after which the claim is in the database
    _write_answers(run, *args)


pagecache._Plain.execute = _watched_execute  # type: ignore[method-assign]
pagecache._Plain.commit = _watched_commit  # type: ignore[method-assign]
_write_answers = quiz_fast.write_answers
quiz_fast.write_answers = _commit_after_claim_plainly  # type: ignore[assignment]
