"""Password reset by email, over a real SMTP server on loopback: the whole path, and every link that must not work."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from kaptrain.accounts.models import AccountToken, RecoveryCode, TokenPurpose, User
from kaptrain.audit import AuditEntry
from kaptrain.db import utcnow
from tests.accounts.conftest import body, link_in
from tests.conftest import PASSWORD
from tests.factories import make_user

NEW_PASSWORD = "a brand new passphrase 2026"


def ask_for_reset(client, email: str):  # type: ignore[no-untyped-def]
    return client.post("/password/forgot", data={"email": email})


def set_password_through(client, path: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(path, data={"password": password, "confirm": password})


def can_log_in(app, email: str, password: str) -> bool:  # type: ignore[no-untyped-def]
    response = app.test_client().post("/login", data={"email": email, "password": password})
    return response.status_code == 302


def password_hash(db, user: User) -> str:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalar(select(User.password_hash).where(User.id == user.id))


def test_reset_by_email_end_to_end(app, client, db, mailbox, login):
    ana = make_user(db, email="ana@example.org", full_name="Ana Reset")
    db.commit()
    elsewhere = app.test_client()  # another device, logged in before the reset
    assert elsewhere.post("/login", data={"email": ana.email, "password": PASSWORD}).status_code == 302

    response = ask_for_reset(client, "  ANA@example.org ")
    assert response.status_code == 302 and response.location == "/password/forgot/sent"
    sent = client.get(response.location)
    assert b"If an account uses <strong>ANA@example.org</strong>, we have sent it a link" in sent.data
    assert b"If an account uses that address" in client.get(response.location).data  # named once, not on a reload
    ask_for_reset(client, "ANA@example.org")  # and only on the page of the form that was sent (second attack)
    assert b"ANA@example.org" not in client.get("/register/check-your-email").data

    message = mailbox.last("ana@example.org")
    assert message["Subject"] == "kaptrain: reset your password"
    assert "within 60 minutes" in body(message)
    path = link_in(message)
    assert path.startswith("/password/reset/")
    form = client.get(path)
    assert form.status_code == 200 and b"Choose a new password" in form.data and b"ana@example.org" in form.data

    done = set_password_through(client, path)
    assert done.status_code == 302 and done.location == "/login"
    assert elsewhere.get("/dashboard").status_code == 302  # every other session ended
    assert not can_log_in(app, ana.email, PASSWORD)
    ana.password_hash = password_hash(db, ana)
    login(ana, NEW_PASSWORD)
    assert client.get("/dashboard").status_code == 200

    notice = mailbox.last("ana@example.org")
    assert notice["Subject"] == "kaptrain: your password was changed"
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.subject_id == ana.id)).all()
    assert "user.password_reset" in actions
    # The secret itself is nowhere in the database: only its SHA-256.
    secret = path.rsplit("/", 1)[1]
    assert not db.scalar(select(func.count()).select_from(AccountToken).where(AccountToken.token_hash == secret))


def test_an_unknown_email_gets_the_same_answer_and_no_mail(client, db, mailbox):
    make_user(db, email="known@example.org")
    db.commit()
    known = ask_for_reset(client, "known@example.org")
    unknown = ask_for_reset(client, "nobody@example.org")
    assert (known.status_code, known.location) == (unknown.status_code, unknown.location)
    assert known.get_data() == unknown.get_data()
    assert [m["To"] for _f, _r, m in mailbox.inbox.messages] == ["known@example.org"]


def test_a_deactivated_account_gets_no_link(client, db, mailbox):
    gone = make_user(db, email="gone@example.org")
    gone.is_active = False
    db.commit()
    assert ask_for_reset(client, "gone@example.org").location == "/password/forgot/sent"
    (message,) = mailbox.to("gone@example.org")  # why no link comes (tests/accounts/test_deactivated.py)
    assert message["Subject"] == "kaptrain: your account is deactivated" and "/password/reset/" not in body(message)


@pytest.mark.parametrize(
    "email", ["", "not-an-email", "a\x00@example.org"], ids=["empty", "malformed", "control-character"]
)
def test_a_bad_address_is_refused_on_the_form_and_sends_nothing(client, db, mailbox, email):
    response = ask_for_reset(client, email)
    assert response.status_code == 422 and b'aria-invalid="true"' in response.data
    assert mailbox.count() == 0 and not db.scalar(select(func.count()).select_from(AccountToken))


@pytest.fixture
def ana(db):  # type: ignore[no-untyped-def]
    user = make_user(db, email="ana@example.org")
    db.commit()
    return user


def reset_link(client, mailbox, email: str = "ana@example.org") -> str:  # type: ignore[no-untyped-def]
    ask_for_reset(client, email)
    return link_in(mailbox.last(email))


def assert_refused(client, db, user, path, status: int, words: bytes) -> None:  # type: ignore[no-untyped-def]
    """The link's page and its form both refuse, say why, and change nothing."""
    before = password_hash(db, user)
    page = client.get(path)
    assert page.status_code == status and words in page.data, page.data
    assert b"Nothing was changed" in page.data
    posted = set_password_through(client, path, "an attacker's passphrase!")
    assert posted.status_code == status and words in posted.data
    assert password_hash(db, user) == before


