"""W3C Bitstring Status List: encoding, decoding, the signed list credential and revocation lookups."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest

from kaptrain.credentials import Keyring, Reason, sign, verification, verify
from kaptrain.credentials import status_list as sl
from kaptrain.credentials.multibase import decode_base64url, encode_base64url
from tests.credentials.conftest import ISSUED_AT, STATUS_LIST_URL


def _list(keyring: Keyring, revoked: set[int], url: str = STATUS_LIST_URL) -> dict[str, Any]:
    key = keyring.current()
    return sign(sl.status_list_credential(url, key.key_id, sl.encode(revoked), ISSUED_AT), key, created=ISSUED_AT)


@pytest.mark.parametrize("bits", [set(), {0}, {7, 8}, {0, 42, 131071}, set(range(0, 131072, 997))])
def test_round_trip(bits: set[int]) -> None:
    encoded = sl.encode(bits)
    assert encoded.startswith("u")
    assert sl.decode(encoded) == bits
    assert all(sl.is_set(encoded, index) for index in bits)
    assert not sl.is_set(encoded, 1) or 1 in bits


def test_bit_zero_is_the_left_most_bit_and_the_list_is_gzip() -> None:
    raw = gzip.decompress(decode_base64url(sl.encode({0, 9}, size=16)))
    assert raw == bytes([0b1000_0000, 0b0100_0000])
    assert len(gzip.decompress(decode_base64url(sl.encode(set())))) == 131072 // 8  # the spec's minimum: 16 KiB


def test_same_bits_encode_to_the_same_text() -> None:
    assert sl.encode({5, 3}) == sl.encode([3, 5])


@pytest.mark.parametrize(("bits", "size"), [({16}, 16), ({-1}, 16), (set(), 12), (set(), 0)])
def test_encode_refuses_bad_indices_and_sizes(bits: set[int], size: int) -> None:
    with pytest.raises(ValueError):
        sl.encode(bits, size=size)


def test_decode_refuses_garbage_truncation_and_bombs() -> None:
    with pytest.raises(ValueError):
        sl.decode("uAAAA")
    encoded = sl.encode({1})
    with pytest.raises(ValueError, match="truncated"):
        sl.decode(encoded[:-12])
    bomb = encode_base64url(gzip.compress(bytes(sl.MAX_BYTES + 1)))
    with pytest.raises(ValueError, match="larger"):
        sl.decode(bomb)
    with pytest.raises(ValueError, match="outside"):
        sl.is_set(encoded, 131072)


def test_status_list_credential_is_signed_and_verifies(keyring: Keyring) -> None:
    credential = _list(keyring, {42})
    assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert credential["credentialSubject"]["type"] == "BitstringStatusList"
    assert credential["credentialSubject"]["statusPurpose"] == "revocation"
    assert verify(credential, keyring).ok
    credential["credentialSubject"]["encodedList"] = sl.encode(set())
    assert verify(credential, keyring).reason == Reason.TAMPERED


def test_lookup_finds_revoked_and_valid_credentials(keyring: Keyring, signed: dict[str, Any]) -> None:
    revoked = sl.make_lookup({STATUS_LIST_URL: _list(keyring, {42})}, keyring)
    verdict = verify(signed, keyring, status_lookup=revoked)
    assert (verdict.ok, verdict.reason) == (False, Reason.REVOKED)
    others = sl.make_lookup({STATUS_LIST_URL: _list(keyring, {41, 43})}, keyring)
    assert verify(signed, keyring, status_lookup=others).ok
    # Without a lookup, revocation is not checked at all (offline verification).
    assert verify(signed, keyring).ok


def test_lookup_refuses_a_missing_forged_or_foreign_list(
    keyring: Keyring, signed: dict[str, Any], tmp_path: Any
) -> None:
    missing = sl.make_lookup({}, keyring)
    assert verify(signed, keyring, status_lookup=missing).reason == Reason.STATUS_UNAVAILABLE

    forged = _list(keyring, {42})
    forged["credentialSubject"]["encodedList"] = sl.encode(set())
    verdict = verify(signed, keyring, status_lookup=sl.make_lookup({STATUS_LIST_URL: forged}, keyring))
    assert verdict.reason == Reason.STATUS_UNAVAILABLE and "tampered" in verdict.detail

    other = Keyring(tmp_path / "other-keys")
    foreign = sl.make_lookup({STATUS_LIST_URL: _list(other, set())}, keyring)
    assert verify(signed, keyring, status_lookup=foreign).reason == Reason.STATUS_UNAVAILABLE

    wrong_url = sl.make_lookup({STATUS_LIST_URL: _list(keyring, set(), url=STATUS_LIST_URL + "x")}, keyring)
    assert verify(signed, keyring, status_lookup=wrong_url).reason == Reason.STATUS_UNAVAILABLE


def test_status_list_signed_before_a_rotation_still_serves(keyring: Keyring, signed: dict[str, Any]) -> None:
    old_list = _list(keyring, set())
    keyring.rotate(now=ISSUED_AT + dt.timedelta(days=1))
    assert verify(signed, keyring, status_lookup=sl.make_lookup({STATUS_LIST_URL: old_list}, keyring)).ok


VC = "https://www.w3.org/2018/credentials#"
STATUS = "https://www.w3.org/ns/credentials/status#"


def _renamed(credential: dict[str, Any], how: str) -> dict[str, Any]:
    """The credential with one term said in other words that keep its graph (and so its signature)."""
    doc = json.loads(json.dumps(credential))
    if how == "credentialStatus as its IRI":
        doc[VC + "credentialStatus"] = doc.pop("credentialStatus")
    elif how == "statusPurpose as its IRI":
        doc["credentialStatus"][STATUS + "statusPurpose"] = doc["credentialStatus"].pop("statusPurpose")
    elif how == "id as @id":
        doc["@id"] = doc.pop("id")
    elif how == "credentialStatus as a compact IRI":
        doc["cred:credentialStatus"] = doc.pop("credentialStatus")
        doc["@context"] = [*doc["@context"], {"cred": VC}]
    return doc


def test_a_revoked_credential_with_its_status_in_another_shape_is_refused_not_valid(
    keyring: Keyring, signed: dict[str, Any]
) -> None:
    revoked = sl.make_lookup({STATUS_LIST_URL: _list(keyring, {42})}, keyring)
    listed = json.loads(json.dumps(signed))
    listed["credentialStatus"]["statusPurpose"] = ["revocation"]  # the same graph: the signature still holds
    assert verify(listed, keyring).ok
    verdict = verify(listed, keyring, status_lookup=revoked)
    assert not verdict.ok and verdict.reason == Reason.MALFORMED and "this issuer" in verdict.detail
    # Signed with no revocation entry at all: never passed as valid where revocation is checked.
    unsigned = {k: v for k, v in signed.items() if k not in ("credentialStatus", "proof")}
    bare = sign(unsigned, keyring.current(), created=ISSUED_AT)
    assert verify(bare, keyring).ok
    verdict = verify(bare, keyring, status_lookup=revoked)
    assert verdict.reason == Reason.MALFORMED and "names no revocation status" in verdict.detail


RENAMINGS = [
    "credentialStatus as its IRI",
    "statusPurpose as its IRI",
    "id as @id",
    "credentialStatus as a compact IRI",
]


@pytest.mark.parametrize("how", RENAMINGS)
def test_a_revoked_credential_with_a_term_renamed_is_refused_not_valid(
    keyring: Keyring, signed: dict[str, Any], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = sl.make_lookup({STATUS_LIST_URL: _list(keyring, {42})}, keyring)
    renamed = _renamed(signed, how)
    verdict = verify(renamed, keyring, status_lookup=revoked)
    assert not verdict.ok and verdict.reason == Reason.MALFORMED, verdict
    assert "this issuer" in verdict.detail

    # The premise: the renamed document keeps the signed graph, so only the check of its terms stops it (the
    # compact IRI needs its inline context, which is refused on its own).
    if how != "credentialStatus as a compact IRI":
        monkeypatch.setattr(verification, "_check_terms", lambda document: None)
        assert verify(renamed, keyring).ok
