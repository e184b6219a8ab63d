"""kaptrain.jobs: inline by default; with Redis, jobs run on `flask --app kaptrain worker` in an app context each."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from rq import Queue
from sqlalchemy import create_engine, func, select, text

from kaptrain import jobs
from kaptrain.accounts.models import User
from kaptrain.db import finish_request, get_session
from tests import jobs_support
from tests.conftest import make_test_app
from tests.redis_support import REDIS_URL, run_flask, worker_env


def test_inline_runs_the_job_at_once_with_its_arguments(extra_app, tmp_path):
    app = extra_app()
    assert app.config["REDIS_URL"] is None
    target = tmp_path / "out.txt"
    with app.app_context():
        jobs.enqueue(jobs_support.write_text, str(target), "héllo", suffix="!")
        assert target.read_text(encoding="utf-8") == "héllo!"


def _write_something(session) -> None:  # type: ignore[no-untyped-def]
    session.execute(select(func.count()).select_from(User))
    session.info["wrote"] = True  # as a flush would mark it


def test_a_job_enqueued_in_a_request_runs_after_its_commit_with_its_own_session(app, extra_app):
    app = extra_app()
    jobs_support.SEEN.clear()
    with app.test_request_context("/", method="POST"):
        caller_session = get_session()
        _write_something(caller_session)
        jobs.enqueue(jobs_support.record_session)
        assert jobs_support.SEEN == []  # held until the request's single commit
        finish_request(commit=True)
        [seen] = jobs_support.SEEN
        assert seen["had_session"] is False
        assert seen["session"] is not caller_session
        assert seen["checked_out"] >= 1
        assert get_session() is caller_session
    assert not seen["session"].in_transaction()


def test_a_job_enqueued_in_a_request_that_rolls_back_never_runs(app, extra_app):
    app = extra_app()
    jobs_support.SEEN.clear()
    with app.test_request_context("/", method="POST"):
        _write_something(get_session())
        jobs.enqueue(jobs_support.record_session)
        finish_request(commit=False)  # an error response
    assert jobs_support.SEEN == []


def test_inline_failure_is_logged_and_does_not_fail_the_caller(extra_app, caplog):
    app = extra_app()
    with caplog.at_level(logging.ERROR, logger="kaptrain.jobs"), app.app_context():
        jobs.enqueue(jobs_support.fail, "boom")
    [record] = [r for r in caplog.records if r.name == "kaptrain.jobs"]
    assert "tests.jobs_support.fail" in record.getMessage()
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


def _nested() -> Callable[[], None]:
    """Return a function that no module attribute names (a worker could not import it)."""

    def inner() -> None:
        """Do nothing."""

    return inner


@pytest.mark.parametrize(
    ("func", "args", "message"),
    [
        (lambda: None, (), "top-level function"),
        (_nested(), (), "top-level function"),
        (jobs_support.write_text, (object(), "x"), "JSON-able"),
        (jobs_support.write_text, ({1, 2}, "x"), "JSON-able"),
    ],
)
def test_jobs_a_worker_could_not_run_are_refused_inline_too(extra_app, func, args, message):
    app = extra_app()
    with app.app_context(), pytest.raises(TypeError, match=message):
        jobs.enqueue(func, *args)


def test_worker_command_needs_redis(extra_app):
    result = extra_app().test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code != 0
    assert "KAPTRAIN_REDIS_URL is not set" in result.output


def test_enqueue_with_redis_queues_the_job_instead_of_running_it(redis_db, tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'q.sqlite3'}", REDIS_URL=REDIS_URL)
    target = tmp_path / "out.txt"
    with app.app_context():
        jobs.enqueue(jobs_support.write_text, str(target), "later", suffix="!")
    assert not target.exists()
    [job] = Queue(jobs.QUEUE, connection=redis_db).get_jobs()
    assert job.func_name == "tests.jobs_support.write_text"
    assert (job.args, job.kwargs) == ((str(target), "later"), {"suffix": "!"})
    app.extensions["kaptrain.db"].engine.dispose()


def test_worker_runs_each_job_in_its_own_app_context_and_closes_its_session(redis_db, tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'ctx.sqlite3'}", REDIS_URL=REDIS_URL)
    jobs_support.SEEN.clear()
    with app.app_context():
        jobs.enqueue(jobs_support.record_session)
        jobs.enqueue(jobs_support.record_session)
    worker = jobs.make_worker(app)
    queue = Queue(jobs.QUEUE, connection=redis_db)
    engine = app.extensions["kaptrain.db"].engine
    with app.app_context():  # as in `flask worker`, whose command runs in an app context of its own
        outer = get_session()
        for job in queue.get_jobs():
            # perform_job is what the forked work horse runs; calling it here keeps the effects observable.
            assert worker.perform_job(job, queue)
            assert engine.pool.checkedout() == 0  # the job's session was closed at its context's teardown
            assert get_session() is outer
    first, second = jobs_support.SEEN
    assert first["had_session"] is False and second["had_session"] is False
    assert first["checked_out"] == 1
    assert len({id(outer), id(first["session"]), id(second["session"])}) == 3
    engine.dispose()


def test_flask_worker_runs_queued_jobs_against_the_database(redis_db, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    env = worker_env(db_url)
    migrated = run_flask(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    app = make_test_app(db_url, REDIS_URL=REDIS_URL)
    with app.app_context():
        jobs.enqueue(jobs_support.create_learner, "worker-job@example.com", "Zoë Worker")
        jobs.enqueue(jobs_support.fail, "deliberate failure")
    app.extensions["kaptrain.db"].engine.dispose()

    worker = run_flask(env, "worker", "--burst", timeout=20)
    output = worker.stdout + worker.stderr
    assert worker.returncode == 0, output

    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT full_name FROM users WHERE email = 'worker-job@example.com'")).one()
    engine.dispose()
    assert row.full_name == "Zoë Worker"
    assert "kaptrain.jobs: Job" in output and "deliberate failure" in output
    assert Queue(jobs.QUEUE, connection=redis_db).failed_job_registry.count == 1
