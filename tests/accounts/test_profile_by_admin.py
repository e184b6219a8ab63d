"""An administrator corrects someone's profile: saved, audited with the administrator as actor, the person told by
email when a detail their certificates print changed; issued certificates keep theirs; refusals in words."""

from __future__ import annotations

from sqlalchemy import select

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role, User
from kaptrain.audit import AuditEntry
from tests.accounts.conftest import body
from tests.factories import certified, enrolled, make_user

FORM = {
    "full_name": "Dana Misspelt",
    "profession": "Social worker",
    "credential": "LCSW",
    "licence_number": "CO-123",
    "jurisdiction": "Colorado",
    "time_zone": "America/Denver",
}


def _admin(db, login) -> User:  # type: ignore[no-untyped-def]
    admin = make_user(db, role=Role.ADMIN, full_name="Ada Admin", email="ada@example.org")
    db.commit()
    return login(admin)  # type: ignore[no-any-return]


def _changes(db, user_id: int) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    found = select(AuditEntry).where(AuditEntry.action == "user.profile_change", AuditEntry.subject_id == user_id)
    return list(db.scalars(found))


def test_an_administrator_corrects_a_name_and_the_person_is_told(app, client, db, mailbox, login):  # type: ignore[no-untyped-def]
    dana = make_user(db, full_name="Dana Mispelt", email="dana@example.org")
    enrolled(db, dana)
    with app.app_context():
        certificate = certified(db, dana)
        db.commit()
    admin = _admin(db, login)
    record = client.get(f"/admin/people/{dana.id}").get_data(as_text=True)
    assert f'href="/admin/people/{dana.id}/profile"' in record
    page = client.get(f"/admin/people/{dana.id}/profile")
    assert page.status_code == 200 and 'value="Dana Mispelt"' in page.get_data(as_text=True)
    words = page.get_data(as_text=True)
    assert "Choose their profession" in words and "your" not in words.split("<main", 1)[1].split("</main>")[0].lower()

    saved = client.post(f"/admin/people/{dana.id}/profile", data=FORM, follow_redirects=True)
    assert saved.status_code == 200
    text = saved.get_data(as_text=True)
    assert "Dana Misspelt&#39;s profile was saved." in text and "re-issue one to correct it" in text
    db.refresh(dana)
    db.refresh(certificate)
    assert (dana.full_name, dana.credential, dana.licence_number, dana.time_zone) == (
        "Dana Misspelt",
        "LCSW",
        "CO-123",
        "America/Denver",
    )
    assert certificate.holder_name == "Dana Mispelt"  # the issued record stands until it is re-issued
    (entry,) = _changes(db, dana.id)
    assert entry.actor_id == admin.id
    assert entry.details["before"] == {
        "full_name": "Dana Mispelt",
        "credential": "",
        "licence_number": "",
        "jurisdiction": "",
        "time_zone": "",
    }
    message = mailbox.last("dana@example.org")
    assert message["Subject"] == "kaptrain: your profile was updated"
    text = " ".join(body(message).split())
    assert "your name, credential, licence number, licensing jurisdiction and time zone changed" in text


def test_a_change_of_profession_or_time_zone_is_audited_and_told_too(app, client, db, mailbox, login):  # type: ignore[no-untyped-def]
    dana = make_user(db, full_name="Zoë O'Brien-Müller", email="zone@example.org")
    db.commit()
    admin = _admin(db, login)
    same = {
        **FORM,
        "full_name": "Zoë O'Brien-Müller",
        "credential": "",
        "licence_number": "",
        "jurisdiction": "",
        "profession": "Psychologist",
    }
    saved = client.post(f"/admin/people/{dana.id}/profile", data=same, follow_redirects=True)
    assert saved.status_code == 200 and "re-issue" not in saved.get_data(as_text=True)  # no certificate to correct
    db.refresh(dana)
    assert (dana.profession, dana.time_zone) == ("Psychologist", "America/Denver")
    (entry,) = _changes(db, dana.id)
    assert entry.actor_id == admin.id
    assert entry.details == {
        "before": {"profession": "Social worker", "time_zone": ""},
        "after": {"profession": "Psychologist", "time_zone": "America/Denver"},
    }
    message = body(mailbox.last("zone@example.org"))
    assert "your profession and time zone" in message and "/account" in message
    # The audit log shows names as written, not as JSON escapes.
    renamed = {**same, "full_name": "Zoë O'Brien"}
    client.post(f"/admin/people/{dana.id}/profile", data=renamed)
    log = client.get("/admin/audit?action=user.profile_change").get_data(as_text=True)
    assert "Zoë O&#39;Brien" in log and "\\u00eb" not in log


