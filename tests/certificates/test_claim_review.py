"""A claim far above the measured active time waits for an administrator, who may certify fewer hours; each
accreditor's credit never exceeds the hours certified."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.courses.models import ModuleProgress
from tests.certificates.test_pdf import pdf_text
from tests.conftest import sign_in
from tests.factories import complete_learning, course, enrolled, evaluation_answers, make_user, record

ATTESTATION = "/courses/demo-course/attestation"


@pytest.fixture(autouse=True)
def _review_on(app, monkeypatch):  # type: ignore[no-untyped-def]
    """The production default: a claim over twice the measured time is reviewed."""
    monkeypatch.setitem(app.config, "CLAIM_REVIEW_FACTOR", 2)


def finished(app, db, name: str, measured_seconds: int):  # type: ignore[no-untyped-def]
    """A learner who met the requirements and evaluated, with this much reading time measured."""
    user = make_user(db, full_name=name)
    enrolled(db, user)
    with app.app_context():
        done = complete_learning(db, user)
        services.submit_evaluation(db, done, evaluation_answers(done.course))
    progress = db.scalars(select(ModuleProgress).where(ModuleProgress.user_id == user.id)).all()
    for p in progress:
        p.seat_seconds = 0
    progress[0].seat_seconds = measured_seconds
    db.flush()
    return user


def shown_holder(page: str) -> str:
    """The fingerprint of the holder's details that the approval form carries (what the administrator saw)."""
    found = re.search(r'name="holder" type="hidden" value="([0-9a-f]*)"', page)
    assert found, "no holder field on the approval form"
    return found.group(1)


