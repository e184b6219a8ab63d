"""Two app servers and an RQ worker serve one site: nothing a learner does depends on which server answers.

Two gunicorn processes on two loopback ports stand in for two hosts behind a load balancer, with one fresh
PostgreSQL database, one Redis database (rate limits and the job queue) and `flask --app kaptrain worker`. One
learner's requests alternate between them: the login form from server A is posted to server B, a final assessment
is started on A, saved and submitted on B, the evaluation and attestation go to different servers, the issued
certificate's email is sent by the worker and its PDF downloaded from B. Failed logins for one account, split
between A and B (each from another address), reach the per-account limit at the same total as on one server.

Needs PostgreSQL (TEST_DATABASE_URL; skipped on the SQLite run) and Redis (skipped without it, failed under CI).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from kaptrain.certificates.models import Certificate
from kaptrain.config import PROJECT_ROOT
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.courses import services as courses
from kaptrain.courses.models import ModuleProgress
from kaptrain.migrate import upgrade
from kaptrain.quizzes.models import Attempt
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, PASSWORD, make_test_app
from tests.factories import correct_answers, enrolled, make_user, pass_quiz, record
from tests.redis_support import FLASK, REDIS_URL, redis_database, worker_env
from tests.scratch_database import scratch_database

pytestmark = pytest.mark.timeout(600)

GUNICORN = str(Path(FLASK).with_name("gunicorn"))
LEARNER = "two-servers@example.org"
TARGET = "target-of-guessing@example.org"
LOGIN_LIMIT = 4  # per minute, per client address and per account
SECRET = "two-servers-shared-secret"  # noqa: S105 - a throwaway site; every server must sign with the same key


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """TEST_DATABASE_URL when it is PostgreSQL; the test is skipped on the SQLite run."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("two app servers share one PostgreSQL database: set TEST_DATABASE_URL to a PostgreSQL database")
    return url


@pytest.fixture(scope="module")
def site_database(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh PostgreSQL database beside the test database, dropped afterwards."""
    yield from scratch_database(tmp_path_factory.mktemp("two-servers"), "two_servers")


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[Redis]:
    """The test Redis database (flushed; skipped without Redis, failed under CI)."""
    yield from redis_database()


def prepare_site(url: str) -> None:
    """Migrate, import the fixture course, and take a learner to the final assessment (services, no server)."""
    app = make_test_app(url)
    database = app.extensions["kaptrain.db"]
    upgrade(database.engine)
    with app.app_context():
        session = database.new_session()
        import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
        learner = make_user(session, email=LEARNER, full_name="Sam Twoservers")
        make_user(session, email=TARGET)
        enrolled(session, learner)
        pass_quiz(session, learner, "alpha-quiz")
        pass_quiz(session, learner, "beta-quiz")
        gamma = record(session, learner).modules[2]
        gamma.progress = courses.open_module(session, learner.id, gamma.module)
        courses.mark_read(session, gamma)
        # An hour's reading measured on each module: the hours the learner claims are issued without review.
        session.execute(update(ModuleProgress).where(ModuleProgress.user_id == learner.id).values(seat_seconds=3600))
        session.commit()
        session.close()
    database.engine.dispose()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_environment(url: str) -> dict[str, str]:
    """What every server and the worker share: the database, Redis (jobs and, by default, rate limits), the key."""
    env = worker_env(url)
    env.update(
        KAPTRAIN_SECRET_KEY=SECRET,
        KAPTRAIN_LOGIN_RATE_LIMIT=f"{LOGIN_LIMIT} per minute",
        KAPTRAIN_TRUSTED_PROXIES="1",  # the rate-limit check sends each failed login from another address
        KAPTRAIN_BASE_URL="http://127.0.0.1",
    )
    for key in ("KAPTRAIN_RATELIMIT_STORAGE_URI", "KAPTRAIN_RATELIMIT_ENABLED", "KAPTRAIN_SMTP_HOST"):
        env.pop(key, None)  # rate limits on, stored where KAPTRAIN_REDIS_URL says; mail to the log
    return env


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process of the site, its output in a log file."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers (workers import WeasyPrint: slow on a small machine)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def site(site_database: str, shared_redis: Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Servers A and B and a worker on one database and one Redis; their base URLs and logs."""
    prepare_site(site_database)
    env = site_environment(site_database)
    logs = tmp_path_factory.mktemp("two-servers")
    ports = {"A": free_port(), "B": free_port()}
    processes = []
    try:
        for name, port in ports.items():
            argv = [GUNICORN, "--workers", "1", "--bind", f"127.0.0.1:{port}", "--timeout", "120", "run:app"]
            processes.append(start(argv, env, logs / f"server-{name}.log"))
        processes.append(start([FLASK, "--app", "kaptrain", "worker"], env, logs / "worker.log"))
        for (name, port), process in zip(ports.items(), processes, strict=False):
            wait_for(f"http://127.0.0.1:{port}/", process, logs / f"server-{name}.log")
        yield {"A": f"http://127.0.0.1:{ports['A']}", "B": f"http://127.0.0.1:{ports['B']}", "logs": str(logs)}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def csrf(page: requests.Response) -> str:
    """The CSRF token of the page's (first) form."""
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page.text
    )
    assert found, page.text[:500]
    return found.group(1)


