"""A holder who corrects their name, credential or licence asks for a corrected certificate from the dashboard;
the request waits on the administrators' Certificates page until one re-issues the certificate."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role, User
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus, RevocationReason
from tests.conftest import sign_in
from tests.factories import certified, enrolled, make_user


@pytest.fixture
def holder(app, db, login):  # type: ignore[no-untyped-def]
    """A logged-in learner with a certificate, who has since corrected their name on the profile."""
    learner = make_user(db, full_name="Dana Okafor")
    enrolled(db, learner)
    with app.app_context():
        certificate = certified(db, learner)
        db.commit()
    login(learner)
    learner.full_name = "Dana A. Okafor-Reyes"
    db.commit()
    return learner, certificate


def shown_holder(page: str) -> dict[str, str]:
    """The re-issue form's fingerprint of the holder's details, as the certificate's page carries it."""
    found = re.search(r'name="holder" type="hidden" value="([0-9a-f]*)"', page) or re.search(
        r'type="hidden" name="holder" value="([0-9a-f]*)"', page
    )
    assert found, "no holder field on the re-issue form"
    return {"holder": found.group(1)}


def correction_entries(db) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.correction_requested")))


def test_the_dashboard_offers_a_correction_once_the_profile_differs(client, db, holder):
    learner, certificate = holder
    page = client.get("/dashboard").get_data(as_text=True)
    assert "This certificate prints the name you had when it was issued (“Dana Okafor”)" in page
    learner.licence_number = "CO-77"
    db.commit()
    both = client.get("/dashboard").get_data(as_text=True)
    assert "prints the name and licence number you had" in both  # said as a sentence says it
    learner.licence_number = ""
    db.commit()
    assert f'action="/certificates/{certificate.id}/correction"' in page
    learner.full_name = "Dana Okafor"  # back as printed: nothing to correct
    db.commit()
    assert "Ask for a corrected certificate" not in client.get("/dashboard").get_data(as_text=True)


def test_asking_twice_records_one_request_and_the_dashboard_says_it_waits(client, db, holder):
    _learner, certificate = holder
    first = client.post(f"/certificates/{certificate.id}/correction", follow_redirects=True)
    assert first.status_code == 200 and "Your request was sent" in first.get_data(as_text=True)
    again = client.post(f"/certificates/{certificate.id}/correction", follow_redirects=True)
    assert again.status_code == 200 and "You have already asked" in again.get_data(as_text=True)
    assert [e.details["changed"] for e in correction_entries(db)] == ["name"]
    page = client.get("/dashboard").get_data(as_text=True)
    assert "for a corrected certificate. It is waiting for an administrator" in page
    assert "Ask for a corrected certificate" not in page


def test_nothing_to_correct_and_a_revoked_certificate_are_refused(app, client, db, holder):
    learner, certificate = holder
    learner.full_name = "Dana Okafor"
    db.commit()
    same = client.post(f"/certificates/{certificate.id}/correction")
    assert same.status_code == 409 and "already prints what your profile says" in same.get_data(as_text=True)
    learner.full_name = "Dana A. Okafor-Reyes"
    with app.app_context():
        services.revoke(db, certificate, RevocationReason.ISSUED_IN_ERROR, "test", actor_label="test")
        db.commit()
    revoked = client.post(f"/certificates/{certificate.id}/correction")
    assert revoked.status_code == 409 and "is revoked, so there is nothing to correct" in revoked.get_data(as_text=True)
    assert correction_entries(db) == []


def test_another_learner_cannot_ask_for_someone_elses_correction(app, db, holder):
    _learner, certificate = holder
    other = app.test_client()
    sign_in(other, db, make_user(db, full_name="Someone Else"))
    assert other.post(f"/certificates/{certificate.id}/correction").status_code == 404
    assert correction_entries(db) == []


