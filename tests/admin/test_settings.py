"""Settings: the console's values win over the environment and course files, are audited, and are used by the
next certificate; a content import never undoes a console approval mode."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.admin import settings
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import CertificateStatus
from tests.certificates.test_pdf import LETTER_LANDSCAPE, page_size_points, pdf_text
from tests.factories import certified, course, enrolled, make_user

FORM = {
    "provider_name": "",
    "accreditation_statement": "",
    "signatory_name": "",
    "signatory_title": "",
    "certificate_page_size": "",
    "approval__demo_course": "",
}


@pytest.fixture
def admin(db, login):  # type: ignore[no-untyped-def]
    """A logged-in administrator."""
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin")
    db.commit()
    return login(user)


def test_the_next_certificate_uses_the_console_settings(app, client, db, admin, tmp_path):
    before = client.get("/admin/settings").text  # the course file's signatory, with a word on a role for a name
    assert "Certificates sign with the signatory named in each course file" in before
    response = client.post(
        "/admin/settings",
        data=FORM
        | {
            "provider_name": "Northwind CE",
            "accreditation_statement": "Northwind CE is approved by the Board to sponsor continuing education.",
            "signatory_name": "Dr Jo Park",
            "signatory_title": "Director of Education",
            "certificate_page_size": "Letter",
        },
    )
    assert response.status_code == 302
    page = client.get("/admin/settings")
    assert 'value="Dr Jo Park"' in page.text and "Certificates sign with the signatory named" not in page.text
    with app.app_context():
        learner = make_user(db)
        enrolled(db, learner)
        certificate = certified(db, learner)
        pdf = certificates.stored_pdf(db, certificate)
    assert certificate.provider == "Northwind CE"
    assert certificate.signatory_name == "Dr Jo Park" and certificate.signatory_title == "Director of Education"
    assert certificate.accreditation_statement is not None and "Northwind" in certificate.accreditation_statement
    assert page_size_points(pdf, tmp_path) == pytest.approx(LETTER_LANDSCAPE, abs=0.5)


def test_console_wins_over_environment_which_wins_over_the_course_file(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "CERTIFICATE_SIGNATORY_NAME", "Env Signer")
    with app.app_context():
        demo = course(db)
        assert settings.certificate_settings(db, demo).signatory_name == "Env Signer"
        assert settings.certificate_settings(db, demo).signatory_title == "Director of Tests"  # course.yaml
        settings.set_settings(db, {"signatory_name": "Console Signer"}, None)
        assert settings.certificate_settings(db, demo).signatory_name == "Console Signer"
        settings.set_settings(db, {"signatory_name": None}, None)  # cleared: the default applies again
        assert settings.certificate_settings(db, demo).signatory_name == "Env Signer"
    before_after = [
        (e.details["before"], e.details["after"])
        for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "settings.change").order_by(AuditEntry.id))
    ]
    assert before_after == [(None, "Console Signer"), ("Console Signer", None)]


def test_import_never_undoes_a_console_approval_mode(app, client, db, admin, runner):
    assert client.post("/admin/settings", data=FORM | {"approval__demo_course": "manual"}).status_code == 302
    result = runner.invoke(args=["content", "import"])
    assert result.exit_code == 0, result.output
    assert "Note: demo-course" in result.output and "'manual'" in result.output
    db.expire_all()
    assert settings.get_setting(db, settings.approval_key("demo-course")) == "manual"
    assert course(db).certificate_approval == "automatic"  # the course.yaml default, kept apart
    with app.app_context():
        learner = make_user(db)
        enrolled(db, learner)
        assert certified(db, learner).status == CertificateStatus.PENDING


def test_import_prints_no_note_without_an_override(runner):
    result = runner.invoke(args=["content", "import"])
    assert result.exit_code == 0 and "Note:" not in result.output


@pytest.mark.parametrize(
    ("field", "value"),
    [("certificate_page_size", "Legal"), ("approval__demo_course", "sometimes"), ("signatory_name", "x" * 201)],
)
def test_bad_values_are_refused_and_change_nothing(client, db, admin, field, value):
    page = client.post("/admin/settings", data=FORM | {field: value})
    assert page.status_code == 422 and "Please correct the following" in page.text
    assert settings.all_settings(db) == {}


@pytest.mark.parametrize(("key", "value"), [("certificate_page_size", "B5"), ("colour", "red"), ("approval:x", "y")])
def test_the_service_validates_too(db, key, value):
    with pytest.raises(settings.SettingsError):
        settings.set_settings(db, {key: value}, None)


def test_hours_are_called_ce_hours_only_once_an_accreditation_statement_is_set(app, client, db, admin):
    def says(path: str) -> tuple[bool, bool]:
        page = client.get(path).text
        return "CE hours" in page, bool(re.search(r"\b(CE )?[Hh]ours\b", page.replace("CE hours", "")))

    demo = course(db)
    for path in ("/", "/courses", f"/courses/{demo.slug}"):
        assert says(path) == (False, True), path  # a certificate of completion: hours, not CE hours
    assert "no accredited CE credit" in client.get(f"/courses/{demo.slug}").text
    statement = "Northwind CE is approved by the Board to sponsor continuing education."
    assert client.post("/admin/settings", data=FORM | {"accreditation_statement": statement}).status_code == 302
    for path in ("/", "/courses", f"/courses/{demo.slug}"):
        assert says(path)[0], path


def test_the_settings_page_warns_when_learners_have_no_address_to_write_to(app, client, db, admin, monkeypatch):
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "No support address is set" in page and "KAPTRAIN_SUPPORT_EMAIL" in page
    monkeypatch.setitem(app.config, "SUPPORT_EMAIL", "help@provider.example")
    assert "No support address is set" not in client.get("/admin/settings").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/settings", "/admin/certificates"])
def test_admins_are_warned_while_the_public_address_is_this_computers_own(app, client, db, admin, monkeypatch, path):
    monkeypatch.setitem(app.config, "BASE_URL", "http://127.0.0.1:5000")
    page = client.get(path).get_data(as_text=True)
    assert "only this computer can reach" in page and "KAPTRAIN_BASE_URL" in page
    monkeypatch.setitem(app.config, "BASE_URL", "https://ce.provider.example")
    assert "only this computer can reach" not in client.get(path).get_data(as_text=True)


def test_admins_approving_certificates_are_warned_while_no_person_signs_them(app, client, db, admin, monkeypatch):
    """A walk-through: the default certificate showed a role over an empty signature line, and only the Settings
    page said so, not the pages where certificates are approved."""
    monkeypatch.setitem(app.config, "CERTIFICATE_SIGNATORY_NAME", None)
    learner = make_user(db)
    enrolled(db, learner)
    db.flush()
    with app.app_context():
        waiting = certificates.issue_without_course(db, learner, course(db), "Record from the old system", "test")
        waiting.status = CertificateStatus.PENDING
        db.commit()
    for path in ("/admin/certificates", f"/admin/certificates/{waiting.id}"):
        page = client.get(path).text
        assert "enter the name of the person who signs" in page and "empty signature line" in page, path
    client.post("/admin/settings", data={**FORM, "signatory_name": "Dr Jo Park"})
    for path in ("/admin/certificates", f"/admin/certificates/{waiting.id}"):
        assert "empty signature line" not in client.get(path).text, path


def test_a_claim_waiting_when_a_signatory_is_named_is_signed_by_them(app, client, db, admin, monkeypatch):
    """A walk-through named the signatory in Settings, as the warning asked, then approved the waiting claims: they
    still printed the course file's role, fixed when the learner attested. Approval reads the settings again."""
    monkeypatch.setitem(app.config, "CERTIFICATE_SIGNATORY_NAME", None)
    client.post("/admin/settings", data={**FORM, "approval__demo_course": "manual"})
    with app.app_context():
        learner = make_user(db)
        enrolled(db, learner)
        waiting = certified(db, learner)
        db.commit()
    assert waiting.status == CertificateStatus.PENDING and waiting.signatory_name != "Dr Jo Park"
    client.post("/admin/settings", data={**FORM, "approval__demo_course": "manual", "signatory_name": "Dr Jo Park"})
    with app.app_context():
        certificates.approve(db, waiting, actor_label="test")
        db.commit()
    assert waiting.status == CertificateStatus.ACTIVE and waiting.signatory_name == "Dr Jo Park"


