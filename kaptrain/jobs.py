"""Background jobs: `enqueue(func, *args, **kwargs)` runs inline by default, on RQ workers with KAPTRAIN_REDIS_URL.

A job is a plain top-level function of an importable module taking JSON-able arguments (ids, not model
objects: the job loads what it needs). Each job runs in an application context of its own, so
`get_session()` gives it a fresh session that is closed when the job ends; a job that writes to the
database must `commit()` itself. Called during a request, `enqueue` holds the job until the request's
single commit (kaptrain.db.after_commit) and drops it if the request rolls back; CLI commands commit first.

Without KAPTRAIN_REDIS_URL (development, tests, small sites) the job runs immediately in the caller's
process. With it, jobs go to an RQ queue and run on `flask --app kaptrain worker`. Either way a failing
job is logged ("kaptrain.jobs") and never fails the caller; RQ keeps failed jobs in its failed registry.
An unreachable Redis does raise from `enqueue`, so a job is never dropped silently.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from kaptrain.db import after_commit

QUEUE = "default"

log = logging.getLogger(__name__)


def enqueue(func: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Run func(*args, **kwargs) as a job: inline now, or on a worker when KAPTRAIN_REDIS_URL is set."""
    _check_job(func, args, kwargs)
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # noqa: SLF001 - werkzeug proxy
    # In a request the job waits for the request's commit: a worker (or the inline run, on SQLite) must see
    # the rows the request wrote, and a request that fails must not send, say, an email about it.
    after_commit(functools.partial(_dispatch, app, func, args, kwargs))


def _dispatch(app: Flask, func: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    url = app.config["REDIS_URL"]
    if not url:
        _run_inline(app, func, args, kwargs)
        return
    job = Queue(QUEUE, connection=_redis(url)).enqueue_call(func, args=args, kwargs=kwargs)
    log.debug("Enqueued job %s (%s)", job.id, _name(func))


def _name(func: Callable[..., object]) -> str:
    """The dotted name RQ would import the function by."""
    return f"{func.__module__}.{func.__qualname__}"


def _check_job(func: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse in every mode what only a worker could not run, so inline development catches it."""
    module = sys.modules.get(func.__module__)
    if getattr(module, func.__name__, None) is not func or func.__module__ == "__main__":
        raise TypeError(f"A job must be a top-level function of an importable module, not {_name(func)}")
    try:
        json.dumps([args, kwargs])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Arguments of job {_name(func)} must be JSON-able (pass ids, not objects): {exc}") from exc


def _run_inline(app: Flask, func: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Run the job now in a fresh application context (own session, like a worker); log a failure."""
    try:
        with app.app_context():
            func(*args, **kwargs)
    except Exception:
        log.exception("Job %s failed", _name(func))


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    """One client (and connection pool) per Redis URL for the life of the process."""
    return Redis.from_url(url)


def _log_failure(job: Job, exc_type: type[BaseException], exc_value: BaseException, _tb: TracebackType | None) -> bool:
    """RQ exception handler: one line on our logger (RQ's own "rq.worker" line carries the traceback)."""
    log.error("Job %s (%s) failed: %r", job.id, job.func_name, exc_value)
    return True  # let RQ go on to its default handling (the failed job registry)


class AppWorker(Worker):
    """An RQ worker that runs each job inside a new application context of one app."""

    app: Flask

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """In the forked child, drop the pool's inherited connections before running the job."""
        # SQLAlchemy's advice for fork: a child must not reuse the parent's pooled connections.
        self.app.extensions["kaptrain.db"].engine.dispose(close=False)
        super().main_work_horse(job, queue)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """Run the job in its own app context; the teardown closes the job's database session."""
        with self.app.app_context():
            return bool(super().perform_job(job, queue))


def make_worker(app: Flask, queues: Sequence[str] = (QUEUE,)) -> AppWorker:
    """A worker for the app's Redis (KAPTRAIN_REDIS_URL) listening on the named queues."""
    connection = _redis(app.config["REDIS_URL"])
    worker = AppWorker(
        [Queue(name, connection=connection) for name in queues],
        connection=connection,
        exception_handlers=[_log_failure],
    )
    worker.app = app
    return worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty instead of waiting for jobs.")
@click.option(
    "--queue", "queues", multiple=True, default=[QUEUE], show_default=True, help="Queue to work on; repeatable."
)
@with_appcontext
def worker_command(burst: bool, queues: tuple[str, ...]) -> None:
    """Run queued jobs (needs KAPTRAIN_REDIS_URL); start it next to gunicorn."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # noqa: SLF001 - werkzeug proxy
    if not app.config["REDIS_URL"]:
        raise click.ClickException("KAPTRAIN_REDIS_URL is not set: jobs run inline and no worker is needed.")
    # The worker is a process entry point: show our INFO lines (mail, jobs) next to RQ's.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    make_worker(app, queues).work(burst=burst)
