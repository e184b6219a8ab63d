"""Scale benchmark: the site at 10,000 seeded learners against bare Flask + Jinja, measured in the same run.

    .venv/bin/python bench/scale.py                                   # SQLite file under /tmp/kaptrain-scale
    .venv/bin/python bench/scale.py --database-url postgresql+psycopg://postgres@127.0.0.1/kap_scale --fresh
    make bench-scale                                                  # the first line

1. Builds the scale database unless it already holds the seed: `db upgrade`, `content import`,
   `demo seed --learners N` (an existing database that is not a seeded one is refused without --fresh, which
   deletes the SQLite file or drops every table of the PostgreSQL database).
2. Serves the site and bench/bare_app.py with gunicorn on loopback, each with the same settings (2 workers,
   gthread with 4 threads: keep-alive connections, as behind a proxy), the site in production mode with rate
   limits off.
3. Logs seeded learners in with the real login form (CSRF token from the page), one learner per connection, and
   measures module page, course page, dashboard, quiz page, heartbeat (POST), quiz submission (POST: one fresh
   attempt per request, started through the site beforehand) and certificate PDF download, at 16 and 64
   connections: requests/s, p50 and p99 latency, each next to its bare twin measured right after it (a Jinja page
   of the same size, a bare POST route, a bare response of the PDF's size).
4. In process: SQL statements per request (bench/run.py's counter), certificate issuance against a bare
   WeasyPrint render of the same HTML; in subprocesses: the admin completions CSV export (time, traced peak and
   RSS) for every certificate and for the first half.
5. Prints the table and writes it into docs/performance.md between this database's markers.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import io
import json
import os
import platform
import pstats
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bare_app  # noqa: E402
from flask import Flask  # noqa: E402
from loadgen import Answer, Client, ConnSpec, PhaseResult, Req, run_phase  # noqa: E402
from sqlalchemy import create_engine, func, inspect, select, text  # noqa: E402
from weasyprint import HTML  # noqa: E402

from kaptrain import create_app, demo_seed  # noqa: E402
from kaptrain.accounts.models import Role, User  # noqa: E402
from kaptrain.certificates import pdf, services  # noqa: E402
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation  # noqa: E402
from kaptrain.courses import completion  # noqa: E402
from kaptrain.courses import services as courses  # noqa: E402
from kaptrain.db import Database, utcnow  # noqa: E402
from kaptrain.quizzes import services as quizzes  # noqa: E402
from kaptrain.quizzes.models import Attempt  # noqa: E402

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
DOC = ROOT / "docs" / "performance.md"
PAGE_BUDGET, PAGE_AIM, ROUTE_BUDGET, ISSUE_BUDGET = 0.50, 0.75, 0.50, 1.3
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|data-csrf="([^"]+)"')


# ---------------------------------------------------------------- the database


def _env(url: str, work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAPTRAIN_")}
    env.update(
        KAPTRAIN_DATABASE_URL=url,
        KAPTRAIN_CREDENTIAL_KEY_DIR=str(work / "keys"),
        KAPTRAIN_UPLOAD_DIR=str(work / "uploads"),
        KAPTRAIN_RATELIMIT_ENABLED="false",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def _flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "flask"), "--app", "kaptrain", *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def prepare_database(url: str, work: Path, learners: int, fresh: bool) -> float | None:
    """Make sure the database holds the seed; returns the seed's seconds, or None when an existing seed is reused."""
    engine = create_engine(url)
    try:
        tables = inspect(engine).get_table_names()
        seeded = 0
        if "users" in tables:
            with engine.connect() as conn:
                pattern = f"%@{demo_seed.SEED_DOMAIN}"
                learner = User.email.like(pattern) & (User.role == Role.LEARNER)  # not the export's bench-admin
                seeded = conn.scalar(select(func.count()).select_from(User).where(learner)) or 0
        if seeded == learners and not fresh:
            print(f"Reusing the seeded database ({seeded} learners); --fresh builds it again.")
            return None
        if tables and not fresh:
            raise SystemExit(
                f"{url} holds {seeded} seeded learners, not {learners}, or other data: run again with --fresh to "
                "delete it and build the scale data set (only point this at a benchmark database)."
            )
        if engine.dialect.name == "sqlite":
            engine.dispose()
            path = Path(url.split("///", 1)[1])
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        elif tables:
            with engine.begin() as conn:  # CASCADE: the order does not matter (content tables refer to each other)
                for name in tables:
                    conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()
    env = _env(url, work, KAPTRAIN_ENV="development")
    _flask(env, "db", "upgrade")
    _flask(env, "content", "import")
    started = time.perf_counter()
    _flask(env, "demo", "seed", "--learners", str(learners))
    return time.perf_counter() - started


