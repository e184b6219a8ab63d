"""Load test: 200 learners for 2 minutes against gunicorn on loopback, with PostgreSQL and Redis; then the
database is checked against what the clients saw. `make load` runs it; docs/load-testing.md explains it.

Steps: recreate the load database (its name must contain "load"; a copy of the seed an earlier run kept as
<name>_seed, unless LOAD_FRESH_SEED=1), flush the load Redis database (never db 0), migrate, import the course,
seed the learners through the app's services (enrolled, disclosures acknowledged), start gunicorn, run
bench/load_learners.py with locust (headless), stop gunicorn, then print: requests, failures, server errors
(client side and gunicorn's log), attempts submitted by the clients against attempts graded in the database,
double submissions, and p50/p99 latencies. Exit status 1 when a check fails.

Settings (environment): LOAD_DATABASE_URL (postgresql+psycopg://postgres@127.0.0.1:5432/kap_load),
LOAD_REDIS_URL (redis://127.0.0.1:6379/5), LOAD_USERS (200), LOAD_SPAWN_RATE (5 per second),
LOAD_DURATION (120 seconds with every learner on the site, after they have arrived), LOAD_WORKERS (4) and
LOAD_THREADS (2) for gunicorn, LOAD_PORT (8765)."""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from kaptrain import create_app  # noqa: E402
from kaptrain.accounts import services as accounts  # noqa: E402
from kaptrain.accounts.models import User  # noqa: E402
from kaptrain.content.files import read_content  # noqa: E402
from kaptrain.content.loader import import_content  # noqa: E402
from kaptrain.content.models import Module  # noqa: E402
from kaptrain.courses import services as courses  # noqa: E402
from kaptrain.migrate import upgrade  # noqa: E402
from kaptrain.quizzes.models import Quiz  # noqa: E402

BIN = Path(sys.executable).parent
OUT = ROOT / "build" / "load"
DATABASE_URL = os.environ.get("LOAD_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/kap_load")
REDIS_URL = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/5")
USERS = int(os.environ.get("LOAD_USERS", "200"))
SPAWN_RATE = os.environ.get("LOAD_SPAWN_RATE", "5")
DURATION = int(os.environ.get("LOAD_DURATION", "120"))
WORKERS = os.environ.get("LOAD_WORKERS", "4")
THREADS = os.environ.get("LOAD_THREADS", "2")
PORT = int(os.environ.get("LOAD_PORT", "8765"))
EMAIL_PATTERN = "load-learner-%04d@example.org"
PASSWORD = "load-test-password-2026"  # noqa: S105 - throwaway accounts in a throwaway database


def _admin(url: str) -> tuple[str, str]:
    """The load database's name (checked) and a URL of the server's maintenance database."""
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() != "postgresql" or "load" not in name:
        sys.exit(f"LOAD_DATABASE_URL must be a PostgreSQL database whose name contains 'load' (got {name!r})")
    return name, parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def recreate_database(url: str) -> bool:
    """Drop and create the load database (only one whose name says it is for load tests), as a copy of the
    seeded template an earlier run kept (<name>_seed) when there is one; True when it was copied."""
    name, admin = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        template = f"{name}_seed"
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone()
        if exists and os.environ.get("LOAD_FRESH_SEED") != "1":
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return True
        conn.execute(f'CREATE DATABASE "{name}"')
        return False


def keep_as_template(url: str) -> None:
    """Keep the freshly seeded database as <name>_seed, so the next run copies it instead of seeding again."""
    name, admin = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}_seed" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}_seed" TEMPLATE "{name}"')


def flush_redis(url: str) -> None:
    """Empty the load test's Redis database (rate-limit counters of an earlier run)."""
    client = redis.Redis.from_url(url)
    if int(client.connection_pool.connection_kwargs.get("db", 0)) == 0:
        sys.exit("LOAD_REDIS_URL must name a Redis database other than 0 (it is flushed), e.g. .../5")
    client.flushdb()


def site_environment() -> dict[str, str]:
    """The environment gunicorn and the seeding share."""
    return {
        **os.environ,
        "KAPTRAIN_ENV": "development",  # production's Secure cookies would not come back over plain HTTP
        "KAPTRAIN_SECRET_KEY": secrets.token_hex(32),
        "KAPTRAIN_DATABASE_URL": DATABASE_URL,
        "KAPTRAIN_RATELIMIT_STORAGE_URI": REDIS_URL,
        "KAPTRAIN_TRUSTED_PROXIES": "1",  # each simulated learner comes from its own X-Forwarded-For address
        "KAPTRAIN_CREDENTIAL_KEY_DIR": str(OUT / "keys"),
        "KAPTRAIN_UPLOAD_DIR": str(OUT / "uploads"),
    }


