"""The learner is emailed when the certificate is issued: over a real SMTP server on loopback."""

from __future__ import annotations

from decimal import Decimal

from kaptrain.certificates import services
from kaptrain.certificates.models import RevocationReason
from kaptrain.certificates.pdf import format_hours
from tests.factories import certified, complete_learning, enrolled, evaluation_answers, make_user, record


def test_issuing_a_certificate_emails_the_learner(app, db, inbox):
    with app.app_context():
        user = make_user(db, email="ana@example.org", full_name="Ana Ruiz")
        enrolled(db, user)
        certificate = certified(db, user)
        assert inbox.messages == []  # nothing is sent before the issuing transaction commits
        db.commit()
    [(_from, to, message)] = inbox.messages
    assert to == ["ana@example.org"]
    assert message["Subject"] == "kaptrain: your certificate for Demo Course for Tests"
    body = message.get_content()
    assert certificate.number in body and f"/verify/{certificate.code}" in body
    day = certificate.completion_day  # as the site writes a certificate's days, and its hours
    assert f"Completed: {day.day} {day:%B %Y}" in body and f"Hours: {format_hours(certificate.hours)}\r\n" in body


def test_revoking_a_certificate_tells_the_holder_and_the_dashboard_says_so(app, db, inbox, client, login):
    with app.app_context():
        user = make_user(db, email="rae@example.org", full_name="Rae Revoked")
        enrolled(db, user)
        certificate = certified(db, user)
        db.commit()
        inbox.messages.clear()  # the "issued" email
        services.revoke(db, certificate, RevocationReason.ISSUED_IN_ERROR, "internal: duplicate of 12", None, "t")
        assert inbox.messages == []  # nothing before the commit
        db.commit()
    [(_from, to, message)] = inbox.messages
    assert (
        to == ["rae@example.org"]
        and message["Subject"] == f"kaptrain: your certificate {certificate.number} was revoked"
    )
    body = message.get_content()
    assert RevocationReason.ISSUED_IN_ERROR.label in body and "internal" not in body  # the category, not the note
    day = certificate.local_day(certificate.revoked_at)
    assert f"was revoked on {day.day} {day:%B %Y}" in body  # the day as the site writes it, not 2026-11-27
    login(user)
    page = client.get("/dashboard").get_data(as_text=True)
    assert f"Your certificate {certificate.number} was revoked on" in page and "no longer valid" in page
    assert page.count(certificate.number) == 1 and "Earlier certificates" not in page  # said once, not listed again


def test_no_revocation_mail_goes_to_an_account_closed_at_the_persons_request(app, db, inbox):
    from kaptrain.accounts import services as accounts  # noqa: PLC0415

    with app.app_context():
        user = make_user(db, email="gone@example.org")
        enrolled(db, user)
        certificate = certified(db, user)
        accounts.close_account(db, user, None)
        db.commit()
        inbox.messages.clear()
        services.revoke(db, certificate, RevocationReason.ISSUED_IN_ERROR, "duplicate", None, "t")
        db.commit()
    assert inbox.messages == []


def test_closing_an_account_tells_the_address_it_had_and_keeps_no_name(app, db, inbox):
    from kaptrain.accounts import services as accounts  # noqa: PLC0415

    with app.app_context():
        user = make_user(db, email="leaving@example.org", full_name="Lee Leaving")
        db.commit()
        accounts.close_account(db, user, None)
        assert inbox.messages == []  # nothing before the commit
        db.commit()
    [(_from, to, message)] = inbox.messages
    assert to == ["leaving@example.org"] and message["Subject"] == "kaptrain: your account was closed"
    body = message.get_content()
    assert "closed, as you asked" in body and "at least six years" in body and "Lee Leaving" not in body


def test_the_email_says_when_fewer_hours_were_certified_than_claimed_and_what_a_replacement_replaces(app, db, inbox):
    with app.app_context():
        user = make_user(db, email="kim@example.org", full_name="Kim Reviewed")
        enrolled(db, user)
        done = complete_learning(db, user)
        done.course.certificate_approval = "manual"
        services.submit_evaluation(db, done, evaluation_answers(done.course))
        waiting = services.attest(db, record(db, user), user, Decimal("3.5"))
        services.approve(db, waiting, actor_label="test", hours=Decimal("2"), reason="Read quickly")
        db.commit()
    body = " ".join(inbox.messages[-1][2].get_content().split())
    assert "Hours: 2.0 (you claimed 3.5; the provider reviewed the claim" in body
    with app.app_context():
        services.revoke(db, waiting, RevocationReason.OTHER, "wrong hours", actor_label="test")
        replacement = services.reissue(db, waiting, actor_label="test", reason="revoked in error")
        db.commit()
    body = " ".join(inbox.messages[-1][2].get_content().split())
    assert f"This is a corrected version: it replaces certificate {waiting.number}, which is no longer the one" in body
    assert "Your completion was not withdrawn." in body and "hours certified changed" not in body
    assert inbox.messages[-1][2]["Subject"].startswith("kaptrain: your corrected certificate for ")
    assert replacement.number in body and "you claimed" in body  # the replacement keeps the reviewed hours
    with app.app_context():  # the second walk-through: hours changed, and the email said they were not
        more = services.reissue(db, replacement, actor_label="test", reason="agreed", hours=Decimal("3"))
        db.commit()
    body = " ".join(inbox.messages[-1][2].get_content().split())
    assert more.number in body and "the hours certified changed from 2.0 to 3.0" in body