def test_an_expired_link_is_refused(client, db, mailbox, ana):
    path = reset_link(client, mailbox)
    db.execute(update(AccountToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.commit()
    assert_refused(client, db, ana, path, 410, b"This password link has expired.")


def test_a_used_link_is_refused(client, db, mailbox, ana):
    path = reset_link(client, mailbox)
    assert set_password_through(client, path).status_code == 302
    assert_refused(client, db, ana, path, 410, b"has already been used, so the password chosen with it is the one")
    page = client.get(path).get_data(as_text=True)
    assert page.index("Go to the login page") < page.index("Forgot that password? Ask for a new link")


@pytest.mark.parametrize(
    "token",
    ["forged-token-that-was-never-sent", "x" * 500, "A" * 43, "é" * 10],
    ids=["made-up", "very-long", "right-length", "non-ascii"],
)
def test_a_forged_link_is_refused(client, db, mailbox, ana, token):
    reset_link(client, mailbox)  # a real link exists for the account
    assert_refused(client, db, ana, f"/password/reset/{token}", 404, b"This link is not valid.")


def test_a_link_with_a_control_character_is_refused(client, db, mailbox, ana):
    reset_link(client, mailbox)
    before = password_hash(db, ana)
    response = set_password_through(client, "/password/reset/%00")
    assert response.status_code == 400 and b"invisible control characters" in response.data
    assert password_hash(db, ana) == before


def _sent_long_ago(db) -> None:  # type: ignore[no-untyped-def]
    """As if the reset links sent so far had gone out more than the resend gap ago."""
    db.execute(update(AccountToken).values(created_at=utcnow() - dt.timedelta(minutes=11)))
    db.commit()


def test_a_link_stops_working_when_a_later_reset_is_asked_for(client, db, mailbox, ana):
    first = reset_link(client, mailbox)
    _sent_long_ago(db)
    second = reset_link(client, mailbox)
    assert first != second
    assert_refused(client, db, ana, first, 410, b"A newer password link was sent after this one")
    assert set_password_through(client, second).status_code == 302


def test_a_link_stops_working_when_the_password_changes(app, client, db, mailbox, ana, login):
    path = reset_link(client, mailbox)
    login(ana)
    changed = client.post(
        "/account/password",
        data={"pw-current_password": PASSWORD, "pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert mailbox.last("ana@example.org")["Subject"] == "kaptrain: your password was changed"
    assert_refused(app.test_client(), db, ana, path, 410, b"Your password or email address changed after this")


def test_a_weak_new_password_is_refused_and_the_link_still_works(client, db, mailbox, ana):
    path = reset_link(client, mailbox)
    before = password_hash(db, ana)
    weak = set_password_through(client, path, "short")
    assert weak.status_code == 422 and b"The password is too short" in weak.data
    mismatch = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"})
    assert mismatch.status_code == 422 and b"The passwords do not match" in mismatch.data
    assert password_hash(db, ana) == before
    assert set_password_through(client, path).status_code == 302


def test_following_a_reset_link_confirms_the_address(client, db, mailbox):
    new = make_user(db, email="new@example.org", confirmed=False)
    db.commit()
    path = reset_link(client, mailbox, "new@example.org")
    assert set_password_through(client, path).status_code == 302
    db.refresh(new)
    assert new.is_email_confirmed


def test_a_reset_does_not_get_round_two_factor_sign_in(app, client, db, mailbox, ana):
    ana.totp_secret, ana.totp_enabled_at = "JBSWY3DPEHPK3PXP", utcnow()
    db.commit()
    path = reset_link(client, mailbox)
    assert set_password_through(client, path).status_code == 302
    assert client.get("/dashboard").status_code == 302  # the reset logs nobody in
    response = app.test_client().post("/login", data={"email": ana.email, "password": NEW_PASSWORD})
    assert response.status_code == 302 and response.location.startswith("/login/code")


def test_two_factor_set_up_before_the_address_was_proven_ends_when_its_owner_resets(app, client, db, mailbox):
    """Someone registers another person's address (never confirmed), turns two-factor sign-in on and keeps the
    codes. The address's owner resets the password through the emailed link: that proves the address for the first
    time, so the stranger's second factor and recovery codes go and the owner can sign in."""
    taken = make_user(db, email="owner@example.org", full_name="Eve <b>Stranger</b>", confirmed=False)
    taken.totp_secret, taken.totp_enabled_at = "JBSWY3DPEHPK3PXP", utcnow()
    db.add(RecoveryCode(user_id=taken.id, code_hash="0" * 64))
    db.commit()
    path = reset_link(client, mailbox, "owner@example.org")
    assert "Eve" not in body(mailbox.last("owner@example.org"))  # the stranger's words are not mailed to the owner
    assert set_password_through(client, path).status_code == 302
    db.expire_all()
    owner = db.get(User, taken.id)
    assert owner is not None and owner.is_email_confirmed and not owner.has_two_factor and owner.totp_secret is None
    assert db.scalar(select(func.count()).where(RecoveryCode.user_id == owner.id)) == 0
    assert (
        "user.two_factor_cleared_unproven"
        in db.scalars(
            select(AuditEntry.action).where(AuditEntry.subject_id == owner.id, AuditEntry.subject_type == "user")
        ).all()
    )
    response = app.test_client().post("/login", data={"email": "owner@example.org", "password": NEW_PASSWORD})
    assert response.status_code == 302 and response.location == "/dashboard"


def post_forgot(app, address: str, email: str) -> int:  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/password/forgot", data={"email": email}).status_code


def test_an_account_gets_one_reset_email_in_ten_minutes_and_is_never_refused(client, db, mailbox, ana):
    """The second attack: five requests from strangers flooded the owner's inbox and then had the owner's own
    request refused (429). Now every request is answered alike, and one email goes out in ten minutes."""
    for n in range(5):
        client.environ_base["REMOTE_ADDR"] = f"10.2.0.{n}"
        assert ask_for_reset(client, ana.email).status_code == 302
    assert len(mailbox.to(ana.email)) == 1
    first = link_in(mailbox.last(ana.email))
    _sent_long_ago(db)
    assert ask_for_reset(client, ana.email).status_code == 302  # the owner, later: a new link
    assert len(mailbox.to(ana.email)) == 2 and link_in(mailbox.last(ana.email)) != first


def test_reset_requests_are_limited_per_client_address(app, limited_app):
    limited = limited_app(ACCOUNT_MAIL_RATE_LIMIT="2 per hour")
    codes = [post_forgot(limited, "10.3.0.1", f"spray{n}@example.org") for n in range(3)]
    assert codes == [302, 302, 429]


def test_the_link_lifetime_is_configurable(app, client, db, mailbox, ana):
    app.config["RESET_TOKEN_MINUTES"] = 15
    try:
        ask_for_reset(client, ana.email)
    finally:
        app.config["RESET_TOKEN_MINUTES"] = 60
    token = db.scalars(select(AccountToken).where(AccountToken.purpose == TokenPurpose.RESET_PASSWORD)).one()
    assert dt.timedelta(minutes=14) < token.expires_at - token.created_at <= dt.timedelta(minutes=15)
    assert "within 15 minutes" in body(mailbox.last(ana.email))