def seed(env: dict[str, str]) -> dict[str, Any]:
    """Migrate, import the course and create the missing learners through the services; the course's steps.

    On a copy of an earlier run's seed, the migrations and the import bring it up to this code and content
    (both are idempotent) and only learners beyond those it holds are created."""
    app = create_app({"DATABASE_URL": DATABASE_URL, "SECRET_KEY": env["KAPTRAIN_SECRET_KEY"]})
    database = app.extensions["kaptrain.db"]
    upgrade(database.engine)
    with app.app_context():
        session = database.new_session()
        import_content(session, read_content(ROOT / "modules", ROOT / "quizzes"))
        course = courses.published_courses(session)[0]
        started = time.perf_counter()
        have = session.scalar(select(func.count()).select_from(User)) or 0
        for n in range(have + 1, USERS + 1):
            user = accounts.create_user(
                session,
                EMAIL_PATTERN % n,
                PASSWORD,
                accounts.Profile(full_name=f"Load Learner {n}", profession="Psychologist"),
                confirmed=True,
            )
            session.flush()
            courses.acknowledge_disclosures(session, courses.enrol(session, user.id, course))
        session.commit()
        took = time.perf_counter() - started
        print(
            f"learners: {have} from the kept seed, {max(0, USERS - have)} created in {took:.1f} s "
            "(argon2 as in production)"
        )
        rows = session.execute(
            select(Module.slug, Quiz.slug)
            .join(Quiz, Quiz.module_id == Module.id)
            .where(Module.course_id == course.id, Module.is_retired.is_(False), Quiz.is_retired.is_(False))
            .order_by(Module.position)
        ).all()
        slug = course.slug
        session.close()
    database.engine.dispose()
    return {"slug": slug, "steps": [{"module": m, "quiz": q} for m, q in rows]}


