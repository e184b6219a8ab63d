"""Each certificate as a signed Open Badges 3.0 credential, the revocation status lists, and checking uploads.

The cryptography lives in kaptrain.credentials (pure functions); this module feeds it a certificate's copied
fields and the site's keyring, keeps the status lists in the database, and reads credentials out of PDFs."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask import current_app
from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PyPdfError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain.certificates.models import Certificate, CertificateStatus, StatusList
from kaptrain.credentials import CredentialData, Credit, Keyring, Verdict, build_credential, sign, verify
from kaptrain.credentials import status_list as bitstring
from kaptrain.credentials.verification import Reason, StatusLookup, StatusUnavailable
from kaptrain.db import insert_ignoring_conflict, utcnow

ATTACHMENT_NAME = "credential.json"
LIST_SIZE = bitstring.DEFAULT_SIZE
MAX_UPLOAD = 2 * 1024 * 1024
# A credential this site signs is a few kilobytes. A bigger one is refused before it is parsed, and a PDF's
# attachment is decompressed no further than this (a small compressed stream can inflate to gigabytes).
MAX_CREDENTIAL = 64 * 1024


def keyring() -> Keyring:
    """The site's signing keys, kept outside the database (KAPTRAIN_CREDENTIAL_KEY_DIR)."""
    return Keyring(current_app.config["CREDENTIAL_KEY_DIR"])


def _base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/")


def site_bases() -> list[str]:
    """The site's public address and those it had before (KAPTRAIN_PREVIOUS_BASE_URLS), without a final slash:
    a credential issued under an earlier one names it in its id and its status list."""
    earlier = [str(b).rstrip("/") for b in current_app.config.get("PREVIOUS_BASE_URLS") or [] if str(b).strip()]
    return list(dict.fromkeys([_base(), *earlier]))


def status_position(certificate: Certificate) -> tuple[int, int]:
    """Which status list (1, 2, ...) holds the certificate's bit, and where: its slot, never reused."""
    if certificate.status_slot is None:
        raise RuntimeError(f"{certificate!r} has no status slot yet: assign_status_slot gives it one")
    return certificate.status_slot // LIST_SIZE + 1, certificate.status_slot % LIST_SIZE