def ok(response: requests.Response, status: int = 200) -> requests.Response:
    """The response, asserted to have the status (redirects are not followed)."""
    assert response.status_code == status, (response.url, response.status_code, response.text[:800])
    return response


def test_one_learner_alternating_between_two_servers(site: dict[str, str], site_database: str) -> None:
    a, b = site["A"], site["B"]
    browser = requests.Session()  # cookies are per host, not per port: both servers get the same session cookie

    # Login: the form (and its CSRF token) from A, posted to B; the session then works on A.
    token = csrf(ok(browser.get(f"{a}/login")))
    ok(browser.post(f"{b}/login", data={"email": LEARNER, "password": PASSWORD, "csrf_token": token},
                    allow_redirects=False), 302)  # fmt: skip
    assert "Sam Twoservers" in ok(browser.get(f"{a}/dashboard")).text

    # The final assessment: started on A, answers saved on B, submitted on B, the result read on A.
    quiz = ok(browser.get(f"{b}/courses/demo-course/quizzes/demo-final"))
    started = ok(browser.post(f"{a}/courses/demo-course/quizzes/demo-final/start", data={"csrf_token": csrf(quiz)},
                              allow_redirects=False), 302)  # fmt: skip
    attempt_id = int(started.headers["Location"].rstrip("/").split("/")[-1])
    page = ok(browser.get(f"{b}/attempts/{attempt_id}"))
    answers = _right_answers(site_database, attempt_id)
    token = csrf(page)
    ok(browser.post(f"{b}/attempts/{attempt_id}/save", data={**answers, "csrf_token": token},
                    headers={"Accept": "application/json"}))  # fmt: skip
    ok(browser.post(f"{b}/attempts/{attempt_id}/submit", data={**answers, "csrf_token": token},
                    allow_redirects=False), 302)  # fmt: skip
    assert "Passed" in ok(browser.get(f"{a}/attempts/{attempt_id}/result")).text

    # Evaluation on A, attestation on B: the certificate is issued, its email goes through the queue.
    evaluation = ok(browser.get(f"{a}/courses/demo-course/evaluation"))
    ok(browser.post(f"{a}/courses/demo-course/evaluation", allow_redirects=False, data={
        "csrf_token": csrf(evaluation), "objective_1": "met", "relevance": "5", "quality": "5", "overall": "5",
        "free_of_bias": "yes", "evidence_balanced": "yes", "practice_change": "already",
    }), 302)  # fmt: skip
    attestation = ok(browser.get(f"{b}/courses/demo-course/attestation"))
    ok(browser.post(f"{b}/courses/demo-course/attestation", allow_redirects=False,
                    data={"csrf_token": csrf(attestation), "hours": "1", "confirm": "y"}), 302)  # fmt: skip
    certificate_id = _certificate_id(site_database)
    assert f"/certificates/{certificate_id}.pdf" in ok(browser.get(f"{a}/dashboard")).text
    pdf = ok(browser.get(f"{b}/certificates/{certificate_id}.pdf"))
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    _wait_for_mail(Path(site["logs"]) / "worker.log", "your certificate for")


def test_rate_limits_are_counted_across_both_servers(site: dict[str, str]) -> None:
    a, b = site["A"], site["B"]
    guesser = requests.Session()
    token = csrf(ok(guesser.get(f"{a}/login")))
    statuses = []
    for attempt in range(LOGIN_LIMIT + 2):
        server = (a, b)[attempt % 2]
        response = guesser.post(
            f"{server}/login",
            data={"email": TARGET, "password": "not the password", "csrf_token": token},
            headers={"X-Forwarded-For": f"198.51.100.{attempt + 1}"},  # a new address each time
            allow_redirects=False,
        )
        statuses.append(response.status_code)
    # Each server alone saw at most 3 attempts; the account's limit of 4 was reached across the two.
    assert statuses == [422] * LOGIN_LIMIT + [429, 429], statuses
    assert Redis.from_url(REDIS_URL).keys("LIMITS*"), "the counts are kept in the shared Redis"
    assert Queue(connection=Redis.from_url(REDIS_URL)).count == 0  # every job was taken by the worker


def _right_answers(url: str, attempt_id: int) -> dict[str, list[str]]:
    """The form that answers the attempt's questions rightly, read from the database as the page cannot say."""
    app = make_test_app(url)
    database = app.extensions["kaptrain.db"]
    session = database.new_session()
    try:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        return correct_answers(attempt)
    finally:
        session.close()
        database.engine.dispose()


def _certificate_id(url: str) -> int:
    app = make_test_app(url)
    database = app.extensions["kaptrain.db"]
    session = database.new_session()
    try:
        found = session.scalar(select(Certificate.id).order_by(Certificate.id.desc()))
        assert found is not None, "no certificate was issued"
        return int(found)
    finally:
        session.close()
        database.engine.dispose()


def _wait_for_mail(log: Path, subject: str) -> None:
    """Until the worker's log shows the message (the worker sent it, not a web server)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subject in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    pytest.fail(f"the worker did not send {subject!r}: {log.read_text(errors='replace')[-2000:]}")
