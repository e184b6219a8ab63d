"""Data Integrity proofs in the eddsa-rdfc-2022 cryptosuite: RDF Dataset Canonicalization, SHA-256, Ed25519.

Follows W3C "Data Integrity EdDSA Cryptosuites v1.0" section 3.3 (eddsa-rdfc-2022) and does what
@digitalbazaar/data-integrity does, so that either side verifies what the other signed."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld import jsonld
from pyld.canon import URDNA2015
from pyld.context_resolver import ContextResolver
from pyld.identifier_issuer import IdentifierIssuer

from kaptrain.credentials.loader import DocumentLoader, find_offline_error
from kaptrain.credentials.multibase import decode_base58btc, encode_base58btc

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_PURPOSE = "assertionMethod"
SIGNATURE_SIZE = 64

# Resolved contexts, kept apart from pyld's process-wide cache so that only our loader ever fills it, and
# one cache per thread because an LRUCache is not safe to share between threads.
_RESOLVED = threading.local()


class ProofError(ValueError):
    """The document or its proof cannot be processed: not JSON-LD we can read, or not a proof of this suite."""


class UndefinedTerm(ProofError):
    """A property that no context defines: JSON-LD would silently drop it, so it would not be signed."""


def xsd_datetime(moment: dt.datetime) -> str:
    """An XSD dateTimeStamp in UTC to the second, e.g. 2026-05-01T09:30:00Z."""
    if moment.tzinfo is None:
        raise ValueError("a credential date needs a time zone")
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def js_numbers(value: Any) -> Any:
    """The value as JavaScript reads its JSON: a float with no fraction is an integer (3.0 -> 3).

    JSON-LD writes the two differently in RDF ("3.0E0" against "3"), so without this a credential whose
    JSON says 3.0 would canonicalize differently here and in a JavaScript verifier."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {key: js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [js_numbers(item) for item in value]
    return value


def _resolved_contexts() -> Any:
    cache = getattr(_RESOLVED, "cache", None)
    if cache is None:
        cache = _RESOLVED.cache = LRUCache(maxsize=64)
    return cache


def _refuse_dropped(expanded_property: str | None) -> None:
    raise UndefinedTerm(f"property not defined by any context: {expanded_property}")


# Canonicalisation (URDNA2015) tries every ordering of blank nodes it cannot tell apart, so a document of a few
# kilobytes (identical objects nested in identical objects, named or not) can take hours: RDFC-1.0 tells
# implementations to bound that work. Each step below is one Hash N-Degree Quads call or one ordering tried;
# this site's credentials and status lists take none at all, and an uploaded document that needs more than this
# many is refused (verification.py also refuses blank-node names and oversized documents before any of it).
MAX_CANON_STEPS = 2_000


class _Budget:
    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise ProofError("it has too many objects that cannot be told apart to canonicalise within limits")


class _CountingIssuer(IdentifierIssuer):
    """An identifier issuer that spends the budget each time the algorithm copies it (once per ordering tried)."""

    def __init__(self, prefix: str, budget: _Budget) -> None:
        super().__init__(prefix)
        self.budget = budget

    @classmethod
    def holding(cls, issuer: IdentifierIssuer, budget: _Budget, *, copy: bool) -> _CountingIssuer:
        """A counting issuer with the state of `issuer` (copied, or shared)."""
        made = cls(issuer.prefix, budget)
        made.counter, made.existing, made.order = issuer.counter, issuer.existing, issuer.order
        if copy:
            made.existing, made.order = dict(issuer.existing), list(issuer.order)
        return made

    def __deepcopy__(self, memo: dict[int, Any]) -> _CountingIssuer:
        self.budget.spend()
        return _CountingIssuer.holding(self, self.budget, copy=True)