def assign_status_slot(session: Session, certificate: Certificate) -> None:
    """Give the certificate a free slot at random, in the first list less than half full (so that a random pick
    rarely meets a taken one), unless it has one. Random, so that a bit's position says nothing about the
    certificate's number or when it was issued; the unique index settles two issuances that pick the same."""
    if certificate.status_slot is not None:
        return
    taken = int(session.scalar(select(func.count()).where(Certificate.status_slot.is_not(None))) or 0)
    first = (taken // (LIST_SIZE // 2)) * LIST_SIZE
    for _ in range(64):
        slot = first + secrets.randbelow(LIST_SIZE)
        try:
            with session.begin_nested():
                certificate.status_slot = slot
                session.flush()
        except IntegrityError:
            certificate.status_slot = None
            continue
        return
    raise RuntimeError("No free status-list slot found in 64 tries")


def status_list_url(number: int) -> str:
    """The stable address of a status list credential."""
    return f"{_base()}/credentials/status/{number}"


def credential_for(certificate: Certificate, verification_url: str) -> dict[str, Any]:
    """Build and sign the certificate's credential from its own copied fields, with the current key."""
    key = keyring().current()
    number, index = status_position(certificate)
    accredited = certificate.accreditation_statement is not None
    course = certificate.course
    data = CredentialData(
        credential_id=verification_url,
        issuer_id=key.key_id,
        provider_name=certificate.provider,
        provider_url=_base(),
        holder_name=certificate.holder_name,
        achievement_id=f"{_base()}/courses/{course.slug}",
        course_title=certificate.course_title,
        course_description=course.description.strip(),
        criteria=(
            "Pass every module quiz and the final assessment, submit the course evaluation and attest to having "
            "completed the course; hours are claimed by the learner up to the course's maximum."
        ),
        hours=certificate.hours,
        max_hours=certificate.max_hours,
        issued_at=certificate.issued_at or utcnow(),
        status_list_url=status_list_url(number),
        status_list_index=index,
        credits=[Credit(d["credit_type"], Decimal(str(d["hours"]))) for d in certificate.designations]
        if accredited
        else (),
        expires_at=certificate.expires_at,
    )
    return sign(build_credential(data), key)


def refresh_status_list(session: Session, number: int) -> StatusList:
    """Bring a status list up to date with the revoked and superseded certificates; re-signed only when a bit changed.

    The row is created if missing and locked before the revoked ids are read, so concurrent issues and
    revocations queue on it (PostgreSQL) instead of clashing on the insert or losing a bit."""
    insert_ignoring_conflict(session, StatusList, number=number, encoded="", credential={}, updated_at=utcnow())
    row = session.scalar(
        select(StatusList)
        .where(StatusList.number == number)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # inserted above when missing
    low, high = (number - 1) * LIST_SIZE, number * LIST_SIZE
    # Revoked certificates and superseded versions: a re-issue's old file, under its old name, say, must not still
    # check as in force with any verifier that reads the list (every version older than a revoked or superseded one
    # is itself superseded or revoked).
    withdrawn = (CertificateStatus.REVOKED, CertificateStatus.SUPERSEDED)
    revoked = session.scalars(
        select(Certificate.status_slot).where(
            Certificate.status.in_(withdrawn), Certificate.status_slot >= low, Certificate.status_slot < high
        )
    )
    encoded = bitstring.encode({i % LIST_SIZE for i in revoked if i is not None}, LIST_SIZE)
    if row.encoded == encoded:
        return row  # unchanged: keep serving the signed list as it is
    key = keyring().current()
    now = utcnow()
    credential = sign(bitstring.status_list_credential(status_list_url(number), key.key_id, encoded, now), key)
    row.encoded, row.credential, row.updated_at = encoded, credential, now
    session.flush()
    return row


def signed_status_list(session: Session, number: int) -> dict[str, Any] | None:
    """The signed status list credential to serve (made when its first certificate was issued), if any."""
    row = session.get(StatusList, number) if number >= 1 else None
    return row.credential if row is not None else None


def local_status_lookup(session: Session) -> StatusLookup:
    """A status lookup that reads this site's own lists from the database (no network), each found under the
    site's address and any it had before: the list a credential names is the same list whichever address it was
    issued under, and the list itself was signed under the address of its last change."""
    lists: dict[str, Mapping[str, Any]] = {}
    same: dict[str, frozenset[str]] = {}
    for row in session.scalars(select(StatusList)):
        names = frozenset(f"{base}/credentials/status/{row.number}" for base in site_bases())
        for url in names:
            lists[url], same[url] = row.credential, names
    return bitstring.make_lookup(lists, keyring().public_history(), same_list=same)


def is_pdf(data: bytes) -> bool:
    """Whether an uploaded file is a PDF (else it is read as the credential's JSON)."""
    return data.lstrip()[:5] == b"%PDF-"


def extract_credential(data: bytes) -> dict[str, Any]:
    """The credential in an uploaded file: a certificate PDF (its attachment) or the JSON itself.

    Raises ValueError with a sentence a person understands."""
    if len(data) > MAX_UPLOAD:
        raise ValueError("The file is larger than any certificate (2 MB at most).")
    if is_pdf(data):
        data = _attachment(data)
    if len(data) > MAX_CREDENTIAL:
        raise ValueError("This credential is far larger than any this site signs (64 KB at most).")
    try:
        credential = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("This JSON is nested far deeper than any credential this site signs.") from None
    except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
        raise ValueError("This is neither a certificate PDF nor a credential in JSON.") from None
    if not isinstance(credential, dict):
        raise ValueError("This JSON is not a credential (it is not an object).")
    return credential


# Every stream pypdf decodes while finding the attachment stops at this many bytes (pypdf's own limits are 75 MB).
_PDF_LIMITS = {
    name: 4 * MAX_CREDENTIAL
    for name in (
        "maximum_declared_stream_length",
        "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "zlib_maximum_output_length",
        "brotli_maximum_output_length",
        "image_maximum_buffer_size",
        "stream_decoding_work_maximum_length",
    )
}


def _attachment(pdf: bytes) -> bytes:
    try:
        with apply_configuration(None, **_PDF_LIMITS):  # None: on top of the configuration in effect
            contents = PdfReader(io.BytesIO(pdf)).attachments.get(ATTACHMENT_NAME)
    except LimitReachedError:
        raise ValueError("This PDF's credential is far larger than any this site signs.") from None
    except (PyPdfError, ValueError, KeyError, TypeError, RecursionError):
        raise ValueError("This PDF could not be read.") from None
    if not contents:
        raise ValueError("This PDF carries no signed credential.")  # no attachment named ATTACHMENT_NAME
    return contents[0]


def check(
    session: Session | None, credential: Mapping[str, Any], online_lists: Mapping[str, Any] | None = None
) -> Verdict:
    """Verify a credential against the site's key history; revocation from the local lists or given ones."""
    history = keyring().public_history()
    lookup = None
    if online_lists is not None:
        lookup = bitstring.make_lookup(online_lists, history)
    elif session is not None:
        lookup = local_status_lookup(session)
    try:
        return verify(credential, history, status_lookup=lookup)
    except StatusUnavailable as exc:  # verify reports this itself; kept as a guard
        return Verdict(False, Reason.STATUS_UNAVAILABLE.value, str(exc))
