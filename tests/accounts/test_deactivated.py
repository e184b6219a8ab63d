"""A deactivated account: the right password hears why it cannot sign in and whom to ask; a reset request mails
its owner the same instead of a link; a wrong password learns nothing; the footer names the support address."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from kaptrain.accounts import services
from tests.accounts.conftest import Mailbox, body
from tests.conftest import PASSWORD
from tests.factories import make_user

SUPPORT = "help@ce.example.org"


@pytest.fixture
def support(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    """The deployment names a support address (KAPTRAIN_SUPPORT_EMAIL)."""
    monkeypatch.setitem(app.config, "SUPPORT_EMAIL", SUPPORT)
    monkeypatch.setitem(app.jinja_env.globals, "support_email", SUPPORT)
    return SUPPORT


@pytest.fixture
def shut(db: Session):  # type: ignore[no-untyped-def]
    user = make_user(db, email="shut@example.org")
    services.deactivate(db, user, None)
    db.commit()
    return user


def test_the_right_password_hears_the_account_is_deactivated_and_whom_to_ask(client: FlaskClient, shut, support):
    right = client.post("/login", data={"email": "shut@example.org", "password": PASSWORD})
    text = right.get_data(as_text=True)
    assert right.status_code == 422 and "This account is deactivated" in text and SUPPORT in text
    assert "<li>This account is deactivated" in text  # a message about the account, not under "Password"
    assert client.get("/dashboard").status_code == 302  # still nobody signed in
    wrong = client.post("/login", data={"email": "shut@example.org", "password": "not the password at all"})
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and "deactivated" not in text  # a wrong password learns nothing
    assert "That email and password do not match an account." in text


def test_a_reset_request_mails_the_owner_why_no_link_comes(client: FlaskClient, shut, support, mailbox: Mailbox):
    answer = client.post("/password/forgot", data={"email": "shut@example.org"}, follow_redirects=True)
    unknown = client.post("/password/forgot", data={"email": "nobody@example.org"}, follow_redirects=True)
    assert answer.status_code == unknown.status_code == 200
    # The form answers the same, naming the address typed in each case.
    assert answer.text.replace("shut@example.org", "@") == unknown.text.replace("nobody@example.org", "@")
    message = mailbox.last("shut@example.org")
    assert message["Subject"] == "kaptrain: your account is deactivated"
    assert SUPPORT in body(message) and "/password/reset/" not in body(message)


def test_the_footer_names_the_support_address_only_when_there_is_one(client: FlaskClient, app: Flask, monkeypatch):
    assert "Questions about your account" not in client.get("/login").get_data(as_text=True)
    monkeypatch.setitem(app.jinja_env.globals, "support_email", SUPPORT)
    assert f'href="mailto:{SUPPORT}"' in client.get("/login").get_data(as_text=True)