def test_a_re_issue_keeps_the_accreditation_its_completion_was_issued_with(app, client, db, admin, tmp_path):
    """A statement set in Settings after a completion does not accredit it when its certificate is re-issued (a
    name corrected, say), and one withdrawn since does not take the accreditation away."""
    with app.app_context():
        learner = make_user(db)
        enrolled(db, learner)
        plain = certified(db, learner)
    assert plain.accreditation_statement in (None, "")
    statement = "Northwind CE is approved by the Board to sponsor continuing education."
    assert client.post("/admin/settings", data=FORM | {"accreditation_statement": statement}).status_code == 302
    with app.app_context():
        still_plain = certificates.reissue(db, plain, actor_label="test", reason="Name corrected")
        printed = " ".join(pdf_text(certificates.stored_pdf(db, still_plain) or b"", tmp_path).split())
        assert still_plain.accreditation_statement == plain.accreditation_statement
        assert "Northwind CE is approved" not in printed

        other = make_user(db)
        enrolled(db, other)
        accredited = certified(db, other)  # issued while the statement is set
    assert accredited.accreditation_statement == statement
    assert client.post("/admin/settings", data=FORM).status_code == 302  # withdrawn again
    with app.app_context():
        again = certificates.reissue(db, accredited, actor_label="test", reason="Licence corrected")
        printed = " ".join(pdf_text(certificates.stored_pdf(db, again) or b"", tmp_path).split())
    assert again.accreditation_statement == statement and "Northwind CE is approved" in printed
