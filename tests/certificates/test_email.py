"""The learner is emailed when the certificate is issued: over a real SMTP server on loopback."""

from __future__ import annotations

from tests.factories import certified, enrolled, make_user


def test_issuing_a_certificate_emails_the_learner(app, db, smtp_server):
    inbox, port = smtp_server
    saved = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
    try:
        with app.app_context():
            user = make_user(db, email="ana@example.org", full_name="Ana Ruiz")
            enrolled(db, user)
            certificate = certified(db, user)
            assert inbox.messages == []  # nothing is sent before the issuing transaction commits
            db.commit()
    finally:
        app.config.update(saved)
    [(_from, to, message)] = inbox.messages
    assert to == ["ana@example.org"]
    assert message["Subject"] == "Your certificate for Demo Course for Tests"
    body = message.get_content()
    assert certificate.number in body and f"/verify/{certificate.code}" in body
