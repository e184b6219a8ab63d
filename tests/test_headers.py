"""Security headers on every kind of response: pages, redirects, static files, and every error path
(404, 405, 400, 413, 500, CSRF failures, rate limits); HSTS in production only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kaptrain.web import CSP, HSTS


@pytest.fixture(autouse=True)
def _migrated(app: Flask) -> None:
    """The extra apps below share the session's migrated database."""


def assert_protected(response: TestResponse) -> None:
    """The headers that every response must carry, whatever produced it."""
    response.close()  # static files are streamed from an open file
    assert response.headers["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


REQUESTS: list[tuple[str, str, str, int]] = [
    # (what, method, url, expected status)
    ("page", "GET", "/", 200),
    ("page, HEAD", "HEAD", "/", 200),
    ("automatic OPTIONS", "OPTIONS", "/login", 200),
    ("redirect to login", "GET", "/dashboard", 302),
    ("static stylesheet", "GET", "/static/css/kaptrain.css", 200),
    ("static script", "GET", "/static/js/kaptrain.js", 200),
    ("favicon", "GET", "/favicon.ico", 200),
    ("missing static file", "GET", "/static/css/nope.css", 404),
    ("unknown page", "GET", "/no-such-page", 404),
    ("wrong method", "GET", "/logout", 405),
    ("control characters", "GET", "/courses/%00", 400),
    ("key list (JSON)", "GET", "/credentials/keys.json", 200),
]


@pytest.mark.parametrize(("method", "url", "status"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS])
def test_every_kind_of_response_carries_the_headers(client: FlaskClient, method: str, url: str, status: int) -> None:
    response = client.open(url, method=method, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == status
    assert_protected(response)
    assert "Strict-Transport-Security" not in response.headers  # not in development or tests
    assert "Date" not in response.headers  # the server adds its own to every answer: the app must not add a second


def test_a_csrf_failure_carries_the_headers(client: FlaskClient, csrf_on: None) -> None:
    response = client.post("/login", data={"email": "a@example.org", "password": "x"})
    assert response.status_code == 400 and b"The form expired" in response.data
    assert_protected(response)


def test_a_too_large_request_carries_the_headers(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "a@example.org", "password": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert_protected(response)


def test_a_rate_limited_request_carries_the_headers(extra_app: Callable[..., Flask]) -> None:
    app = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="1 per minute")
    client = app.test_client()
    client.post("/login", data={"email": "limit@example.org", "password": "wrong password!"})
    response = client.post("/login", data={"email": "limit@example.org", "password": "wrong password!"})
    assert response.status_code == 429
    assert_protected(response)


def _app_with_failing_route(make: Callable[..., Flask], **settings: object) -> Flask:
    app = make(PROPAGATE_EXCEPTIONS=False, **settings)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("internals")

    return app


def test_an_unexpected_error_carries_the_headers(extra_app: Callable[..., Flask]) -> None:
    response = _app_with_failing_route(extra_app).test_client().get("/boom")
    assert response.status_code == 500 and b"internals" not in response.data
    assert_protected(response)


PRODUCTION = {"ENV": "production", "SECRET_KEY": "p" * 64}


@pytest.mark.parametrize(
    ("url", "status"),
    [("/", 200), ("/static/css/kaptrain.css", 200), ("/no-such-page", 404), ("/logout", 405), ("/boom", 500)],
)
def test_production_sends_hsts_on_every_response(extra_app: Callable[..., Flask], url: str, status: int) -> None:
    app = _app_with_failing_route(extra_app, **PRODUCTION)
    # Plain HTTP on purpose: behind a TLS proxy whose X-Forwarded-Proto is not trusted the app sees HTTP too.
    response = app.test_client().get(url)
    assert response.status_code == status
    assert response.headers["Strict-Transport-Security"] == HSTS
    max_age = int(HSTS.split("max-age=")[1].split(";")[0])
    assert max_age >= 365 * 24 * 3600 and "includeSubDomains" in HSTS
    assert_protected(response)


def test_production_sends_hsts_on_csrf_and_rate_limit_errors(extra_app: Callable[..., Flask]) -> None:
    refused = extra_app(WTF_CSRF_ENABLED=True, **PRODUCTION).test_client().post("/login", data={"email": "a@x.org"})
    client = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="1 per minute", **PRODUCTION).test_client()
    client.post("/login", data={"email": "hsts@example.org", "password": "wrong password!"})
    limited = client.post("/login", data={"email": "hsts@example.org", "password": "wrong password!"})
    assert (refused.status_code, limited.status_code) == (400, 429)
    for response in (refused, limited):
        assert response.headers["Strict-Transport-Security"] == HSTS
        assert_protected(response)


def test_production_with_smtp_and_no_queue_is_warned_that_mail_waits_in_the_request(extra_app, caplog) -> None:  # type: ignore[no-untyped-def]
    """The attack timed password resets on such a site: about 270 ms for an account, 5 ms for none."""
    with caplog.at_level("WARNING"):
        extra_app(**PRODUCTION, SMTP_HOST="mail.example.org")
    assert any("KAPTRAIN_SMTP_HOST is set without KAPTRAIN_REDIS_URL" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        extra_app(**PRODUCTION, SMTP_HOST="mail.example.org", REDIS_URL="redis://127.0.0.1:6379/9")
        extra_app(**PRODUCTION)  # logged mail: nothing to wait for
    assert not any("KAPTRAIN_REDIS_URL" in r.getMessage() for r in caplog.records)


def test_production_without_a_support_address_is_warned(extra_app, caplog) -> None:  # type: ignore[no-untyped-def]
    """The walk-through: messages sent learners to "the site's team" with no way to reach it."""
    with caplog.at_level("WARNING"):
        extra_app(**PRODUCTION)
    assert any("KAPTRAIN_SUPPORT_EMAIL is not set" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        extra_app(**PRODUCTION, SUPPORT_EMAIL="help@provider.example")
    assert not any("KAPTRAIN_SUPPORT_EMAIL" in r.getMessage() for r in caplog.records)
