"""A certificate as an Open Badges 3.0 OpenBadgeCredential (W3C VC Data Model 2.0), built from plain values and signed.

Pure functions over dicts and keys: no Flask, no database. The certificate service gathers a CredentialData,
calls build_credential, then sign with Keyring.current(); verify (re-exported here) checks one offline."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kaptrain.credentials.keys import SigningKey
from kaptrain.credentials.loader import OB_V3_CONTEXT, VC_V2_CONTEXT, make_loader
from kaptrain.credentials.proof import add_proof, xsd_datetime
from kaptrain.credentials.verification import Reason, StatusLookup, StatusUnavailable, Verdict, verify

__all__ = [
    "CREDENTIAL_CONTEXT",
    "CredentialData",
    "Credit",
    "Reason",
    "StatusLookup",
    "StatusUnavailable",
    "Verdict",
    "build_credential",
    "email_identity_hash",
    "issuer_id_of",
    "sign",
    "verify",
]

CREDENTIAL_CONTEXT = [VC_V2_CONTEXT, OB_V3_CONTEXT]
# Open Badges' ResultType vocabulary is extensible with "ext:" terms; none of its own means "credit hours".
CREDIT_RESULT_TYPE = "ext:CreditHours"


@dataclass(frozen=True)
class Credit:
    """Credit of one type that the course carries, e.g. ("AMA PRA Category 1 Credit", 2.5)."""

    credit_type: str
    hours: Decimal


@dataclass(frozen=True)
class CredentialData:
    """Everything a certificate's credential states, already decided by the certificate service."""

    credential_id: str  # the certificate's verification URL (preferred: it resolves) or a urn:uuid
    issuer_id: str  # the did:key of the key that will sign (SigningKey.key_id)
    provider_name: str
    provider_url: str
    holder_name: str  # as issued; stays in clear text, the one thing a reader must see
    achievement_id: str  # a stable URI for the course as an achievement, the same on every certificate of it
    course_title: str
    course_description: str
    criteria: str  # how the course is completed, in words
    hours: Decimal  # CE hours earned
    max_hours: Decimal  # CE hours the course offers
    issued_at: dt.datetime  # becomes validFrom (keep the original date when re-rendering)
    status_list_url: str
    status_list_index: int
    credits: Sequence[Credit | tuple[str, Decimal]] = ()
    expires_at: dt.datetime | None = None
    recipient_email: str | None = None  # only its salted hash is written
    recipient_salt: str | None = None  # required with recipient_email; store it to re-render the same credential
    achievement_type: str = "Course"


def _number(value: Decimal | float | int) -> int | float:
    """A JSON number that reads the same in Python and JavaScript: integral values as integers."""
    exact = Decimal(str(value))
    return int(exact) if exact == exact.to_integral_value() else float(exact)


def _hours_text(value: Decimal) -> str:
    return f"{Decimal(str(value)).normalize():f}"


def email_identity_hash(email: str, salt: str) -> str:
    """The Open Badges IdentityHash of an email address: 'sha256$' + hex SHA-256 of the lower-cased address + salt."""
    return "sha256$" + hashlib.sha256((email.strip().lower() + salt).encode("utf-8")).hexdigest()


def _identifiers(data: CredentialData) -> list[dict[str, Any]]:
    identifiers: list[dict[str, Any]] = [
        {"type": "IdentityObject", "identityType": "name", "hashed": False, "identityHash": data.holder_name}
    ]
    if data.recipient_email:
        if not data.recipient_salt:
            raise ValueError("a recipient email is only written hashed, and hashing needs a salt")
        identifiers.append(
            {
                "type": "IdentityObject",
                "identityType": "emailAddress",
                "hashed": True,
                "identityHash": email_identity_hash(data.recipient_email, data.recipient_salt),
                "salt": data.recipient_salt,
            }
        )
    return identifiers


def _credits(data: CredentialData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each credit type as a ResultDescription of the achievement and the matching Result of the subject."""
    descriptions: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for number, item in enumerate(data.credits, start=1):
        credit = item if isinstance(item, Credit) else Credit(item[0], item[1])
        description_id = f"{data.achievement_id}#credit-{number}"
        descriptions.append(
            {
                "id": description_id,
                "type": ["ResultDescription"],
                "name": credit.credit_type,
                "resultType": CREDIT_RESULT_TYPE,
                "valueMax": _hours_text(credit.hours),
            }
        )
        results.append({"type": ["Result"], "resultDescription": description_id, "value": _hours_text(credit.hours)})
    return descriptions, results


def build_credential(data: CredentialData) -> dict[str, Any]:
    """The unsigned OpenBadgeCredential for one certificate."""
    descriptions, results = _credits(data)
    achievement: dict[str, Any] = {
        "id": data.achievement_id,
        "type": ["Achievement"],
        "achievementType": data.achievement_type,
        "name": data.course_title,
        "description": data.course_description,
        "criteria": {"narrative": data.criteria},
        "creditsAvailable": _number(data.max_hours),
    }
    if descriptions:
        achievement["resultDescription"] = descriptions
    subject: dict[str, Any] = {
        "type": ["AchievementSubject"],
        "name": data.holder_name,
        "identifier": _identifiers(data),
        "achievement": achievement,
        "creditsEarned": _number(data.hours),
    }
    if results:
        subject["result"] = results
    credential: dict[str, Any] = {
        "@context": list(CREDENTIAL_CONTEXT),
        "id": data.credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": data.issuer_id, "type": ["Profile"], "name": data.provider_name, "url": data.provider_url},
        "validFrom": xsd_datetime(data.issued_at),
        "awardedDate": xsd_datetime(data.issued_at),
        "name": data.course_title,
        "credentialSubject": subject,
        "credentialStatus": {
            "id": f"{data.status_list_url}#{data.status_list_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(data.status_list_index),
            "statusListCredential": data.status_list_url,
        },
    }
    if data.expires_at is not None:
        credential["validUntil"] = xsd_datetime(data.expires_at)
    return credential


def issuer_id_of(credential: Mapping[str, Any]) -> str | None:
    """The issuer's id, whether the issuer is written as a string or as a Profile object."""
    issuer = credential.get("issuer")
    if isinstance(issuer, Mapping):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


def sign(credential: Mapping[str, Any], key: SigningKey, created: dt.datetime | None = None) -> dict[str, Any]:
    """A copy of the credential with an eddsa-rdfc-2022 Data Integrity proof by this key (replacing any proof)."""
    if issuer_id_of(credential) != key.key_id:
        raise ValueError(f"the credential's issuer is {issuer_id_of(credential)!r}, but the key is {key.key_id}")
    moment = created or dt.datetime.now(dt.UTC)
    return add_proof(credential, key.private_key, key.verification_method, moment, make_loader())
