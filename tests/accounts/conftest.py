"""Fixtures for the account-security tests: the app's mail going to a real SMTP server on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from flask import Flask

from tests.smtp_support import Inbox

_LINK = re.compile(r"http://127\.0\.0\.1:5000(/\S+)")


class Mailbox:
    """What the loopback SMTP server received, read the way a person reads their inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def to(self, address: str) -> list[EmailMessage]:
        """Every message delivered to this address, oldest first."""
        return [m for _from, rcpt, m in self.inbox.messages if address in rcpt]

    def last(self, address: str) -> EmailMessage:
        """The newest message to this address (fails when there is none)."""
        messages = self.to(address)
        assert messages, f"no mail to {address}; received: {[(r, m['Subject']) for _f, r, m in self.inbox.messages]}"
        return messages[-1]

    def count(self) -> int:
        """How many messages arrived in all."""
        return len(self.inbox.messages)


def body(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    return str(message.get_content())


def link_in(message: EmailMessage) -> str:
    """The path of the (one) site link in a message, e.g. "/password/reset/<token>"."""
    links = _LINK.findall(body(message))
    assert links, body(message)
    return str(links[0])


@pytest.fixture
def mailbox(app: Flask, smtp_server: tuple[Inbox, int]) -> Iterator[Mailbox]:
    """The session app sends its mail to a real SMTP server on loopback (aiosmtpd) for this test."""
    inbox, port = smtp_server
    keys = ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY")
    saved = {k: app.config[k] for k in keys}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
    try:
        yield Mailbox(inbox)
    finally:
        app.config.update(saved)


@pytest.fixture
def limited_app(extra_app: Callable[..., Flask]) -> Iterator[Callable[..., Flask]]:
    """Build an app with rate limits on; afterwards they are off again for the tests that follow."""

    def _make(**settings: object) -> Flask:
        return extra_app(RATELIMIT_ENABLED=True, **settings)

    yield _make
    # The limiter is one object shared by every app, and the last app built configures it.
    extra_app()
