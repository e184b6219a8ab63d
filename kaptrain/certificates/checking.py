"""Checking a certificate file: the verdict in words, what a valid credential states, and the site's record of it.

The verification page (an upload) and `flask certificates verify` both read a PDF or JSON through
signing.extract_credential and verify it through signing.check; nothing here fetches anything, except
fetch_status_list, which the command line calls for --online and only for the status list the credential names."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from kaptrain.certificates import services, signing
from kaptrain.certificates.models import Certificate
from kaptrain.certificates.pdf import format_date, format_hours
from kaptrain.credentials import Reason, Verdict

# What signing.extract_credential's refusals are called: the file holds no credential to verify at all.
NO_CREDENTIAL = "no credential"
FETCH_TIMEOUT = 10  # seconds, for the one status list --online fetches
MAX_STATUS_LIST = 2 * 1024 * 1024  # bytes read from a status list address at most

# Each reason as a heading and a sentence that says what it means for the person holding the file.
# A genuine file whose certificate the site's record no longer stands behind: that comes first, not the signature.
# Each says what the record says, after what is true of the file (GENUINE_FILE, or NOT_ISSUED_PDF for a PDF the
# site did not issue).
RECORD_TEXT: dict[str, tuple[str, str]] = {
    "superseded": (
        "Superseded certificate",
        "this site's record says the provider re-issued the certificate (to correct a detail, say): this version is "
        "no longer the one in force, though the completion was not withdrawn. Ask the holder for the current "
        "certificate.",
    ),
    "revoked": (
        "Revoked certificate",
        "this site's record says the certificate was revoked: it is no longer valid.",
    ),
    "expired": (
        "Expired certificate",
        "this site's record says the certificate has expired.",
    ),
}
GENUINE_FILE = "The file is genuine and unaltered, but "
NOT_ISSUED_PDF = (
    "The credential inside this PDF is genuine, but the PDF itself is not the file this site issued (what it prints "
    "may differ from what was certified), and "
)
# A genuine credential inside a PDF that is not, byte for byte, one the site issued for its certificate: someone may
# have printed other words around a real credential (the credential of any certificate is public at its address).
ALTERED_PDF = (
    "Not the PDF this site issued",
    "The credential inside this PDF is genuine, but the PDF itself is not the file this site issued: it was made or "
    "changed elsewhere (or saved again by another program), so what it prints may differ from what was certified. "
    "Rely on the details below, which are the signed credential's, and on this site's record.",
)
ISSUED_PDF = "This PDF is the very file this site issued, and the credential inside it carries this site's signature."
REASON_TEXT: dict[str, tuple[str, str]] = {
    Reason.VALID: (
        "Valid credential",
        "The signature is this site's, and the credential is exactly as it was issued.",
    ),
    NO_CREDENTIAL: (
        "Nothing in this file to check",
        "A transcript, a copy printed or saved again by another program, or a scan carries no credential, and that "
        "alone does not make the certificate false. Check it instead by the verification address printed under its "
        "QR code, or by its number and the holder's surname, below; or upload the PDF as it was downloaded from this "
        "site.",
    ),
    Reason.MALFORMED: (
        "Not a credential this site can check",
        "The file holds JSON, but not a signed credential in the form this site issues.",
    ),
    Reason.UNKNOWN_CONTEXT: (
        "Unknown vocabulary",
        "The credential refers to a JSON-LD context this site does not ship; nothing is fetched from the internet "
        "to check it, so it cannot be verified.",
    ),
    Reason.UNKNOWN_ISSUER_KEY: (
        "Not issued by this site",
        "The credential names an issuer key this site has never used: someone else issued it, or it was forged.",
    ),
    Reason.TAMPERED: (
        "Changed after it was issued",
        "The credential's content no longer matches its signature: something in it was altered.",
    ),
    Reason.KEY_COMPROMISED: (
        "Signed with a compromised key",
        "The key that signed this credential was marked compromised for the time it was signed, so the "
        "signature cannot be trusted.",
    ),
    Reason.NOT_YET_VALID: ("Not yet valid", "The credential's validity period has not begun."),
    Reason.EXPIRED: ("Expired", "The credential's validity period has ended."),
    Reason.REVOKED: ("Revoked", "The issuer has revoked this certificate; it is no longer valid."),
    Reason.STATUS_UNAVAILABLE: (
        "Revocation could not be checked",
        "The status list that says whether this certificate was revoked could not be read or trusted.",
    ),
}


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking a file: the verdict, what the credential states, and the site's own record."""

    verdict: Verdict
    credential: dict[str, Any] | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)  # only for a valid credential
    record: services.PublicStatus | None = None  # the site's certificate with the credential's address
    pdf_issued: bool | None = None  # for a PDF with a record: whether it is a file the site issued for it

    @property
    def standing(self) -> str:
        """What the headline says: "valid"; the site's record's verdict ("superseded", "revoked", "expired") when
        the signature is good but the record says otherwise, which a verifier must see first ("superseded" also when
        the status list marks it revoked, as it marks every superseded version, so that a verifier reading only the
        list does not take it as in force);
        "refused" for any other failure."""
        if self.verdict.reason == Reason.REVOKED and self.record is not None and self.record.verdict == "superseded":
            return "superseded"
        if not self.verdict.ok:
            return "refused"
        if self.record is not None and self.record.verdict != "valid":
            return self.record.verdict
        return "altered" if self.pdf_issued is False else "valid"

    @property
    def heading(self) -> str:
        """The verdict as a heading."""
        if self.standing in RECORD_TEXT:
            return RECORD_TEXT[self.standing][0]
        if self.standing == "altered":
            return ALTERED_PDF[0]
        return REASON_TEXT.get(self.verdict.reason, ("Not valid", ""))[0]

    @property
    def explanation(self) -> str:
        """What the verdict means, in a sentence."""
        if self.standing in RECORD_TEXT:
            return (NOT_ISSUED_PDF if self.pdf_issued is False else GENUINE_FILE) + RECORD_TEXT[self.standing][1]
        if self.standing == "altered":
            return ALTERED_PDF[1]
        if self.standing == "valid" and self.pdf_issued:
            return ISSUED_PDF
        return REASON_TEXT.get(self.verdict.reason, ("", "The credential could not be verified."))[1]


