"""Staff pages at scale: time the item analysis, the learner overview, the evaluation summary, the admin reports
and their CSVs on a data set of 10,000 learners, about 100,000 quiz attempts and a million answers.

    .venv/bin/python bench/staff_pages.py                       # SQLite, build/staff-bench.sqlite3 (kept)
    .venv/bin/python bench/staff_pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/kap_bench
    .venv/bin/python bench/staff_pages.py --fresh --learners 2000   # rebuild the data set first

The data set is made once with `flask demo seed --learners N` (kaptrain/demo_seed.py) on the shipped course and
kept (rebuilt with --fresh). Each page is requested through the Flask test client as a logged-in instructor or
administrator: the figure is the whole request (queries, Python, template), the median of --rounds after one
warm-up, with the SQL statements it ran. Streamed CSVs are read to the end; their peak memory is what tracemalloc
saw while the generator ran (Python allocations, in a separate run so tracing does not slow the timing).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp  # noqa: E402
from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import Engine, event, func, select, text, update  # noqa: E402

from kaptrain import create_app  # noqa: E402
from kaptrain.accounts import services as accounts  # noqa: E402
from kaptrain.accounts.models import Role, User  # noqa: E402
from kaptrain.config import PROJECT_ROOT  # noqa: E402
from kaptrain.content.files import read_content  # noqa: E402
from kaptrain.content.loader import import_content  # noqa: E402
from kaptrain.db import utcnow  # noqa: E402
from kaptrain.migrate import upgrade  # noqa: E402
from kaptrain.quizzes.models import Attempt, Quiz  # noqa: E402

DEFAULT_URL = f"sqlite:///{PROJECT_ROOT / 'build' / 'staff-bench.sqlite3'}"
STAFF_PASSWORD = "staff bench password 2026"  # noqa: S105 - a throwaway benchmark account
COURSE = "kap-foundations"
ROUNDS = 5


def build(app: Flask, learners: int) -> None:
    """Import the shipped course, then seed the learners with `flask demo seed`."""
    database = app.extensions["kaptrain.db"]
    session = database.new_session()
    import_content(session, read_content(PROJECT_ROOT / "modules", PROJECT_ROOT / "quizzes"))
    session.commit()
    session.close()
    start = time.perf_counter()
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--learners", str(learners)])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    print(f"seeded {learners:,} learners in {time.perf_counter() - start:.0f} s")


def migrate_and_analyse(engine: Engine) -> None:
    """Bring the schema to the newest migration (a kept data set gets new indexes) and refresh the planner's
    statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would in time after a bulk load."""
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def staff(app: Flask) -> tuple[str, str]:
    """An instructor and an administrator with two-factor sign-in set up; returns their TOTP secrets."""
    database = app.extensions["kaptrain.db"]
    session = database.new_session()
    secrets = []
    for role in (Role.INSTRUCTOR, Role.ADMIN):
        email = f"{role.value}@bench.example"
        found = session.scalar(select(User).where(User.email == email))
        if found is None:
            profile = accounts.Profile(f"Bench {role.value}", "Staff")
            found = accounts.create_user(session, email, STAFF_PASSWORD, profile, role, confirmed=True)
        if found.totp_secret is None:
            found.totp_secret = pyotp.random_base32()
            found.totp_enabled_at = utcnow()
        secrets.append(found.totp_secret)
    session.commit()
    session.close()
    return secrets[0], secrets[1]


def login(app: Flask, role: Role, secret: str) -> FlaskClient:
    """A test client logged in through the real two-step login."""
    database = app.extensions["kaptrain.db"]
    with database.engine.begin() as conn:
        conn.execute(update(User).where(User.email == f"{role.value}@bench.example").values(totp_last_counter=None))
    client = app.test_client()
    response = client.post("/login", data={"email": f"{role.value}@bench.example", "password": STAFF_PASSWORD})
    if response.status_code == 302 and "/login/code" in response.location:
        response = client.post(response.location, data={"code": pyotp.TOTP(secret).now()})
    if response.status_code != 302:
        raise SystemExit(f"login as {role.value} failed: {response.status_code}")
    return client


def timed(client: FlaskClient, url: str, statements: list[int]) -> tuple[float, float, int, int]:
    """One request read to the end: wall milliseconds, this process's CPU milliseconds, status, bytes."""
    statements.clear()
    start, cpu = time.perf_counter(), time.process_time()
    response = client.get(url)
    size = sum(len(chunk) for chunk in response.response)
    response.close()
    wall, used = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    status = response.status_code
    del response
    gc.collect()  # each request starts from a collected heap, as a fresh worker request would
    return wall, used, status, size


def peak_memory(client: FlaskClient, url: str) -> int:
    """Peak Python memory (bytes) while a streamed response is produced."""
    response = client.get(url)
    tracemalloc.start()
    for _chunk in response.response:
        pass
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    response.close()
    del response
    gc.collect()
    return peak