def test_the_form_speaks_to_the_administrator(app, client, db, login):  # type: ignore[no-untyped-def]
    dana = make_user(db, full_name="Dana Words")
    db.commit()
    _admin(db, login)
    page = client.get(f"/admin/people/{dana.id}/profile").get_data(as_text=True)
    assert "as it should appear on their certificates" in page and "on your certificate" not in page
    blank = client.post(f"/admin/people/{dana.id}/profile", data={**FORM, "full_name": " ", "profession": ""})
    text = blank.get_data(as_text=True)
    assert blank.status_code == 422 and "Enter their full name." in text and "Choose their profession." in text


def test_a_refused_correction_says_why_on_the_form_and_changes_nothing(app, client, db, mailbox, login):  # type: ignore[no-untyped-def]
    dana = make_user(db, full_name="Dana Kept", email="kept@example.org")
    db.commit()
    _admin(db, login)
    for bad, words in (
        ({**FORM, "full_name": "   "}, "Enter their full name."),
        ({**FORM, "time_zone": "Mars/Olympus_Mons"}, "Choose"),
        ({**FORM, "full_name": "Dana\x00Null"}, "Remove control characters"),
    ):
        refused = client.post(f"/admin/people/{dana.id}/profile", data=bad)
        assert refused.status_code == 422 and words in refused.get_data(as_text=True)
    db.refresh(dana)
    assert dana.full_name == "Dana Kept" and dana.time_zone == ""
    assert _changes(db, dana.id) == [] and mailbox.to("kept@example.org") == []


def test_a_closed_account_cannot_be_edited(app, client, db, login):  # type: ignore[no-untyped-def]
    gone = make_user(db, full_name="Gone Person")
    with app.app_context():
        accounts.close_account(db, gone, None)
        db.commit()
    _admin(db, login)
    for answer in (
        client.get(f"/admin/people/{gone.id}/profile"),
        client.post(f"/admin/people/{gone.id}/profile", data=FORM),
    ):
        assert answer.status_code == 409 and "closed at the person" in answer.get_data(as_text=True)
    db.refresh(gone)
    assert gone.full_name == f"Closed account {gone.id}"
    enrol = client.post(f"/admin/people/{gone.id}/enrol", data={"course": "demo-course"})  # a page left open
    assert enrol.status_code == 409 and "cannot be enrolled" in enrol.get_data(as_text=True)
    assert client.get("/admin/people/999999/profile").status_code == 404


# ---------------------------------------------------------------- enrolling someone


def test_an_administrator_enrols_someone_who_is_emailed_the_course(app, client, db, mailbox, login):  # type: ignore[no-untyped-def]
    from kaptrain.courses import services as courses  # noqa: PLC0415
    from tests.factories import course  # noqa: PLC0415

    demo = course(db)
    ivy = make_user(db, full_name="Ivy Placed", email="ivy@example.org")
    db.commit()
    admin = _admin(db, login)
    record = client.get(f"/admin/people/{ivy.id}").get_data(as_text=True)
    assert "Enrol in a course" in record and f'value="{demo.slug}"' in record
    assert 'id="enrol-form"' in record and "#enrol-form" in record  # a refusal comes back scrolled to the form
    published = courses.published_courses(db)
    assert ("Choose a course" in record) == (len(published) > 1)  # the only course there is comes chosen
    done = client.post(f"/admin/people/{ivy.id}/enrol", data={"course": demo.slug}, follow_redirects=True)
    assert done.status_code == 200 and "Ivy Placed is enrolled in" in done.get_data(as_text=True)
    enrolment = courses.get_enrolment(db, ivy.id, demo.id)
    assert enrolment is not None and enrolment.disclosures_acknowledged_at is None  # still hers to read
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "enrolment.create"))
    assert entry.actor_id == admin.id and entry.subject_id == ivy.id and entry.details == {"course": demo.slug}
    message = mailbox.last("ivy@example.org")
    assert message["Subject"] == f"kaptrain: you are enrolled in {demo.title}"
    assert f"/courses/{demo.slug}" in body(message) and "disclosures" in body(message)
    # Enrolled now: the course is no longer offered, and sending it again is refused in words.
    assert f'value="{demo.slug}"' not in client.get(f"/admin/people/{ivy.id}").get_data(as_text=True)
    again = client.post(f"/admin/people/{ivy.id}/enrol", data={"course": demo.slug})
    assert again.status_code == 422 and "Ivy Placed is already enrolled in" in again.get_data(as_text=True)
    assert len(mailbox.to("ivy@example.org")) == 1


