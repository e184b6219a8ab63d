"""Email ownership: registration confirms the address, no certificate for an unconfirmed one, registering a known
address reveals nothing, and changing the address confirms the new one and tells the old one."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from kaptrain.accounts import ownership
from kaptrain.accounts.models import AccountToken, User
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import Certificate
from kaptrain.db import utcnow
from tests.accounts.conftest import body, link_in
from tests.conftest import PASSWORD
from tests.factories import complete_learning, course, enrolled, evaluation_answers, make_user, record

CLAIM = {"hours": "3.5", "confirm": "y"}
NEW_ACCOUNT = {
    "full_name": "Noor Clinician",
    "email": "noor@example.org",
    "profession": "Social worker",
    "password": "a long enough passphrase",
    "confirm": "a long enough passphrase",
}


def users(db) -> int:  # type: ignore[no-untyped-def]
    return db.scalar(select(func.count()).select_from(User))


def confirm_through(client, path: str):  # type: ignore[no-untyped-def]
    page = client.get(path)
    assert page.status_code == 200, page.data
    return client.post(path)


# ---------------------------------------------------------------- registration


def test_registration_emails_a_link_that_confirms_the_address(app, client, db, mailbox, login):
    response = client.post("/register", data=NEW_ACCOUNT)
    assert response.status_code == 302 and response.location == "/register/check-your-email"
    noor = db.scalars(select(User).where(User.email == "noor@example.org")).one()
    assert not noor.is_email_confirmed
    login(noor, NEW_ACCOUNT["password"])  # studying starts at once, before the confirmation
    assert client.get("/courses/demo-course").status_code == 200

    message = mailbox.last("noor@example.org")
    assert message["Subject"] == "kaptrain: confirm your email address"
    # Whoever typed the address also typed the name: it is not mailed to an address nobody has proven yet.
    assert body(message).startswith("Hello,") and NEW_ACCOUNT["full_name"] not in body(message)
    path = link_in(message)
    page = client.get(path)
    assert b"Confirm that <strong>noor@example.org</strong> is your address" in page.data
    db.refresh(noor)
    assert not noor.is_email_confirmed  # opening the link (as a mail scanner does) confirms nothing
    done = client.post(path)
    assert done.status_code == 302 and done.location == "/dashboard"
    db.refresh(noor)
    assert noor.is_email_confirmed
    again = client.post(path)
    # Opened again while signed in: calmly done, not an error, with the way on.
    assert again.status_code == 200 and b"This address is already confirmed" in again.data
    assert b"has already been used, so the address it was sent to is confirmed" in again.data
    assert b"This link does not work" not in again.data and b'href="/dashboard">Go to My learning' in again.data
    assert b"send the link again" not in again.data  # nothing to send: the address is confirmed


def test_registering_a_known_address_answers_the_same_and_mails_its_owner(app, db, mailbox):
    make_user(db, email="taken@example.org", full_name="Tara Owner")
    db.commit()
    before = users(db)
    new, known = app.test_client(), app.test_client()
    fresh = new.post("/register", data=NEW_ACCOUNT)
    again = known.post("/register", data={**NEW_ACCOUNT, "email": "Taken@Example.org"})
    assert (fresh.status_code, fresh.location) == (again.status_code, again.location)
    assert fresh.get_data() == again.get_data()
    fresh_page, again_page = new.get(fresh.location).text, known.get(again.location).text
    assert fresh_page.replace(NEW_ACCOUNT["email"], "@") == again_page.replace("Taken@Example.org", "@")
    assert "We have sent a message to <strong>Taken@Example.org</strong>" in again_page  # the address as typed
    assert ("Set-Cookie" in again.headers) == ("Set-Cookie" in fresh.headers)  # the address typed, either way
    assert known.get("/dashboard").status_code == 302  # nobody was logged in
    assert users(db) == before + 1  # only the new address made an account

    warning = mailbox.last("taken@example.org")
    assert warning["Subject"] == "kaptrain: someone tried to register with your address"
    assert "/password/forgot" in body(warning) and "/confirm/" not in body(warning)
    assert body(warning).startswith("Hello Tara Owner,")  # a proven address: its owner's name
    assert mailbox.last("noor@example.org")["Subject"] == "kaptrain: confirm your email address"
    assert b"An account with this email already exists" not in again.get_data()


def test_a_refused_registration_says_the_same_for_a_known_address(client, db, mailbox):
    make_user(db, email="taken@example.org")
    db.commit()
    for email in ("taken@example.org", "free@example.org"):
        weak = {**NEW_ACCOUNT, "email": email, "password": "short", "confirm": "short"}
        response = client.post("/register", data=weak)
        assert response.status_code == 422 and b"The password is too short" in response.data
    assert mailbox.count() == 0


# ---------------------------------------------------------------- no certificate for an unconfirmed address


@pytest.fixture
def unconfirmed_graduate(db):  # type: ignore[no-untyped-def]
    """A learner who met every requirement and submitted the evaluation, with an unconfirmed address."""
    user = make_user(db, email="grad@example.org", confirmed=False)
    enrolled(db, user)
    done = complete_learning(db, user)
    certificates.submit_evaluation(db, done, evaluation_answers(done.course))
    db.commit()
    return user


def test_an_unconfirmed_learner_sees_the_requirement_and_gets_no_certificate(
    client, db, mailbox, login, unconfirmed_graduate
):
    grad = unconfirmed_graduate
    login(grad)
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "Confirm your email address" in dashboard and "Send the link again" in dashboard
    locked = client.get("/courses/demo-course/attestation")
    assert locked.status_code == 403 and b"It opens once you confirm your email address." in locked.data
    assert b"Send the link again" in locked.data
    refused = client.post("/courses/demo-course/attestation", data=CLAIM)
    assert refused.status_code == 403
    with pytest.raises(certificates.CertificateError, match="Confirm your email address first"):
        certificates.attest(db, record(db, grad), grad, Decimal("3.5"))
    with pytest.raises(certificates.CertificateError, match="has not confirmed their email address"):
        certificates.issue_without_course(db, grad, course(db), "Migrated record")
    held = select(func.count()).select_from(Certificate).where(Certificate.user_id == grad.id)
    assert not db.scalar(held)
    assert not record(db, grad).completed

    # "Send the link again", then follow it: the attestation opens and the certificate is issued.
    resent = client.post("/account/confirm/resend", data={"next": "/dashboard"})
    assert resent.status_code == 302 and resent.location == "/dashboard"
    assert confirm_through(client, link_in(mailbox.last("grad@example.org"))).status_code == 302
    assert client.get("/courses/demo-course/attestation").status_code == 200
    assert client.post("/courses/demo-course/attestation", data=CLAIM).status_code == 302
    assert db.scalar(held) == 1


def test_sending_the_link_again_voids_the_earlier_one(client, db, mailbox, login):
    noor = make_user(db, email="noor@example.org", confirmed=False)
    db.commit()
    login(noor)
    client.post("/account/confirm/resend")
    first = link_in(mailbox.last("noor@example.org"))
    client.post("/account/confirm/resend")
    second = link_in(mailbox.last("noor@example.org"))
    old = client.post(first)
    assert old.status_code == 410 and b"A newer confirmation link was sent" in old.data
    db.refresh(noor)
    assert not noor.is_email_confirmed
    assert client.post(second).status_code == 302
    already = client.post("/account/confirm/resend", follow_redirects=True)
    assert b"Your email address is already confirmed." in already.data
    assert len(mailbox.to("noor@example.org")) == 2


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ("expire", 410, b"This confirmation link has expired."),
        ("forge", 404, b"This link is not valid."),
    ],
)
def test_expired_and_forged_confirmation_links_are_refused(client, db, mailbox, login, change, status, words):
    noor = make_user(db, email="noor@example.org", confirmed=False)
    db.commit()
    login(noor)
    client.post("/account/confirm/resend")
    path = link_in(mailbox.last("noor@example.org"))
    if change == "expire":
        db.execute(update(AccountToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
        db.commit()
    else:
        path = path[:-4] + "AAAA"
    for response in (client.get(path), client.post(path)):
        assert response.status_code == status and words in response.data
    db.refresh(noor)
    assert not noor.is_email_confirmed


# ---------------------------------------------------------------- changing the address


def ask_to_change(client, new_email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/account/email", data={"em-new_email": new_email, "em-current_password": password})


@pytest.fixture
def ana(db, login):  # type: ignore[no-untyped-def]
    user = make_user(db, email="ana@example.org", full_name="Ana Mover")
    db.commit()
    return login(user)


def test_changing_the_address_confirms_the_new_one_and_tells_the_old_one(app, client, db, mailbox, ana):
    old_reset = app.test_client()
    old_reset.post("/password/forgot", data={"email": "ana@example.org"})
    reset_path = link_in(mailbox.last("ana@example.org"))

    response = ask_to_change(client, "Ana.New@Example.org")
    assert response.status_code == 302
    db.refresh(ana)
    assert ana.email == "ana@example.org"  # nothing changes before the new address is confirmed
    page = client.get("/account").get_data(as_text=True)
    assert "A link to move your account to <strong>ana.new@example.org</strong> was sent" in page

    notice = mailbox.last("ana@example.org")
    assert notice["Subject"] == "kaptrain: a change of your email address was requested"
    assert "ana.new@example.org" in body(notice) and "/confirm/" not in body(notice)
    confirmation = mailbox.last("ana.new@example.org")
    assert confirmation["Subject"] == "kaptrain: confirm your new email address"

    other_device = app.test_client()
    assert other_device.post("/login", data={"email": "ana@example.org", "password": PASSWORD}).status_code == 302
    path = link_in(confirmation)
    assert b"Move the account now at ana@example.org to" in client.get(path).data
    moved = client.post(path, follow_redirects=True)
    assert moved.status_code == 200 and b"Every other device was logged out." in moved.data
    assert client.get("/account").status_code == 200  # the browser that followed the link stays signed in
    assert other_device.get("/account").status_code == 302  # every other session ended
    db.refresh(ana)
    assert ana.email == "ana.new@example.org" and ana.is_email_confirmed
    assert mailbox.last("ana@example.org")["Subject"] == "kaptrain: your email address was changed"
    for email, status in (("ana.new@example.org", 302), ("ana@example.org", 422)):
        assert app.test_client().post("/login", data={"email": email, "password": PASSWORD}).status_code == status
    # A reset link sent to the old address no longer works.
    stale = old_reset.get(reset_path)
    assert stale.status_code == 410 and b"changed after this password link was sent" in stale.data
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.email_change")).all()
    assert entry.details == {"before": {"email": "ana@example.org"}, "after": {"email": "ana.new@example.org"}}
    used = client.post(path)
    assert used.status_code == 410 and b"the change it asked for was made: log in with the new address" in used.data


def test_a_change_link_followed_while_signed_in_to_another_account_leaves_that_browser_as_it_was(
    app, client, db, mailbox, ana
):
    assert ask_to_change(client, "ana.moved@example.org").status_code == 302
    path = link_in(mailbox.last("ana.moved@example.org"))
    other = make_user(db, email="bo@example.org", full_name="Bo Other")
    db.commit()
    shared_browser = app.test_client()  # a family computer signed in to Bo's account
    assert shared_browser.post("/login", data={"email": "bo@example.org", "password": PASSWORD}).status_code == 302
    shared_browser.get(path)
    moved = shared_browser.post(path, follow_redirects=True).get_data(as_text=True)
    assert "The account&#39;s email address is now ana.moved@example.org." in moved
    assert "you are still logged in as bo@example.org" in moved
    assert shared_browser.get("/account").status_code == 200  # still Bo
    assert client.get("/account").status_code == 302  # Ana's own sessions ended
    db.refresh(other)
    assert other.email == "bo@example.org"


@pytest.mark.parametrize(
    ("new_email", "password", "field_error"),
    [
        ("ana.new@example.org", "not my password", b"Your current password is not correct."),
        ("ana@example.org", PASSWORD, b"That is already your email address."),
        ("not-an-email", PASSWORD, b"Enter a valid email address."),
        ("", PASSWORD, b"Enter your email address."),
        ("ana.new@example.org", "", b"Enter your current password."),
    ],
    ids=["wrong-password", "same-address", "malformed", "empty", "no-password"],
)
def test_a_refused_change_says_why_and_changes_and_sends_nothing(
    client, db, mailbox, ana, new_email, password, field_error
):
    response = ask_to_change(client, new_email, password)
    assert response.status_code == 422 and field_error in response.data
    db.refresh(ana)
    assert ana.email == "ana@example.org"
    assert mailbox.count() == 0 and not db.scalar(select(func.count()).select_from(AccountToken))


def waiting_change(page: str) -> str:
    """The account page's note of a change waiting for its link, with the address and times left out."""
    found = re.search(r'<p class="callout">A link to move.*?</p>', page)
    assert found, "no waiting change shown"
    return re.sub(r"(free|taken)@example\.org|\d+", "#", found.group(0))