def vacuum(url: str) -> None:
    """VACUUM ANALYZE the PostgreSQL database, so every run starts from the same state: a reused database holds the
    dead rows of earlier runs' writes, and autovacuum, which would clear them on a production server, may be off
    (it is off on the benchmark machine)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            print(f"VACUUM ANALYZE (autovacuum is {conn.scalar(text('SHOW autovacuum'))}) ...", flush=True)
            conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()


@contextlib.contextmanager
def bare_writes_table(url: str) -> Iterator[None]:
    """The table of the bare app's writes (bench/bare_app.py), made afresh for the run and dropped after it."""
    engine = create_engine(url)
    drop = text(f"DROP TABLE IF EXISTS {bare_app.TABLE}")
    try:
        with engine.begin() as conn:
            conn.execute(drop)
            conn.execute(text(f"CREATE TABLE {bare_app.TABLE} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, at TEXT)"))
            insert = text(f"INSERT INTO {bare_app.TABLE} (id, n) VALUES (:id, 0)")  # noqa: S608 - a constant
            conn.execute(insert, [{"id": i} for i in range(bare_app.ROWS)])
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(drop)
        engine.dispose()


def bench_app(url: str, work: Path) -> Flask:
    """An in-process app on the scale database (CSRF and rate limits off) for choosing learners and counting."""
    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "CREDENTIAL_KEY_DIR": str(work / "keys"),
            "UPLOAD_DIR": str(work / "uploads"),
        }
    )


@dataclass
class Learner:
    """A seeded learner the benchmark logs in, with the pages it requests."""

    user_id: int
    email: str
    module: str = ""
    quiz: str = ""
    certificate_id: int = 0
    jar: dict[str, str] = field(default_factory=dict)
    csrf: str = ""


@dataclass
class Cast:
    """Who the benchmark plays: learners for the pages, for downloads and for submissions."""

    course: str
    pages: list[Learner]
    downloads: list[Learner]
    submitters: list[Learner]
    figures: dict[str, int]
    half_date: str  # the day by which half of the certificates were issued
    spare: Learner  # one more learner who may start a quiz: the in-process submission whose statements are counted


def choose_learners(app: Flask, connections: int, submitters: int) -> Cast:
    """Pick seeded learners: half certified and half part-way for pages, certified for downloads, and part-way
    learners who may start their current module's quiz now for submissions."""
    database: Database = app.extensions["kaptrain.db"]
    session = database.new_session()
    course = demo_seed.find_course(session, None)
    seeded = User.email.like(f"%@{demo_seed.SEED_DOMAIN}") & (User.role == Role.LEARNER)
    users = list(session.execute(select(User.id, User.email).where(seeded).order_by(User.id)))
    holders = dict(
        session.execute(
            select(Certificate.user_id, Certificate.id).where(Certificate.status == CertificateStatus.ACTIVE)
        ).all()
    )
    pages: list[Learner] = []
    others: list[Learner] = []
    taken: set[int] = set()
    for user_id, email in users:
        if len(others) >= submitters and len(pages) >= connections:
            break
        enrolment = courses.get_enrolment(session, user_id, course.id)
        record = completion.course_record(session, user_id, course, enrolment)
        opened = [m for m in record.modules if m.progress is not None and m.state != completion.State.LOCKED]
        if not opened:
            continue
        status = opened[-1]
        quiz = status.quiz or record.final
        learner = Learner(user_id, email, status.module.slug, quiz.slug if quiz else "")
        certified = user_id in holders
        wanted = connections // 2 if certified else connections - connections // 2
        if len(pages) < connections and sum((p.user_id in holders) == certified for p in pages) < wanted:
            pages.append(learner)
            taken.add(user_id)
            continue
        if len(others) < submitters and status.quiz is not None and not record.requirements_met:
            gate = completion.quiz_gate(record, status.quiz)
            if gate is None and quizzes.quiz_state(session, user_id, status.quiz, gate).can_start:
                others.append(learner)
                taken.add(user_id)
    downloads = [Learner(u, e, certificate_id=holders[u]) for u, e in users if u in holders and u not in taken][
        :connections
    ]
    issued = list(
        session.scalars(
            select(Certificate.issued_at).where(Certificate.status != CertificateStatus.PENDING).order_by("issued_at")
        )
    )
    figures = {
        "learners": len(users),
        "attempts": session.scalar(select(func.count()).select_from(Attempt)) or 0,
        "certificates": len(issued),
    }
    slug = course.slug
    session.rollback()
    session.close()
    if len(pages) < connections or len(downloads) < connections or len(others) < submitters:
        raise SystemExit(f"Not enough seeded learners for {connections} connections and {submitters} submissions.")
    half = issued[len(issued) // 2].date().isoformat() if issued else "2000-01-01"
    return Cast(slug, pages, downloads, others[:-1], figures, half, others[-1])


# ---------------------------------------------------------------- the servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(
    target: str, path: Path, probe: str, env: dict[str, str], args: argparse.Namespace, log: Path
) -> Iterator[int]:
    """Serve a WSGI app (module found on `path`) with gunicorn on a free loopback port until the block ends."""
    port = _free_port()
    command = [
        str(BIN / "gunicorn"), "--bind", f"{HOST}:{port}", "--workers", str(args.workers),
        "--worker-class", "gthread", "--threads", str(args.threads), "--keep-alive", "30",
        "--log-level", "warning", "--pythonpath", str(path), target,
    ]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when a worker answers, not when the master listens
            try:
                if Client(HOST, port).request(Req("GET", probe), {}).status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn {target} did not start; see {log}")
            time.sleep(0.2)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _get(client: Client, learner: Learner, path: str, expect: int = 200) -> Answer:
    answer = client.request(Req("GET", path, expect=expect), learner.jar)
    if answer.status != expect:
        raise SystemExit(f"GET {path} as {learner.email}: {answer.status}, expected {expect}")
    found = CSRF.search(answer.body.decode("utf-8", "replace"))
    if found:
        learner.csrf = found.group(1) or found.group(2)
    return answer


