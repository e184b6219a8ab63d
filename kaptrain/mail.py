"""Outgoing mail: `send(...)` delivers over SMTP when KAPTRAIN_SMTP_HOST is set, otherwise writes to the log."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from typing import Any

from flask import current_app

from kaptrain.config import SECURITY_MODES

# Mail lines are INFO; without a level of its own this logger would inherit the root's WARNING and
# `make run` (no mail server) would drop the very messages it stands in for. Logging config can override it.
logging.getLogger(__name__).setLevel(logging.INFO)


def send(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one message to one recipient: over SMTP when SMTP_HOST is set, otherwise to the log."""
    config = current_app.config
    message = _message(config["MAIL_FROM"], to, subject, text, html)
    # "kaptrain.mail" reached through app.logger, so that Flask attaches its stderr handler when
    # nothing else is configured (as under `make run`).
    log = current_app.logger.getChild("mail")
    if config["SMTP_HOST"]:
        _deliver(message, config)
        log.info("Mail sent to %s: %s", to, subject)
    else:
        log.info(
            "Mail not sent (KAPTRAIN_SMTP_HOST is not set)\nFrom: %s\nTo: %s\nSubject: %s\n\n%s",
            config["MAIL_FROM"],
            to,
            subject,
            text,
        )


def _check_header(name: str, value: str) -> None:
    """Raise ValueError when a header value holds a line break."""
    # A line break in a header value would let the caller's data start new headers (Bcc:, ...).
    if "\r" in value or "\n" in value or len(value.splitlines()) > 1:
        raise ValueError(f"{name} must not contain line breaks")


def _message(sender: str, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
    """Build the message, refusing header injection and anything but a single recipient address."""
    for name, value in (("From", sender), ("To", to), ("Subject", subject)):
        _check_header(name, value)
    recipients = getaddresses([to])
    if len(recipients) != 1 or "@" not in recipients[0][1]:
        raise ValueError(f"To must be exactly one email address, not {to!r}")
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain)  # an explicit domain avoids a slow getfqdn() lookup
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _deliver(message: EmailMessage, config: Mapping[str, Any]) -> None:
    """Hand the message to the configured SMTP server (TLS as SMTP_SECURITY says, login when configured)."""
    security = config["SMTP_SECURITY"]
    if security not in SECURITY_MODES:
        raise ValueError(f"KAPTRAIN_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}")
    host, port, timeout = config["SMTP_HOST"], int(config["SMTP_PORT"]), float(config["SMTP_TIMEOUT"])
    smtp: smtplib.SMTP
    if security == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if security == "starttls":
            # starttls() raises when the server does not offer it: never fall back to plain text.
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
