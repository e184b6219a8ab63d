"""Session cookies: a fresh CSRF secret at login and logout, a lifetime of SESSION_HOURS, tampered ids refused."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from itsdangerous.timed import TimestampSigner

from kaptrain.config import load_config
from tests.conftest import PASSWORD
from tests.factories import make_user

_TOKEN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def csrf_token(page: bytes) -> str:
    """The CSRF token of the first form on a page."""
    found = _TOKEN.search(page.decode())
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_a_csrf_token_from_before_login_is_refused_after_it(client, db, csrf_on):
    user = make_user(db)
    db.commit()
    before = csrf_token(client.get("/login").data)
    logged_in = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": before})
    assert logged_in.status_code == 302

    replayed = client.post("/logout", data={"csrf_token": before})
    assert replayed.status_code == 400 and b"The form expired" in replayed.data
    assert client.get("/dashboard").status_code == 200  # the forged logout did nothing

    fresh = csrf_token(client.get("/dashboard").data)
    assert client.post("/logout", data={"csrf_token": fresh}).status_code == 302


def test_a_csrf_token_from_before_logout_is_refused_after_it(client, db, csrf_on):
    user = make_user(db)
    db.commit()
    first = csrf_token(client.get("/login").data)
    assert (
        client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": first}).status_code == 302
    )
    before = csrf_token(client.get("/dashboard").data)
    assert client.post("/logout", data={"csrf_token": before}).status_code == 302

    replayed = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": before})
    assert replayed.status_code == 400 and b"The form expired" in replayed.data
    assert client.get("/dashboard").status_code == 302  # still logged out


def test_register_logs_nobody_in_and_the_login_after_it_starts_a_fresh_session(client, db, csrf_on):
    before = csrf_token(client.get("/register").data)
    data = {
        "full_name": "Robin Fresh",
        "email": "robin@example.org",
        "profession": "Nurse / nurse practitioner",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "csrf_token": before,
    }
    assert client.post("/register", data=data).status_code == 302
    # The same answer as for an address that has an account (which must not be logged in): nobody is.
    assert client.get("/dashboard").status_code == 302
    token = csrf_token(client.get("/login").data)
    login = {"email": "robin@example.org", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302
    replayed = client.post("/logout", data={"csrf_token": before})
    assert replayed.status_code == 400


def test_session_hours_sets_the_session_lifetime():
    cfg = load_config(environ={"KAPTRAIN_SESSION_HOURS": "3"})
    assert cfg["PERMANENT_SESSION_LIFETIME"] == dt.timedelta(hours=3)
    assert cfg["REMEMBER_COOKIE_DURATION"] == dt.timedelta(hours=3)


def test_the_login_cookie_ends_with_the_browser(app, client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    assert client.get_cookie("session").expires is None  # not kept on a shared clinic computer


@pytest.mark.parametrize(("age_minutes", "still_logged_in"), [(-10, True), (1, False)])
def test_a_login_ends_session_hours_after_it_began_however_active(
    app, client, db, login, monkeypatch, age_minutes, still_logged_in
):
    """Requests keep re-signing the cookie, but the login time inside it does not move."""
    user = make_user(db)
    db.commit()
    began = time.time() - app.config["SESSION_HOURS"] * 3600 - age_minutes * 60
    with monkeypatch.context() as m:
        m.setattr("kaptrain.accounts.views.time.time", lambda: began)
        login(user)
    response = client.get("/dashboard")
    if still_logged_in:
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(("age_minutes", "still_logged_in"), [(-10, True), (1, False)])
def test_a_session_cookie_older_than_session_hours_is_refused(
    app, client, db, login, monkeypatch, age_minutes, still_logged_in
):
    """age_minutes: how long past SESSION_HOURS ago the cookie was signed (negative: not yet that old)."""
    user = make_user(db)
    db.commit()
    signed_ago = app.config["SESSION_HOURS"] * 3600 + age_minutes * 60
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - signed_ago)
        login(user)
    response = client.get("/dashboard")
    if still_logged_in:
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(
    "token",
    [
        "{id}²:{version}",  # str.isdigit() says yes; int() raises
        "{arabic}:{version}",  # Arabic-Indic digits: int() reads them as this very user's id
        "{id}:{version}²",
        "9" * 30 + ":1",  # larger than any id column
        "1:" + "9" * 5000,  # longer than int() accepts
        "-1:1",
        ":",
    ],
)
def test_a_tampered_session_id_reads_as_logged_out(client, db, login, token):
    user = make_user(db)
    db.commit()
    login(user)
    arabic = str(user.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    with client.session_transaction() as sess:
        sess["_user_id"] = token.format(id=user.id, arabic=arabic, version=user.session_version)
    response = client.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.location


def test_login_time_check_is_absolute_and_refuses_anything_odd():
    from kaptrain.auth import login_is_current  # noqa: PLC0415 - the unit under test

    now = 1_800_000_000.0
    assert login_is_current(now - 11 * 3600, 12, now)
    assert not login_is_current(now - 12 * 3600 - 1, 12, now)
    for odd in (None, "1800000000", True, now + 60):  # missing, a string, a bool, in the future
        assert not login_is_current(odd, 12, now)