def _post(client: Client, learner: Learner, path: str, fields: list[tuple[str, str]], expect: int = 302) -> Answer:
    body = urlencode([("csrf_token", learner.csrf), *fields]).encode()
    answer = client.request(Req("POST", path, body), learner.jar)
    if answer.status != expect:
        raise SystemExit(f"POST {path} as {learner.email}: {answer.status}, expected {expect}")
    return answer


def log_in(port: int, learner: Learner, then: str) -> Client:
    """The real login: the form's CSRF token, email and password; then a page (for its CSRF token)."""
    client = Client(HOST, port)
    _get(client, learner, "/login")
    _post(client, learner, "/login", [("email", learner.email), ("password", demo_seed.SEED_PASSWORD)])
    _get(client, learner, then)
    return client


def start_attempt(port: int, course: str, learner: Learner) -> Req:
    """Log in, start the learner's current quiz through the site and return the request that submits it."""
    client = log_in(port, learner, f"/courses/{course}/quizzes/{learner.quiz}")
    started = _post(client, learner, f"/courses/{course}/quizzes/{learner.quiz}/start", [])
    location = urlsplit(started.header("location")).path
    page = _get(client, learner, location).body.decode()
    answers: dict[str, str] = {}
    for name, value in re.findall(r'name="(q-\d+)" value="(\d+)"', page):
        answers.setdefault(name, value)  # the first option shown, for every question
    client.close()
    body = urlencode([("csrf_token", learner.csrf), *answers.items()]).encode()
    return Req("POST", f"{location}/submit", body, expect=302)


# ---------------------------------------------------------------- measuring


@dataclass
class Row:
    """One line of the table: the site's figure next to its bare twin's."""

    name: str
    kind: str  # "page", "route" or "download"
    connections: int
    site: PhaseResult
    bare: PhaseResult
    size: float
    statements: int | None = None
    writes: PhaseResult | None = None  # a route: the bare POST that also makes the same reads and writes

    @property
    def ratio(self) -> float:
        """Site requests/s as a share of the bare twin's."""
        return self.site.rps / self.bare.rps if self.bare.rps else float("nan")

    @property
    def verdict(self) -> str:
        """pass / FAIL against the issue's budget (pages: aim 75%)."""
        budget = PAGE_BUDGET if self.kind == "page" else ROUTE_BUDGET
        if self.ratio < budget:
            return "FAIL"
        return "pass (aim met)" if self.kind == "page" and self.ratio >= PAGE_AIM else "pass"


