"""W3C Bitstring Status List v1.0: revocation bits, GZIP-compressed and multibase base64url, in a signed credential."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from kaptrain.credentials.keys import KeyHistory, Keyring
from kaptrain.credentials.loader import VC_V2_CONTEXT
from kaptrain.credentials.multibase import decode_base64url, encode_base64url
from kaptrain.credentials.proof import xsd_datetime
from kaptrain.credentials.verification import StatusLookup, StatusUnavailable, verify

# The specification's minimum length (16 KiB of bits), so that one set bit does not single a holder out.
DEFAULT_SIZE = 131072
# A compressed list that inflates past this is refused rather than inflated (a zip bomb in a status list).
MAX_BYTES = 16 * 1024 * 1024
PURPOSE = "revocation"


def encode(bits: Iterable[int], size: int = DEFAULT_SIZE) -> str:
    """The encodedList for these set indices: bit 0 is the left-most bit of the first byte, GZIP, then 'u' base64url."""
    if size <= 0 or size % 8:
        raise ValueError("the list size must be a positive multiple of 8")
    data = bytearray(size // 8)
    for index in bits:
        if not 0 <= index < size:
            raise ValueError(f"status index {index} is outside a list of {size}")
        data[index // 8] |= 0x80 >> (index % 8)
    # mtime=0 makes the output depend on the bits alone, so an unchanged list encodes to the same text.
    return encode_base64url(gzip.compress(bytes(data), mtime=0))


def bitstring(encoded: str) -> bytes:
    """The uncompressed bitstring of an encodedList; ValueError if it is not one (or inflates past MAX_BYTES)."""
    compressed = decode_base64url(encoded)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(compressed, MAX_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"the status list is not GZIP data: {exc}") from None
    if len(data) > MAX_BYTES or inflater.unconsumed_tail:
        raise ValueError("the status list is larger than any this project makes")
    if not inflater.eof:
        raise ValueError("the status list's GZIP data is truncated")
    return data


def decode(encoded: str) -> set[int]:
    """The set indices of an encodedList (the inverse of encode)."""
    data = bitstring(encoded)
    return {offset * 8 + bit for offset, byte in enumerate(data) if byte for bit in range(8) if byte & (0x80 >> bit)}


def is_set(encoded: str, index: int) -> bool:
    """Whether the bit at this index is set; ValueError if the index is outside the list."""
    data = bitstring(encoded)
    if not 0 <= index < len(data) * 8:
        raise ValueError(f"status index {index} is outside a list of {len(data) * 8}")
    return bool(data[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(
    url: str,
    issuer: str,
    encoded_list: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime | None = None,
) -> dict[str, Any]:
    """The unsigned BitstringStatusListCredential served at `url`; sign it like a certificate's credential.

    `issuer` is the did:key of the key that will sign it (the current key, so it changes on rotation)."""
    credential: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": xsd_datetime(valid_from),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": PURPOSE,
            "encodedList": encoded_list,
        },
    }
    if valid_until is not None:
        credential["validUntil"] = xsd_datetime(valid_until)
    return credential


def _entry_index(entry: Mapping[str, Any]) -> int:
    try:
        index = int(str(entry["statusListIndex"]))
    except (KeyError, ValueError):
        raise StatusUnavailable("the credential's statusListIndex is missing or not a number") from None
    if index < 0:
        raise StatusUnavailable("the credential's statusListIndex is negative")
    return index


def make_lookup(
    list_credentials: Mapping[str, Mapping[str, Any]],
    keys: Keyring | KeyHistory,
    now: dt.datetime | None = None,
    same_list: Mapping[str, frozenset[str]] | None = None,
) -> StatusLookup:
    """A status lookup for verify() over signed status list credentials already at hand (by URL).

    Each list must itself verify against the same issuer's keys, and be the list at the URL asked for: its id is
    that URL, or one of `same_list[url]` (the same list under the issuer's other addresses); otherwise the lookup
    raises StatusUnavailable."""
    decoded: dict[str, bytes] = {}

    def list_bits(url: str, purpose: str) -> bytes:
        if url in decoded:
            return decoded[url]
        credential = list_credentials.get(url)
        if credential is None:
            raise StatusUnavailable(f"status list not available: {url}")
        verdict = verify(credential, keys, now)
        if not verdict.ok:
            raise StatusUnavailable(f"status list {url} is not valid: {verdict.reason} ({verdict.detail})")
        subject = credential.get("credentialSubject")
        names = (same_list or {}).get(url, frozenset()) | {url}
        if (
            credential.get("id") not in names
            or "BitstringStatusListCredential" not in credential.get("type", [])
            or not isinstance(subject, Mapping)
            or subject.get("statusPurpose") != purpose
            or not isinstance(subject.get("encodedList"), str)
        ):
            raise StatusUnavailable(f"{url} is not a {purpose} BitstringStatusListCredential")
        try:
            decoded[url] = bitstring(subject["encodedList"])
        except ValueError as exc:
            raise StatusUnavailable(f"status list {url}: {exc}") from None
        return decoded[url]

    def lookup(entry: Mapping[str, Any]) -> bool:
        url = entry.get("statusListCredential")
        if entry.get("type") != "BitstringStatusListEntry" or not isinstance(url, str):
            raise StatusUnavailable("the credential's status is not a BitstringStatusListEntry")
        data = list_bits(url, str(entry.get("statusPurpose")))
        index = _entry_index(entry)
        if index >= len(data) * 8:
            raise StatusUnavailable(f"statusListIndex {index} is outside the list {url}")
        return bool(data[index // 8] & (0x80 >> (index % 8)))

    return lookup