def test_a_change_to_an_address_another_account_uses_answers_the_same(client, db, mailbox, ana):
    make_user(db, email="taken@example.org")
    db.commit()
    free = ask_to_change(client, "free@example.org")
    free_page = client.get("/account").text
    taken = ask_to_change(client, "taken@example.org")
    assert (free.status_code, free.location) == (taken.status_code, taken.location)
    # The account page too: it showed the waiting change only for a free address (attack), so it told them apart.
    taken_page = client.get("/account").text
    assert "A link to move your account to <strong>taken@example.org</strong> was sent" in taken_page
    assert waiting_change(free_page) == waiting_change(taken_page)
    assert mailbox.last("taken@example.org")["Subject"] == "kaptrain: an email change was not made"
    assert "/confirm/" not in body(mailbox.last("taken@example.org"))
    assert len(mailbox.to("ana@example.org")) == 2  # a notice for each request
    db.refresh(ana)
    assert ana.email == "ana@example.org"


def test_a_change_link_stops_working_when_the_password_changes(client, db, mailbox, ana):
    ask_to_change(client, "ana.new@example.org")
    path = link_in(mailbox.last("ana.new@example.org"))
    new = "another long passphrase"
    client.post("/account/password", data={"pw-current_password": PASSWORD, "pw-password": new, "pw-confirm": new})
    refused = client.post(path)
    assert refused.status_code == 410 and b"your address was not changed" in refused.data
    db.refresh(ana)
    assert ana.email == "ana@example.org"


