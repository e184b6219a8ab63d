"""What the account forms say: errors in the page's order, passwords explained, optional fields marked, the name
field's hint, and a refused form announced in the page title."""

from __future__ import annotations

import re

import pytest

from tests.accounts.test_accounts import GOOD
from tests.conftest import PASSWORD
from tests.factories import make_user


def _summary(page: str) -> list[str]:
    """The field names the error summary links to, in order."""
    match = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', page, re.S)
    assert match, "no error summary"
    return re.findall(r'<a href="#([a-z_]+)">', match.group(1))


def _fields(page: str) -> list[str]:
    """The ids of the form's inputs, in the order the page shows them."""
    return re.findall(r'<(?:input|select)[^>]* id="([a-z_]+)"', page)


def test_the_error_summary_lists_fields_in_the_order_of_the_form(client, db):
    page = client.post("/register", data={}).data.decode()
    summary = _summary(page)
    assert summary == ["full_name", "email", "profession", "password", "confirm"]
    shown = [f for f in _fields(page) if f in summary]
    assert summary == shown


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "Enter a password."),
        ("short", "The password is too short: it has 5 characters, and it needs at least 12."),
        ("x", "The password is too short: it has 1 character, and it needs at least 12."),
        ("y" * 300, "The password is too long: it has 300 characters; use at most 256."),
    ],
)
def test_a_refused_password_says_what_is_wrong(client, db, password, message):
    response = client.post("/register", data={**GOOD, "password": password, "confirm": password})
    assert response.status_code == 422
    assert message in response.data.decode()


def test_a_missing_repeat_says_why_it_is_asked(client, db):
    page = client.post("/register", data={**GOOD, "confirm": ""}).data.decode()
    assert "Type the password again, to be sure it is the one you meant." in page


def test_optional_fields_say_so_and_the_name_field_keeps_credentials_apart(client):
    page = client.get("/register").data.decode()
    for label in (
        "Credential (optional, e.g. LPC, LCSW, PhD, MD, RN)",
        "Licence number (optional)",
        "Licensing jurisdiction (optional)",
        "Time zone (optional)",
    ):
        assert f">{label}</label>" in page
    for required in ("Full name, as it should appear on your certificate", "Email", "Profession"):
        assert f">{required}</label>" in page and f">{required} (optional" not in page
    hint = '<p class="hint" id="full_name-hint">Your name only: your credential (for example LCSW or MD) has its own'
    assert hint in page
    assert re.search(r'<input aria-describedby="full_name-hint"[^>]* id="full_name"', page)


def test_a_refused_login_is_named_in_the_title_and_its_summary_takes_focus(client, db):
    user = make_user(db)
    db.commit()
    response = client.post("/login", data={"email": user.email, "password": "not the password"})
    page = response.data.decode()
    assert response.status_code == 422
    assert "<title>Error: Log in · kaptrain</title>" in page
    assert '<div class="error-summary" role="alert" tabindex="-1" autofocus>' in page
    assert "<title>Log in · kaptrain</title>" in client.get("/login").data.decode()


def test_a_refused_password_change_is_named_in_the_title(client, db, login):
    login(make_user(db))
    response = client.post("/account/password", data={"pw-current_password": PASSWORD, "pw-password": "short"})
    assert response.status_code == 422
    assert "<title>Error: Your account · kaptrain</title>" in response.data.decode()
