"""Interoperability: credentials signed here are checked by Digital Bazaar's verifier under Node.js.

The verifier (node/verify.mjs) uses @digitalbazaar/vc with the eddsa-rdfc-2022 cryptosuite and a document loader
that serves only the contexts from the npm packages and the DID documents written by the test: no network."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kaptrain.credentials import CredentialData, Keyring, build_credential, sign
from kaptrain.credentials import status_list as sl
from kaptrain.credentials.loader import SHIPPED_CONTEXTS, shipped_context
from tests.credentials.conftest import ISSUED_AT, STATUS_LIST_URL
from tests.credentials.node_support import VERIFY, run_node_verifier


@pytest.fixture
def run_verifier(node: str, tmp_path: Path, keyring: Keyring) -> Callable[..., dict[str, Any]]:
    """Run verify.mjs on a credential, with the issuer's DID documents and any status lists."""

    def run(
        credential: Any, *, status_lists: tuple[dict[str, Any], ...] = (), now: str | None = None
    ) -> dict[str, Any]:
        dids = keyring.public_history().did_documents()
        return run_node_verifier(node, tmp_path, credential, dids, status_lists=status_lists, now=now)

    return run


def _status_list(keyring: Keyring, revoked: set[int]) -> dict[str, Any]:
    key = keyring.current()
    return sign(sl.status_list_credential(STATUS_LIST_URL, key.key_id, sl.encode(revoked), ISSUED_AT), key)


def test_shipped_contexts_equal_the_npm_packages(node: str) -> None:
    result = subprocess.run(
        [node, str(VERIFY), "--print-contexts"], capture_output=True, text=True, timeout=60, check=True
    )
    from_npm = json.loads(result.stdout)
    assert set(from_npm) == set(SHIPPED_CONTEXTS)
    for url in SHIPPED_CONTEXTS:
        assert shipped_context(url) == from_npm[url], url


def test_node_verifies_a_fresh_credential(run_verifier: Callable[..., dict[str, Any]], signed: dict[str, Any]) -> None:
    assert run_verifier(signed) == {"verified": True, "error": None, "statusChecked": False}


def test_node_refuses_a_changed_field(run_verifier: Callable[..., dict[str, Any]], signed: dict[str, Any]) -> None:
    changed = copy.deepcopy(signed)
    changed["credentialSubject"]["achievement"]["creditsAvailable"] = 40
    output = run_verifier(changed)
    assert output["verified"] is False and "Invalid signature" in output["error"]


def test_node_refuses_a_changed_proof_value(
    run_verifier: Callable[..., dict[str, Any]], signed: dict[str, Any]
) -> None:
    changed = copy.deepcopy(signed)
    value = changed["proof"]["proofValue"]
    changed["proof"]["proofValue"] = value[:-1] + ("2" if value[-1] != "2" else "3")
    assert run_verifier(changed)["verified"] is False


def test_node_verifies_a_credential_signed_with_a_rotated_out_key(
    run_verifier: Callable[..., dict[str, Any]],
    keyring: Keyring,
    signed: dict[str, Any],
    make_data: Callable[..., CredentialData],
) -> None:
    new_key = keyring.rotate()
    reissued = sign(build_credential(make_data(issuer_id=new_key.key_id)), new_key)
    assert run_verifier(signed)["verified"] is True
    assert run_verifier(reissued)["verified"] is True


def test_node_refuses_another_issuer_and_unknown_contexts(
    run_verifier: Callable[..., dict[str, Any]],
    signed: dict[str, Any],
    make_data: Callable[..., CredentialData],
    tmp_path: Path,
) -> None:
    other = Keyring(tmp_path / "other-issuer")
    foreign = sign(build_credential(make_data(issuer_id=other.current().key_id)), other.current())
    output = run_verifier(foreign)
    assert output["verified"] is False and "DID document not given" in output["error"]
    unknown = copy.deepcopy(signed)
    unknown["@context"].append("https://example.org/evil-context.jsonld")
    output = run_verifier(unknown)
    assert output["verified"] is False and "context not shipped" in output["error"]


def test_node_refuses_an_expired_credential(
    run_verifier: Callable[..., dict[str, Any]], keyring: Keyring, make_data: Callable[..., CredentialData]
) -> None:
    expiring = sign(build_credential(make_data(expires_at=ISSUED_AT + dt.timedelta(days=1))), keyring.current())
    output = run_verifier(expiring)
    assert output["verified"] is False and "validUntil" in output["error"]
    assert run_verifier(expiring, now="2026-03-02T15:00:00Z")["verified"] is True


def test_node_verifies_the_status_list_and_reads_its_bits(
    run_verifier: Callable[..., dict[str, Any]], keyring: Keyring, signed: dict[str, Any]
) -> None:
    clean, revoked = _status_list(keyring, {41, 43}), _status_list(keyring, {42})
    assert run_verifier(clean)["verified"] is True
    tampered = copy.deepcopy(clean)
    tampered["credentialSubject"]["encodedList"] = sl.encode({42})
    assert run_verifier(tampered)["verified"] is False
    assert run_verifier(signed, status_lists=(clean,)) == {"verified": True, "error": None, "statusChecked": True}
    output = run_verifier(signed, status_lists=(revoked,))
    assert output["verified"] is False and "revocation" in output["error"]
