"""The certificates console: access, search, bulk approval as jobs, manual issue, revoke, re-issue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kaptrain.accounts.models import Role, User
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus, RevocationReason
from tests.conftest import sign_in
from tests.factories import certified, course, enrolled, make_user

ADMIN_GETS = ["/admin/certificates", "/admin/certificates/1", "/admin/reports", "/admin/reports/completions.csv"]
ADMIN_POSTS = [
    "/admin/certificates/approve",
    "/admin/certificates/issue",
    "/admin/certificates/1/revoke",
    "/admin/certificates/1/reissue",
]


@pytest.fixture
def admin(db, login):
    """A logged-in administrator."""
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin")
    db.commit()
    return login(user)


def holder(app, db, name: str, manual: bool = False) -> Certificate:  # type: ignore[no-untyped-def]
    """A learner taken through the fixture course to a certificate (pending when approval is manual), committed."""
    course(db).certificate_approval = "manual" if manual else "automatic"
    learner = make_user(db, full_name=name)
    enrolled(db, learner)
    with app.app_context():  # issuing reads the app's settings and holds its email for the commit
        made = certified(db, learner)
        db.commit()
    return made


def shown(db, c: Certificate, data: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A re-issue form's fields with the holder's details as the certificate's page showed them (their fingerprint)."""
    holder = db.get(User, c.user_id)
    return {"holder": services.holder_digest(holder), **data}


def entries(db, action: str) -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR])
def test_only_admins_reach_the_console_and_reports(client, db, login, role):
    login(make_user(db, role=role))
    db.commit()
    for url in ADMIN_GETS:
        assert client.get(url).status_code == 403, url
    for url in ADMIN_POSTS:
        assert client.post(url, data={"everything": "1", "reason": "other", "note": "x"}).status_code == 403, url


def test_search_finds_a_certificate_by_holder_and_by_number(app, client, db, admin):
    mine = holder(app, db, "Searchable Person")
    holder(app, db, "Another Learner")
    db.commit()
    page = client.get("/admin/certificates?q=searchable").get_data(as_text=True)
    assert "Searchable Person" in page and "Another Learner" not in page
    page = client.get(f"/admin/certificates?q={mine.number}&status=active").get_data(as_text=True)
    assert "Searchable Person" in page
    assert client.get("/admin/certificates?q=%25&status=nonsense").status_code == 400


def test_approve_all_runs_one_job_per_certificate(app, client, db, admin):
    waiting = [holder(app, db, f"Pending {n}", manual=True) for n in range(3)]
    db.commit()
    page = client.get("/admin/certificates").get_data(as_text=True)
    assert "Waiting for approval (3)" in page
    response = client.post("/admin/certificates/approve", data={"everything": "1"}, follow_redirects=True)
    assert "3 approvals queued." in response.get_data(as_text=True)
    assert "3 of 3 approvals done" in response.get_data(as_text=True)
    for c in waiting:
        db.refresh(c)
        assert c.status == CertificateStatus.ACTIVE and c.number
    assert sorted(e.subject_id for e in entries(db, "certificate.approve")) == sorted(c.id for c in waiting)