def _pages(cast: Cast, learner: Learner) -> dict[str, Req]:
    c = cast.course
    return {
        "module page": Req("GET", f"/courses/{c}/modules/{learner.module}"),
        "course page": Req("GET", f"/courses/{c}"),
        "dashboard": Req("GET", "/dashboard"),
        "quiz page": Req("GET", f"/courses/{c}/quizzes/{learner.quiz}"),
        "heartbeat (POST)": Req(
            "POST", f"/courses/{c}/modules/{learner.module}/heartbeat", headers=(("X-CSRFToken", learner.csrf),)
        ),
    }


def measure(args: argparse.Namespace, cast: Cast, site: int, bare: int) -> list[Row]:
    """Every phase at every connection count, each followed at once by its bare twin."""
    levels = [int(n) for n in args.connections.split(",")]
    # On SQLite a login holds the write lock while argon2 checks the password (about 0.1 s of CPU, more on a
    # busy machine): more than a few at once wait past the busy timeout. Two at a time, one per worker.
    threads = 2 if args.sqlite else 8
    started = time.monotonic()
    print(f"Logging in {len(cast.pages) + len(cast.downloads)} learners ...", flush=True)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda le: log_in(site, le, f"/courses/{cast.course}/modules/{le.module}").close(), cast.pages))
        list(pool.map(lambda le: log_in(site, le, "/dashboard").close(), cast.downloads))

    def wanted(name: str) -> bool:
        return not args.only or any(part in name for part in args.only.split(","))

    submitters = cast.submitters if wanted("quiz submission") else []
    print(f"Logging in {len(submitters)} more and starting a quiz attempt for each ...", flush=True)
    with ThreadPoolExecutor(threads) as pool:
        submissions = list(pool.map(lambda le: (start_attempt(site, cast.course, le), le.jar), submitters))
    print(f"  ready in {time.monotonic() - started:.0f} s", flush=True)
    per_level = len(submissions) // len(levels)
    timed = {"duration": args.duration, "warmup": args.warmup, "processes": args.client_processes}

    def specs(c: int, build: Callable[[Learner], Req], learners: list[Learner]) -> list[ConnSpec]:
        return [ConnSpec([(build(le), le.jar)]) for le in learners[:c]]

    print("Warming up ...", flush=True)
    warm = [ConnSpec([(r, le.jar) for r in _pages(cast, le).values()]) for le in cast.pages[:16]]
    run_phase(HOST, site, warm, duration=args.warmup * 3, processes=args.client_processes)
    rows = []
    for c in levels:
        for name in filter(wanted, _pages(cast, cast.pages[0])):
            site_result = run_phase(HOST, site, specs(c, lambda le, n=name: _pages(cast, le)[n], cast.pages), **timed)
            if name.startswith("heartbeat"):
                twin, kind = Req("POST", "/post", headers=(("X-CSRFToken", "x" * 40),)), "route"
            else:
                twin, kind = Req("GET", f"/page/{round(site_result.mean_body)}"), "page"
            bare_result = run_phase(HOST, bare, [ConnSpec([(twin, {})]) for _ in range(c)], **timed)
            row = Row(name, kind, c, site_result, bare_result, site_result.mean_body)
            if kind == "route":
                writes = Req("POST", "/write/beat", headers=twin.headers)
                row.writes = run_phase(HOST, bare, [ConnSpec([(writes, {})]) for _ in range(c)], **timed)
            rows.append(_report(row))
        batch = submissions[:per_level]
        submissions = submissions[per_level:]
        if wanted("quiz submission"):
            rows.append(_submissions(args, site, bare, c, batch))
        if not wanted("certificate PDF download"):
            continue
        download = specs(c, lambda le: Req("GET", f"/certificates/{le.certificate_id}.pdf"), cast.downloads)
        site_result = run_phase(HOST, site, download, **timed)
        twin = Req("GET", f"/bytes/{round(site_result.mean_body)}")
        bare_result = run_phase(HOST, bare, [ConnSpec([(twin, {})]) for _ in range(c)], **timed)
        row = Row("certificate PDF download", "download", c, site_result, bare_result, site_result.mean_body)
        rows.append(_report(row))
    return rows


