"""Registration, login, logout, profile and password: the happy paths and the unhappy ones."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kaptrain.accounts.models import Role, User
from kaptrain.audit import AuditEntry
from tests.conftest import PASSWORD
from tests.factories import make_user

GOOD = {
    "full_name": "Avery Clinician",
    "email": "Avery@Example.org",
    "profession": "Counsellor / therapist",
    "credential": "LPC",
    "licence_number": "LPC-12345",
    "jurisdiction": "Colorado",
    "password": "a long enough passphrase",
    "confirm": "a long enough passphrase",
}


def count_users(db) -> int:
    return db.scalar(select(func.count()).select_from(User))


def test_register_creates_learner_with_argon2id_hash_who_can_log_in_at_once(client, db, login):
    response = client.post("/register", data=GOOD)
    assert response.status_code == 302 and response.location == "/register/check-your-email"
    user = db.scalar(select(User).where(User.email == "avery@example.org"))
    assert user is not None and user.role == Role.LEARNER
    assert user.password_hash.startswith("$argon2id$")
    assert user.licence_number == "LPC-12345" and user.jurisdiction == "Colorado"
    assert not user.is_email_confirmed  # the emailed link confirms it (tests/accounts/test_email_ownership.py)
    login(user, GOOD["password"])
    assert client.get("/dashboard").status_code == 200


def test_a_registration_begun_on_a_course_leads_back_to_it_after_login(client, db):
    """The walk-through: "Create an account to enrol" led to My learning, and from there round to the course."""
    course_page = client.get("/courses/demo-course").text
    assert 'href="/register?next=/courses/demo-course"' in course_page
    done = client.post("/register?next=/courses/demo-course", data=GOOD)
    assert done.status_code == 302 and done.location == "/register/check-your-email?next=/courses/demo-course"
    page = client.get(done.location).text
    assert 'href="/login?next=/courses/demo-course"' in page and "go on to the course you chose" in page
    logged_in = client.post(
        "/login?next=/courses/demo-course", data={"email": GOOD["email"], "password": GOOD["password"]}
    )
    assert logged_in.status_code == 302 and logged_in.location == "/courses/demo-course"


@pytest.mark.parametrize("elsewhere", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_a_registration_never_leads_off_the_site(client, elsewhere):
    done = client.post("/register", query_string={"next": elsewhere}, data=GOOD)
    assert done.status_code == 302 and done.location == "/register/check-your-email"
    page = client.get("/register/check-your-email", query_string={"next": elsewhere}).text
    assert "evil.example" not in page


def test_register_ignores_role_field(client, db):
    client.post("/register", data={**GOOD, "role": "admin"})
    user = db.scalar(select(User).where(User.email == "avery@example.org"))
    assert user.role == Role.LEARNER


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "short", "confirm": "short"}, b"The password is too short: it has 5 characters"),
        ({"confirm": "something different"}, b"The passwords do not match: type the same password in both fields."),
        ({"email": "not-an-email"}, b"Enter a valid email address."),
        ({"full_name": ""}, b"Enter your full name."),
        ({"profession": ""}, b"Choose your profession."),
        ({"full_name": "Avery Clinician, LPC"}, "Remove “, LPC” from your name".encode()),
        ({"full_name": "Avery Clinician, Ph.D.", "credential": "PhD, LPC"}, "Remove “, Ph.D.” from".encode()),
        ({"full_name": "Avery Clinician, LCSW", "credential": ""}, "Enter “LCSW” in the Credential field".encode()),
        ({"full_name": "Avery Clinician LPC"}, "Remove “LPC” from the end of your name".encode()),
        # Long enough, but easy to guess: common, repeated, the site's name, the person's own email or name.
        ({"password": "password1234", "confirm": "password1234"}, b"This password would be easy to guess"),
        ({"password": "aaaaaaaaaaaa", "confirm": "aaaaaaaaaaaa"}, b"easy to guess: repeats like"),
        ({"password": "kaptrain2026!", "confirm": "kaptrain2026!"}, b"This password would be easy to guess"),
        ({"password": "avery@example.org", "confirm": "avery@example.org"}, b"This password would be easy to guess"),
        ({"password": "AveryClinician1", "confirm": "AveryClinician1"}, b"it is mostly your name, your email address"),
    ],
)
def test_register_bad_input_shows_error_on_form_and_creates_nothing(client, db, change, message):
    before = count_users(db)
    response = client.post("/register", data={**GOOD, **change})
    assert response.status_code == 422
    assert message in response.data
    assert b'aria-invalid="true"' in response.data
    assert count_users(db) == before


@pytest.mark.parametrize("name", ["Jo Park, Jr.", "Sam Lee, III", "Ruiz, DeShawn", "Avery Clinician, LMFT"])
def test_a_name_with_a_suffix_that_is_not_the_credential_is_accepted(client, db, name):
    assert client.post("/register", data={**GOOD, "full_name": name}).status_code == 302  # credential: LPC
    assert db.scalar(select(User.full_name).where(User.email == "avery@example.org")) == name


def test_register_duplicate_email_makes_no_account_and_does_not_say_so(client, db):
    make_user(db, email="avery@example.org")
    db.commit()
    before = count_users(db)
    response = client.post("/register", data=GOOD)
    assert response.status_code == 302 and response.location == "/register/check-your-email"
    assert count_users(db) == before


def test_register_keeps_what_was_typed_except_passwords(client):
    response = client.post("/register", data={**GOOD, "confirm": "mismatch"})
    assert b'value="Avery Clinician"' in response.data
    assert GOOD["password"].encode() not in response.data


def test_login_wrong_password_and_unknown_email_get_the_same_message(client, db):
    user = make_user(db)
    db.commit()
    wrong = client.post("/login", data={"email": user.email, "password": "not the password"})
    unknown = client.post("/login", data={"email": "nobody@example.org", "password": "not the password"})
    for response in (wrong, unknown):
        assert response.status_code == 422
        assert b"That email and password do not match an account." in response.data


def _and_a_phone(app, db, login):  # type: ignore[no-untyped-def]
    """A learner signed in with the test client and, separately, on a phone (a second browser)."""
    user = make_user(db)
    db.commit()
    login(user)
    phone = app.test_client()
    phone.post("/login", data={"email": user.email, "password": PASSWORD})
    return phone


def test_logging_out_ends_this_browsers_session_only(app, client, db, login):
    phone = _and_a_phone(app, db, login)
    assert client.get("/dashboard").status_code == 200 and phone.get("/dashboard").status_code == 200
    home = client.post("/logout", follow_redirects=True).text
    assert "You have logged out of this browser. Other devices logged in to your account stay logged in." in home
    response = client.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.location
    assert phone.get("/dashboard").status_code == 200  # a timed quiz on the phone carries on


def test_logging_out_everywhere_ends_every_session(app, client, db, login):
    phone = _and_a_phone(app, db, login)
    assert "Log out everywhere" in client.get("/account").text
    home = client.post("/account/logout-everywhere", follow_redirects=True).text
    assert "logged out here and on every other device" in home
    for browser in (client, phone):
        response = browser.get("/dashboard")
        assert response.status_code == 302 and "/login" in response.location


def test_a_cookie_from_before_logins_had_ids_still_logs_out_everywhere(app, client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    with client.session_transaction() as cookie:
        del cookie["sid"]  # as a browser signed in before this release carries it
    assert client.get("/dashboard").status_code == 200
    home = client.post("/logout", follow_redirects=True).text
    assert "logged out, here and on any other device" in home
    db.refresh(user)
    assert user.session_version == 2


def test_logout_invalidates_a_copied_session_cookie(app, client, db, login):
    """ASVS V3.3.1: a cookie saved before logout must not work after it."""
    user = make_user(db)
    db.commit()
    login(user)
    cookie = client.get_cookie("session").value
    client.post("/logout")
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    response = replay.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.location


def test_inactive_user_cannot_log_in(client, db):
    user = make_user(db)
    user.is_active = False
    db.commit()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.tld/",
        "//evil.tld",
        "\\\\evil.tld",
        "/\\evil.tld",
        "https:evil.tld",
        "javascript:alert(1)",
        "%2F%2Fevil.tld",
    ],
)
def test_login_next_redirects_only_within_the_site(client, db, target):
    user = make_user(db)
    db.commit()
    response = client.post(f"/login?next={target}", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/dashboard"


def test_login_next_follows_a_local_path(client, db):
    user = make_user(db)
    db.commit()
    response = client.post("/login?next=/courses/demo-course", data={"email": user.email, "password": PASSWORD})
    assert response.location == "/courses/demo-course"


def test_profile_edit_saves_and_cannot_change_role_or_email(client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    response = client.post(
        "/account",
        data={
            "full_name": "Dana Q. Example",
            "profession": "Social worker",
            "credential": "LCSW",
            "licence_number": "",
            "jurisdiction": "Ontario",
            "role": "admin",
            "email": "x@evil.tld",
        },
    )
    assert response.status_code == 302
    db.expire_all()
    assert user.full_name == "Dana Q. Example" and user.jurisdiction == "Ontario"
    assert user.role == Role.LEARNER and user.email != "x@evil.tld"


def test_a_change_to_what_certificates_print_is_audited_and_the_page_says_what_it_does(client, db, login):
    user = make_user(db, full_name="Dana Example")
    db.commit()
    login(user)
    assert "A certificate already issued keeps the name" in client.get("/account").get_data(as_text=True)
    form = {"full_name": "Dana Q. Example", "profession": "Social worker", "credential": "", "licence_number": "",
            "jurisdiction": "", "time_zone": "UTC"}  # fmt: skip
    assert client.post("/account", data=form).status_code == 302
    # The zone dates the certificates: its change is audited as well; saving with no change is not.
    assert client.post("/account", data=form | {"time_zone": "Europe/London"}).status_code == 302
    assert client.post("/account", data=form | {"time_zone": "Europe/London"}).status_code == 302
    first, second = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.profile_change").order_by(AuditEntry.id)
    )
    assert first.actor_id == user.id and first.subject_id == user.id
    assert first.details == {
        "before": {"full_name": "Dana Example", "time_zone": ""},
        "after": {"full_name": "Dana Q. Example", "time_zone": "UTC"},
    }
    assert second.details == {"before": {"time_zone": "UTC"}, "after": {"time_zone": "Europe/London"}}


def test_change_password_requires_current_and_ends_other_sessions(app, client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    other = app.test_client()
    other.post("/login", data={"email": user.email, "password": PASSWORD})
    assert other.get("/dashboard").status_code == 200

    bad = client.post(
        "/account/password",
        data={
            "pw-current_password": "wrong one here",
            "pw-password": "a new passphrase 2026",
            "pw-confirm": "a new passphrase 2026",
        },
    )
    assert bad.status_code == 422 and b"Your current password is not correct." in bad.data
    named = user.full_name.replace(" ", "") + "2026"  # the person's own name, with a year: easy to guess
    guessable = client.post(
        "/account/password",
        data={"pw-current_password": PASSWORD, "pw-password": named, "pw-confirm": named},
    )
    assert guessable.status_code == 422 and b"This password would be easy to guess" in guessable.data
    assert other.get("/dashboard").status_code == 200  # nothing changed

    good = client.post(
        "/account/password",
        data={
            "pw-current_password": PASSWORD,
            "pw-password": "a new passphrase 2026",
            "pw-confirm": "a new passphrase 2026",
        },
    )
    assert good.status_code == 302
    assert client.get("/dashboard").status_code == 200  # this browser stays logged in
    assert other.get("/dashboard").status_code == 302  # the other one is logged out
    client.post("/logout")
    assert client.post("/login", data={"email": user.email, "password": "a new passphrase 2026"}).status_code == 302


def test_pages_never_render_the_password_hash(client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    for url in ("/account", "/dashboard", "/courses/demo-course"):
        assert user.password_hash.encode() not in client.get(url).data


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("avery clinician 2026!", b"it is mostly your name, your email address or the site"),  # zxcvbn let these by
        ("Kaptrain2026!!", b"it is mostly your name, your email address or the site"),
        ("password password", b"it says one word again"),
    ],
)
def test_passwords_built_from_the_persons_own_words_are_refused(client, db, password, words):
    before = count_users(db)
    response = client.post("/register", data={**GOOD, "password": password, "confirm": password})
    assert response.status_code == 422 and words in response.data and count_users(db) == before


def test_a_learner_closes_their_own_account_and_the_records_stay(app, client, db, login):
    from kaptrain.certificates.models import Certificate  # noqa: PLC0415
    from tests.factories import certified, enrolled  # noqa: PLC0415

    user = make_user(db, email="leaving@example.org", full_name="Lee Leaving, LPC")
    enrolled(db, user)
    with app.app_context():
        certificate = certified(db, user)
        db.commit()
    login(user)
    page = client.get("/account/close")
    assert page.status_code == 200 and "cannot be undone" in page.text and "What is kept" in page.text
    assert 'href="/account/close"' in client.get("/account").text
    for data, words in (
        ({"current_password": PASSWORD}, "Tick the box to confirm"),
        ({"current_password": "not my password", "confirm": "y"}, "Your current password is not correct."),
        ({"confirm": "y"}, "Enter your password to close your account."),
    ):
        refused = client.post("/account/close", data=data)
        assert refused.status_code == 422 and words in refused.text, data
        db.refresh(user)
        assert user.is_active and user.email == "leaving@example.org"
    closed = client.post("/account/close", data={"current_password": PASSWORD, "confirm": "y"}, follow_redirects=True)
    assert "Your account is closed and you are logged out." in closed.text
    db.expire_all()
    user = db.get(User, user.id)
    assert not user.is_active and user.email != "leaving@example.org" and user.full_name.startswith("Closed account")
    assert db.get(Certificate, certificate.id).holder_name == "Lee Leaving, LPC"  # the record keeps its name
    assert client.get("/dashboard").status_code == 302  # logged out
    assert client.post("/login", data={"email": "leaving@example.org", "password": PASSWORD}).status_code == 422
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "user.close"))
    assert entry.actor_id == user.id


def test_the_only_administrator_cannot_close_their_own_account(client, db, login):
    admin = make_user(db, role=Role.ADMIN, email="only-admin@example.org")
    db.commit()
    login(admin)
    refused = client.post("/account/close", data={"current_password": PASSWORD, "confirm": "y"})
    assert refused.status_code == 422 and "only active administrator" in refused.text
    db.refresh(admin)
    assert admin.is_active and admin.email == "only-admin@example.org"
