"""Offline verification of a signed credential against the issuer's key history, with a reason when it fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kaptrain.credentials.did import public_key_from_did
from kaptrain.credentials.keys import KeyHistory, Keyring, PublicKey
from kaptrain.credentials.loader import (
    SHIPPED_CONTEXTS,
    VC_V2_CONTEXT,
    ContextNotShipped,
    OfflineLoadError,
    make_loader,
)
from kaptrain.credentials.proof import ProofError, check_proof, single_proof

# Given a credentialStatus entry, whether its bit is set; raises StatusUnavailable when it cannot tell.
StatusLookup = Callable[[Mapping[str, Any]], bool]


class Reason(StrEnum):
    """Why a credential was accepted or refused; the value is what people read."""

    VALID = "valid"
    MALFORMED = "malformed"
    UNKNOWN_CONTEXT = "unknown context"
    UNKNOWN_ISSUER_KEY = "unknown issuer key"
    TAMPERED = "tampered"
    KEY_COMPROMISED = "key compromised"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    STATUS_UNAVAILABLE = "status unavailable"


@dataclass(frozen=True)
class Verdict:
    """The outcome: ok, a Reason value, and a sentence with the particulars."""

    ok: bool
    reason: str
    detail: str = ""
    key_id: str | None = None  # the did:key that signed, once known


class StatusUnavailable(RuntimeError):
    """The status list needed to check revocation could not be had or could not be trusted."""


class _Refused(Exception):
    def __init__(self, reason: Reason, detail: str, key_id: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.key_id = key_id


def _date(credential: Mapping[str, Any], field: str, *, required: bool) -> dt.datetime | None:
    value = credential.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Refused(Reason.MALFORMED, f"{field} is missing or not a date")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Refused(Reason.MALFORMED, f"{field} is not an XSD dateTime: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# Bounds on a document before any JSON-LD processing. Canonicalisation (URDNA2015) takes time exponential in the
# number of blank nodes it cannot tell apart: ones that name and point at one another (a "poison graph": eight
# such nodes in 3.5 KB took a minute, each more ten times longer), or identical objects nested in identical
# objects. This issuer never names a blank node, so a document that does is refused here at once; the size bounds
# keep the rest small, and proof.MAX_CANON_STEPS bounds the canonicalisation itself. A credential of this site has
# about 15 objects and lists, 4 levels deep.
MAX_NODES = 300
MAX_DEPTH = 16
BLANK_NODE_PREFIX = "_:"


def _check_bounds(document: Any) -> None:
    """Refuse a document with a blank-node name anywhere, or more objects and lists (or deeper) than the bounds."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if value.startswith(BLANK_NODE_PREFIX):
                raise _Refused(Reason.MALFORMED, 'it names blank nodes ("_:"), which this issuer never does')
            continue
        if not isinstance(value, dict | list):
            continue
        nodes += 1
        # The object's or list's own length counts before its children are stacked: one list of millions of
        # numbers is refused here, not walked.
        if nodes > MAX_NODES or depth > MAX_DEPTH or len(value) > MAX_NODES:
            raise _Refused(Reason.MALFORMED, "it is far larger or deeper than any credential this issuer signs")
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            if isinstance(key, str) and key.startswith(BLANK_NODE_PREFIX):
                raise _Refused(Reason.MALFORMED, 'it names blank nodes ("_:"), which this issuer never does')
            stack.append((child, depth + 1))


def _check_terms(document: dict[str, Any]) -> None:
    """Refuse a document that says its statements in other words than this issuer's: a key that is a JSON-LD
    keyword (other than the top-level @context), a key holding a colon (an IRI or compact IRI), or a context
    given inline.

    The proof covers the document's graph, not its words, and the checks after it read the credential by its
    terms (id, credentialStatus, statusPurpose, validUntil, the subject's name). Renamed to "@id" or to the full
    IRI a term stands for, the graph and so the signature stay the same while those reads find nothing: a revoked
    credential would pass the revocation check. Every credential and status list this issuer signs uses the
    shipped contexts' terms alone."""
    stack: list[tuple[Any, bool]] = [(document, True)]
    while stack:
        value, top = stack.pop()
        if isinstance(value, list):
            stack.extend((item, False) for item in value)
            continue
        if not isinstance(value, dict):
            continue
        for key, child in value.items():
            if key == "@context" and top:
                continue
            if key == "@context" and isinstance(child, str) and child not in SHIPPED_CONTEXTS:
                raise _Refused(Reason.UNKNOWN_CONTEXT, str(ContextNotShipped(child)))
            if key.startswith("@") or ":" in key:
                raise _Refused(
                    Reason.MALFORMED,
                    f"it is not in the form this issuer signs: the key {key[:80]!r} renames one of its terms",
                )
            stack.append((child, False))


def _check_shape(credential: Any) -> dict[str, Any]:
    """The proof, once the document looks like a credential in our suite; refuses otherwise."""
    if not isinstance(credential, dict):
        raise _Refused(Reason.MALFORMED, "not a JSON object")
    _check_bounds(credential)
    contexts = credential.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != VC_V2_CONTEXT:
        raise _Refused(Reason.MALFORMED, f"@context must be a list starting with {VC_V2_CONTEXT}")
    for url in contexts:
        if not isinstance(url, str):
            raise _Refused(Reason.MALFORMED, "it defines terms of its own in @context, which this issuer never does")
        if url not in SHIPPED_CONTEXTS:
            raise _Refused(Reason.UNKNOWN_CONTEXT, str(ContextNotShipped(url)))
    _check_terms(credential)
    types = credential.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise _Refused(Reason.MALFORMED, "type must list VerifiableCredential")
    if not isinstance(credential.get("credentialSubject"), dict | list):
        raise _Refused(Reason.MALFORMED, "no credentialSubject")
    _date(credential, "validFrom", required=True)
    _date(credential, "validUntil", required=False)
    try:
        return single_proof(credential)
    except ProofError as exc:
        raise _Refused(Reason.MALFORMED, str(exc)) from None