def _submissions(args: argparse.Namespace, site: int, bare: int, c: int, batch: list[tuple[Req, Any]]) -> Row:
    """Each learner of the batch submits their open attempt once, over c connections."""
    timed = {"duration": args.duration, "warmup": args.warmup, "processes": args.client_processes}
    conns = [ConnSpec(batch[i::c]) for i in range(c)]
    site_result = run_phase(HOST, site, conns, duration=None, processes=args.client_processes)
    body = sorted((req.body for req, _ in batch), key=len)[len(batch) // 2]
    bare_result = run_phase(HOST, bare, [ConnSpec([(Req("POST", "/post", body), {})]) for _ in range(c)], **timed)
    row = Row("quiz submission (POST)", "route", c, site_result, bare_result, site_result.mean_body)
    row.writes = run_phase(
        HOST, bare, [ConnSpec([(Req("POST", "/write/submission", body), {})]) for _ in range(c)], **timed
    )
    return _report(row)


def _report(row: Row) -> Row:
    s, b = row.site, row.bare
    note = f"  errors: {s.errors} ({s.first_error})" if s.errors else ""
    note += f"  bare errors: {b.errors} ({b.first_error})" if b.errors else ""
    if row.writes is not None:
        w = row.writes
        note += f"\n  {'':<26} bare with the same writes {w.rps:8.1f} req/s: {_share(w.rps, b.rps)} of the bare POST"
        note += f"  errors: {w.errors} ({w.first_error})" if w.errors else ""
    print(
        f"  {row.name:<26} {row.connections:>3} conns  {s.rps:8.1f} req/s (p50 {s.percentile(50):7.1f} ms, "
        f"p99 {s.percentile(99):7.1f} ms)  bare {b.rps:8.1f} req/s  ratio {row.ratio:5.2f}{note}",
        flush=True,
    )
    return row


def _load_bench_run() -> Any:
    """bench/run.py as a module (its statement counter is reused; `import run` would find the root run.py)."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Calls:
    """Stands in for a test client in bench/run.py's statement counter: get(label) makes that labelled call."""

    def __init__(self, calls: dict[str, Callable[[], Any]]) -> None:
        self.calls = calls

    def get(self, label: str) -> Any:
        """Make the call named label."""
        return self.calls[label]()


def count_statements(app: Flask, cast: Cast) -> dict[str, int]:
    """SQL statements each request issues, in process, as the first page learner and the first certificate holder."""
    learner, holder = cast.pages[0], cast.downloads[0]
    client = app.test_client()
    # What drawing each page costs: the page cache and the fast paths (kaptrain.pagecache) are off here. A page
    # served from the cache costs one statement (two on the module page), the fast heartbeat four or five
    # (tests/test_statement_counts.py counts both).
    app.extensions["kaptrain.pages"] = None

    def as_(who: Learner) -> None:
        client.post("/logout")
        answer = client.post("/login", data={"email": who.email, "password": demo_seed.SEED_PASSWORD})
        assert answer.status_code == 302, answer.status_code

    def call(method: str, path: str, expect: int = 200, **kw: Any) -> Callable[[], Any]:
        def _call() -> Any:
            answer = client.open(path, method=method, **kw)
            assert answer.status_code == expect, (path, answer.status_code)
            return answer

        return _call

    as_(learner)
    calls = {name: call(req.method, req.path) for name, req in _pages(cast, learner).items()}
    for fn in calls.values():
        fn()  # once first: Markdown caches and the like are warm, as they are on a serving worker
    bench_run = _load_bench_run()
    bench_run.PAGES = tuple(calls)
    counts: dict[str, int] = bench_run.statement_counts(_Calls(calls), app.extensions["kaptrain.db"].engine)
    as_(holder)
    download = {"certificate PDF download": call("GET", f"/certificates/{holder.certificate_id}.pdf")}
    download["certificate PDF download"]()
    bench_run.PAGES = tuple(download)
    counts.update(bench_run.statement_counts(_Calls(download), app.extensions["kaptrain.db"].engine))
    # A submission can be made once: start an attempt as the spare learner, then count only its submission.
    as_(cast.spare)
    started = client.post(f"/courses/{cast.course}/quizzes/{cast.spare.quiz}/start")
    assert started.status_code == 302, started.status_code
    attempt = urlsplit(started.location).path
    answers: dict[str, str] = {}
    for name, value in re.findall(r'name="(q-\d+)" value="(\d+)"', client.get(attempt).get_data(as_text=True)):
        answers.setdefault(name, value)
    submit = {"quiz submission (POST)": call("POST", f"{attempt}/submit", 302, data=answers)}
    bench_run.PAGES = tuple(submit)
    counts.update(bench_run.statement_counts(_Calls(submit), app.extensions["kaptrain.db"].engine))
    return counts


def profile_module_page(app: Flask, cast: Cast, requests: int) -> str:
    """cProfile of module page requests in process: the top functions by cumulative and by own time."""
    client = app.test_client()
    learner = cast.pages[0]
    client.post("/login", data={"email": learner.email, "password": demo_seed.SEED_PASSWORD})
    path = f"/courses/{cast.course}/modules/{learner.module}"
    client.get(path)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(path)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


@dataclass
class Issuance:
    """Certificate issuance against a bare WeasyPrint render of the same HTML (medians, milliseconds)."""

    issue_ms: float
    bare_ms: float
    rounds: int

    @property
    def ratio(self) -> float:
        """Issuance time as a multiple of the bare render."""
        return self.issue_ms / self.bare_ms


def measure_issuance(app: Flask, rounds: int) -> Issuance:
    """Time services.issue (credential, PDF, stored file, audit) on a new pending certificate, rolled back each
    round, and a bare HTML(...).write_pdf() of the HTML it rendered."""
    database: Database = app.extensions["kaptrain.db"]
    html: list[str] = []
    real_render = pdf.render_template

    def capture(*a: Any, **kw: Any) -> str:
        html.append(real_render(*a, **kw))
        return html[-1]

    pdf.render_template = capture  # type: ignore[assignment]
    times: list[float] = []
    bare: list[float] = []
    static = Path(app.static_folder or "").resolve().as_uri() + "/"
    try:
        with app.app_context():
            # Each round issues one certificate and then renders the HTML it rendered bare, so that both figures
            # of a round are taken under the same conditions (the machine is shared, and its speed drifts).
            for round_ in range(rounds + 1):  # the first round warms up (fonts, the key, the renderer)
                session = database.new_session()
                evaluated = select(Evaluation.user_id).where(
                    ~Evaluation.user_id.in_(select(Attestation.user_id)), Evaluation.user_id.in_(
                        select(User.id).where(User.email.like(f"%@{demo_seed.SEED_DOMAIN}"))
                    )
                )  # fmt: skip
                user = session.get(User, session.scalar(evaluated.limit(1)))
                assert user is not None
                course = demo_seed.find_course(session, None)
                certificate = services.new_certificate(session, user, course, Decimal("1.00"), utcnow())
                started = time.perf_counter()
                services.issue(session, certificate, actor_label="bench")
                issued = time.perf_counter() - started
                session.rollback()
                session.close()
                started = time.perf_counter()
                HTML(string=html[-1], base_url=static).write_pdf(pdf_tags=True)  # tagged, as the certificate is
                if round_:
                    times.append(issued)
                    bare.append(time.perf_counter() - started)
    finally:
        pdf.render_template = real_render  # type: ignore[assignment]
    return Issuance(1000 * statistics.median(times), 1000 * statistics.median(bare), rounds)


def export_probe(url: str, work: Path, until: str | None, trace: bool) -> None:
    """(In a subprocess) log an administrator in and read /admin/reports/completions.csv; print JSON figures."""
    import pyotp  # noqa: PLC0415 - only the probe needs it

    from kaptrain.accounts import services as accounts  # noqa: PLC0415 - only the probe creates an account

    app = bench_app(url, work)
    database: Database = app.extensions["kaptrain.db"]
    session = database.new_session()
    email = f"bench-admin@{demo_seed.SEED_DOMAIN}"
    admin = accounts.find_user_by_email(session, email)
    if admin is None:
        profile = accounts.Profile("Bench Administrator", "Other licensed clinician")
        admin = accounts.create_user(  # the seed's documented password, as its learners have
            session, email, demo_seed.SEED_PASSWORD, profile, Role.ADMIN, confirmed=True, published_password=True
        )
        admin.totp_secret, admin.totp_enabled_at = pyotp.random_base32(), utcnow()
    admin.totp_last_counter = None
    secret = admin.totp_secret
    session.commit()
    session.close()
    client = app.test_client()
    client.post("/login", data={"email": email, "password": demo_seed.SEED_PASSWORD})
    answer = client.post("/login/code", data={"code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 302, answer.status_code
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    response = client.get("/admin/reports/completions.csv" + (f"?date_to={until}" if until else ""), buffered=False)
    size = lines = 0
    for chunk in response.iter_encoded():
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"status": response.status_code, "rows": lines - 1, "bytes": size, "seconds": seconds,
                      "traced_peak": peak, "rss_growth_kib": after - before}))  # fmt: skip


