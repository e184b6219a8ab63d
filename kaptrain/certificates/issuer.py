"""The issuer's public documents at stable addresses: revocation status lists, key history, DID documents.

Verifiers' software fetches these from anywhere (CORS *, no login). They hold nothing personal, change
rarely and are signed or public keys, so unlike every page they may be cached for a few minutes."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.typing import ResponseReturnValue

from kaptrain.certificates import signing
from kaptrain.certificates.blueprint import bp
from kaptrain.db import get_session

CACHE_SECONDS = 300


def _public_json(document: Any, status: int = 200) -> Response:
    """A JSON document any site may read and any cache may keep briefly."""
    response = jsonify(document)
    response.status_code = status
    response.headers["Access-Control-Allow-Origin"] = "*"
    # Set here, the site-wide no-store (kaptrain.web, a setdefault) leaves it alone.
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}" if status == 200 else "no-store"
    return response


@bp.route("/credentials/status/<int:number>")
def status_list(number: int) -> ResponseReturnValue:
    """A signed BitstringStatusListCredential: which certificates of this range are revoked."""
    credential = signing.signed_status_list(get_session(), number)
    if credential is None:
        return _public_json({"status": "unknown", "message": f"There is no status list number {number}."}, 404)
    return _public_json(credential)


@bp.route("/credentials/keys.json")
def issuer_keys() -> ResponseReturnValue:
    """Every signing key the site has used, with when each was retired or compromised (public keys only)."""
    return _public_json(signing.keyring().public_history().to_json())


@bp.route("/credentials/dids.json")
def issuer_dids() -> ResponseReturnValue:
    """The DID document of every signing key, by DID: what a verifier's document loader serves."""
    return _public_json(signing.keyring().public_history().did_documents())
