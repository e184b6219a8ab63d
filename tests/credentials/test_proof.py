"""The eddsa-rdfc-2022 proof against the W3C specification's own test vector, and the offline loader."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaptrain.credentials.loader import SHIPPED_CONTEXTS, ContextNotShipped, DidDocumentUnavailable, make_loader
from kaptrain.credentials.multibase import decode_base58btc
from kaptrain.credentials.proof import UndefinedTerm, add_proof, canonize, check_proof, hash_data, js_numbers

# W3C vc-di-eddsa TestVectors/eddsa-rdfc-2022/signedDataInt.json, combinedHashDataInt.txt and keyPair.json.
EXAMPLES_CONTEXT = "https://www.w3.org/ns/credentials/examples/v2"
SIGNED_VECTOR: dict[str, Any] = {
    "@context": ["https://www.w3.org/ns/credentials/v2", EXAMPLES_CONTEXT],
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
    "proof": {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": "https://vc.example/issuers/5678#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        "proofPurpose": "assertionMethod",
        "proofValue": "z21EVs3eXERqTn4acNHT9viboqgzUaQ3kTmhPT3eA8qrVPE7CrQq78WkzctnMX5W4CrzcKnHw8V6dvy5pgWYCU5e9",
    },
}
COMBINED_HASH = (
    "4c4d3890a157f8d611b13c265c2c22f39aa0a567c7c7dd9ba3e45cd579784eeb"
    "517744132ae165a5349155bef0bb0cf2258fff99dfe1dbd914b938d775a36017"
)
SECRET_KEY_MULTIBASE = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"


def _vector_loader(url: str, options: Any = None) -> dict[str, Any]:
    """The shipped loader plus the one-line examples context, which only the test vector uses."""
    if url == EXAMPLES_CONTEXT:
        document = {"@context": {"@vocab": "https://www.w3.org/ns/credentials/examples#"}}
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}
    return make_loader()(url, options)


def test_specification_vector_hash_signature_and_verification() -> None:
    unsecured = {key: value for key, value in SIGNED_VECTOR.items() if key != "proof"}
    assert hash_data(unsecured, SIGNED_VECTOR["proof"], _vector_loader).hex() == COMBINED_HASH

    private_key = Ed25519PrivateKey.from_private_bytes(decode_base58btc(SECRET_KEY_MULTIBASE)[2:])
    created = dt.datetime(2023, 2, 24, 23, 36, 38, tzinfo=dt.UTC)
    resigned = add_proof(unsecured, private_key, SIGNED_VECTOR["proof"]["verificationMethod"], created, _vector_loader)
    assert resigned == SIGNED_VECTOR  # Ed25519 is deterministic: the very same proofValue

    public_key = decode_base58btc("z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2")[2:]
    assert check_proof(SIGNED_VECTOR, public_key, _vector_loader)
    changed = json.loads(json.dumps(SIGNED_VECTOR))
    changed["credentialSubject"]["alumniOf"] = "The School of Counterfeits"
    assert not check_proof(changed, public_key, _vector_loader)


def test_loader_serves_only_shipped_contexts(no_network: None) -> None:
    load = make_loader()
    for url in SHIPPED_CONTEXTS:
        assert "@context" in load(url, {})["document"]
    with pytest.raises(ContextNotShipped, match="context not shipped: https://example.org/ctx.json"):
        load("https://example.org/ctx.json", {})


def test_loader_serves_given_and_derived_did_documents() -> None:
    did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    method = make_loader()(f"{did}#{did.removeprefix('did:key:')}", {})["document"]
    assert method["type"] == "Multikey" and method["controller"] == did
    assert method["@context"] == "https://w3id.org/security/multikey/v1"
    with pytest.raises(DidDocumentUnavailable):
        make_loader(derive_did_key=False)(did, {})
    with pytest.raises(DidDocumentUnavailable):
        make_loader()("did:web:example.org", {})
    given = {"did:web:example.org": {"id": "did:web:example.org", "verificationMethod": []}}
    assert make_loader(given)("did:web:example.org", {})["document"]["id"] == "did:web:example.org"


def test_undefined_terms_are_refused_not_dropped() -> None:
    document = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"], "colour": "x"}
    with pytest.raises(UndefinedTerm, match="colour"):
        canonize(document, make_loader())


def test_integral_floats_read_as_javascript_reads_them() -> None:
    assert js_numbers({"a": [3.0, 3.5, 2, True]}) == {"a": [3, 3.5, 2, True]}
    assert isinstance(js_numbers(3.0), int)