class _BoundedURDNA2015(URDNA2015):
    """pyld's URDNA2015 with a bound on the work of its Hash N-Degree Quads step."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.budget = _Budget(steps)

    def hash_n_degree_quads(self, id_: str, issuer: IdentifierIssuer) -> Any:
        self.budget.spend()
        if not isinstance(issuer, _CountingIssuer):  # the one the algorithm's main step makes: same state
            issuer = _CountingIssuer.holding(issuer, self.budget, copy=False)
        return super().hash_n_degree_quads(id_, issuer)


def canonize(document: Mapping[str, Any], loader: DocumentLoader) -> str:
    """The RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document, refusing undefined terms ("safe mode").

    Raises the loader's OfflineLoadError for a context it does not serve, UndefinedTerm or ProofError."""
    options: dict[str, Any] = {
        "documentLoader": loader,
        "contextResolver": ContextResolver(_resolved_contexts(), loader),
    }
    try:
        expanded = jsonld.expand(js_numbers(document), dict(options), on_property_dropped=_refuse_dropped)
        # What jsonld.normalize(..., algorithm URDNA2015) does, with the bounded algorithm.
        dataset = jsonld.to_rdf(expanded, {**options, "produceGeneralizedRdf": False})
        nquads: str = _BoundedURDNA2015(MAX_CANON_STEPS).main(dataset, {"format": "application/n-quads"})
    except (jsonld.JsonLdError, TypeError, ValueError) as exc:
        offline = find_offline_error(exc)
        if offline is not None:
            raise offline from exc
        if isinstance(exc, ProofError):
            raise
        undefined = _find_cause(exc, UndefinedTerm)
        if undefined is not None:
            raise undefined from exc
        raise ProofError(f"not valid JSON-LD: {exc}") from exc
    return nquads


def _find_cause(exc: BaseException, kind: type[UndefinedTerm]) -> UndefinedTerm | None:
    current: BaseException | None = exc
    for _ in range(20):  # pyld nests a few levels; a bound keeps a cyclic chain from looping
        if current is None:
            return None
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
    return None


def proof_options(verification_method: str, created: dt.datetime) -> dict[str, Any]:
    """The proof without its value: the eddsa-rdfc-2022 proof configuration for an assertion."""
    return {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": xsd_datetime(created),
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
    }


def hash_data(unsecured: Mapping[str, Any], options: Mapping[str, Any], loader: DocumentLoader) -> bytes:
    """SHA-256 of the canonical proof configuration followed by SHA-256 of the canonical document (64 bytes)."""
    config = {"@context": unsecured.get("@context"), **{k: v for k, v in options.items() if k != "proofValue"}}
    proof_hash = hashlib.sha256(canonize(config, loader).encode("utf-8")).digest()
    document_hash = hashlib.sha256(canonize(unsecured, loader).encode("utf-8")).digest()
    return proof_hash + document_hash


def add_proof(
    document: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: dt.datetime,
    loader: DocumentLoader,
) -> dict[str, Any]:
    """A copy of the document with an eddsa-rdfc-2022 proof (any earlier proof is replaced)."""
    unsecured = js_numbers({key: value for key, value in document.items() if key != "proof"})
    options = proof_options(verification_method, created)
    signature = private_key.sign(hash_data(unsecured, options, loader))
    return {**unsecured, "proof": {**options, "proofValue": encode_base58btc(signature)}}


def single_proof(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document's one proof of this suite, checked for shape; ProofError if there is none or it is malformed."""
    proof = document.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise ProofError("expected exactly one proof")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("no proof")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(f"not a {PROOF_TYPE} with cryptosuite {CRYPTOSUITE}")
    if proof.get("proofPurpose") != PROOF_PURPOSE:
        raise ProofError(f"proof purpose is not {PROOF_PURPOSE}")
    for field in ("verificationMethod", "created", "proofValue"):
        if not isinstance(proof.get(field), str):
            raise ProofError(f"proof has no {field}")
    try:
        signature = decode_base58btc(proof["proofValue"])
    except ValueError as exc:
        raise ProofError(f"proofValue is not multibase base58-btc: {exc}") from None
    if len(signature) != SIGNATURE_SIZE:
        raise ProofError(f"proofValue holds {len(signature)} bytes, not an Ed25519 signature's {SIGNATURE_SIZE}")
    return proof


def check_proof(document: Mapping[str, Any], public_key: bytes, loader: DocumentLoader) -> bool:
    """Whether the document's proof is a valid Ed25519 signature by this key over the document as it is now.

    Raises ProofError (or the loader's OfflineLoadError) when the document cannot be checked at all."""
    proof = single_proof(document)
    signature = decode_base58btc(proof["proofValue"])
    unsecured = {key: value for key, value in document.items() if key != "proof"}
    data = hash_data(unsecured, proof, loader)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except InvalidSignature:
        return False
    return True
