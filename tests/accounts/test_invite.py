"""An administrator adds a person: the account, the emailed link that sets its first password, the audit entry,
and the refusals on the form."""

from __future__ import annotations

from sqlalchemy import select

from kaptrain.accounts.models import Role, User
from kaptrain.audit import AuditEntry
from tests.accounts.conftest import body, link_in
from tests.accounts.test_password_reset import can_log_in, set_password_through
from tests.factories import make_user

NEW = {"full_name": "Ines Invited", "email": "ines@example.org", "role": "instructor"}


def test_an_added_person_chooses_a_password_by_the_emailed_link(app, client, db, mailbox, login):
    admin = make_user(db, role=Role.ADMIN, full_name="Ada Admin")
    db.commit()
    login(admin)
    response = client.post("/admin/people/new", data=NEW)
    made = db.scalar(select(User).where(User.email == "ines@example.org"))
    assert made is not None and response.location == f"/admin/people/{made.id}"
    assert made.role == Role.INSTRUCTOR and made.full_name == "Ines Invited" and made.email_confirmed_at is None
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "user.invite"))
    assert entry.actor_id == admin.id and entry.subject_id == made.id

    message = mailbox.last("ines@example.org")
    assert message["Subject"] == "kaptrain: your new account"
    assert "Ada Admin, an administrator of kaptrain, made you an account as an instructor" in body(message)
    assert "within 7 days" in body(message) and "two-factor sign-in" in body(message)
    path = link_in(message)
    invited = app.test_client()
    page = invited.get(path).get_data(as_text=True)
    assert "Set up your account" in page and "Welcome, Ines Invited" in page and "two-factor sign-in" in page
    assert 'value="Set my password"' in page
    assert body(message).startswith("Hello Ines Invited,")  # the administrator typed the name: not a stranger's
    assert "every device logged in to this account is logged out" not in page  # it has none
    done = set_password_through(invited, path)
    assert done.location == "/login"
    told = invited.get("/login").get_data(as_text=True)
    assert "Your password is set and your account is ready" in told and "every session" not in told
    db.expire_all()
    assert db.get(User, made.id).email_confirmed_at is not None  # the link proved the address
    assert can_log_in(app, "ines@example.org", "a brand new passphrase 2026")
    # A first password: no "your password was changed" notice, and the log says it was set, not reset.
    assert [m["Subject"] for m in mailbox.to("ines@example.org")] == ["kaptrain: your new account"]
    actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.subject_id == made.id)))
    assert "user.password_set" in actions and "user.password_reset" not in actions


def test_a_taken_address_or_a_bad_one_is_refused_on_the_form(client, db, mailbox, login):
    admin = make_user(db, role=Role.ADMIN)
    make_user(db, email="taken@example.org")
    db.commit()
    login(admin)
    taken = client.post("/admin/people/new", data=NEW | {"email": "Taken@example.org"})
    assert taken.status_code == 422 and "An account already uses this address" in taken.get_data(as_text=True)
    bad = client.post("/admin/people/new", data=NEW | {"email": "not an address", "full_name": ""})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Enter a valid email address." in page and "Enter the person" in page
    assert page.startswith("<!doctype html>") and "<title>Error: Add a person" in page
    assert db.scalar(select(User).where(User.email == "not an address")) is None and mailbox.count() == 0
