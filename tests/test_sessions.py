"""Session cookies (kaptrain.sessions): a cookie's signature is checked once per process, its age every time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, session

from kaptrain import sessions


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