def start_gunicorn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """gunicorn on loopback, access log with status codes, until it answers."""
    log = (OUT / "gunicorn.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - our argv
        [
            str(BIN / "gunicorn"),
            "--workers",
            WORKERS,
            "--threads",
            THREADS,
            "--bind",
            f"127.0.0.1:{PORT}",
            "--access-logfile",
            str(OUT / "access.log"),
            "--access-logformat",
            "%(s)s %(m)s %(U)s %(M)s",
            "--timeout",
            "60",
            "run:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120  # workers import WeasyPrint and friends: slow on two cores
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=10):  # noqa: S310 - loopback
                pass
            booted = (OUT / "gunicorn.log").read_text(encoding="utf-8", errors="replace").count("Booting worker")
            if booted >= int(WORKERS):
                time.sleep(3)  # the last worker to boot is still importing
                return server
        except OSError:  # refused, reset or timed out while the workers boot
            time.sleep(0.5)
    server.terminate()
    server.wait(timeout=60)
    sys.exit(f"gunicorn did not answer on port {PORT}; see {OUT / 'gunicorn.log'}")


def ramp_seconds() -> int:
    """How long the learners take to arrive; the run lasts this plus DURATION, so all of them work DURATION."""
    return int(USERS / float(SPAWN_RATE) + 0.999)


def run_locust(course: dict[str, Any]) -> int:
    """The scenario, headless; locust's exit status."""
    env = {
        **os.environ,
        "LOAD_COURSE": json.dumps(course),
        "LOAD_EMAIL_PATTERN": EMAIL_PATTERN,
        "LOAD_PASSWORD": PASSWORD,
        "LOAD_CLIENT_REPORT": str(OUT / "client.json"),
        "LOAD_USERS": str(USERS),
    }
    command = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "bench" / "load_learners.py"),
        "--headless",
        "--users",
        str(USERS),
        "--spawn-rate",
        SPAWN_RATE,
        "--run-time",
        f"{ramp_seconds() + DURATION}s",
        "--stop-timeout",
        "30",
        "--host",
        f"http://127.0.0.1:{PORT}",
        "--csv",
        str(OUT / "locust"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    with (OUT / "locust.log").open("wb") as log:
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode  # noqa: S603


def database_checks(client: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Figures from the database and the checks against the clients' view: (lines, failures)."""
    app = create_app({"DATABASE_URL": DATABASE_URL, "SECRET_KEY": "x"})
    engine = app.extensions["kaptrain.db"].engine
    with engine.connect() as conn:
        by_status = dict(conn.execute(text("SELECT status, count(*) FROM attempts GROUP BY status")).all())
        submitted = {
            row[0]: row[1]
            for row in conn.execute(text("SELECT id, score FROM attempts WHERE status = 'submitted'")).all()
        }
        ungraded = conn.execute(
            text(
                "SELECT count(*) FROM attempts WHERE status = 'submitted' "
                "AND (score IS NULL OR passed IS NULL OR submitted_at IS NULL)"
            )
        ).scalar_one()
        graded_open = conn.execute(
            text("SELECT count(*) FROM attempts WHERE status <> 'submitted' AND score IS NOT NULL")
        ).scalar_one()
        items_ungraded = conn.execute(
            text(
                "SELECT count(*) FROM attempt_items i JOIN attempts a ON a.id = i.attempt_id "
                "WHERE a.status = 'submitted' AND (i.credit IS NULL OR i.selected IS NULL)"
            )
        ).scalar_one()
        numbering = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT user_id, quiz_id FROM attempts GROUP BY user_id, quiz_id "
                "HAVING count(*) <> max(number) OR count(DISTINCT number) <> count(*)) gaps"
            )
        ).scalar_one()
        heartbeats = conn.execute(text("SELECT coalesce(sum(seat_seconds), 0) FROM module_progress")).scalar_one()
    engine.dispose()

    seen = {int(k): v for k, v in client["graded"].items()}
    missing = sorted(set(seen) - set(submitted))
    unseen = sorted(set(submitted) - set(seen))
    wrong_score = sorted(a for a, s in seen.items() if a in submitted and s != round(submitted[a]))
    pairs = client["double_submits"]
    split = [p for p in pairs if len({s for s in p["scores"] if s is not None}) > 1 or None in p["scores"]]
    lines = [
        f"attempts in the database: {dict(sorted(by_status.items()))}",
        f"attempts submitted by the clients (result page seen): {len(seen)}",
        f"attempts graded in the database (status submitted): {len(submitted)}",
        f"  submitted without a score / passed / time: {ungraded}; graded but not submitted: {graded_open}",
        f"  answers of submitted attempts left ungraded: {items_ungraded}; attempt numbering gaps: {numbering}",
        f"  seen by a client but not graded: {len(missing)}; graded but never seen: {len(unseen)}; "
        f"score differs from the page: {len(wrong_score)}",
        f"double submissions (two at once): {len(pairs)}, both answered with one and the same grade: "
        f"{len(pairs) - len(split)}",
        f"active seat time credited: {heartbeats} s",
    ]
    failures = []
    if len(seen) != len(submitted) or missing or unseen:
        failures.append(f"client-submitted attempts ({len(seen)}) != graded in the database ({len(submitted)})")
    if ungraded or graded_open or items_ungraded or numbering or wrong_score:
        failures.append("an attempt is graded inconsistently (see the figures above)")
    if split:
        failures.append(f"{len(split)} double submissions got different answers: {split[:5]}")
    if not seen:
        failures.append("no attempt was submitted: the scenario did not reach the quizzes")
    return lines, failures


