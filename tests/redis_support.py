"""The local Redis and `flask` subprocesses, for the tests that run real RQ workers (tests/test_jobs.py,
tests/certificates/test_cli.py); the `redis_db` fixture in tests/conftest.py wraps `redis_database`."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError

from kaptrain.config import PROJECT_ROOT

REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own, flushed before and after each test
FLASK = str(Path(sys.executable).with_name("flask"))


def redis_database() -> Iterator[Redis]:
    """The test Redis database, flushed before and after; skipped (failed under CI) when Redis is down."""
    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except RedisError as exc:
        message = f"Redis is not reachable at {REDIS_URL} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI machines run Redis, so its absence there is a real failure
        pytest.skip(message + ": start redis-server to run the worker tests")
    # Runs of this suite on one machine share this Redis database: take turns, or one run's flush
    # would empty the other's queue mid-test.
    with open(Path(tempfile.gettempdir()) / "kaptrain-tests-redis-14.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection.flushdb()
        yield connection
        connection.flushdb()
    connection.close()


# Signing keys of the test apps and workers: a private temporary folder per run, never instance/keys.
TEST_KEY_DIR = tempfile.mkdtemp(prefix="kaptrain-test-keys-") + "/keys"


def worker_env(database_url: str) -> dict[str, str]:
    """The environment of a `flask` subprocess using this database and the test Redis."""
    env = {
        **os.environ,
        "KAPTRAIN_REDIS_URL": REDIS_URL,
        "KAPTRAIN_DATABASE_URL": database_url,
        # Signing keys made by a worker go to the run's temporary folder, never the project's instance/keys.
        "KAPTRAIN_CREDENTIAL_KEY_DIR": TEST_KEY_DIR,
    }
    env.pop("KAPTRAIN_ENV", None)
    return env


def run_flask(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `flask --app kaptrain ARGS...` from the project root (so a worker can import tests' job functions)."""
    return subprocess.run(
        [FLASK, "--app", "kaptrain", *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )
