"""Base58 and multibase encodings, and did:key derivation against published test vectors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaptrain.credentials.did import (
    did_document,
    did_key,
    public_key_from_did,
    public_key_multibase,
    verification_method_id,
)
from kaptrain.credentials.multibase import (
    b58decode,
    b58encode,
    decode_base58btc,
    decode_base64url,
    encode_base58btc,
    encode_base64url,
)

# draft-msporny-base58 test vectors.
BASE58_VECTORS = [
    (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    (b"The quick brown fox jumps over the lazy dog.", "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"),
    (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    (b"", ""),
]

# w3c-ccg/did-method-key test-vectors/ed25519-x25519.json: Ed25519 seed -> did:key and raw public key (base58).
DID_KEY_VECTORS = [
    (
        "00" * 32,
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
    ),
    (
        "00" * 31 + "01",
        "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
    ),
]


def _public(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.mark.parametrize(("raw", "text"), BASE58_VECTORS)
def test_base58_vectors(raw: bytes, text: str) -> None:
    assert b58encode(raw) == text
    assert b58decode(text) == raw


def test_base58_rejects_characters_outside_the_alphabet() -> None:
    for bad in ("0", "O", "I", "l", "+"):
        with pytest.raises(ValueError, match="not base58"):
            b58decode("2NEp" + bad)


def test_multibase_prefixes() -> None:
    assert encode_base58btc(b"\x00\x01") == "z12"
    assert decode_base58btc("z12") == b"\x00\x01"
    assert encode_base64url(b"\xfb\xff") == "u-_8"
    assert decode_base64url("u-_8") == b"\xfb\xff"
    with pytest.raises(ValueError):
        decode_base58btc("12")
    with pytest.raises(ValueError):
        decode_base64url("+/8")
    with pytest.raises(ValueError):
        decode_base64url("u+/8")


@pytest.mark.parametrize(("seed", "did", "public_base58"), DID_KEY_VECTORS)
def test_did_key_vectors(seed: str, did: str, public_base58: str) -> None:
    public = _public(bytes.fromhex(seed))
    assert b58encode(public) == public_base58
    assert did_key(public) == did
    assert public_key_from_did(did) == public
    assert public_key_from_did(verification_method_id(did)) == public


def test_multikey_vector_from_the_eddsa_cryptosuite_spec() -> None:
    # W3C vc-di-eddsa TestVectors/keyPair.json: secret key multibase (0x8026 + seed) and its publicKeyMultibase.
    secret = decode_base58btc("z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq")
    assert secret[:2] == b"\x80\x26"
    assert public_key_multibase(_public(secret[2:])) == "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_did_document_names_one_multikey_for_assertions() -> None:
    did = DID_KEY_VECTORS[0][1]
    document = did_document(did)
    method_id = f"{did}#{did.removeprefix('did:key:')}"
    assert document["@context"] == ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
    assert document["verificationMethod"] == [
        {"id": method_id, "type": "Multikey", "controller": did, "publicKeyMultibase": did.removeprefix("did:key:")}
    ]
    assert document["assertionMethod"] == [method_id]


@pytest.mark.parametrize(
    "bad",
    [
        "did:web:example.org",
        "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",  # an X25519 key, not Ed25519
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo",  # truncated
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6Mkother",
    ],
)
def test_public_key_from_did_refuses_anything_else(bad: str) -> None:
    with pytest.raises(ValueError):
        public_key_from_did(bad)
