"""Login rate limits: per account whatever the body's encoding, and with Redis as the shared store."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/15"
WRONG = "wrong password!"


def post_login(app: Flask, address: str, **body: object) -> int:
    """Status of one login attempt from a client at this address (data= for a form, json= for JSON)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/login", **body).status_code


def test_json_and_form_logins_share_one_per_account_limit(app, extra_app):
    """app: the session app, which migrates the database these logins look in."""
    limited = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    codes = [
        post_login(limited, "10.0.1.1", data={"email": "c@example.org", "password": WRONG}),
        post_login(limited, "10.0.1.2", json={"email": "c@example.org", "password": WRONG}),
        post_login(limited, "10.0.1.3", json={"email": " C@Example.ORG ", "password": WRONG}),
        post_login(limited, "10.0.1.4", json={"email": "c@example.org", "password": WRONG}),
    ]
    assert codes == [422, 422, 422, 429]
    # Someone else's account, from yet another address, is not held up by those attempts.
    assert post_login(limited, "10.0.1.5", json={"email": "d@example.org", "password": WRONG}) == 422


@pytest.fixture
def redis_storage(extra_app: Callable[..., Flask]) -> Iterator[str]:
    """REDIS_URL when a Redis server answers there; skips (fails in CI) when none does."""
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1).close()
    except OSError as exc:
        message = f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs a Redis service, so its absence there is a real failure
        pytest.skip(message + ": start one to test the Redis rate-limit storage")
    yield REDIS_URL
    # The limiter is one object shared by every app: leave it switched off (as tests expect), not on Redis.
    extra_app()


def test_login_limits_count_in_redis(app, extra_app, redis_storage):
    limited = extra_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=redis_storage, LOGIN_RATE_LIMIT="1 per minute")
    # Fresh keys, so other runs sharing this Redis database cannot interfere.
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    body = {"email": f"redis-{uuid.uuid4().hex}@example.org", "password": WRONG}
    codes = [post_login(limited, address, data=body) for _ in range(2)]
    assert codes == [422, 429]
    assert redis.Redis.from_url(redis_storage).keys(f"*{address}*"), "the count should be kept in Redis"