def test_the_request_waits_for_an_administrator_until_a_re_issue(app, client, db, holder):
    learner, certificate = holder
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    admin = app.test_client()
    sign_in(admin, db, make_user(db, role=Role.ADMIN))
    console = admin.get("/admin/certificates").get_data(as_text=True)
    assert "Corrections asked for (1)" in console and "1 waiting" in console
    assert "Dana Okafor" in console and "Dana A. Okafor-Reyes" in console
    detail = admin.get(f"/admin/certificates/{certificate.id}").get_data(as_text=True)
    assert "asked on" in detail and "Their profile's name now differs" in detail
    assert detail.index('id="correction"') < detail.index('id="reissue-h"') < detail.index('id="revoke-h"')
    assert "Details corrected at the holder&#39;s request" in detail  # the re-issue's reason, filled in
    done = admin.post(
        f"/admin/certificates/{certificate.id}/reissue",
        data={**shown_holder(detail), "confirm_reissue": "y", "reason": "Details corrected at the holder's request"},
    )
    assert done.status_code == 302
    assert "Corrections asked for" not in admin.get("/admin/certificates").get_data(as_text=True)
    db.expire_all()
    current = db.scalar(
        select(Certificate).where(Certificate.user_id == learner.id, Certificate.status == CertificateStatus.ACTIVE)
    )
    assert current is not None and current.holder_name == "Dana A. Okafor-Reyes"
    assert db.get(User, learner.id).full_name == current.holder_name
    assert "Ask for a corrected certificate" not in client.get("/dashboard").get_data(as_text=True)


def test_a_profile_changed_after_the_administrator_looked_is_not_printed_unseen(app, client, db, holder):
    """The attack: the administrator checked "Dana A. Okafor-Reyes, licence CO-1"; the learner then changed the
    profile to another name and licence, and the re-issue printed those. Now the re-issue waits, and the page shows
    what it would print."""
    learner, certificate = holder
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    admin = app.test_client()
    sign_in(admin, db, make_user(db, role=Role.ADMIN))
    seen = shown_holder(admin.get(f"/admin/certificates/{certificate.id}").get_data(as_text=True))
    learner.full_name, learner.licence_number = "Dr Victoria Jonas, MD", "MD-99999"
    db.commit()
    form = {**seen, "confirm_reissue": "y", "reason": "Details corrected at the holder's request"}
    refused = admin.post(f"/admin/certificates/{certificate.id}/reissue", data=form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "The holder changed their profile after this page was shown" in page
    assert "Dr Victoria Jonas, MD" in page and "MD-99999" in page  # what a re-issue would print now
    db.expire_all()
    assert db.get(Certificate, certificate.id).status == CertificateStatus.ACTIVE  # nothing was issued
    again = admin.post(f"/admin/certificates/{certificate.id}/reissue", data={**form, **shown_holder(page)})
    assert again.status_code == 302  # re-issued once the administrator has seen what it prints


def test_a_request_from_an_account_deactivated_or_closed_since_waits_for_no_one(app, client, db, holder):
    """The second attack: a closed account's request stayed in the queue, and its re-issue would print the closed
    account's pseudonym."""
    learner, certificate = holder
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    admin = app.test_client()
    sign_in(admin, db, make_user(db, role=Role.ADMIN))
    assert "Corrections asked for (1)" in admin.get("/admin/certificates").get_data(as_text=True)
    learner.is_active = False
    db.commit()
    console = admin.get("/admin/certificates").get_data(as_text=True)
    assert "Corrections asked for" not in console and "1 waiting" not in console


def asked_for_by_an_admin(app, client, db, holder):  # type: ignore[no-untyped-def]
    """The holder asks; an administrator's client and the certificate's page, as the administrator sees it."""
    _learner, certificate = holder
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    admin = app.test_client()
    sign_in(admin, db, make_user(db, role=Role.ADMIN, full_name="Ada Admin"))
    return admin, admin.get(f"/admin/certificates/{certificate.id}").get_data(as_text=True)


def test_the_site_s_active_administrators_are_emailed_a_request(app, client, db, holder, inbox):
    _learner, certificate = holder
    active = make_user(db, role=Role.ADMIN, email="active-admin@example.org")
    make_user(db, role=Role.ADMIN, email="former-admin@example.org").is_active = False
    make_user(db, role=Role.INSTRUCTOR, email="instructor@example.org")
    db.commit()
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302  # asked again: no new email
    [(_from, to, message)] = inbox.messages
    assert to == [active.email] and certificate.number in message["Subject"]
    body = " ".join(message.get_content().split())
    assert f"/admin/certificates/{certificate.id}" in body and "Dana Okafor" in body
    assert "their profile's name now differs from what it prints" in body


def test_an_administrator_declines_with_a_note_the_holder_reads(app, client, db, holder, inbox):
    learner, certificate = holder
    admin, detail = asked_for_by_an_admin(app, client, db, holder)
    assert "Or decline the request" in detail and f"/admin/certificates/{certificate.id}/decline-correction" in detail
    inbox.messages.clear()  # the administrators' notice of the request
    url = f"/admin/certificates/{certificate.id}/decline-correction"
    blank = admin.post(url, data={"note": "   "})
    assert blank.status_code == 422 and "Tell the holder why the certificate is not re-issued." in blank.text
    note = "The licence number on your profile is not on the board's register. Check it, then ask again."
    declined = admin.post(url, data={"note": note})
    assert declined.status_code == 302 and declined.location.endswith("/admin/certificates")
    console = admin.get("/admin/certificates").get_data(as_text=True)
    assert "Corrections asked for" not in console and "1 waiting" not in console
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "certificate.correction_declined"))
    assert entry is not None and entry.details["note"] == note and entry.details["number"] == certificate.number
    [(_from, to, message)] = inbox.messages
    assert to == [learner.email] and certificate.number in message["Subject"]
    assert note in " ".join(message.get_content().split())
    db.expire_all()
    assert db.get(Certificate, certificate.id).status == CertificateStatus.ACTIVE  # unchanged, still valid
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Your request for a corrected certificate was declined" in page and "not on the board&#39;s register" in page
    assert "Ask for a corrected certificate" in page  # the holder may correct the profile and ask again