def test_enrolling_refuses_an_unknown_course_and_an_inactive_account(app, client, db, mailbox, login):  # type: ignore[no-untyped-def]
    from tests.factories import course  # noqa: PLC0415

    demo = course(db)
    off = make_user(db, full_name="Off Account", email="off@example.org")
    off.is_active = False
    db.commit()
    _admin(db, login)
    off.is_active = True
    db.commit()
    unknown = client.post(f"/admin/people/{off.id}/enrol", data={"course": "no-such-course"})
    assert unknown.status_code == 422 and "Choose one of the published courses listed." in unknown.get_data(
        as_text=True
    )
    off.is_active = False
    db.commit()
    refused = client.post(f"/admin/people/{off.id}/enrol", data={"course": demo.slug})
    assert refused.status_code == 422 and "reactivate it first" in refused.get_data(as_text=True)
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "enrolment.create")).all() == []
    assert mailbox.to("off@example.org") == []


def test_a_person_is_told_when_an_administrator_changes_their_role_or_deactivates_them(client, db, mailbox, login):  # type: ignore[no-untyped-def]
    """The walk-through: role changes and deactivations were made without a word to the person."""
    _admin(db, login)
    ivy = make_user(db, full_name="Ivy Promoted", email="ivy@example.org")
    db.commit()
    assert (
        client.post(f"/admin/people/{ivy.id}/role", data={"role": "instructor", "confirm_role": "y"}).status_code == 302
    )
    message = mailbox.last("ivy@example.org")
    text = " ".join(body(message).split())
    assert message["Subject"] == "kaptrain: your role changed"
    assert "you are now an instructor (before: learner)" in text and "set up two-factor sign-in" in text
    done = client.post(f"/admin/people/{ivy.id}/deactivate", data={"confirm_deactivate": "y"}, follow_redirects=True)
    assert "they were emailed" in done.get_data(as_text=True)
    message = mailbox.last("ivy@example.org")
    assert message["Subject"] == "kaptrain: your account was deactivated"
    assert "can no longer log in" in " ".join(body(message).split())
    assert client.post(f"/admin/people/{ivy.id}/reactivate").status_code == 302
    message = mailbox.last("ivy@example.org")
    assert message["Subject"] == "kaptrain: your account was reactivated"
    assert len(mailbox.to("ivy@example.org")) == 3
    # Nothing changed (already active, already an instructor): nothing is sent.
    assert client.post(f"/admin/people/{ivy.id}/reactivate").status_code == 422
    assert (
        client.post(f"/admin/people/{ivy.id}/role", data={"role": "instructor", "confirm_role": "y"}).status_code == 302
    )
    assert len(mailbox.to("ivy@example.org")) == 3


def test_no_role_or_status_email_goes_to_an_unproven_address_or_a_deactivated_account(client, db, mailbox, login):  # type: ignore[no-untyped-def]
    """The second attack: a deactivated person was told to log in with a new role; an address nobody confirmed (it
    may be a stranger's) was told of the account's changes."""
    _admin(db, login)
    unproven = make_user(db, full_name="Not Proven", email="unproven@example.org", confirmed=False)
    away = make_user(db, full_name="Away Now", email="away@example.org")
    away.is_active = False
    db.commit()
    done = client.post(
        f"/admin/people/{unproven.id}/deactivate", data={"confirm_deactivate": "y"}, follow_redirects=True
    )
    assert "deactivated: they can no longer log in." in done.get_data(as_text=True)  # not "they were emailed"
    assert (
        client.post(f"/admin/people/{away.id}/role", data={"role": "instructor", "confirm_role": "y"}).status_code
        == 302
    )
    assert mailbox.to("unproven@example.org") == [] and mailbox.to("away@example.org") == []
