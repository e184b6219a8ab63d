"""Two-factor sign-in: enrolment with a QR code, the code after the password (once only), recovery codes,
the rule for instructors and administrators, and an administrator's reset after a lost device."""

from __future__ import annotations

import re
import time
import urllib.parse

import pyotp
import pytest
from sqlalchemy import func, select

from kaptrain.accounts import services as accounts
from kaptrain.accounts import twofactor
from kaptrain.accounts.models import RecoveryCode, Role
from kaptrain.audit import AuditEntry
from tests.conftest import PASSWORD, sign_in
from tests.factories import make_user

_CODE = re.compile(r"<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>")


def actions(db, user_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    query = select(AuditEntry.action).where(AuditEntry.subject_type == "user", AuditEntry.subject_id == user_id)
    return list(db.scalars(query.order_by(AuditEntry.id)))


def enrol(client, db, user) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """Set up two-factor sign-in through the pages; returns the secret and the recovery codes shown."""
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    db.refresh(user)
    secret = user.totp_secret
    shown = client.post("/account/two-factor", data={"current_password": PASSWORD, "code": pyotp.TOTP(secret).now()})
    assert shown.status_code == 200, shown.data
    return secret, _CODE.findall(shown.get_data(as_text=True))


def next_step_code(secret: str) -> str:
    """The code of the coming 30-second step, which the server accepts (clocks drift) once the current is used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def password_step(app, user, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302 and response.location.startswith("/login/code"), response.location
    return client


@pytest.fixture
def lee(db, login):  # type: ignore[no-untyped-def]
    """A logged-in learner."""
    user = make_user(db, email="lee@example.org", full_name="Lee Learner")
    db.commit()
    return login(user)


def test_enrolment_shows_a_qr_code_and_the_secret_then_ten_recovery_codes(client, db, lee):
    page = client.get("/account/two-factor").get_data(as_text=True)
    db.refresh(lee)
    secret = lee.totp_secret
    assert secret and not lee.has_two_factor
    assert re.search(r'<input[^>]*autocomplete="one-time-code"[^>]*inputmode="numeric"', page)  # a number pad
    assert re.search(r'<a href="otpauth://totp/[^"]+">Add kaptrain to your authenticator app</a>', page)  # a phone
    src = re.search(r'<img src="(data:image/svg\+xml[^"]+)"', page)
    assert src, "the QR code is an inline image made on the server"
    svg = urllib.parse.unquote(src.group(1).replace("&#39;", "'"))
    assert svg.count("<svg") == 1 and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page
    assert client.get("/account/two-factor").get_data(as_text=True).count(secret[:4]) >= 1  # same secret on reload
    db.refresh(lee)
    assert lee.totp_secret == secret

    wrong_code = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    wrong = client.post("/account/two-factor", data={"current_password": PASSWORD, "code": wrong_code})
    assert wrong.status_code == 422 and b"That code does not match." in wrong.data
    db.refresh(lee)
    assert not lee.has_two_factor

    shown = client.post("/account/two-factor", data={"current_password": PASSWORD, "code": pyotp.TOTP(secret).now()})
    codes = _CODE.findall(shown.get_data(as_text=True))
    assert shown.status_code == 200 and len(codes) == 10 and len(set(codes)) == 10
    assert b"this is the only time they are shown" in shown.data
    db.refresh(lee)
    assert lee.has_two_factor
    stored = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == lee.id)).all()
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & set(stored)
    assert client.get("/dashboard").status_code == 200  # this browser stays logged in
    assert "user.two_factor_enable" in actions(db, lee.id)


def test_login_asks_for_the_code_after_the_password_and_refuses_a_replay(app, client, db, lee):
    secret, _codes = enrol(client, db, lee)
    browser = password_step(app, lee)
    assert browser.get("/dashboard").status_code == 302  # the password alone logs nobody in
    wrong = browser.post("/login/code", data={"code": "12345"})
    assert wrong.status_code == 422 and b"That code is not correct." in wrong.data
    code = next_step_code(secret)
    assert browser.post("/login/code", data={"code": code}).status_code == 302
    assert browser.get("/dashboard").status_code == 200

    thief = password_step(app, lee)
    replay = thief.post("/login/code", data={"code": code})
    assert replay.status_code == 422 and b"cannot be used again: each code works once" in replay.data
    assert b"Wait for your authenticator app to show its next code" in replay.data
    assert thief.get("/dashboard").status_code == 302
    older = pyotp.TOTP(secret).now()  # the step before the one just used: refused too
    refused = thief.post("/login/code", data={"code": older})
    assert refused.status_code == 422 and b"not after a newer one" in refused.data


@pytest.mark.parametrize("code", ["", "abc", "1" * 41, "12 34 56 78", "\x00" * 6, "１２３４５６"])
def test_malformed_codes_are_refused_in_words(app, client, db, lee, code):
    enrol(client, db, lee)
    browser = password_step(app, lee)
    response = browser.post("/login/code", data={"code": code})
    assert response.status_code == 422 and b'aria-invalid="true"' in response.data
    assert browser.get("/dashboard").status_code == 302


def test_a_recovery_code_works_once(app, client, db, lee):
    _secret, codes = enrol(client, db, lee)
    browser = password_step(app, lee)
    response = browser.post("/login/code", data={"code": codes[0].upper().replace("-", " ")}, follow_redirects=True)
    assert response.status_code == 200 and b"9 recovery codes are left" in response.data
    again = password_step(app, lee)
    assert again.post("/login/code", data={"code": codes[0]}).status_code == 422
    assert again.get("/dashboard").status_code == 302
    assert "user.recovery_code_used" in actions(db, lee.id)
    assert twofactor.recovery_codes_left(db, lee) == 9


def test_new_recovery_codes_replace_the_old_ones(app, client, db, lee):
    _secret, old = enrol(client, db, lee)
    refused = client.post("/account/two-factor/recovery-codes", data={"codes-current_password": "wrong"})
    assert refused.status_code == 422 and b"Your current password is not correct." in refused.data
    shown = client.post("/account/two-factor/recovery-codes", data={"codes-current_password": PASSWORD})
    new = _CODE.findall(shown.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert password_step(app, lee).post("/login/code", data={"code": old[1]}).status_code == 422
    assert password_step(app, lee).post("/login/code", data={"code": new[1]}).status_code == 302


def test_recovery_codes_can_be_saved_as_a_text_file(app, client, db, lee):
    _secret, _old = enrol(client, db, lee)
    shown = client.post("/account/two-factor/recovery-codes", data={"codes-current_password": PASSWORD})
    page = shown.get_data(as_text=True)
    codes = _CODE.findall(page)
    link = re.search(r'<a [^>]*id="download-codes" download="kaptrain-recovery-codes.txt" href="([^"]+)"', page)
    assert link is not None, "a link that saves the codes as a file, made in the page (they are stored only hashed)"
    prefix = "data:text/plain;charset=utf-8,"
    assert link.group(1).startswith(prefix)
    saved = urllib.parse.unquote(link.group(1)[len(prefix) :].replace("&amp;", "&"))
    assert saved.startswith(f"kaptrain recovery codes for {lee.email}, made ")
    assert [line for line in saved.splitlines() if _CODE.fullmatch(f"<code>{line}</code>")] == codes


def test_the_code_step_needs_a_recent_password_step(app, client, db, lee):
    secret, _ = enrol(client, db, lee)
    straight = app.test_client().post("/login/code", data={"code": next_step_code(secret)})
    assert straight.status_code == 302 and straight.location.startswith("/login")
    browser = password_step(app, lee)
    with browser.session_transaction() as cookie:
        pending = dict(cookie["two_factor_pending"])
        pending["at"] -= 301
        cookie["two_factor_pending"] = pending
    late = browser.post("/login/code", data={"code": next_step_code(secret)})
    assert late.status_code == 302 and late.location.startswith("/login")
    assert browser.get("/dashboard").status_code == 302


def test_a_learner_may_turn_it_off_with_the_password_which_ends_their_other_sessions(app, client, db, lee):
    secret, _ = enrol(client, db, lee)
    elsewhere = password_step(app, lee)
    assert elsewhere.post("/login/code", data={"code": next_step_code(secret)}).status_code == 302
    assert elsewhere.get("/account").status_code == 200
    wrong = client.post("/account/two-factor/disable", data={"off-current_password": "wrong"})
    assert wrong.status_code == 422
    db.refresh(lee)
    assert lee.has_two_factor
    assert client.post("/account/two-factor/disable", data={"off-current_password": PASSWORD}).status_code == 302
    db.refresh(lee)
    assert not lee.has_two_factor and lee.totp_secret is None
    assert not db.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == lee.id))
    assert client.get("/account").status_code == 200  # the browser that turned it off stays signed in
    assert elsewhere.get("/account").location.startswith("/login")  # a session elsewhere may be why it went off
    assert app.test_client().post("/login", data={"email": lee.email, "password": PASSWORD}).location == "/dashboard"


# ---------------------------------------------------------------- instructors and administrators


@pytest.mark.parametrize("role", [Role.INSTRUCTOR, Role.ADMIN])
def test_staff_without_it_are_sent_to_set_it_up_and_can_do_nothing_else(app, db, role):
    staff = make_user(db, role=role, email="staff@example.org")
    db.commit()
    browser = app.test_client()
    assert browser.post("/login", data={"email": staff.email, "password": PASSWORD}).status_code == 302
    for path in ("/dashboard", "/admin/people", "/instructor/quizzes", "/account", "/courses"):
        response = browser.get(path)
        assert response.status_code == 302 and response.location == "/account/two-factor", path
    posted = browser.post("/account", data={"full_name": "Changed", "profession": "Psychologist"})
    assert posted.status_code == 302 and posted.location == "/account/two-factor"
    db.refresh(staff)
    assert staff.full_name != "Changed"
    page = browser.get("/account/two-factor")
    assert page.status_code == 200 and b"Instructors and administrators must use it." in page.data
    nav = page.get_data(as_text=True).split('aria-label="Main"')[1].split("</nav>")[0]
    assert "Log out" in nav and "/dashboard" not in nav and "/author/" not in nav  # no page it would bounce from
    db.refresh(staff)
    shown = browser.post(
        "/account/two-factor", data={"current_password": PASSWORD, "code": pyotp.TOTP(staff.totp_secret).now()}
    )
    # Onward to the last page asked for before the set-up (/courses), not to the account page.
    assert shown.status_code == 200 and 'href="/courses">I have saved them: continue</a>' in shown.get_data(
        as_text=True
    )
    after = browser.get("/dashboard")
    assert after.status_code == 200 and 'href="/author/"' in after.get_data(as_text=True)  # the menu is back
    off = browser.post("/account/two-factor/disable", data={"off-current_password": PASSWORD})
    assert off.status_code == 422 and b"must log in with two factors" in off.data
    assert browser.post("/logout").status_code == 302


def test_the_conftest_login_completes_the_second_step_for_staff(app, client, db, login):
    admin = make_user(db, role=Role.ADMIN)
    db.commit()
    login(admin)
    assert client.get("/admin/people").status_code == 200
    assert admin.has_two_factor
    other = app.test_client()
    sign_in(other, db, admin)  # again within the same 30 seconds, in another browser
    assert other.get("/admin/people").status_code == 200


# ---------------------------------------------------------------- a lost device


@pytest.fixture
def admin(db, login):  # type: ignore[no-untyped-def]
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin", email="ada@example.org")
    db.commit()
    return login(user)


def test_another_admin_resets_a_lost_device_audited_and_mailed(app, client, db, admin, mailbox):
    ivy = make_user(db, role=Role.INSTRUCTOR, full_name="Ivy Instructor", email="ivy@example.org")
    db.commit()
    ivy_browser = app.test_client()
    sign_in(ivy_browser, db, ivy)
    page = client.get(f"/admin/people/{ivy.id}").get_data(as_text=True)
    assert "Reset two-factor sign-in" in page and "On since" in page

    response = client.post(f"/admin/people/{ivy.id}/two-factor/reset", follow_redirects=True)
    assert response.status_code == 200 and b"two-factor sign-in is reset" in response.data
    db.refresh(ivy)
    assert not ivy.has_two_factor and ivy.totp_secret is None
    assert ivy_browser.get("/dashboard").status_code == 302  # her sessions ended
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.two_factor_reset")).all()
    assert entry.actor_id == admin.id and entry.subject_id == ivy.id
    assert entry.details == {"before": {"two_factor": True}, "after": {"two_factor": False}}
    assert mailbox.last("ivy@example.org")["Subject"] == "kaptrain: your two-factor sign-in was reset"
    # At her next login she is sent to set it up again.
    again = app.test_client()
    assert again.post("/login", data={"email": ivy.email, "password": PASSWORD}).status_code == 302
    assert again.get("/dashboard").location == "/account/two-factor"

    nothing = client.post(f"/admin/people/{ivy.id}/two-factor/reset")
    assert nothing.status_code == 422 and b"there is nothing to reset" in nothing.data


def test_an_admin_cannot_reset_their_own(client, db, admin):
    own = client.get(f"/admin/people/{admin.id}").get_data(as_text=True)
    assert "Reset two-factor sign-in" not in own and "This is your own account" in own  # no button that must fail
    response = client.post(f"/admin/people/{admin.id}/two-factor/reset")
    assert response.status_code == 422 and b"You cannot reset your own two-factor sign-in." in response.data
    db.refresh(admin)
    assert admin.has_two_factor and "user.two_factor_reset" not in actions(db, admin.id)


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR])
def test_only_admins_may_reset(app, db, login, client, role):
    target = make_user(db, role=Role.INSTRUCTOR)
    target.totp_secret, target.totp_enabled_at = pyotp.random_base32(), target.created_at
    db.commit()
    login(make_user(db, role=role))
    assert client.post(f"/admin/people/{target.id}/two-factor/reset").status_code == 403
    db.refresh(target)
    assert target.has_two_factor


def test_the_cli_resets_it_too(runner, db):
    ivy = make_user(db, role=Role.INSTRUCTOR, email="ivy@example.org")
    ivy.totp_secret, ivy.totp_enabled_at = pyotp.random_base32(), ivy.created_at
    db.commit()
    result = runner.invoke(args=["users", "reset-2fa", "ivy@example.org"])
    assert result.exit_code == 0, result.output
    db.refresh(ivy)
    assert not ivy.has_two_factor
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.two_factor_reset")).all()
    assert entry.actor_label.startswith("cli:")
    unknown = runner.invoke(args=["users", "reset-2fa", "nobody@example.org"])
    assert unknown.exit_code == 1 and "No account with email nobody@example.org." in unknown.output


# ---------------------------------------------------------------- brute force


def post_code(app, address: str, user_id: int) -> int:  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    with client.session_transaction() as cookie:
        cookie["two_factor_pending"] = {"user": user_id, "version": 1, "at": int(time.time())}
    return client.post("/login/code", data={"code": "000000"}).status_code


def test_codes_are_limited_per_account_from_any_address(app, limited_app):
    limited = limited_app(TWO_FACTOR_RATE_LIMIT="3 per minute")
    # No such account (nothing is written outside the test's transaction); the count is what matters.
    codes = [post_code(limited, f"10.5.0.{n}", 987654) for n in range(4)]
    assert codes[:3] == [302, 302, 302] and codes[3] == 429
    assert post_code(limited, "10.5.0.9", 987655) == 302


def test_codes_are_limited_per_client_address(app, limited_app):
    limited = limited_app(TWO_FACTOR_RATE_LIMIT="3 per minute")
    codes = [post_code(limited, "10.6.0.1", 887000 + n) for n in range(4)]
    assert codes == [302, 302, 302, 429]


def test_an_unproven_address_cannot_turn_it_on(client, db, login):  # type: ignore[no-untyped-def]
    """Anyone may register someone else's address; with two-factor sign-in on, its owner could not get in even after
    a password reset. So it is set up only once the address is proven."""
    stranger = make_user(db, email="not-yet@example.org", confirmed=False)
    db.commit()
    login(stranger)
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "Confirm your email address first" in page and "data:image/svg" not in page
    refused = client.post("/account/two-factor", data={"current_password": PASSWORD, "code": "123456"})
    assert refused.status_code in (200, 422)
    db.refresh(stranger)
    assert not stranger.has_two_factor and stranger.totp_secret is None


def test_the_way_on_after_set_up_is_only_ever_a_path_on_this_site(app, db):
    staff = make_user(db, role=Role.INSTRUCTOR, email="onward@example.org")
    db.commit()
    browser = app.test_client()
    assert browser.post("/login", data={"email": staff.email, "password": PASSWORD}).status_code == 302
    browser.get("/account/two-factor")
    with browser.session_transaction() as stored:
        stored["after_two_factor"] = "//evil.example/x"  # as if a crafted address had been remembered
    db.refresh(staff)
    page = browser.post(
        "/account/two-factor", data={"current_password": PASSWORD, "code": pyotp.TOTP(staff.totp_secret).now()}
    ).get_data(as_text=True)
    assert "evil.example" not in page and 'href="/account">I have saved them: go to my account</a>' in page


def test_turning_it_on_asks_for_the_password_so_a_borrowed_browser_cannot_lock_the_owner_out(client, db, lee):
    client.get("/account/two-factor")
    db.refresh(lee)
    code = pyotp.TOTP(lee.totp_secret).now()
    for password in ("", "not the password at all"):
        refused = client.post("/account/two-factor", data={"current_password": password, "code": code})
        assert refused.status_code == 422
        assert ("Enter your password." if not password else "Your current password is not correct.") in refused.text
        db.refresh(lee)
        assert not lee.has_two_factor
    # The password is checked before the code, so the code the refused form carried was not used up.
    shown = client.post("/account/two-factor", data={"current_password": PASSWORD, "code": code})
    assert shown.status_code == 200 and len(_CODE.findall(shown.text)) == 10


def test_password_checks_on_the_account_pages_count_together_per_account(app, db, extra_app):
    limited = extra_app(RATELIMIT_ENABLED=True, PASSWORD_CHECK_RATE_LIMIT="5 per hour")
    limited.extensions["kaptrain.db"].bind = app.extensions["kaptrain.db"].bind  # inside the test's transaction
    lee, other = make_user(db, email="guessed@example.org"), make_user(db, email="someone-else@example.org")
    db.commit()
    client = limited.test_client()
    sign_in(client, db, lee)
    new = "tangerine orbit lantern 42"  # a new password the rules accept
    wrong = [
        ("/account/password", {"pw-current_password": "guess!", "pw-password": new, "pw-confirm": new}),
        ("/account/email", {"em-current_password": "guess!", "em-new_email": "new@example.org"}),
        ("/account/two-factor", {"current_password": "guess!", "code": "123456"}),
    ]
    not_checked = [
        ("/account/two-factor", {"current_password": PASSWORD, "code": ""}),  # refused for its missing code
        ("/account/two-factor/disable", {"off-current_password": "guess!"}),  # refused: it is not on
    ]
    client.get("/account/two-factor")  # the secret a code is checked against
    for url, data in [*wrong, *not_checked, *wrong[:2]]:
        answer = client.post(url, data=data)
        assert answer.status_code == 422 and "too many times" not in answer.text, url
    # Five checks made: the sixth is not made, even with the right password, until the hour is up.
    blocked = client.post(
        "/account/password", data={"pw-current_password": PASSWORD, "pw-password": new, "pw-confirm": new}
    )
    assert blocked.status_code == 422 and "asked for on your account pages too many times" in blocked.text
    assert "Forgot your password?" in blocked.text
    db.refresh(lee)
    assert accounts.authenticate(db, lee.email, PASSWORD) is not None  # unchanged
    elsewhere = limited.test_client()  # another account is not held up
    sign_in(elsewhere, db, other)
    refused = elsewhere.post(
        "/account/password", data={"pw-current_password": "wrong!", "pw-password": new, "pw-confirm": new}
    )
    assert refused.status_code == 422 and "Your current password is not correct." in refused.text