def _issuer_key(credential: Mapping[str, Any], proof: Mapping[str, Any], history: KeyHistory) -> PublicKey:
    method = proof["verificationMethod"]
    did = method.partition("#")[0]
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, Mapping) else issuer
    if issuer_id != did:
        raise _Refused(Reason.UNKNOWN_ISSUER_KEY, f"issued by {issuer_id!r} but signed by {did!r}")
    try:
        public_key_from_did(method)
    except ValueError as exc:
        raise _Refused(Reason.UNKNOWN_ISSUER_KEY, f"the signing key is not an Ed25519 did:key: {exc}") from None
    key = history.find(did)
    if key is None:
        raise _Refused(Reason.UNKNOWN_ISSUER_KEY, f"{did} is not one of this issuer's keys")
    return key


def _check_signature(credential: Mapping[str, Any], key: PublicKey) -> None:
    try:
        valid = check_proof(credential, key.public_key, make_loader({key.key_id: _did_doc(key)}))
    except ContextNotShipped as exc:
        raise _Refused(Reason.UNKNOWN_CONTEXT, str(exc), key.key_id) from None
    except OfflineLoadError as exc:
        raise _Refused(Reason.MALFORMED, str(exc), key.key_id) from None
    except ProofError as exc:
        raise _Refused(Reason.MALFORMED, str(exc), key.key_id) from None
    except Exception as exc:  # untrusted input: whatever else JSON-LD processing trips on is a malformed document
        raise _Refused(Reason.MALFORMED, f"cannot be processed as JSON-LD: {exc!r}", key.key_id) from None
    if not valid:
        raise _Refused(Reason.TAMPERED, "the proof does not match the credential's content", key.key_id)


def _did_doc(key: PublicKey) -> dict[str, Any]:
    return KeyHistory((key,)).did_documents()[key.key_id]


def _check_status(credential: Mapping[str, Any], status_lookup: StatusLookup, key_id: str) -> None:
    """Look the credential's revocation entry up. Every credential this issuer signs carries one, written as an
    object whose statusPurpose is the string "revocation"; anything else said in other shapes (a list for the
    purpose, say, which means the same to the signature) is refused, and a credential with no revocation entry is
    not passed as valid: the check must never be skipped for want of finding what to check."""
    entries = credential.get("credentialStatus")
    listed = entries if isinstance(entries, list) else [entries] if entries is not None else []
    revocation = []
    for entry in listed:
        purpose = entry.get("statusPurpose") if isinstance(entry, Mapping) else None
        if not isinstance(purpose, str):
            raise _Refused(
                Reason.MALFORMED, "it is not in the form this issuer signs: a status entry is not an object "
                "with its purpose as text", key_id,
            )  # fmt: skip
        if purpose == "revocation":
            revocation.append(entry)
    if not revocation:
        raise _Refused(Reason.MALFORMED, "it names no revocation status, which every credential of this issuer does",
                       key_id)  # fmt: skip
    for entry in revocation:
        try:
            revoked = status_lookup(entry)
        except StatusUnavailable as exc:
            raise _Refused(Reason.STATUS_UNAVAILABLE, str(exc), key_id) from None
        if revoked:
            raise _Refused(Reason.REVOKED, "the issuer has revoked this credential", key_id)


def verify(
    credential: Any,
    keys: Keyring | KeyHistory,
    now: dt.datetime | None = None,
    status_lookup: StatusLookup | None = None,
) -> Verdict:
    """Check a signed credential offline: shape, contexts, issuer key, proof, compromise, dates, and (given a
    status lookup) revocation. Never raises for bad input and never fetches anything."""
    history = keys.public_history() if isinstance(keys, Keyring) else keys
    moment = now or dt.datetime.now(dt.UTC)
    try:
        proof = _check_shape(credential)
        key = _issuer_key(credential, proof, history)
        _check_signature(credential, key)
        created = _date(proof, "created", required=True)
        if key.compromised_since is not None and created is not None and created >= key.compromised_since:
            raise _Refused(
                Reason.KEY_COMPROMISED,
                f"signed on {proof['created']} by a key compromised since {key.compromised_since.isoformat()}",
                key.key_id,
            )
        valid_from = _date(credential, "validFrom", required=True)
        valid_until = _date(credential, "validUntil", required=False)
        if valid_from is not None and moment < valid_from:
            raise _Refused(Reason.NOT_YET_VALID, f"valid from {credential['validFrom']}", key.key_id)
        if valid_until is not None and moment > valid_until:
            raise _Refused(Reason.EXPIRED, f"expired on {credential['validUntil']}", key.key_id)
        if status_lookup is not None:
            _check_status(credential, status_lookup, key.key_id)
    except _Refused as refusal:
        return Verdict(False, refusal.reason, refusal.detail, refusal.key_id)
    return Verdict(True, Reason.VALID, f"signed by {key.key_id}", key.key_id)