def read_credential(data: bytes) -> dict[str, Any] | Verdict:
    """The credential in a PDF or JSON file, or the refusal verdict saying why there is none."""
    try:
        return signing.extract_credential(data)
    except ValueError as exc:
        return Verdict(False, NO_CREDENTIAL, str(exc))


def check_file(session: Session, data: bytes) -> FileCheck:
    """Verify an uploaded file offline against the site's keys and its own revocation lists."""
    credential = read_credential(data)
    if isinstance(credential, Verdict):
        return FileCheck(credential)
    verdict = signing.check(session, credential)
    if verdict.reason == Reason.REVOKED:
        # Revoked in the status list: the site's record says whether by revocation or by a newer version, which
        # the certificate's page says too (both set the same bit).
        record = site_record(session, credential)
        return FileCheck(verdict, credential, record=record, pdf_issued=_issued(session, record, data))
    if not verdict.ok:
        return FileCheck(verdict, credential)
    record = site_record(session, credential)
    facts = credential_facts(credential, verdict, record)
    return FileCheck(verdict, credential, facts, record, _issued(session, record, data))


def _issued(session: Session, record: services.PublicStatus | None, data: bytes) -> bool | None:
    """For a PDF whose certificate the site holds: whether it is a file the site issued for it (None otherwise)."""
    if record is None or not signing.is_pdf(data):
        return None
    return services.issued_this_pdf(session, record.certificate, data)


def site_record(session: Session, credential: Mapping[str, Any]) -> services.PublicStatus | None:
    """The site's certificate whose verification address is the credential's id, with its public verdict."""
    credential_id = credential.get("id")
    if not isinstance(credential_id, str):
        return None
    for base in signing.site_bases():  # issued under the site's address now, or one it had before
        prefix = f"{base}/verify/"
        if credential_id.startswith(prefix):
            certificate = services.find_by_code(session, credential_id.removeprefix(prefix))
            return services.public_status(certificate) if certificate is not None else None
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _day(value: Any, certificate: Certificate | None = None) -> str:
    """An XSD dateTime of the credential as its certificate prints the day (in the holder's zone, from the site's
    record), or as the UTC day, so marked, when the site holds no record of it; "" when there is none."""
    try:
        moment = dt.datetime.fromisoformat(_text(value))
    except ValueError:
        return ""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if certificate is not None:
        return format_date(certificate.local_day(moment))
    return f"{format_date(moment.astimezone(dt.UTC).date())} (UTC)"


