"""A worker killed (SIGKILL) in the middle of a quiz submission or a certificate issuance leaves all of the change
or none of it, on SQLite and on PostgreSQL; the site then takes the same request again and does it exactly once.

How it works. The site runs as it does in production: gunicorn (`--preload`, one sync worker) serving the real app
on a database of its own (tests/scratch_database.py: a temporary SQLite file, or a new PostgreSQL database when
TEST_DATABASE_URL names one; not the `db` fixture's, whose work sits in a transaction that is rolled back and that
no other process can see). Learners are set up there through the services and committed. A learner logs in over
HTTP and posts the real form (CSRF token included). Each post names a kill point in a header; tests/kill_server.py,
loaded only into that gunicorn, pauses the worker there and writes a marker; the test reads the worker's pid from
it and sends SIGKILL, as the kernel's OOM killer or a `kill -9` would. Gunicorn starts a new worker and the test
posts again with the next point.

The points walked: before every SQL statement of the request, one by one (BEGIN on SQLite included), until the
request runs to its end; right before COMMIT; right after COMMIT, before the response is sent; and, for the first
certificate of a site, between writing the signing keyring's index and renaming it into place. After each kill,
a fresh connection reads every table the request touches and compares them with what they held before:

- killed before COMMIT: every row exactly as before (the attempt open, no answers, no score, no time credited; no
  attestation, certificate, PDF, status-list change or audit entry), and on SQLite `PRAGMA integrity_check` is ok
  with the dead writer's WAL left behind;
- killed after COMMIT: the whole change (the attempt graded with every answer and credit and the learner's time;
  the certificate active with its number, signed credential, stored PDF, status list and audit entry), the same
  rows a run that was never interrupted writes;
- afterwards the same post succeeds, and posting it once more changes nothing: one grade, one certificate.

The walk also checks itself: the uninterrupted run reports how many statements it sent before COMMIT, and that must
be the number of points walked, so no statement of the transaction was left out; and a worker made to commit half
way through grading (a mutant only this test can ask for) is caught leaving a half-graded attempt.

Run by hand: `.venv/bin/pytest tests/test_kill.py -v` (SQLite) and, for PostgreSQL,
`TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/<a database of yours> .venv/bin/pytest
tests/test_kill.py -v`; `-s` prints each kill and the statement it came before. About 25 s on SQLite and 20 s on
PostgreSQL (gunicorn's start and the setup included).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import MetaData, create_engine, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from kaptrain.accounts.models import User
from kaptrain.activity import ActivityClock
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services as certificates
from kaptrain.certificates import signing
from kaptrain.certificates.models import Certificate, CertificateFile, CertificateStatus, StatusList
from kaptrain.config import PROJECT_ROOT
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.courses import services as courses
from kaptrain.courses.models import ModuleProgress
from kaptrain.credentials import keys
from kaptrain.migrate import upgrade
from kaptrain.quizzes.grading import correct_ids
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, PASSWORD, make_test_app
from tests.factories import complete_learning, correct_answers, enrolled, evaluation_answers, make_user, quiz, start
from tests.scratch_database import scratch_database

pytestmark = pytest.mark.timeout(300)

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
SECRET = "kill-test-secret"  # noqa: S105 - a throwaway site
# What a quiz submission and a certificate issuance may write, and what they must leave alone.
QUIZ_TABLES = ("attempts", "attempt_items", "activity_clocks", "module_progress", "enrolments", "audit_log",
               "certificates")  # fmt: skip
CERTIFICATE_TABLES = ("attestations", "certificates", "certificate_files", "status_lists", "audit_log",
                      "evaluations", "attempts", "attempt_items", "enrolments")  # fmt: skip

# The tables every issuance writes to.
ISSUANCE = {"attestations", "certificates", "certificate_files", "audit_log"}

Rows = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]


@dataclass
class Outcome:
    """How one post ended: paused and killed at a marker, or run to the end (the response and its report)."""

    killed: dict[str, Any] | None
    response: requests.Response | None = None
    report: dict[str, Any] | None = None


class Site:
    """A gunicorn serving the app on a scratch database, a way to post to it and kill the worker, and the database."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.markers = folder / "markers"
        self.markers.mkdir()
        self.key_dir = folder / "keys"  # empty: the first certificate makes the site's signing key
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / "gunicorn.log"
        self.app = make_test_app(url, CREDENTIAL_KEY_DIR=str(self.key_dir), BASE_URL=self.base)
        self.process: subprocess.Popen[bytes] | None = None
        self.tables = MetaData()  # reflected once the site is migrated

    # -- the server ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start gunicorn and wait until it answers."""
        env = {
            **os.environ,
            "KAPTRAIN_DATABASE_URL": self.url,
            "KAPTRAIN_SECRET_KEY": SECRET,
            "KAPTRAIN_CREDENTIAL_KEY_DIR": str(self.key_dir),
            "KAPTRAIN_BASE_URL": self.base,
            "KILL_MARKER_DIR": str(self.markers),
        }
        for name in ("KAPTRAIN_ENV", "KAPTRAIN_REDIS_URL", "KAPTRAIN_SMTP_HOST"):
            env.pop(name, None)  # development settings; jobs (the issued email) inline; mail to the log
        argv = [GUNICORN, "--preload", "--workers", "1", "--timeout", "600", "--graceful-timeout", "2",
                "--bind", f"127.0.0.1:{self.port}", "tests.kill_server:app"]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited: {self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/login", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"gunicorn did not answer: {self.tail()}")

    def stop(self) -> None:
        """Stop gunicorn (and its worker)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        """The end of gunicorn's log."""
        return self.log.read_text(errors="replace")[-3000:]

    # -- a learner's browser --------------------------------------------------------------------------------------

    def browser(self, email: str) -> requests.Session:
        """A logged-in browser (the real login form, CSRF token and all)."""
        browser = requests.Session()
        token = self.csrf(browser, "/login")
        response = browser.post(f"{self.base}/login", data={"email": email, "password": PASSWORD,
                                                            "csrf_token": token}, allow_redirects=False)  # fmt: skip
        assert response.status_code == 302, response.text[:500]
        return browser

    def csrf(self, browser: requests.Session, path: str) -> str:
        """The CSRF token of the form on a page."""
        page = browser.get(f"{self.base}{path}")
        assert page.status_code == 200, (path, page.status_code)
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert found, path
        return found.group(1)

    def post(
        self, browser: requests.Session, path: str, data: dict[str, Any], kill_at: str | None, mutant: str = ""
    ) -> Outcome:
        """Post a form; with kill_at, SIGKILL the worker when it pauses there (the post then fails, as a browser's
        would). Without a pause the post completes; its response and the worker's report come back."""
        token = uuid.uuid4().hex
        headers = {"X-Kill-Token": token}
        if mutant:
            headers["X-Kill-Mutant"] = mutant
        if kill_at is not None:
            headers["X-Kill-At"] = kill_at
        result: dict[str, Any] = {}

        def send() -> None:
            try:
                result["response"] = browser.post(f"{self.base}{path}", data=data, headers=headers,
                                                  allow_redirects=False, timeout=120)  # fmt: skip
            except requests.ConnectionError as exc:
                result["error"] = exc

        sender = threading.Thread(target=send)
        sender.start()
        paused, done = self.markers / f"{token}.paused.json", self.markers / f"{token}.done.json"
        while sender.is_alive() and not paused.exists():
            time.sleep(0.005)
        if paused.exists():
            marker = json.loads(paused.read_text())
            _kill(marker["pid"])
            sender.join(30)
            assert "error" in result, "the post of a killed worker cannot have succeeded"
            return Outcome(marker)
        sender.join()
        assert "response" in result, (result, self.tail())
        report = json.loads(done.read_text()) if done.exists() else None
        return Outcome(None, result["response"], report)

    # -- the database, read with a fresh connection each time -----------------------------------------------------

    def rows(self, tables: tuple[str, ...]) -> Rows:
        """Every row of the tables, by primary key (a PDF by its digest), read on a new connection; on SQLite,
        first `PRAGMA integrity_check` (the file a killed writer left must be sound)."""
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            if not all(name in self.tables.tables for name in tables):
                self.tables.reflect(bind=engine, only=tables)
            out: Rows = {}
            with engine.connect() as conn:
                if engine.dialect.name == "sqlite":
                    assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
                for name in tables:
                    table = self.tables.tables[name]
                    keys_ = list(table.primary_key.columns)
                    out[name] = {
                        tuple(row[: len(keys_)]): tuple(_plain(v) for v in row[len(keys_) :])
                        for row in conn.execute(select(*keys_, *[c for c in table.columns if c not in keys_]))
                    }
            return out
        finally:
            engine.dispose()

    def session(self) -> Session:
        """A session on the scratch database, for setting up learners (committed) and reading results."""
        return Session(self.app.extensions["kaptrain.db"].engine)


def _plain(value: Any) -> Any:
    """A value as compared: bytes (a PDF) by digest, JSON by its text."""
    if isinstance(value, bytes | memoryview):
        return hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill(pid: int) -> None:
    """SIGKILL the worker and wait until it is gone (gunicorn reaps it and starts another)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):  # dead, waiting to be reaped: its sockets and locks are already released
            return
        time.sleep(0.005)
    pytest.fail(f"worker {pid} survived SIGKILL")


def changes(before: Rows, after: Rows) -> dict[str, set[tuple[Any, ...]]]:
    """The keys of the rows added, removed or changed in each table (tables with none left out)."""
    out = {}
    for table in before:
        keys_ = set(before[table]) | set(after[table])
        touched = {k for k in keys_ if before[table].get(k) != after[table].get(k)}
        if touched:
            out[table] = touched
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site on its own database, migrated, with the fixture course, served by gunicorn."""
    folder = tmp_path_factory.mktemp("kill")
    for url in scratch_database(folder, "kill"):
        served = Site(url, folder)
        upgrade(served.app.extensions["kaptrain.db"].engine)
        with served.session() as session:
            import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
            session.commit()
        served.start()
        try:
            yield served
        finally:
            served.stop()
            served.app.extensions["kaptrain.db"].engine.dispose()


@dataclass
class Walk:
    """A post repeated with a kill before each statement in turn, until one got past COMMIT."""

    points: list[int]  # the statements killed before, after each of which nothing had changed
    last: Outcome  # the post that got past COMMIT: killed after it, or run to the end

    def covered_every_statement_before_commit(self) -> bool:
        """Whether the points are all the statements the transaction sent before its COMMIT."""
        if self.last.killed is not None:
            return bool(self.last.killed["statement"] == len(self.points) + 1)
        return self.last.report is not None and self.last.report["before_commit"] == len(self.points)


def walk(site: Site, browser: requests.Session, path: str, form: dict[str, Any], tables: tuple[str, ...],
         mutant: str = "") -> Walk:  # fmt: skip
    """Kill the post before its 1st statement, its 2nd, ...: before COMMIT, nothing may have changed."""
    before = site.rows(tables)
    points = []
    for n in itertools.count(1):
        outcome = site.post(browser, path, form, str(n), mutant)
        if outcome.killed is None or outcome.killed["committed"]:
            return Walk(points, outcome)
        print(f"killed before statement {n}: {outcome.killed['sql']}")
        assert site.rows(tables) == before, f"killed before statement {n} ({outcome.killed['sql']}): rows changed"
        points.append(n)
    raise AssertionError("unreachable")


def quiz_taker(site: Site, name: str) -> tuple[str, int, dict[str, list[str]]]:
    """A learner with an open attempt at the alpha quiz (committed): email, attempt id and a form of right answers."""
    with site.session() as session:
        learner = make_user(session, email=f"{name}@example.org")
        enrolled(session, learner)
        alpha = quiz(session, "alpha-quiz")
        assert alpha.module is not None
        courses.open_module(session, learner.id, alpha.module)
        attempt = start(session, learner, alpha)
        # Begun a minute and a half ago, with the learner's time credited up to then: the submission credits that
        # time, so moving the learner's clock is among the statements walked.
        attempt.started_at -= dt.timedelta(seconds=90)
        session.merge(ActivityClock(user_id=learner.id, last_credit_at=attempt.started_at))
        answers = correct_answers(attempt)
        session.commit()
        return learner.email, attempt.id, answers


def assert_graded(site: Site, attempt_id: int) -> None:
    """The whole of a right submission: graded 100 %, every answer and credit kept, the learner's time credited."""
    with site.session() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        assert attempt.status == AttemptStatus.SUBMITTED and attempt.submitted_at is not None
        assert (attempt.score, attempt.passed) == (100.0, True)
        for item in attempt.items:
            assert set(item.selected or []) == correct_ids(item.revision.options) and item.credit == 1.0
        clock = session.get(ActivityClock, attempt.user_id)
        assert 89 <= attempt.active_seconds <= 120  # the minute and a half since it began (quiz_taker)
        assert clock is not None and clock.last_credit_at >= attempt.started_at + dt.timedelta(seconds=89)


def test_a_quiz_submission_killed_anywhere_is_kept_whole_or_not_at_all(site: Site) -> None:
    email, attempt_id, answers = quiz_taker(site, "quiz-walk")
    browser = site.browser(email)
    path = f"/attempts/{attempt_id}/submit"
    form = {**answers, "csrf_token": site.csrf(browser, f"/attempts/{attempt_id}")}
    before = site.rows(QUIZ_TABLES)

    killed = site.post(browser, path, form, "commit").killed
    assert killed is not None and killed["point"] == "before COMMIT"
    assert site.rows(QUIZ_TABLES) == before, "killed right before COMMIT: nothing may have changed"

    walked = walk(site, browser, path, form, QUIZ_TABLES)
    # Nothing runs after the COMMIT of a submission, so the walk ends with a post that runs to its end.
    outcome = walked.last
    assert outcome.report is not None and outcome.response is not None, outcome
    assert outcome.response.status_code == 302 and outcome.response.headers["Location"].endswith("/result")
    # The read, the claim, the answers and the learner's clock (and BEGIN on SQLite) at least.
    assert walked.covered_every_statement_before_commit() and len(walked.points) >= 4, outcome.report
    after = site.rows(QUIZ_TABLES)
    assert_graded(site, attempt_id)
    with site.session() as session:
        items = {(i.id,) for i in session.get(Attempt, attempt_id).items}
        user_id = session.scalar(select(Attempt.user_id).where(Attempt.id == attempt_id))
    assert changes(before, after) == {"attempts": {(attempt_id,)}, "attempt_items": items,
                                      "activity_clocks": {(user_id,)}}  # fmt: skip

    again = site.post(browser, path, form, None)  # a second click, a reload: graded once
    assert again.response is not None and again.response.status_code == 302
    assert site.rows(QUIZ_TABLES) == after
    result = browser.get(f"{site.base}/attempts/{attempt_id}/result")
    assert result.status_code == 200 and "100" in result.text


def test_a_quiz_submission_killed_after_commit_is_kept_whole(site: Site) -> None:
    email, attempt_id, answers = quiz_taker(site, "quiz-after-commit")
    browser = site.browser(email)
    path = f"/attempts/{attempt_id}/submit"
    form = {**answers, "csrf_token": site.csrf(browser, f"/attempts/{attempt_id}")}
    before = site.rows(QUIZ_TABLES)
    killed = site.post(browser, path, form, "after-commit").killed
    assert killed is not None and killed["point"] == "after COMMIT"
    after = site.rows(QUIZ_TABLES)
    assert_graded(site, attempt_id)
    assert set(changes(before, after)) == {"attempts", "attempt_items", "activity_clocks"}
    retried = site.post(browser, path, form, None)  # the learner, who saw no answer, submits again
    assert retried.response is not None and retried.response.status_code == 302
    assert site.rows(QUIZ_TABLES) == after


def certificate_candidate(site: Site, name: str) -> str:
    """A learner who has done everything but the attestation (committed); their email."""
    with site.session() as session:
        learner = make_user(session, email=f"{name}@example.org", full_name=f"Kim {name.title()}")
        enrolled(session, learner)
        done = complete_learning(session, learner)
        certificates.submit_evaluation(session, done, evaluation_answers(done.course))
        # An hour's reading measured on each module: the 3.5 hours the tests claim are issued without review.
        session.execute(update(ModuleProgress).where(ModuleProgress.user_id == learner.id).values(seat_seconds=3600))
        session.commit()
        return learner.email


def assert_issued(site: Site, email: str) -> Certificate:
    """The whole of an issuance: one active certificate, numbered, signed, its PDF stored, listed and audited."""
    with site.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
        held = session.scalars(select(Certificate).where(Certificate.user_id == user_id)).all()
        assert [c.status for c in held] == [CertificateStatus.ACTIVE]
        certificate = held[0]
        assert certificate.number and certificate.issued_at and certificate.hours == Decimal("3.50")
        assert certificate.credential is not None and certificate.credential["proof"]
        stored = session.get(CertificateFile, certificate.id)
        assert stored is not None and stored.pdf.startswith(b"%PDF")
        assert stored.sha256 == hashlib.sha256(stored.pdf).hexdigest()
        assert session.get(StatusList, signing.status_position(certificate)[0]) is not None
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.subject_type == "certificate",
                                            AuditEntry.subject_id == certificate.id)
        ).all()  # fmt: skip
        assert audited == ["certificate.issue"]
        session.expunge(certificate)
        return certificate