def actions(db, certificate_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    query = select(AuditEntry.action).where(AuditEntry.subject_id == certificate_id).order_by(AuditEntry.id)
    return list(db.scalars(query))


@pytest.mark.parametrize(("hours", "status"), [("2", CertificateStatus.ACTIVE), ("2.25", CertificateStatus.PENDING)])
def test_a_claim_over_twice_the_measured_time_waits_for_approval(app, db, hours, status):
    user = finished(app, db, "Claimant", measured_seconds=3600)  # one hour measured
    with app.app_context():
        made = services.attest(db, record(db, user), user, Decimal(hours))
    assert made.status == status
    if status == CertificateStatus.PENDING:
        [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.request")).all()
        assert entry.details["held"] == "claim over measured time"


def test_the_learner_is_told_why_the_certificate_waits(app, client, db, login):
    login(finished(app, db, "Quick Reader", measured_seconds=300))
    db.commit()
    page = client.get(ATTESTATION).get_data(as_text=True)
    assert "more than 2 times the measured time is reviewed by an administrator" in page
    response = client.post(ATTESTATION, data={"hours": "3.5", "confirm": "y"}, follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "You claimed 3.5 hours, more than 2 times the active time measured here (5 minutes)" in text
    assert db.scalar(select(Certificate.status)) == CertificateStatus.PENDING


def test_an_administrator_sees_the_flag_and_may_certify_fewer_hours_saying_why(app, client, db, login):
    course(db).credit_designations = [
        {"credit_type": "APA", "hours": "3.5", "statement": "Approved.", "provider_number": "1"},
        {"credit_type": "NBCC", "hours": "2", "statement": "Approved.", "provider_number": "2"},
    ]
    user = finished(app, db, "Quick Reader", measured_seconds=600)
    with app.app_context():
        held = services.attest(db, record(db, user), user, Decimal("3.5"))
    assert held.status == CertificateStatus.PENDING
    login(make_user(db, role=Role.ADMIN))
    db.commit()
    listing = client.get("/admin/certificates").get_data(as_text=True)
    assert "Review: over 2×" in listing and "10 min" in listing
    page = client.get(f"/admin/certificates/{held.id}").get_data(as_text=True)
    assert "Claim over 2× the measured time" in page and "Approve and issue" in page

    url = f"/admin/certificates/{held.id}/approve"
    seen = {"holder": shown_holder(page)}
    for data, words in (
        ({"hours": "1.5", "reason": ""}, "Say why fewer hours are certified"),
        ({"hours": "1.3", "reason": "x"}, "quarter-hour steps"),
        ({"hours": "4", "reason": "x"}, "at most 3.5 hours"),
        ({"hours": "3", "reason": ""}, "Say why fewer hours"),
        ({"hours": "0", "reason": "x"}, "more than 0"),
    ):
        refused = client.post(url, data={**data, **seen})
        assert refused.status_code == 422 and words in refused.get_data(as_text=True), data
    db.refresh(held)
    assert held.status == CertificateStatus.PENDING and held.hours == Decimal("3.5")

    done = client.post(url, data={"hours": "1.5", "reason": "Read the modules in one sitting; 1.5 h agreed.", **seen})
    assert done.status_code == 302
    db.refresh(held)
    assert held.status == CertificateStatus.ACTIVE and held.hours == Decimal("1.5")
    assert {d["credit_type"]: d["hours"] for d in held.designations} == {"APA": "1.50", "NBCC": "1.50"}
    assert actions(db, held.id)[-2:] == ["certificate.hours_changed", "certificate.approve"]
    twice = client.post(url, data={"hours": "1.5", "reason": "Read the modules in one sitting; 1.5 h agreed.", **seen})
    page = twice.get_data(as_text=True)  # a second click: told so at the top of the page, nothing done again
    assert twice.status_code == 409 and 'class="flash flash-info"' in page and "it was approved already" in page
    assert "Please correct" not in page and actions(db, held.id)[-1] == "certificate.approve"
    changed = db.scalar(select(AuditEntry).where(AuditEntry.action == "certificate.hours_changed"))
    assert changed.details == {
        "claimed": "3.50",
        "certified": "1.50",
        "reason": "Read the modules in one sitting; 1.5 h agreed.",
    }
    learner = app.test_client()
    sign_in(learner, db, user)
    transcript = learner.get("/courses/demo-course/transcript").get_data(as_text=True)
    assert "Hours certified</dt><dd>1.5 (the provider" in transcript and "3.5 of 3.5" in transcript
    dashboard = learner.get("/dashboard").get_data(as_text=True)
    assert '<dd>1.5 <span class="muted">certified, of 3.5 claimed' in dashboard
    shown = client.get(f"/admin/certificates/{held.id}").get_data(as_text=True)
    assert "fewer than claimed because: “Read the modules in one sitting; 1.5 h agreed.”" in shown
    with app.app_context():
        renamed = services.reissue(db, held, actor_label="test", reason="name corrected")
        db.commit()
    again_shown = client.get(f"/admin/certificates/{renamed.id}").get_data(as_text=True)
    assert "fewer than claimed because: “Read the modules in one sitting; 1.5 h agreed.”" in again_shown
    again = client.post(url, data={"hours": "1.5", "reason": ""})
    assert (
        again.status_code == 409
        and "is superseded, not waiting for approval: nothing was changed" in again.get_data(as_text=True)
    )


def test_each_accreditors_credit_is_at_most_the_hours_certified(app, db, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "ACCREDITATION_STATEMENT", "Approved by the boards named below.")
    course(db).credit_designations = [
        {"credit_type": "APA", "hours": "3.5", "statement": "Approved.", "provider_number": "1"},
        {"credit_type": "NBCC", "hours": "2", "statement": "Approved.", "provider_number": "2"},
    ]
    user = finished(app, db, "Careful Reader", measured_seconds=4 * 3600)
    with app.app_context():
        issued = services.attest(db, record(db, user), user, Decimal("3"))
        api = services.public_status(issued).as_json()
    assert issued.status == CertificateStatus.ACTIVE
    assert {d["credit_type"]: d["hours"] for d in issued.designations} == {"APA": "3", "NBCC": "2"}
    assert [(d["credit_type"], d["hours"]) for d in api["designations"]] == [("APA", "3"), ("NBCC", "2")]
    printed = " ".join(pdf_text(services.stored_pdf(db, issued) or b"", tmp_path).split())
    assert "APA 3.0 hours" in printed and "NBCC 2.0 hours" in printed and "3.5 hours" not in printed


def test_bulk_approval_leaves_a_flagged_claim_for_its_own_page(app, client, db, login, runner):
    flagged = finished(app, db, "Fast Claimant", measured_seconds=60)
    careful = finished(app, db, "Slow Reader", measured_seconds=4 * 3600)
    course(db).certificate_approval = "manual"  # both wait; only the first is over the measured time
    with app.app_context():
        held = services.attest(db, record(db, flagged), flagged, Decimal("3.5"))
        fine = services.attest(db, record(db, careful), careful, Decimal("3.5"))
    login(make_user(db, role=Role.ADMIN))
    db.commit()
    listing = client.get("/admin/certificates").get_data(as_text=True)
    assert f'id="pick-{fine.id}"' in listing and f'id="pick-{held.id}"' not in listing  # "Review" instead
    response = client.post("/admin/certificates/approve", data={"everything": "Approve all"}, follow_redirects=True)
    assert "1 certificate with hours claimed over 2 times the measured time left out" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Certificate, fine.id).status == CertificateStatus.ACTIVE
    assert db.get(Certificate, held.id).status == CertificateStatus.PENDING
    picked = client.post("/admin/certificates/approve", data={"selected": "1", "ids": [str(held.id)]})
    assert picked.status_code == 302
    db.expire_all()
    assert db.get(Certificate, held.id).status == CertificateStatus.PENDING


def test_the_cli_approves_a_flagged_claim_only_in_the_console(app, db, runner):
    flagged = finished(app, db, "Fast Claimant", measured_seconds=60)
    with app.app_context():
        held = services.attest(db, record(db, flagged), flagged, Decimal("3.5"))
    db.commit()
    named = runner.invoke(args=["certificates", "approve", held.code])
    assert named.exit_code != 0 and "approve it in the admin console" in named.output
    everything = runner.invoke(args=["certificates", "approve", "--all"])
    assert "Left out 1 claim(s)" in everything.output
    db.expire_all()
    assert db.get(Certificate, held.id).status == CertificateStatus.PENDING


def test_a_profile_changed_while_a_claim_waits_is_printed_on_the_certificate_approved_after(app, db, tmp_path):
    """The account page promises that a change is printed on certificates issued from then on."""
    user = finished(app, db, "Nora Nurse", measured_seconds=60)
    user.credential = "RN"
    with app.app_context():
        held = services.attest(db, record(db, user), user, Decimal("3.5"))
    assert held.status == CertificateStatus.PENDING and held.holder_credential == "RN"
    user.full_name, user.credential, user.licence_number = "Nora Nurse-Ames", "RN, BSN", "RN-123456"
    db.flush()
    with app.app_context():
        services.approve(db, held, actor_label="test")
    assert (held.holder_name, held.holder_credential, held.licence_number) == (
        "Nora Nurse-Ames",
        "RN, BSN",
        "RN-123456",
    )
    printed = " ".join(pdf_text(services.stored_pdf(db, held) or b"", tmp_path).split())
    assert "Nora Nurse-Ames, RN, BSN" in printed and "RN-123456" in printed
    with app.app_context():
        assert services.public_status(held).as_json()["holder"]["credential"] == "RN, BSN"


def test_an_administrator_may_return_a_claim_and_the_learner_attests_again(app, client, db, login, inbox):
    user = finished(app, db, "Quick Reader", measured_seconds=600)
    with app.app_context():
        held = services.attest(db, record(db, user), user, Decimal("3.5"))
    held_id, course_id = held.id, held.course_id
    admin = make_user(db, role=Role.ADMIN)
    login(admin)
    db.commit()
    url = f"/admin/certificates/{held_id}/return"
    assert "Return the claim to the learner" in client.get(f"/admin/certificates/{held_id}").text
    refused = client.post(url, data={"note": "  "})
    assert refused.status_code == 422 and "Tell the learner why their claim is returned." in refused.text
    assert db.get(Certificate, held_id) is not None and inbox.messages == []

    note = "We measured 10 minutes on the site. Tell us how you studied the rest, or claim the hours you can show."
    returned = client.post(url, data={"note": note})
    assert returned.status_code == 302 and returned.location.endswith("/admin/certificates")
    db.expire_all()
    assert db.get(Certificate, held_id) is None and services.get_attestation(db, user.id, course_id) is None
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "certificate.claim_returned"))
    assert entry.actor_id == admin.id and entry.details["claimed"] == "3.50" and entry.details["note"] == note
    [(_from, to, message)] = inbox.messages
    assert to == [user.email] and "was returned" in message["Subject"]
    assert note in " ".join(message.get_content().split())
    again = client.post(url, data={"note": note})  # a double submit: the claim is gone, and the page says why
    assert again.status_code == 409 and "This claim was returned to the learner" in again.text
    approved = client.post(f"/admin/certificates/{held_id}/approve", data={"hours": "3.5"})  # a colleague's tab
    assert approved.status_code == 409 and "nothing to approve or return any more" in approved.text
    assert client.get("/admin/certificates/987654").status_code == 404  # never was: the plain 404

    learner = app.test_client()
    sign_in(learner, db, user)
    assert "Your claim of hours was returned by the course provider" in learner.get("/dashboard").text
    page = learner.get(ATTESTATION).text
    assert "Your earlier claim was returned" in page and "We measured 10 minutes on the site." in page
    assert "How you studied (optional)" in page  # the learner can answer with their claim
    answer = "I read the references on paper over two evenings."
    claimed = learner.post(ATTESTATION, data={"hours": "3.5", "note": answer, "confirm": "y"})
    assert claimed.status_code == 302
    db.expire_all()
    again_held = db.scalar(select(Certificate).where(Certificate.user_id == user.id))
    assert again_held.status == CertificateStatus.PENDING  # still over twice the time: reviewed again
    assert services.get_attestation(db, user.id, course_id).note == answer
    assert answer in client.get(f"/admin/certificates/{again_held.id}").text  # the reviewer reads it
    assert "Your earlier claim was returned" not in learner.get(ATTESTATION).text
    assert "Your claim of hours was returned" not in learner.get("/dashboard").text