def pages(session: Any) -> list[tuple[str, Role, str, bool]]:
    """(label, role, url, is_csv) for every staff page measured."""
    quizzes = session.execute(
        select(Quiz.slug, func.count(Attempt.id)).join(Attempt, Attempt.quiz_id == Quiz.id)
        .group_by(Quiz.slug).order_by(func.count(Attempt.id).desc())
    ).all()  # fmt: skip
    busiest = quizzes[0][0] if quizzes else "pharmacology-quiz"
    learners = f"/instructor/courses/{COURSE}/learners"
    analysis = f"/instructor/courses/{COURSE}/quizzes/{busiest}/analysis"
    final = f"/instructor/courses/{COURSE}/quizzes/final-assessment/analysis"
    return [
        (f"item analysis ({busiest})", Role.INSTRUCTOR, analysis, False),
        ("item analysis (final)", Role.INSTRUCTOR, final, False),
        (f"item analysis CSV ({busiest})", Role.INSTRUCTOR, analysis + ".csv", True),
        ("learners, page 1", Role.INSTRUCTOR, learners, False),
        ("learners, page 100", Role.INSTRUCTOR, learners + "?page=100", False),
        ("learners, stuck only", Role.INSTRUCTOR, learners + "?stuck=1", False),
        ("learners, step module-3", Role.INSTRUCTOR, learners + "?step=module-3", False),
        ("evaluation summary", Role.INSTRUCTOR, f"/instructor/courses/{COURSE}/evaluations", False),
        ("evaluations CSV", Role.INSTRUCTOR, f"/instructor/courses/{COURSE}/evaluations.csv", True),
        ("admin reports", Role.ADMIN, "/admin/reports", False),
        ("admin reports, page 40", Role.ADMIN, "/admin/reports?page=40", False),
        ("completions CSV (all)", Role.ADMIN, "/admin/reports/completions.csv", True),
    ]


def main() -> None:
    """Build (or reuse) the data set, then print each page's time and each CSV's peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--fresh", action="store_true", help="drop the data set and build it again")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", default="", help="measure only pages whose label contains this text")
    options = parser.parse_args()
    url = options.database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "TESTING": False})  # fmt: skip
    engine: Engine = app.extensions["kaptrain.db"].engine
    if options.fresh:
        drop_everything(engine)
    upgrade(engine)
    with engine.connect() as conn:
        has_data = conn.scalar(text("SELECT count(*) FROM enrolments"))
    if not has_data:
        build(app, options.learners)
    migrate_and_analyse(engine)
    instructor_secret, admin_secret = staff(app)
    clients = {Role.INSTRUCTOR: login(app, Role.INSTRUCTOR, instructor_secret),
               Role.ADMIN: login(app, Role.ADMIN, admin_secret)}  # fmt: skip
    session = app.extensions["kaptrain.db"].new_session()
    sizes = {t: session.scalar(text(f"SELECT count(*) FROM {t}")) for t in  # noqa: S608
             ("enrolments", "attempts", "attempt_items", "module_progress", "certificates")}  # fmt: skip
    measured = [p for p in pages(session) if options.only in p[0]]
    session.close()
    print(f"{engine.dialect.name}: " + ", ".join(f"{n:,} {t}" for t, n in sizes.items()))
    statements: list[int] = []
    event.listen(engine, "before_cursor_execute", lambda *_a: statements.append(1))
    # On SQLite the database runs in this process, so its CPU time is the request's whole cost, a steadier
    # figure than wall time on a busy machine; on PostgreSQL it leaves out the server's share.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'page':34} {'median ms':>9} {'max ms':>7} {'CPU ms':>7} {'SQL':>4} {'KB':>6} {'peak MB':>8}")
    for label, role, page_url, is_csv in measured:
        client = clients[role]
        _ms, _cpu, status, _size = timed(client, page_url, statements)  # warm: templates compiled, caches filled
        if status != 200:
            print(f"{label:34} status {status}")
            continue
        runs = [timed(client, page_url, statements) for _ in range(options.rounds)]
        count = len(statements)
        times, cpu = [r[0] for r in runs], [r[1] for r in runs]
        peak = f"{peak_memory(client, page_url) / 1e6:8.1f}" if is_csv else f"{'':8}"
        print(f"{label:34} {statistics.median(times):9.0f} {max(times):7.0f} {statistics.median(cpu):7.0f} "
              f"{count:4d} {runs[-1][3] / 1024:6.0f} {peak}")  # fmt: skip
    engine.dispose()


def drop_everything(engine: Engine) -> None:
    """Remove every table (and Alembic's version), so the next run builds the data set from nothing."""
    from sqlalchemy import MetaData  # noqa: PLC0415 - only --fresh needs reflection

    if engine.dialect.name == "sqlite":
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
        return
    meta = MetaData()
    meta.reflect(bind=engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))


if __name__ == "__main__":
    main()
