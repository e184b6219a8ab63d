"""Session cookies (kaptrain.sessions): a cookie's signature is checked once per process, its age every time."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from kaptrain import sessions
from tests.factories import forged


def _cookie(app: Flask, **values: object) -> str:
    interface = app.session_interface
    serializer = interface.get_signing_serializer(app)
    assert serializer is not None
    return str(serializer.dumps(dict(values)))


def _open(app: Flask, cookie: str) -> dict[str, object]:
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        return dict(session)


def test_a_remembered_cookie_gives_every_request_its_own_copy(extra_app: Callable[..., Flask]) -> None:
    app = extra_app()
    cookie = _cookie(app, _user_id="7:1", login_at="2026-11-26T10:00:00+00:00")
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        session["_user_id"] = "changed"  # one request changes its session ...
    assert _open(app, cookie)["_user_id"] == "7:1"  # ... the next request with that cookie does not see it
    assert _open(app, cookie)["_user_id"] == "7:1"


def test_a_changed_or_foreign_cookie_is_still_refused(extra_app: Callable[..., Flask]) -> None:
    app = extra_app()
    cookie = _cookie(app, _user_id="7:1")
    assert _open(app, cookie)["_user_id"] == "7:1"
    payload, _, rest = cookie.partition(".")
    assert _open(app, f"{payload}x.{rest}") == {}
    other = extra_app(SECRET_KEY="another key entirely")
    assert _open(other, _cookie(other, _user_id="7:1")) == {"_user_id": "7:1"}
    assert _open(app, _cookie(other, _user_id="7:1")) == {}  # signed with someone else's key


def test_a_remembered_cookie_still_expires(extra_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    app = extra_app()
    cookie = _cookie(app, _user_id="7:1")
    assert _open(app, cookie) == {"_user_id": "7:1"}  # checked and remembered
    real = sessions.time.time
    lifetime = app.permanent_session_lifetime.total_seconds()
    monkeypatch.setattr(sessions.time, "time", lambda: real() + lifetime + 5)
    assert _open(app, cookie) == {}


def test_a_session_holding_messages_is_decoded_each_time(extra_app: Callable[..., Flask]) -> None:
    app = extra_app()
    cookie = _cookie(app, _user_id="7:1", _flashes=[["info", "Saved."]])
    for _ in range(2):
        assert _open(app, cookie)["_flashes"] == [["info", "Saved."]]
    assert cookie not in app.session_interface._checked  # noqa: SLF001 - lists are never shared between requests


def _csrf_app(extra_app: Callable[..., Flask]) -> Flask:
    app = extra_app(WTF_CSRF_ENABLED=True)
    app.add_url_rule("/__posted", "posted", lambda: "posted", methods=["POST"])
    return app


def _token(client: FlaskClient, base: str = "") -> str:
    page = client.get(f"{base}/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found, page[:400]
    return found.group(1)


def test_a_remembered_csrf_token_is_still_tied_to_its_session(extra_app: Callable[..., Flask]) -> None:
    app = _csrf_app(extra_app)
    mine, theirs = app.test_client(), app.test_client()
    token = _token(mine)
    _token(theirs)  # the other client has a session token of its own
    for _ in range(2):  # checked, then remembered
        assert mine.post("/__posted", headers={"X-CSRFToken": token}).status_code == 200
    assert theirs.post("/__posted", headers={"X-CSRFToken": token}).status_code == 400
    assert mine.post("/__posted", headers={"X-CSRFToken": forged(token)}).status_code == 400
    assert mine.post("/__posted").status_code == 400  # no token at all
    # Flask-WTF reads the form first: a good token there passes whatever a header says, and a bad one fails
    # whatever a header says, remembered or not.
    assert mine.post("/__posted", data={"csrf_token": token}, headers={"X-CSRFToken": "not-a-token"}).status_code == 200
    assert mine.post("/__posted", data={"csrf_token": "bad"}, headers={"X-CSRFToken": token}).status_code == 400
    assert mine.post("/__posted", data={"my-csrf_token": "bad"}, headers={"X-CSRFToken": token}).status_code == 400


def test_a_remembered_csrf_token_still_expires(
    extra_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _csrf_app(extra_app)
    client = app.test_client()
    token = _token(client)
    assert client.post("/__posted", headers={"X-CSRFToken": token}).status_code == 200
    real = sessions.time.time
    monkeypatch.setattr(sessions.time, "time", lambda: real() + app.config["WTF_CSRF_TIME_LIMIT"] + 5)
    expired = client.post("/__posted", headers={"X-CSRFToken": token})
    assert expired.status_code == 400
    assert "expired" in expired.get_data(as_text=True).lower()  # Flask-WTF's own check said why


def test_a_remembered_csrf_token_still_needs_a_same_origin_referrer(extra_app: Callable[..., Flask]) -> None:
    app = _csrf_app(extra_app)
    client = app.test_client()
    base = "https://kaptrain.test"
    token = _token(client, base)
    same = {"X-CSRFToken": token, "Referer": f"{base}/login"}
    for _ in range(2):
        assert client.post(f"{base}/__posted", headers=same).status_code == 200
    foreign = {"X-CSRFToken": token, "Referer": "https://elsewhere.example/form"}
    assert client.post(f"{base}/__posted", headers=foreign).status_code == 400
    assert client.post(f"{base}/__posted", headers={"X-CSRFToken": token}).status_code == 400
    # A referrer that is no URL at all (a port past 65535, an unclosed IPv6 bracket) is refused in words too.
    for broken in ("https://kaptrain.test:99999/", "https://[::1/", "https://kaptrain.test:99999.evil.example/"):
        refused = client.post(f"{base}/__posted", headers={"X-CSRFToken": token, "Referer": broken})
        assert refused.status_code == 400 and "another site" in refused.get_data(as_text=True)
    form_post = client.post(f"{base}/__posted", data={"csrf_token": token}, headers={"Referer": "https://[::1/"})
    assert form_post.status_code == 400


def test_a_csrf_token_is_checked_outside_a_request_as_flask_wtf_checks_it(extra_app: Callable[..., Flask]) -> None:
    """RememberingCSRFProtect.check, which the fast lane calls with no request: Flask-WTF's rule for a token this
    process has never seen, and for one it has."""
    from itsdangerous import URLSafeTimedSerializer  # noqa: PLC0415

    from kaptrain.extensions import csrf  # noqa: PLC0415

    app = extra_app(WTF_CSRF_ENABLED=True)
    secret = app.secret_key
    signer = URLSafeTimedSerializer(secret, salt="wtf-csrf-token")
    token = str(signer.dumps("session-value"))
    now = sessions.time.time()
    for _ in range(2):  # never seen, then remembered
        assert csrf.check(secret, token, "session-value", 3600, now)
    assert not csrf.check(secret, token, "another session's value", 3600, now)
    assert not csrf.check(secret, token, "session-value", 3600, now + 3601)  # expired
    # Forged (a run once changed the last two characters, which base64 partly ignores, and got the same signature).
    assert not csrf.check(secret, forged(token), "session-value", 3600, now)
    assert not csrf.check("another key entirely", token, "session-value", 3600, now)
    not_a_string = str(signer.dumps(["session-value"]))
    assert not csrf.check(secret, not_a_string, "session-value", 3600, now)
    fresh = str(signer.dumps("other-session"))
    assert not csrf.check(secret, fresh, "session-value", 3600, now)  # first seen for the wrong session ...
    assert csrf.check(secret, fresh, "other-session", 3600, now)  # ... is still good for its own