def key_files(site: Site) -> set[str]:
    return {p.name for p in site.key_dir.iterdir()} if site.key_dir.exists() else set()


def test_a_certificate_issuance_killed_anywhere_is_kept_whole_or_not_at_all(site: Site) -> None:
    email = certificate_candidate(site, "cert-walk")
    browser = site.browser(email)
    path = "/courses/demo-course/attestation"
    form = {"hours": "3.5", "confirm": "y", "csrf_token": site.csrf(browser, path)}
    before = site.rows(CERTIFICATE_TABLES)

    # The site's first certificate makes its signing key: killed between writing the keyring's index and renaming
    # it, the worker leaves a key file and a half-made index behind, and no row.
    assert keys.INDEX_FILE not in key_files(site)
    killed = site.post(browser, path, form, "key-index").killed
    assert killed is not None and killed["point"].startswith("keyring index")
    assert site.rows(CERTIFICATE_TABLES) == before
    assert f".{keys.INDEX_FILE}.tmp" in key_files(site) and keys.INDEX_FILE not in key_files(site)

    killed = site.post(browser, path, form, "commit").killed
    assert killed is not None and killed["point"] == "before COMMIT"
    assert site.rows(CERTIFICATE_TABLES) == before, "killed right before COMMIT: nothing may have changed"

    walked = walk(site, browser, path, form, CERTIFICATE_TABLES)
    # The issued email's job reads the certificate after COMMIT: the walk ends killing the worker there.
    assert walked.last.killed is not None or walked.last.response is not None
    assert walked.covered_every_statement_before_commit() and len(walked.points) >= 10, walked.last
    after = site.rows(CERTIFICATE_TABLES)
    certificate = assert_issued(site, email)
    assert set(changes(before, after)) == ISSUANCE | {"status_lists"}  # its first certificate makes the list
    # One key signs (the killed worker's half-written index was replaced); a key file the index does not name was
    # made by the killed request and never used; no temporary file is left.
    index = json.loads((site.key_dir / keys.INDEX_FILE).read_text())
    assert [k["id"] for k in index["keys"]] == [certificate.credential["proof"]["verificationMethod"].split("#")[0]]
    assert not {name for name in key_files(site) if name.endswith(".tmp")}

    again = site.post(browser, path, form, None)  # attesting again: told it is done, nothing more issued
    assert again.response is not None and again.response.status_code == 302
    assert site.rows(CERTIFICATE_TABLES) == after
    pdf = browser.get(f"{site.base}/certificates/{certificate.id}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_a_certificate_issuance_killed_after_commit_is_kept_whole(site: Site) -> None:
    email = certificate_candidate(site, "cert-after-commit")
    browser = site.browser(email)
    path = "/courses/demo-course/attestation"
    form = {"hours": "3.5", "confirm": "y", "csrf_token": site.csrf(browser, path)}
    before = site.rows(CERTIFICATE_TABLES)
    killed = site.post(browser, path, form, "after-commit").killed
    assert killed is not None and killed["point"] == "after COMMIT"
    after = site.rows(CERTIFICATE_TABLES)
    assert_issued(site, email)
    # The status list changes only when its bits or signature must (the site's first certificate created it).
    changed = set(changes(before, after))
    assert ISSUANCE <= changed <= ISSUANCE | {"status_lists"}, changed
    retried = site.post(browser, path, form, None)
    assert retried.response is not None and retried.response.status_code == 302
    assert site.rows(CERTIFICATE_TABLES) == after


def test_the_walk_notices_a_commit_in_the_middle(site: Site) -> None:
    """The harness checks itself: a worker made to COMMIT between claiming an attempt and writing its answers
    (the mutant in tests/kill_server.py) and killed just after leaves a half-graded attempt, which is neither the
    state before nor the whole change: the checks the tests above make would fail on it."""
    email, attempt_id, answers = quiz_taker(site, "quiz-mutant")
    browser = site.browser(email)
    path = f"/attempts/{attempt_id}/submit"
    form = {**answers, "csrf_token": site.csrf(browser, f"/attempts/{attempt_id}")}
    before = site.rows(QUIZ_TABLES)
    walked = walk(site, browser, path, form, QUIZ_TABLES, mutant="commit-after-claim")
    assert walked.last.killed is not None and walked.last.killed["committed"], walked.last
    half = site.rows(QUIZ_TABLES)
    assert half != before
    with pytest.raises(AssertionError):
        assert_graded(site, attempt_id)
    assert set(changes(before, half)) == {"attempts"}  # graded, without the answers or the learner's time