def measure_export(url: str, work: Path, half_date: str) -> dict[str, dict[str, Any]]:
    """The export for every certificate and for the first half: time and RSS untraced, peak memory traced.

    Both are several read batches long (500 rows), so an export in constant memory peaks alike in both."""
    out: dict[str, dict[str, Any]] = {}
    for label, until in (("all", None), ("half", half_date)):
        figures: dict[str, Any] = {}
        for trace in (False, True):
            command = [sys.executable, __file__, "--export-probe", "--database-url", url, "--work-dir", str(work)]
            command += ["--until", until] if until else []
            command += ["--trace"] if trace else []
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
            probe = json.loads(done.stdout.strip().splitlines()[-1])
            if trace:
                figures["traced_peak"] = probe["traced_peak"]
            else:
                figures.update(probe)
        out[label] = figures
    return out


# ---------------------------------------------------------------- reporting


def _machine(url: str) -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    engine = create_engine(url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            version = f"SQLite {sqlite3.sqlite_version}"
        else:
            version = f"PostgreSQL {conn.scalar(text('SHOW server_version'))}"
    engine.dispose()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "database": version,
        "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def _share(part: float, whole: float) -> str:
    """part / whole to two places, or "–" when whole is nothing (a phase that completed no request)."""
    return f"{part / whole:.2f}" if whole else "–"


def _ms(v: float) -> str:
    return f"{v:.1f}"


def markdown(label: str, args: argparse.Namespace, cast: Cast, machine: dict[str, str], seed_seconds: float | None,
             rows: list[Row], statements: dict[str, int], issuance: Issuance, export: dict[str, dict[str, Any]],
             load_after: str) -> str:  # fmt: skip
    """The figures of one run as Markdown."""
    f = cast.figures
    seeded = f"seeded in {seed_seconds / 60:.1f} min" if seed_seconds is not None else "seed reused"
    lines = [
        f"### {label}",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {machine['cpu']}, Python {machine['python']}, "
        f"{machine['database']}; {f['learners']:,} learners, {f['attempts']:,} attempts, {f['certificates']:,} "
        f"certificates ({seeded}); gunicorn {args.workers} workers, gthread x {args.threads} threads; "
        f"{args.duration:g} s a phase after {args.warmup:g} s of warm-up, client in {args.client_processes} "
        f"processes; load average (1/5/15 min) {machine['load']} before, {load_after} after.",
        "",
        "| request | conns | size | req/s | p50 ms | p99 ms | bare req/s | bare p50 | bare p99 | ratio | budget "
        "| verdict | SQL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        budget = f">= {PAGE_BUDGET:.2f}" if r.kind == "page" else f">= {ROUTE_BUDGET:.2f}"
        size = f"{r.size / 1024:.1f} KB" if r.size >= 1024 else f"{r.size:.0f} B"
        errors = f" ({r.site.errors} errors)" if r.site.errors else ""
        lines.append(
            f"| {r.name} | {r.connections} | {size} | {r.site.rps:.0f}{errors} | {_ms(r.site.percentile(50))} | "
            f"{_ms(r.site.percentile(99))} | {r.bare.rps:.0f} | {_ms(r.bare.percentile(50))} | "
            f"{_ms(r.bare.percentile(99))} | {r.ratio:.2f} | {budget} | {r.verdict} | "
            f"{statements.get(r.name, '')} |"
        )
    with_writes = [r for r in rows if r.writes is not None]
    if with_writes:
        lines += [
            "",
            "The heartbeat's and the submission's reads and writes made by a bare route (`bench/bare_app.py`, "
            "`/write/...`: the DB-API driver, a connection kept per thread, no checks), in the same run:",
            "",
            "| request | conns | req/s | bare POST | bare POST with the same writes | its share of the bare POST "
            "| the site's share of it |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in with_writes:
            assert r.writes is not None
            w = r.writes.rps
            errors = f" ({r.writes.errors} errors)" if r.writes.errors else ""
            lines.append(
                f"| {r.name} | {r.connections} | {r.site.rps:.0f} | {r.bare.rps:.0f} | {w:.0f}{errors} | "
                f"{_share(w, r.bare.rps)} | {_share(r.site.rps, w)} |"
            )
    verdict = "pass" if issuance.ratio <= ISSUE_BUDGET else "FAIL"
    a, h = export["all"], export["half"]
    constant = a["traced_peak"] <= 1.25 * h["traced_peak"] + 256 * 1024
    lines += [
        "",
        f"Certificate issuance (median of {issuance.rounds}): {issuance.issue_ms:.0f} ms against "
        f"{issuance.bare_ms:.0f} ms for a bare WeasyPrint render of the same HTML: **{issuance.ratio:.2f}x** "
        f"(budget <= {ISSUE_BUDGET}x): {verdict}.",
        "",
        f"Completions CSV export (`/admin/reports/completions.csv`, every issued certificate): {a['rows']:,} rows, "
        f"{a['bytes'] / 1024:.0f} KB in {a['seconds']:.2f} s; traced peak {a['traced_peak'] / 2**20:.2f} MiB "
        f"(the first half, {h['rows']:,} rows: {h['traced_peak'] / 2**20:.2f} MiB); RSS growth "
        f"{a['rss_growth_kib'] / 1024:.1f} MiB (half: {h['rss_growth_kib'] / 1024:.1f} MiB): "
        f"{'constant memory: pass' if constant else 'memory grows with the rows: FAIL'}.",
        "",
        "SQL statements per request (BEGIN and COMMIT included), as one part-way or certified learner: "
        + ", ".join(f"{k} {v}" for k, v in statements.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def write_doc(label: str, section: str) -> None:
    """Put the section between this database's markers in docs/performance.md (appended when missing)."""
    key = label.lower()
    start, end = f"<!-- bench-scale:{key}:start -->", f"<!-- bench-scale:{key}:end -->"
    doc = DOC.read_text() if DOC.exists() else "# Performance\n"
    block = f"{start}\n{section}{end}"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(doc)


def main() -> None:
    """Build or reuse the scale database, measure, print and write docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: sqlite:///WORK_DIR/scale.sqlite3")
    # A throwaway benchmark folder (the SQLite file, signing keys, server logs), as the benchmarks always used.
    parser.add_argument("--work-dir", default="/tmp/kaptrain-scale", help="SQLite file, keys, logs")  # noqa: S108
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--fresh", action="store_true", help="delete the database and seed it again")
    parser.add_argument("--connections", default="16,64", help="connection counts, comma-separated")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each phase that are not counted")
    parser.add_argument("--submissions", type=int, default=512, help="quiz submissions per connection count")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9, help="issuance and bare render rounds")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also cProfile N module page requests")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md alone")
    parser.add_argument(
        "--only", help="measure only the requests whose names contain one of these, comma-separated (implies --no-doc)"
    )
    parser.add_argument("--export-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--until", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work_dir)
    url = args.database_url or f"sqlite:///{work / 'scale.sqlite3'}"
    if args.export_probe:
        export_probe(url, work, args.until, args.trace)
        return
    work.mkdir(parents=True, exist_ok=True)
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    args.sqlite = label == "SQLite"
    seed_seconds = prepare_database(url, work, args.learners, args.fresh)
    if not args.sqlite:
        vacuum(url)
    machine = _machine(url)
    app = bench_app(url, work)
    levels = [int(n) for n in args.connections.split(",")]
    cast = choose_learners(app, max(levels), args.submissions * len(levels) + 1)
    app.extensions["kaptrain.db"].engine.dispose()  # no pooled connection is shared with the forked clients
    site_env = _env(url, work, KAPTRAIN_ENV="production", KAPTRAIN_SECRET_KEY=secrets.token_hex(32))
    print(f"{label}: {cast.figures}; measuring (about {len(levels) * 15 * (args.duration + args.warmup + 1):.0f} s)")
    bare_env = _env(url, work, BARE_DATABASE_URL=url)
    with (
        bare_writes_table(url),
        gunicorn("run:app", ROOT, "/login", site_env, args, work / "site.log") as site,
        gunicorn("bare_app:app", ROOT / "bench", "/page/100", bare_env, args, work / "bare.log") as bare,
    ):
        rows = measure(args, cast, site, bare)
    load_after = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.only:
        return
    print("Counting SQL statements, timing issuance and the export ...", flush=True)
    statements = count_statements(app, cast)
    issuance = measure_issuance(app, args.rounds)
    export = measure_export(url, work, cast.half_date)
    if args.profile:
        print(profile_module_page(app, cast, args.profile))
    section = markdown(label, args, cast, machine, seed_seconds, rows, statements, issuance, export, load_after)
    print(section)
    if not args.no_doc:
        write_doc(label, section)
        print(f"Wrote the {label} figures into {DOC.relative_to(ROOT)}.")
    app.extensions["kaptrain.db"].engine.dispose()
    shutil.rmtree(work / "uploads", ignore_errors=True)


if __name__ == "__main__":
    main()