def locust_figures() -> tuple[list[str], dict[str, str]]:
    """Per-endpoint and total figures from locust's CSV."""
    with (OUT / "locust_stats.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = [f"{'endpoint':<44} {'requests':>8} {'fail':>5} {'p50 ms':>7} {'p99 ms':>7}"]
    total: dict[str, str] = {}
    for row in rows:
        label = f"{row['Type']} {row['Name']}".strip()
        lines.append(f"{label:<44} {row['Request Count']:>8} {row['Failure Count']:>5} {row['50%']:>7} {row['99%']:>7}")
        if row["Name"] == "Aggregated":
            total = row
    return lines, total


def percentile(values: list[float], share: float) -> float:
    """The value below which this share of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(share * len(ordered) + 0.999) - 1))] if ordered else 0.0


def phase_figures(timings: list[list[Any]], arrived_at: float) -> list[str]:
    """p50/p99 while the learners arrive (every login) and once all of them are on the site."""
    lines = []
    for phase, keep in (("arriving", lambda t: t < arrived_at), ("all on the site", lambda t: t >= arrived_at)):
        for label, wanted in (("every request", lambda _n: True), ("without logins", lambda n: "login" not in n)):
            times = [ms for when, ms, name in timings if keep(when) and wanted(name)]
            if times:
                lines.append(
                    f"  {phase:<16} {label:<15} {len(times):>6} requests  p50 {percentile(times, 0.5):>7.0f} ms"
                    f"  p99 {percentile(times, 0.99):>7.0f} ms"
                )
    return lines


def server_times() -> list[str]:
    """Time gunicorn's threads spent on each request (its access log), apart from the wait for a free thread."""
    spent: dict[str, list[float]] = {"logins (POST /login)": [], "every other request": []}
    with (OUT / "access.log").open(encoding="utf-8") as f:
        for line in f:
            _status, method, path, ms = line.split()
            login = method == "POST" and path == "/login"
            spent["logins (POST /login)" if login else "every other request"].append(float(ms))
    return [
        f"  {label:<32} {len(times):>6} requests  p50 {percentile(times, 0.5):>7.0f} ms  "
        f"p99 {percentile(times, 0.99):>7.0f} ms"
        for label, times in spent.items()
    ]


def server_side_errors() -> tuple[Counter[str], int]:
    """Status codes in gunicorn's access log, and unhandled errors in its error log."""
    statuses: Counter[str] = Counter()
    with (OUT / "access.log").open(encoding="utf-8") as f:
        for line in f:
            statuses[line.split(" ", 1)[0]] += 1
    log = (OUT / "gunicorn.log").read_text(encoding="utf-8", errors="replace")
    # A worker killed for a timeout answers nothing (its clients see the connection drop): count it too.
    return statuses, log.count("Traceback") + log.count("WORKER TIMEOUT")


def main() -> int:
    """Run everything and print the figures; exit 1 when a check fails."""
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in ("access.log", "gunicorn.log", "client.json", "locust.log"):
        (OUT / stale).unlink(missing_ok=True)
    env = site_environment()
    print(f"load database {make_url(DATABASE_URL).database}, Redis {REDIS_URL}")
    copied = recreate_database(DATABASE_URL)
    flush_redis(REDIS_URL)
    course = seed(env)
    if not copied:
        keep_as_template(DATABASE_URL)
    print(f"course {course['slug']}: {len(course['steps'])} modules with quizzes")
    server = start_gunicorn(env)
    print(
        f"gunicorn: {WORKERS} workers x {THREADS} threads on 127.0.0.1:{PORT}; "
        f"locust: {USERS} learners arriving {SPAWN_RATE}/s ({ramp_seconds()} s), then all of them for {DURATION} s"
    )
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        locust_status = run_locust(course)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    elapsed = time.monotonic() - started
    client = json.loads((OUT / "client.json").read_text(encoding="utf-8"))
    endpoint_lines, total = locust_figures()
    statuses, tracebacks = server_side_errors()
    server_errors = sum(n for code, n in statuses.items() if code.startswith("5"))
    db_lines, failures = database_checks(client)

    print()
    print("\n".join(endpoint_lines))
    print()
    print(
        f"requests: {total['Request Count']} in {elapsed:.0f} s ({float(total['Requests/s']):.1f}/s); "
        f"failures: {total['Failure Count']}"
    )
    print(
        f"server errors: {server_errors} in gunicorn's access log, {len(client['server_errors'])} seen by "
        f"clients, {tracebacks} tracebacks or worker timeouts in its log"
    )
    print(f"status codes: {dict(sorted(statuses.items()))}")
    print(
        f"machine load average (1 min) before / after the run: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(f"latency: p50 {total['50%']} ms, p99 {total['99%']} ms (all requests); by phase:")
    # The first learner's first request began the arrivals (locust itself takes a while to start).
    first = min(((when - ms / 1000) for when, ms, _n in client["timings"]), default=0.0)
    print("\n".join(phase_figures(client["timings"], first + ramp_seconds())))
    print("time in the server (gunicorn's log: processing only, not the wait for a free thread):")
    print("\n".join(server_times()))
    print(f"client actions: {client['counters']}")
    print("\n".join(db_lines))
    for said in client.get("other_answers", [])[:5]:
        print(f"  a submission answered with something other than its result: {said}")
    if server_errors or client["server_errors"] or tracebacks:
        failures.append("server errors")
    if int(total["Failure Count"]):
        failures.append(f"{total['Failure Count']} failed requests (see {OUT / 'locust_failures.csv'})")
    if locust_status not in (0, 1):  # 1: locust saw failures, already reported above
        failures.append(f"locust exited {locust_status} (see {OUT / 'locust.log'})")
    print()
    print("FAIL: " + "; ".join(failures) if failures else "OK: no server errors; every submitted attempt graded once")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
