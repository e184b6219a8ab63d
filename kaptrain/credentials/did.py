"""did:key identifiers for Ed25519 keys (Multikey), and the DID documents derived from them without any lookup."""

from __future__ import annotations

from typing import Any

from kaptrain.credentials.multibase import decode_base58btc, encode_base58btc

DID_KEY_PREFIX = "did:key:"
# The multicodec code of an Ed25519 public key (0xed) as an unsigned varint: 0xed 0x01.
ED25519_PUB_MULTICODEC = b"\xed\x01"
ED25519_PUBLIC_KEY_SIZE = 32
DID_CONTEXT_V1 = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT_V1 = "https://w3id.org/security/multikey/v1"


def public_key_multibase(public_key: bytes) -> str:
    """The Multikey `publicKeyMultibase` of a raw 32-byte Ed25519 public key ('z6Mk...')."""
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return encode_base58btc(ED25519_PUB_MULTICODEC + public_key)


def did_key(public_key: bytes) -> str:
    """The did:key identifier of a raw Ed25519 public key."""
    return DID_KEY_PREFIX + public_key_multibase(public_key)


def verification_method_id(did: str) -> str:
    """The one verification method of a did:key: the DID, '#', and the key's multibase again."""
    return f"{did}#{did.removeprefix(DID_KEY_PREFIX)}"


def public_key_from_did(did_url: str) -> bytes:
    """The raw Ed25519 public key named by a did:key (with or without its '#fragment'); ValueError otherwise."""
    did, _, fragment = did_url.partition("#")
    if not did.startswith(DID_KEY_PREFIX):
        raise ValueError(f"not a did:key: {did_url}")
    encoded = did.removeprefix(DID_KEY_PREFIX)
    if fragment and fragment != encoded:
        raise ValueError(f"the fragment of {did_url} does not name the key of the DID")
    decoded = decode_base58btc(encoded)
    if not decoded.startswith(ED25519_PUB_MULTICODEC):
        raise ValueError(f"not an Ed25519 did:key: {did}")
    key = decoded[len(ED25519_PUB_MULTICODEC) :]
    if len(key) != ED25519_PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 did:key holds 32 bytes, not {len(key)}")
    return key


def verification_method(did: str) -> dict[str, Any]:
    """The Multikey verification method of a did:key, as a standalone JSON-LD document."""
    public_key_from_did(did)  # refuse anything that is not an Ed25519 did:key
    return {
        "@context": MULTIKEY_CONTEXT_V1,
        "id": verification_method_id(did),
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": did.removeprefix(DID_KEY_PREFIX),
    }


def did_document(did: str) -> dict[str, Any]:
    """The DID document of an Ed25519 did:key, as the did:key method derives it (Multikey form)."""
    method = verification_method(did)
    del method["@context"]
    vm_id = method["id"]
    return {
        "@context": [DID_CONTEXT_V1, MULTIKEY_CONTEXT_V1],
        "id": did,
        "verificationMethod": [method],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityDelegation": [vm_id],
        "capabilityInvocation": [vm_id],
    }
