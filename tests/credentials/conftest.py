"""Fixtures for the credential tests: a key directory per test, credential data, and a network that fails the test."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kaptrain.credentials import CredentialData, Credit, Keyring, build_credential, sign

ISSUED_AT = dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
STATUS_LIST_URL = "https://cme.example.org/credentials/status/1"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A key directory of its own (created on first use, like the app's)."""
    return Keyring(tmp_path / "keys")


@pytest.fixture
def make_data(keyring: Keyring) -> Callable[..., CredentialData]:
    """Build CredentialData signed-for by the keyring's current key, with any field overridden."""

    def make(**overrides: Any) -> CredentialData:
        data = CredentialData(
            credential_id="https://cme.example.org/verify/KAP-2026-000042",
            issuer_id=keyring.current().key_id,
            provider_name="Kaptrain Continuing Education",
            provider_url="https://cme.example.org",
            # Accents, a tab, quotes and a newline: what RDF canonicalization must escape the same way everywhere.
            holder_name="José Müller-Ñandú",
            achievement_id="https://cme.example.org/courses/kap-foundations",
            course_title="Ketamine-assisted psychotherapy: foundations",
            course_description='Screening, dosing and monitoring.\nIncludes "set and setting"\tand integration.',
            criteria="Complete every module, pass each quiz and the final assessment with 80 % or more.",
            hours=Decimal("3.50"),
            max_hours=Decimal("4.0"),
            issued_at=ISSUED_AT,
            status_list_url=STATUS_LIST_URL,
            status_list_index=42,
            credits=(Credit("AMA PRA Category 1 Credit™", Decimal("3.5")), ("ANCC contact hours", Decimal("1.25"))),
            recipient_email="Jose.Muller@example.org",
            recipient_salt="c2FsdHNhbHQ",
        )
        return replace(data, **overrides)

    return make


@pytest.fixture
def signed(keyring: Keyring, make_data: Callable[..., CredentialData]) -> dict[str, Any]:
    """A credential signed by the keyring's current key."""
    return sign(build_credential(make_data()), keyring.current(), created=ISSUED_AT)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve a name or open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
