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

from kaptrain.accounts import devices
from kaptrain.accounts import services as accounts
from tests.conftest import PASSWORD
from tests.factories import make_user

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


def test_strangers_failing_cannot_lock_out_the_owners_own_browser(app, db, extra_app):
    """The attack: wrong passwords for an account from two addresses, then its owner got 429 with the right one. A
    browser that logged in to the account keeps a count of its own for it, until the account's sessions end."""
    owner = make_user(db, email="owner@example.org")
    db.commit()
    limited = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    limited.extensions["kaptrain.db"].bind = db.connection()  # sees the test's rows, and rolls back with them

    def attempt(address: str, browser=None, password: str = WRONG) -> int:  # type: ignore[no-untyped-def]
        client = browser or limited.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        status = client.post("/login", data={"email": owner.email, "password": password}).status_code
        client.post("/logout")
        return status

    own = limited.test_client()
    assert attempt("10.0.2.1", own, PASSWORD) == 302 and own.get_cookie(devices.COOKIE) is not None
    first_cookie = own.get_cookie(devices.COOKIE).value
    assert attempt("10.0.2.1", own, PASSWORD) == 302  # logging in again keeps the browser's name: no new count
    assert own.get_cookie(devices.COOKIE).value.split(".")[0] == first_cookie.split(".")[0]  # the same name inside
    assert [attempt(f"10.0.2.{n}") for n in (2, 3)] == [422, 422]
    assert attempt("10.0.2.4") == 429  # a browser like any other is held up with the strangers ...
    assert attempt("10.0.2.5", own, PASSWORD) == 302  # ... the owner's own is not
    forged = limited.test_client()
    forged.set_cookie(devices.COOKIE, "not-a-signed-value")
    assert attempt("10.0.2.6", forged, PASSWORD) == 429  # nor does a made-up cookie count for anything
    # A password change retires every device count made before it: whoever once knew the password and kept a
    # cookie is back with the strangers.
    accounts.set_password(db, owner, "a brand new passphrase for the owner")
    db.commit()
    assert attempt("10.0.2.7", own) == 429


def test_logging_in_gives_the_browser_its_own_count_for_that_account(client, db):
    user = make_user(db, email="known@example.org")
    db.commit()
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    cookie = client.get_cookie(devices.COOKIE)
    assert cookie is not None and cookie.http_only and user.email not in cookie.value
    with client.application.test_request_context(headers={"Cookie": f"{devices.COOKIE}={cookie.value}"}):
        assert devices.known_device(user.email) and devices.known_device("someone@example.org") is None
        assert devices.rate_key("login", user.email).startswith("login:known@example.org:device:")


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


def test_a_refused_login_shows_the_form_with_the_wait_and_the_reset_link(app, extra_app):
    """A walk-through hit the limit and got a bare error page with no form and no way to reset the password."""
    limited = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2 per minute")
    client = limited.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.3.1"
    for _ in range(2):
        client.post("/login", data={"email": "e@example.org", "password": WRONG})
    refused = client.post("/login", data={"email": "e@example.org", "password": WRONG})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "Too many attempts to log in. Please wait a minute" in page
    assert "Please wait before trying again" in page and "Please correct the following" not in page
    assert 'value="e@example.org"' in page and 'href="/password/forgot"' in page and WRONG not in page
    assert 'name="password"' in page  # the form itself, to try again once the wait is over
