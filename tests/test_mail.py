"""kaptrain.mail: delivery to a real SMTP server on loopback, the log fallback, and header-injection refusal."""

from __future__ import annotations

import logging

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from kaptrain import mail
from kaptrain.config import load_config
from tests.smtp_support import Inbox, start_smtp

SENDER = "Équipe kaptrain — Zoë <no-reply@kaptrain.test>"
SMTP_PASSWORD = "s3cret-smtp-password"  # smtplib sends AUTH credentials as ASCII
BODY = "Bonjour Zoë,\n\nVotre certificat « Thérapie assistée par kétamine » est prêt. 証明書 ✓\n"


def test_send_delivers_over_smtp_with_unicode_sender_and_body(extra_app, smtp_server):
    inbox, port = smtp_server
    app = extra_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none", MAIL_FROM=SENDER)
    with app.app_context():
        mail.send("Zoë Learner <zoe@example.com>", "Votre certificat est prêt ✓", BODY, html="<p>Bonjour Zoë</p>")

    assert len(inbox.messages) == 1
    mail_from, rcpt_tos, message = inbox.messages[0]
    assert mail_from == "no-reply@kaptrain.test"
    assert rcpt_tos == ["zoe@example.com"]
    assert message["From"].addresses[0].display_name == "Équipe kaptrain — Zoë"
    assert message["From"].addresses[0].addr_spec == "no-reply@kaptrain.test"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["Subject"] == "Votre certificat est prêt ✓"
    assert message["Message-ID"].endswith("@kaptrain.test>")
    assert message.get_body(("plain",)).get_content() == BODY
    assert "Bonjour Zoë" in message.get_body(("html",)).get_content()


def test_send_logs_in_to_the_server_and_never_logs_the_password(extra_app, caplog):
    accepted: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        assert isinstance(auth_data, LoginPassword)
        accepted.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == SMTP_PASSWORD.encode())

    inbox = Inbox()
    controller = start_smtp(inbox, authenticator=authenticator, auth_require_tls=False)
    try:
        app = extra_app(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=controller.port,
            SMTP_SECURITY="none",
            SMTP_USERNAME="mailer",
            SMTP_PASSWORD=SMTP_PASSWORD,
        )
        with caplog.at_level(logging.DEBUG), app.app_context():
            mail.send("zoe@example.com", "Hello", "Body")
    finally:
        controller.stop()
    assert accepted == [(b"mailer", SMTP_PASSWORD.encode())]
    assert len(inbox.messages) == 1
    assert SMTP_PASSWORD not in caplog.text


def test_without_smtp_host_the_message_is_logged_and_not_sent(extra_app, smtp_server, caplog, monkeypatch):
    inbox, port = smtp_server

    def no_smtp(*args: object, **kwargs: object) -> None:
        raise AssertionError("no SMTP connection may be opened without SMTP_HOST")

    monkeypatch.setattr(mail.smtplib, "SMTP", no_smtp)
    monkeypatch.setattr(mail.smtplib, "SMTP_SSL", no_smtp)
    app = extra_app(SMTP_PORT=port, SMTP_SECURITY="none")
    assert app.config["SMTP_HOST"] is None
    with caplog.at_level(logging.INFO, logger="kaptrain.mail"), app.app_context():
        mail.send("zoe@example.com", "Votre certificat est prêt", BODY)

    assert inbox.messages == []
    [record] = [r for r in caplog.records if r.name == "kaptrain.mail"]
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    assert "To: zoe@example.com" in logged
    assert "Subject: Votre certificat est prêt" in logged
    assert BODY in logged


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("zoe@example.com\r\nBcc: victim@example.com", "Hello"),
        ("zoe@example.com\nBcc: victim@example.com", "Hello"),
        ("zoe@example.com", "Hello\r\nBcc: victim@example.com"),
        ("zoe@example.com", "Hello\nX-Injected: yes"),
        ("zoe@example.com", "Hello\rX-Injected: yes"),
        ("zoe@example.com", "Hello\u2028X-Injected: yes"),
        ("zoe@example.com, victim@example.com", "Hello"),
        ("not an address", "Hello"),
    ],
)
def test_header_injection_and_several_recipients_are_refused(extra_app, smtp_server, to, subject):
    inbox, port = smtp_server
    app = extra_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
    with app.app_context(), pytest.raises(ValueError):
        mail.send(to, subject, "Body")
    assert inbox.messages == []


def test_unknown_security_mode_is_refused_before_connecting(extra_app):
    app = extra_app(SMTP_HOST="127.0.0.1", SMTP_PORT=1)
    app.config["SMTP_SECURITY"] = "tls-please"  # past load_config, which refuses it at start (tests/test_platform.py)
    with app.app_context(), pytest.raises(ValueError, match="SMTP_SECURITY"):
        mail.send("zoe@example.com", "Hello", "Body")


def test_smtp_settings_are_read_from_the_environment():
    cfg = load_config(
        environ={
            "KAPTRAIN_SMTP_HOST": "smtp.example.com",
            "KAPTRAIN_SMTP_PORT": "465",
            "KAPTRAIN_SMTP_TIMEOUT": "5",
            "KAPTRAIN_SMTP_SECURITY": "ssl",
        }
    )
    assert (cfg["SMTP_HOST"], cfg["SMTP_PORT"], cfg["SMTP_TIMEOUT"], cfg["SMTP_SECURITY"]) == (
        "smtp.example.com",
        465,
        5,
        "ssl",
    )
    defaults = load_config(environ={})
    assert (defaults["SMTP_HOST"], defaults["SMTP_PORT"], defaults["SMTP_SECURITY"]) == (None, 587, "starttls")