def test_a_second_decline_or_one_after_a_re_issue_changes_nothing(app, client, db, holder):
    _learner, certificate = holder
    admin, detail = asked_for_by_an_admin(app, client, db, holder)
    url = f"/admin/certificates/{certificate.id}/decline-correction"
    assert admin.post(url, data={"note": "Not confirmed."}).status_code == 302
    twice = admin.post(url, data={"note": "Not confirmed."})  # a double submit, or a colleague's tab
    assert twice.status_code == 409 and "No correction of certificate" in twice.text
    assert "Nothing was changed" in twice.text
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302  # asked again
    reissued = admin.post(
        f"/admin/certificates/{certificate.id}/reissue",
        data={**shown_holder(detail), "confirm_reissue": "y", "reason": "Details corrected at the holder's request"},
    )
    assert reissued.status_code == 302
    late = admin.post(url, data={"note": "Not confirmed."})
    assert late.status_code == 409 and "re-issued or answered already" in late.text
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.correction_declined")).all()
    assert len(entries) == 1


def test_asking_again_after_a_decline_waits_again_and_the_administrator_sees_the_earlier_note(app, client, db, holder):
    _learner, certificate = holder
    admin, _detail_page = asked_for_by_an_admin(app, client, db, holder)
    declined = admin.post(
        f"/admin/certificates/{certificate.id}/decline-correction", data={"note": "Send us the board's letter."}
    )
    assert declined.status_code == 302
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    page = client.get("/dashboard").get_data(as_text=True)
    assert "It is waiting for an administrator" in page and "Send us the board" not in page
    assert "Corrections asked for (1)" in admin.get("/admin/certificates").get_data(as_text=True)
    # The second walk-through: the repeat looked new to the administrator, the refusal nowhere on the page.
    detail = admin.get(f"/admin/certificates/{certificate.id}").get_data(as_text=True)
    assert "An earlier request was declined on" in detail and "Send us the board&#39;s letter." in detail


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR])
def test_only_an_administrator_may_decline(app, client, db, holder, role):
    _learner, certificate = holder
    assert client.post(f"/certificates/{certificate.id}/correction").status_code == 302
    other = app.test_client()
    sign_in(other, db, make_user(db, role=role))
    refused = other.post(f"/admin/certificates/{certificate.id}/decline-correction", data={"note": "No."})
    assert refused.status_code == 403
    db.expire_all()
    assert db.get(Certificate, certificate.id).correction_requested_at is not None