def test_approve_selected_approves_only_those(app, client, db, admin):
    first, second = holder(app, db, "Pending A", manual=True), holder(app, db, "Pending B", manual=True)
    db.commit()
    client.post("/admin/certificates/approve", data={"selected": "1", "ids": [str(first.id)]})
    db.refresh(first)
    db.refresh(second)
    assert first.status == CertificateStatus.ACTIVE and second.status == CertificateStatus.PENDING
    nothing = client.post("/admin/certificates/approve", data={"selected": "1"}, follow_redirects=True)
    assert "Choose at least one certificate" in nothing.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"reason": "", "note": "Wrong learner", "confirm_revoke": "y"}, "Choose the reason for revoking."),
        ({"reason": "issued_in_error", "note": " ", "confirm_revoke": "y"}, "Explain why the certificate is revoked."),
        ({"reason": "issued_in_error", "note": "Wrong learner"}, "Tick the box to confirm the revocation"),
    ],
    ids=["no-reason", "no-note", "not-confirmed"],
)
def test_revoking_without_a_reason_or_confirmation_changes_nothing(app, client, db, admin, data, words):
    c = holder(app, db, "Keep Me")
    db.commit()
    response = client.post(f"/admin/certificates/{c.id}/revoke", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Please correct the following" in page and words in page
    db.refresh(c)
    assert c.status == CertificateStatus.ACTIVE and not entries(db, "certificate.revoke")


def test_revoke_is_audited_then_one_linked_replacement_can_be_issued(app, client, db, admin):
    c = holder(app, db, "Revoke Me")
    db.commit()
    data = {"reason": "issued_in_error", "note": "Revoked the wrong learner.", "confirm_revoke": "y"}
    assert client.post(f"/admin/certificates/{c.id}/revoke", data=data).status_code == 302
    db.refresh(c)
    assert c.status == CertificateStatus.REVOKED and c.revocation_note == "Revoked the wrong learner."
    [entry] = entries(db, "certificate.revoke")
    assert entry.subject_id == c.id and entry.actor_id == admin.id
    page = client.get(f"/admin/certificates/{c.id}").get_data(as_text=True)
    assert "Issue a replacement" in page and "Revoke</h2>" not in page
    again = client.post(f"/admin/certificates/{c.id}/revoke", data=data)  # revoked once only, and said calmly
    assert again.status_code == 409 and "flash flash-info" in again.text and "Nothing was changed." in again.text

    response = client.post(
        f"/admin/certificates/{c.id}/reissue", data=shown(db, c, {"confirm_reissue": "y", "reason": "Revoked in error"})
    )
    assert response.status_code == 302
    db.expire_all()
    new = db.scalar(select(Certificate).where(Certificate.supersedes_id == c.id))
    assert new is not None and new.status == CertificateStatus.ACTIVE and new.number != c.number
    assert db.get(Certificate, c.id).status == CertificateStatus.REVOKED  # the revocation stays on record
    assert "stays revoked" in client.get(response.headers["Location"]).get_data(as_text=True)
    (entry,) = entries(db, "certificate.reissue")
    assert entry.subject_id == new.id and entry.details["reason"] == "Revoked in error"

    old_page = client.get(f"/admin/certificates/{c.id}").get_data(as_text=True)
    assert "Replaced by" in old_page and new.number in old_page and "Issue a replacement" not in old_page
    assert "Replaces (revoked)" in client.get(f"/admin/certificates/{new.id}").get_data(as_text=True)
    again = client.post(
        f"/admin/certificates/{c.id}/reissue", data=shown(db, c, {"confirm_reissue": "y", "reason": "Twice"})
    )
    assert again.status_code == 409 and f"already replaced by {new.number}" in again.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Certificate).where(Certificate.user_id == c.user_id)) == 2