def test_only_a_learners_own_waiting_claim_can_be_returned(app, client, db, login):
    user = make_user(db)
    enrolled(db, user)
    db.flush()
    with app.app_context():
        by_hand = services.issue_without_course(db, user, course(db), "Record from the old system", "test")
        db.commit()
    login(make_user(db, role=Role.ADMIN))
    refused = client.post(f"/admin/certificates/{by_hand.id}/return", data={"note": "No."})
    assert refused.status_code == 409 and "not waiting for approval" in refused.text
    db.expire_all()
    assert db.get(Certificate, by_hand.id).status == CertificateStatus.ACTIVE


def test_the_admin_menu_counts_the_waiting_claims_and_bulk_buttons_hide_when_none_can_be_bulk_approved(
    app, client, db, login
):
    user = finished(app, db, "Quick Reader", measured_seconds=60)
    with app.app_context():
        services.attest(db, record(db, user), user, Decimal("3.5"))
    login(make_user(db, role=Role.ADMIN))
    db.commit()
    people = client.get("/admin/people").text
    assert '<span class="badge badge-warning">1 waiting</span>' in people
    listing = client.get("/admin/certificates").text
    assert "Review<span" in listing and "Approve all" not in listing and "Approve selected" not in listing


def test_an_approval_waits_when_the_holder_changed_their_profile_after_the_page_was_shown(app, client, db, login):
    """The attack: the administrator reviewed one name; the learner changed it before the approval was sent."""
    user = finished(app, db, "Samir Garcia", measured_seconds=60)
    user.credential = "LMHC"
    with app.app_context():
        held = services.attest(db, record(db, user), user, Decimal("3.5"))
    login(make_user(db, role=Role.ADMIN))
    db.commit()
    page = client.get(f"/admin/certificates/{held.id}").text
    assert "Samir Garcia</a>, LMHC" in page and "the certificate prints it as it is when approved" in page
    user.full_name, user.credential = "Totally Different Person", "MD"
    db.commit()
    url = f"/admin/certificates/{held.id}/approve"
    stale = client.post(url, data={"hours": "3.5", "holder": shown_holder(page)})
    assert stale.status_code == 409 and "The holder changed their profile after this page was shown" in stale.text
    assert "Totally Different Person</a>, MD" in stale.text
    db.refresh(held)
    assert held.status == CertificateStatus.PENDING
    fresh = client.post(url, data={"hours": "3.5", "holder": shown_holder(stale.text)})
    assert fresh.status_code == 302
    db.refresh(held)
    assert held.status == CertificateStatus.ACTIVE and held.holder_name == "Totally Different Person"