def credential_facts(
    credential: Mapping[str, Any], verdict: Verdict, record: services.PublicStatus | None = None
) -> list[tuple[str, str]]:
    """What a verified credential states (holder, course, hours, dates, issuer, signing key), as label and value;
    its days as the site's record of the certificate prints them, when there is one."""
    certificate = record.certificate if record is not None else None
    subject = credential.get("credentialSubject")
    subject = subject if isinstance(subject, Mapping) else {}
    achievement = subject.get("achievement")
    achievement = achievement if isinstance(achievement, Mapping) else {}
    issuer = credential.get("issuer")
    issuer = issuer if isinstance(issuer, Mapping) else {}
    hours = subject.get("creditsEarned")
    rows = [
        # The number printed on the certificate, from the site's record (the credential names it by its address).
        ("Certificate no.", (certificate.number or "") if certificate is not None else ""),
        ("Holder", _text(subject.get("name"))),
        ("Course", _text(achievement.get("name"))),
        ("Hours", _hours(hours)),
        ("Issued on", _day(credential.get("validFrom"), certificate)),
        ("Valid until", _day(credential.get("validUntil"), certificate)),
        ("Issued by", " · ".join(v for v in (_text(issuer.get("name")), _text(issuer.get("url"))) if v)),
        ("Signed with key", verdict.key_id or ""),
    ]
    return [(label, value) for label, value in rows if value]


def sentence(verdict: Verdict) -> str:
    """The verdict on one line: "valid" or "not valid: <reason> — <detail>"."""
    if verdict.ok:
        return f"valid — {verdict.detail}" if verdict.detail else "valid"
    return f"not valid: {verdict.reason} — {verdict.detail}" if verdict.detail else f"not valid: {verdict.reason}"


def status_list_urls(credential: Mapping[str, Any]) -> list[str]:
    """The revocation status lists the credential names (usually one), each once."""
    entries = credential.get("credentialStatus")
    listed = entries if isinstance(entries, list) else [entries]
    urls = [
        entry.get("statusListCredential")
        for entry in listed
        if isinstance(entry, Mapping) and entry.get("statusPurpose") == "revocation"
    ]
    return list(dict.fromkeys(url for url in urls if isinstance(url, str)))


def fetch_status_list(url: str) -> dict[str, Any]:
    """GET one status list credential over HTTP(S); ValueError with a sentence when it cannot be had."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"refusing to fetch {url!r}: only http and https addresses are fetched")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - scheme checked
            body = response.read(MAX_STATUS_LIST + 1)
    except urllib.error.HTTPError as exc:
        raise ValueError(f"could not fetch the status list {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"could not fetch the status list {url}: {reason}") from None
    if len(body) > MAX_STATUS_LIST:
        raise ValueError(f"the status list {url} is larger than any status list this site makes")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"the status list {url} is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError(f"the status list {url} is not a credential (not a JSON object)")
    return document


def check_online(credential: Mapping[str, Any]) -> Verdict:
    """Verify offline, then fetch the credential's status lists and check revocation against them."""
    verdict = signing.check(None, credential)
    if not verdict.ok:
        return verdict
    urls = status_list_urls(credential)
    if not urls:
        return Verdict(False, Reason.STATUS_UNAVAILABLE, "the credential names no revocation status list")
    try:
        lists = {url: fetch_status_list(url) for url in urls}
    except ValueError as exc:
        return Verdict(False, Reason.STATUS_UNAVAILABLE, str(exc), verdict.key_id)
    return signing.check(None, credential, online_lists=lists)


def _hours(value: object) -> str:
    """The credential's hours as the certificate prints them ("6.0 hours"), or nothing when not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    hours = Decimal(str(value))
    return f"{format_hours(hours)} {'hour' if hours == 1 else 'hours'}"