def test_a_certificate_issued_by_hand_reaches_a_holder_who_is_not_enrolled(app, client, db, admin):
    holder_user = make_user(db, full_name="Migrated Holder")
    db.commit()
    data = {"email": holder_user.email, "course": str(course(db).id), "hours": "2", "completed_on": "2024-05-02"}
    assert client.post("/admin/certificates/issue", data={**data, "reason": "Old LMS"}).status_code == 302
    made = db.scalar(select(Certificate).where(Certificate.user_id == holder_user.id))
    page = client.get(f"/admin/certificates/{made.id}").get_data(as_text=True)
    assert "Completed</dt><dd>2 May 2024" in page and f"Download {made.number}.pdf" in page
    assert "at most the course&#39;s maximum of" in page and "at most the hours claimed" not in page  # none claimed
    pdf = client.get(f"/admin/certificates/{made.id}/pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    browser = app.test_client()
    sign_in(browser, db, holder_user)
    dashboard = browser.get("/dashboard").get_data(as_text=True)
    assert "You are not enrolled in this course on this site" in dashboard and made.number in dashboard
    assert f'href="/certificates/{made.id}.pdf"' in dashboard and "/transcript" not in dashboard
    assert browser.get(f"/certificates/{made.id}.pdf").data[:5] == b"%PDF-"


def test_a_revoked_certificate_is_not_replaced_while_its_holder_holds_another(app, client, db, admin):
    c = holder(app, db, "Issued By Hand Since")
    db.commit()
    revoke = {"reason": "other", "note": "Details wrong.", "confirm_revoke": "y"}
    assert client.post(f"/admin/certificates/{c.id}/revoke", data=revoke).status_code == 302
    learner = db.get(User, c.user_id)
    issue = {"email": learner.email, "course": str(course(db).id), "hours": "2", "reason": "Fixed by hand"}
    issue["completed_on"] = "2026-01-05"
    assert client.post("/admin/certificates/issue", data=issue).status_code == 302
    refused = client.post(
        f"/admin/certificates/{c.id}/reissue", data=shown(db, c, {"confirm_reissue": "y", "reason": "Revoked in error"})
    )
    assert refused.status_code == 409 and "already has certificate" in refused.get_data(as_text=True)
    assert not entries(db, "certificate.reissue")


def test_reissue_asks_why_then_supersedes_and_records_the_reason(app, client, db, admin):
    c = holder(app, db, "Reissue Me")
    db.commit()
    unsaid = client.post(
        f"/admin/certificates/{c.id}/reissue", data=shown(db, c, {"confirm_reissue": "y", "reason": "  "})
    )
    assert unsaid.status_code == 422 and "Say why it is re-issued" in unsaid.get_data(as_text=True)
    db.refresh(c)
    assert c.status == CertificateStatus.ACTIVE  # nothing happened
    unticked = client.post(
        f"/admin/certificates/{c.id}/reissue", data=shown(db, c, {"reason": "Name corrected on request"})
    )
    assert unticked.status_code == 422 and "Tick the box to confirm the new certificate." in unticked.text
    db.refresh(c)
    assert c.status == CertificateStatus.ACTIVE
    data = {"confirm_reissue": "y", "reason": "Name corrected on request"}
    response = client.post(f"/admin/certificates/{c.id}/reissue", data=shown(db, c, data))
    assert response.status_code == 302
    db.refresh(c)
    assert c.status == CertificateStatus.SUPERSEDED
    new = db.scalar(select(Certificate).where(Certificate.supersedes_id == c.id))
    assert new is not None and new.status == CertificateStatus.ACTIVE
    (entry,) = entries(db, "certificate.reissue")
    assert entry.details["reason"] == "Name corrected on request" and entry.actor_id == admin.id


def test_a_reissue_from_a_page_shown_before_a_colleague_revoked_it_issues_nothing(app, client, db, admin):
    c = holder(app, db, "Revoked Meanwhile")
    db.commit()
    page = client.get(f"/admin/certificates/{c.id}").text
    assert 'name="seen_status" value="active"' in page
    with app.app_context():
        services.revoke(db, c, RevocationReason.ISSUED_IN_ERROR, "a colleague's revocation", actor_label="test")
        db.commit()
    data = {"confirm_reissue": "y", "reason": "Name corrected on request", "seen_status": "active"}
    refused = client.post(f"/admin/certificates/{c.id}/reissue", data=shown(db, c, data))
    assert refused.status_code == 409 and "was revoked by someone else after this page was shown" in refused.text
    assert db.scalar(select(Certificate).where(Certificate.supersedes_id == c.id)) is None
    # Seen revoked now: a replacement is a decision of its own, and goes through.
    again = client.post(f"/admin/certificates/{c.id}/reissue", data=shown(db, c, {**data, "seen_status": "revoked"}))
    assert again.status_code == 302


def test_manual_issue_needs_a_reason_and_a_known_account(app, client, db, admin):
    learner = make_user(db, full_name="Migrated Learner")
    db.commit()
    count = select(func.count()).select_from(Certificate)
    before = db.scalar(count)
    data = {"email": learner.email, "course": str(course(db).id), "hours": "2.5", "completed_on": "2019-06-14"}
    assert client.post("/admin/certificates/issue", data={**data, "reason": ""}).status_code == 422
    unknown = client.post("/admin/certificates/issue", data={**data, "email": "nobody@example.org", "reason": "Old"})
    assert "No account has this email." in unknown.get_data(as_text=True)
    for hours, words in (("", "Enter the hours to certify"), ("99", "at most"), ("0", "more than 0")):
        refused = client.post("/admin/certificates/issue", data={**data, "hours": hours, "reason": "Old"})
        assert refused.status_code == 422 and words in refused.get_data(as_text=True), hours
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    days = (("", "Enter the day"), ("14/06/2019", "Not a valid date"), (tomorrow, "cannot be in the future"))
    for day, words in days:
        refused = client.post("/admin/certificates/issue", data={**data, "completed_on": day, "reason": "Old"})
        assert refused.status_code == 422 and words in refused.get_data(as_text=True), day
    assert db.scalar(count) == before
    ok = client.post("/admin/certificates/issue", data={**data, "reason": "Completed in the 2019 system"})
    assert ok.status_code == 302
    made = db.scalar(select(Certificate).where(Certificate.user_id == learner.id))
    assert made is not None and made.status == CertificateStatus.ACTIVE and made.hours == Decimal("2.5")
    assert made.completion_day == dt.date(2019, 6, 14)  # the record's day, not today's
    assert "Completed on</dt><dd>14 June 2019" in client.get(f"/verify/{made.code}").get_data(as_text=True)
    assert made.issue_reason == "Completed in the 2019 system"
    (entry,) = entries(db, "certificate.issue_manual")
    assert entry.subject_id == made.id and entry.actor_id == admin.id  # the audit log names the administrator
    # The holder's dashboard says why a certificate stands beside a course they have not worked through here.
    enrolled(db, learner)
    db.commit()
    browser = app.test_client()
    sign_in(browser, db, learner)
    dashboard = browser.get("/dashboard").get_data(as_text=True)
    assert made.number in dashboard and "issued this certificate to you directly" in dashboard


def test_console_actions_need_the_csrf_token(app, client, db, admin, csrf_on):
    c = holder(app, db, "Protected")
    db.commit()
    assert client.post(f"/admin/certificates/{c.id}/reissue").status_code == 400
    db.refresh(c)
    assert c.status == CertificateStatus.ACTIVE


def test_every_admin_page_names_the_others_and_which_one_is_open(app, client, db, admin):
    c = holder(app, db, "Linked Holder")
    sections = ["People", "Certificates", "Reports", "Accommodations", "Audit log", "Settings"]
    for path, current, state in [
        ("/admin/people", "People", "page"),
        (f"/admin/people/{c.user_id}", "People", "true"),
        ("/admin/certificates", "Certificates", "page"),
        (f"/admin/certificates/{c.id}", "Certificates", "true"),
        ("/admin/reports", "Reports", "page"),
        ("/admin/accommodations", "Accommodations", "page"),
        ("/admin/audit", "Audit log", "page"),
        ("/admin/settings", "Settings", "page"),
    ]:
        page = client.get(path).get_data(as_text=True)
        nav = page.split('<nav class="sub-nav" aria-label="Administration">', 1)[1].split("</nav>", 1)[0]
        assert [label for label in sections if f">{label}</a>" in nav] == sections, path
        assert nav.count("aria-current") == 1 and f'aria-current="{state}">{current}</a>' in nav, path


def test_a_certificate_and_its_holder_link_to_each_other(app, client, db, admin):
    c = holder(app, db, "Linked Holder")
    page = client.get(f"/admin/certificates/{c.id}").get_data(as_text=True)
    assert f'href="/admin/people/{c.user_id}">Linked Holder</a>' in page
    assert f'href="/verify/{c.code}"' in page
    record = client.get(f"/admin/people/{c.user_id}").get_data(as_text=True)
    assert f'href="/admin/certificates/{c.id}">{c.number}</a>' in record


def test_certificate_dates_are_the_certificates_days_with_its_zone_named(app, client, db, admin):
    c = holder(app, db, "Evening Finisher")
    # Issued at 05:30 UTC on 27 November: still the 26th where the holder was (Denver).
    c.time_zone, c.issued_at = "America/Denver", dt.datetime(2026, 11, 27, 5, 30, tzinfo=dt.UTC)
    db.commit()
    page = client.get(f"/admin/certificates/{c.id}").get_data(as_text=True)
    assert "<dt>Issued</dt><dd>26 November 2026 (America/Denver)</dd>" in page


def test_the_certificate_page_shows_the_claim_beside_the_time_measured(app, client, db, admin):
    from kaptrain.certificates.models import Attestation  # noqa: PLC0415

    c = holder(app, db, "Cy Claim")
    attestation = db.scalar(select(Attestation).where(Attestation.user_id == c.user_id))
    assert attestation is not None
    page = client.get(f"/admin/certificates/{c.id}").get_data(as_text=True)
    claimed = f"{attestation.hours_claimed.normalize()} hours claimed on"
    measured = f"active time the site had measured then: {attestation.active_seconds // 60} minutes"
    assert claimed in page and measured in page


def test_hours_read_the_same_on_every_admin_page_ten_included(app, client, db, admin):
    c = holder(app, db, "Ten Hours")
    c.max_hours = c.hours = Decimal("10.00")  # Decimal.normalize() would print this as 1E+1
    db.commit()
    pages = [
        client.get(f"/admin/certificates/{c.id}"),
        client.get("/admin/reports?date_from=2000-01-01"),
        client.get(f"/admin/people/{c.user_id}"),
    ]
    for page in pages:
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and "1E+1" not in text and ">10.0<" in text, page.request.path


def test_a_replacement_may_correct_the_hours_within_the_claim(app, client, db, admin):
    """The walk-through revoked a certificate over disputed hours and could not issue its replacement for fewer."""
    c = holder(app, db, "Disputed Hours")
    db.commit()
    revoke = {"reason": "other", "note": "The hours certified were disputed.", "confirm_revoke": "y"}
    assert client.post(f"/admin/certificates/{c.id}/revoke", data=revoke).status_code == 302
    page = client.get(f"/admin/certificates/{c.id}").get_data(as_text=True)
    assert "Hours to certify (optional)" in page
    for hours, words in (("99", "at most"), ("0", "more than 0"), ("2.1", "quarter-hour steps")):
        data = {"confirm_reissue": "y", "reason": "Hours agreed", "hours_reason": "Agreed", "hours": hours}
        refused = client.post(f"/admin/certificates/{c.id}/reissue", data=shown(db, c, data))
        assert refused.status_code == 422 and words in refused.get_data(as_text=True), hours
    # The walk-through: the re-issue's "what changed" became the CE record's reason for the hours. The hours now
    # need a reason of their own.
    data = {"reason": "Revoked in error", "hours": "1.5", "confirm_reissue": "y"}
    refused = client.post(f"/admin/certificates/{c.id}/reissue", data=shown(db, c, data))
    assert refused.status_code == 422 and 'id="hours_reason-error"' in refused.text
    assert "Say why the hours are changed." in refused.text
    assert db.scalar(select(func.count()).select_from(Certificate).where(Certificate.supersedes_id == c.id)) == 0
    data |= {"hours_reason": "Hours agreed with the learner"}
    assert client.post(f"/admin/certificates/{c.id}/reissue", data=shown(db, c, data)).status_code == 302
    db.expire_all()
    new = db.scalar(select(Certificate).where(Certificate.supersedes_id == c.id))
    assert new is not None and new.hours == Decimal("1.5") and new.status == CertificateStatus.ACTIVE
    (changed,) = entries(db, "certificate.hours_changed")
    assert changed.details["before"] == "3.50" and changed.details["after"] == "1.50"  # 3.5 claimed and certified
    assert changed.details["reason"] == "Hours agreed with the learner"
    assert changed.details["reissued_as"] == new.number  # logged on the old version, naming the new one
    page = client.get(f"/admin/certificates/{new.id}").text
    assert "fewer than claimed because: “Hours agreed with the learner”" in page and "Revoked in error”" not in page
    report = client.get("/admin/reports/completions.csv?date_from=2000-01-01").get_data(as_text=True)
    assert "Hours agreed with the learner" in report


def test_hours_lowered_then_raised_again_get_the_accreditors_hours_back(app, client, db, admin):
    """The second attack: re-issued at 1.5 hours, then at 3.5 again, the certificate kept '1.50' accredited hours."""
    c = holder(app, db, "Up And Down")
    approval = {"credit_type": "APA CE credits", "hours": "3.5", "statement": "Approved.", "provider_number": ""}
    c.designations = [approval]  # as a course with one accreditor's approval issued it (3.5 claimed and approved)
    course(db).credit_designations = [approval]
    db.commit()
    with app.app_context():  # issuing reads the app's settings
        lowered = services.reissue(db, c, actor_label="test", reason="Disputed", hours=Decimal("1.5"))
        assert lowered.designations[0]["hours"] == "1.5"
        raised = services.reissue(db, lowered, actor_label="test", reason="Resolved", hours=Decimal("3.5"))
    assert raised.hours == Decimal("3.5") and raised.designations[0]["hours"] == "3.5"