def test_a_change_is_refused_when_the_address_was_taken_meanwhile(client, db, mailbox, ana):
    ask_to_change(client, "ana.new@example.org")
    path = link_in(mailbox.last("ana.new@example.org"))
    make_user(db, email="ana.new@example.org")
    db.commit()
    refused = client.post(path)
    assert refused.status_code == 410 and b"Another account started using ana.new@example.org" in refused.data
    db.refresh(ana)
    assert ana.email == "ana@example.org"


def test_only_the_newest_change_link_works(client, db, mailbox, ana):
    ask_to_change(client, "first@example.org")
    first = link_in(mailbox.last("first@example.org"))
    ask_to_change(client, "second@example.org")
    assert client.post(first).status_code == 410
    assert client.post(link_in(mailbox.last("second@example.org"))).status_code == 302
    db.refresh(ana)
    assert ana.email == "second@example.org"


def post_register(app, address: str, **changes: str) -> int:  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/register", data={**NEW_ACCOUNT, **changes}).status_code


def test_registrations_are_limited_per_email_address_counting_only_those_that_went_through(
    app, limited_app, monkeypatch
):
    # The extra app writes outside the test's transaction: registration itself is stubbed, the limit is real.
    monkeypatch.setattr(ownership, "register", lambda *args: None)
    limited = limited_app(ACCOUNT_MAIL_RATE_LIMIT="2 per hour")
    refused = [post_register(limited, f"10.4.0.{n}", email="limit@example.org", password="x") for n in range(3)]
    assert refused == [422, 422, 422]  # forms refused for bad input do not use up the address's allowance
    sent = [post_register(limited, f"10.4.1.{n}", email="limit@example.org") for n in range(3)]
    assert sent == [302, 302, 429]
    assert post_register(limited, "10.4.2.1", email="other@example.org") == 302


def test_mail_to_an_address_nobody_has_proven_carries_no_name_anyone_typed(app, db, mailbox):
    make_user(db, email="claimed@example.org", full_name="Visit evil.example now", confirmed=False)
    db.commit()
    app.test_client().post("/register", data={**NEW_ACCOUNT, "email": "claimed@example.org"})
    warning = mailbox.last("claimed@example.org")
    assert body(warning).startswith("Hello,") and "evil.example" not in body(warning)
