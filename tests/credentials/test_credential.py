"""The OpenBadgeCredential: its content, signing, and each reason verification gives for refusing one."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from kaptrain.credentials import CredentialData, KeyHistory, Keyring, Reason, build_credential, sign, verify
from kaptrain.credentials.credential import email_identity_hash
from kaptrain.credentials.loader import OB_V3_CONTEXT, VC_V2_CONTEXT, make_loader
from tests.credentials.conftest import ISSUED_AT, STATUS_LIST_URL

LATER = ISSUED_AT + dt.timedelta(days=30)


def test_credential_is_an_open_badge_in_vc_2(make_data: Callable[..., CredentialData], keyring: Keyring) -> None:
    data = make_data()
    credential = build_credential(data)
    assert credential["@context"] == [VC_V2_CONTEXT, OB_V3_CONTEXT]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["id"] == data.credential_id
    assert credential["issuer"] == {
        "id": keyring.current().key_id,
        "type": ["Profile"],
        "name": "Kaptrain Continuing Education",
        "url": "https://cme.example.org",
    }
    assert credential["validFrom"] == "2026-03-02T14:30:00Z" and "validUntil" not in credential
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"] and subject["name"] == "José Müller-Ñandú"
    assert subject["creditsEarned"] == 3.5 and "licenseNumber" not in subject  # the public copy is shared
    achievement = subject["achievement"]
    assert achievement["type"] == ["Achievement"] and achievement["achievementType"] == "Course"
    assert achievement["name"] == data.course_title and achievement["criteria"] == {"narrative": data.criteria}
    assert achievement["creditsAvailable"] == 4 and isinstance(achievement["creditsAvailable"], int)
    assert [d["name"] for d in achievement["resultDescription"]] == ["AMA PRA Category 1 Credit™", "ANCC contact hours"]
    assert [(r["resultDescription"], r["value"]) for r in subject["result"]] == [
        (f"{data.achievement_id}#credit-1", "3.5"),
        (f"{data.achievement_id}#credit-2", "1.25"),
    ]
    assert credential["credentialStatus"] == {
        "id": f"{STATUS_LIST_URL}#42",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "42",
        "statusListCredential": STATUS_LIST_URL,
    }


def test_email_is_only_written_salted_and_hashed(make_data: Callable[..., CredentialData]) -> None:
    credential = build_credential(make_data())
    text = json.dumps(credential).lower()
    assert "jose.muller" not in text
    name_id, email_id = credential["credentialSubject"]["identifier"]
    assert name_id == {
        "type": "IdentityObject",
        "identityType": "name",
        "hashed": False,
        "identityHash": "José Müller-Ñandú",
    }
    expected = "sha256$" + hashlib.sha256(b"jose.muller@example.orgc2FsdHNhbHQ").hexdigest()
    assert email_id["identityHash"] == expected == email_identity_hash(" Jose.Muller@Example.org ", "c2FsdHNhbHQ")
    assert email_id["hashed"] is True and email_id["salt"] == "c2FsdHNhbHQ"
    with pytest.raises(ValueError, match="salt"):
        build_credential(make_data(recipient_salt=None))
    assert len(build_credential(make_data(recipient_email=None))["credentialSubject"]["identifier"]) == 1


def test_sign_then_verify(signed: dict[str, Any], keyring: Keyring) -> None:
    proof = signed["proof"]
    key = keyring.current()
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["verificationMethod"] == key.verification_method and proof["proofPurpose"] == "assertionMethod"
    assert proof["proofValue"].startswith("z") and proof["created"] == "2026-03-02T14:30:00Z"
    verdict = verify(signed, keyring, now=LATER)
    assert (verdict.ok, verdict.reason, verdict.key_id) == (True, Reason.VALID, key.key_id)
    assert verify(json.loads(json.dumps(signed)), keyring.public_history(), now=LATER).ok


def test_sign_refuses_a_credential_naming_another_issuer(
    make_data: Callable[..., CredentialData], keyring: Keyring
) -> None:
    with pytest.raises(ValueError, match="issuer"):
        sign(
            build_credential(make_data(issuer_id="did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")),
            keyring.current(),
        )


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document[int(part)] if isinstance(document, list) else document[part]
    document[last] = value  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("credentialSubject.name", "Someone Else"),
        ("credentialSubject.creditsEarned", 4),
        ("credentialSubject.achievement.name", "Another course"),
        ("credentialSubject.result.0.value", "35"),
        ("validFrom", "2025-03-02T14:30:00Z"),
        ("credentialStatus.statusListIndex", "43"),
        ("issuer.name", "Diploma Mill"),
        ("proof.created", "2026-03-02T14:30:01Z"),
    ],
)
def test_one_changed_field_is_tampered(signed: dict[str, Any], keyring: Keyring, path: str, value: Any) -> None:
    changed = copy.deepcopy(signed)
    _set(changed, path, value)
    verdict = verify(changed, keyring, now=LATER)
    assert (verdict.ok, verdict.reason) == (False, Reason.TAMPERED)


def test_an_added_field_is_refused(signed: dict[str, Any], keyring: Keyring) -> None:
    changed = copy.deepcopy(signed)
    changed["credentialSubject"]["achievement"]["fieldOfStudy"] = "Anaesthesia"
    assert verify(changed, keyring, now=LATER).reason == Reason.TAMPERED
    changed = copy.deepcopy(signed)
    changed["grade"] = "A"  # a term no context defines
    assert verify(changed, keyring, now=LATER).reason == Reason.MALFORMED


def test_a_changed_proof_value_is_tampered_and_a_truncated_one_malformed(
    signed: dict[str, Any], keyring: Keyring
) -> None:
    value = signed["proof"]["proofValue"]
    changed = copy.deepcopy(signed)
    changed["proof"]["proofValue"] = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    assert verify(changed, keyring, now=LATER).reason in {Reason.TAMPERED, Reason.MALFORMED}
    changed["proof"]["proofValue"] = value[:-1] + ("2" if value[-1] != "2" else "3")
    assert verify(changed, keyring, now=LATER).reason == Reason.TAMPERED
    changed["proof"]["proofValue"] = value[:40]
    verdict = verify(changed, keyring, now=LATER)
    assert verdict.reason == Reason.MALFORMED and "not an Ed25519 signature" in verdict.detail


@pytest.mark.parametrize(
    "document",
    [
        None,
        "a string",
        [],
        {},
        {"@context": [VC_V2_CONTEXT], "type": ["VerifiableCredential"]},
    ],
)
def test_not_a_credential_is_malformed(document: Any, keyring: Keyring) -> None:
    verdict = verify(document, keyring)
    assert (verdict.ok, verdict.reason) == (False, Reason.MALFORMED)


@pytest.mark.parametrize("field", ["proof", "validFrom", "credentialSubject", "@context", "type"])
def test_missing_parts_are_malformed(signed: dict[str, Any], keyring: Keyring, field: str) -> None:
    changed = {key: value for key, value in signed.items() if key != field}
    assert verify(changed, keyring, now=LATER).reason == Reason.MALFORMED


def test_unknown_context_is_refused_without_network(signed: dict[str, Any], keyring: Keyring, no_network: None) -> None:
    changed = copy.deepcopy(signed)
    changed["@context"].append("https://example.org/evil-context.jsonld")
    verdict = verify(changed, keyring, now=LATER)
    assert verdict.reason == Reason.UNKNOWN_CONTEXT
    assert "context not shipped: https://example.org/evil-context.jsonld" in verdict.detail
    nested = copy.deepcopy(signed)
    nested["credentialSubject"]["@context"] = "https://example.org/nested.jsonld"
    verdict = verify(nested, keyring, now=LATER)
    assert verdict.reason == Reason.UNKNOWN_CONTEXT and "nested.jsonld" in verdict.detail


def test_another_issuer_is_an_unknown_issuer_key(
    make_data: Callable[..., CredentialData], signed: dict[str, Any], keyring: Keyring, tmp_path: Any
) -> None:
    other = Keyring(tmp_path / "other-issuer")
    foreign = sign(build_credential(make_data(issuer_id=other.current().key_id)), other.current(), created=ISSUED_AT)
    verdict = verify(foreign, keyring, now=LATER)
    assert verdict.reason == Reason.UNKNOWN_ISSUER_KEY and "not one of this issuer's keys" in verdict.detail
    swapped = copy.deepcopy(signed)
    swapped["proof"]["verificationMethod"] = other.current().verification_method
    assert verify(swapped, keyring, now=LATER).reason == Reason.UNKNOWN_ISSUER_KEY


def test_rotation_keeps_old_credentials_valid(
    signed: dict[str, Any], keyring: Keyring, make_data: Callable[..., CredentialData]
) -> None:
    old_key = keyring.current()
    new_key = keyring.rotate(now=ISSUED_AT + dt.timedelta(days=1))
    assert verify(signed, keyring, now=LATER).ok
    fresh = sign(build_credential(make_data(issuer_id=new_key.key_id)), new_key, created=LATER)
    assert verify(fresh, keyring, now=LATER).ok
    assert fresh["issuer"]["id"] != old_key.key_id


def test_compromised_key_fails_only_after_since(keyring: Keyring, make_data: Callable[..., CredentialData]) -> None:
    key = keyring.current()
    before = sign(build_credential(make_data()), key, created=ISSUED_AT)
    after = sign(build_credential(make_data()), key, created=ISSUED_AT + dt.timedelta(days=2))
    keyring.mark_compromised(key.key_id, since=ISSUED_AT + dt.timedelta(days=1))
    assert verify(before, keyring, now=LATER).ok
    verdict = verify(after, keyring, now=LATER)
    assert (verdict.ok, verdict.reason) == (False, Reason.KEY_COMPROMISED)
    # The published history carries the compromise to offline verifiers.
    published = KeyHistory.from_json(json.loads(json.dumps(keyring.public_history().to_json())))
    assert verify(after, published, now=LATER).reason == Reason.KEY_COMPROMISED


def test_expiry_and_not_yet_valid(keyring: Keyring, make_data: Callable[..., CredentialData]) -> None:
    expires = ISSUED_AT + dt.timedelta(days=365)
    signed = sign(build_credential(make_data(expires_at=expires)), keyring.current(), created=ISSUED_AT)
    assert signed["validUntil"] == "2027-03-02T14:30:00Z"
    assert verify(signed, keyring, now=expires - dt.timedelta(seconds=1)).ok
    verdict = verify(signed, keyring, now=expires + dt.timedelta(seconds=1))
    assert (verdict.ok, verdict.reason) == (False, Reason.EXPIRED)
    assert verify(signed, keyring, now=ISSUED_AT - dt.timedelta(days=1)).reason == Reason.NOT_YET_VALID


def test_a_json_round_trip_with_float_hours_still_verifies(signed: dict[str, Any], keyring: Keyring) -> None:
    # JSON written by another tool may say 4.0 where we wrote 4; both mean the same number.
    text = json.dumps(signed).replace('"creditsAvailable": 4', '"creditsAvailable": 4.0')
    assert '"creditsAvailable": 4.0' in text
    assert verify(json.loads(text), keyring, now=LATER).ok


def _poisoned(signed: dict[str, Any], nodes: int) -> dict[str, Any]:
    """The credential with `nodes` blank nodes that name and point at one another (a "poison graph"): each more
    multiplies the time canonicalisation takes by about ten."""
    poisoned = copy.deepcopy(signed)
    others = [
        {"id": f"_:p{i}", "description": [{"id": f"_:p{j}"} for j in range(nodes) if j != i]} for i in range(nodes)
    ]
    poisoned["credentialSubject"] = [poisoned["credentialSubject"], *others]
    return poisoned


def test_a_poison_graph_is_refused_before_any_json_ld_processing(signed: dict[str, Any], keyring: Keyring) -> None:
    started = time.perf_counter()
    verdict = verify(_poisoned(signed, 8), keyring)  # about a minute of canonicalisation, were it attempted
    assert not verdict.ok and verdict.reason == Reason.MALFORMED and "blank nodes" in verdict.detail
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("where", ["key", "value"])
def test_a_blank_node_name_anywhere_is_refused(signed: dict[str, Any], keyring: Keyring, where: str) -> None:
    named = copy.deepcopy(signed)
    named["credentialSubject"]["achievement"]["criteria"] = {"_:x": "y"} if where == "key" else {"id": "_:x"}
    verdict = verify(named, keyring)
    assert not verdict.ok and verdict.reason == Reason.MALFORMED and "blank nodes" in verdict.detail


def test_a_document_far_larger_or_deeper_than_a_credential_is_refused(signed: dict[str, Any], keyring: Keyring) -> None:
    wide = copy.deepcopy(signed)
    wide["credentialSubject"]["achievement"]["alignment"] = [{"targetName": str(i)} for i in range(400)]
    deep = copy.deepcopy(signed)
    nested: dict[str, Any] = {"targetName": "x"}
    for _ in range(20):
        nested = {"targetName": "x", "alignment": [nested]}
    deep["credentialSubject"]["achievement"]["alignment"] = [nested]
    for document in (wide, deep):
        verdict = verify(document, keyring)
        assert not verdict.ok and verdict.reason == Reason.MALFORMED and "larger or deeper" in verdict.detail
    assert verify(signed, keyring).ok  # the real credential is well within the bounds


def _alike(signed: dict[str, Any], children: int) -> dict[str, Any]:
    """The credential with two more identical result descriptions, each holding `children` identical alignments:
    no blank-node names and few objects, but canonicalisation must try every ordering of the alike objects."""
    alike = copy.deepcopy(signed)
    alignment = {"type": ["Alignment"], "targetName": "t", "targetUrl": "https://e.org/"}
    extra = {"type": ["ResultDescription"], "name": "n", "resultType": "Status", "alignment": [alignment] * children}
    alike["credentialSubject"]["achievement"].setdefault("resultDescription", []).extend([extra, extra])
    return alike


def test_objects_that_cannot_be_told_apart_are_refused_within_a_bounded_amount_of_work(
    signed: dict[str, Any], keyring: Keyring
) -> None:
    started = time.perf_counter()
    verdict = verify(_alike(signed, 9), keyring)  # minutes of canonicalisation, unbounded
    assert not verdict.ok and verdict.reason == Reason.MALFORMED and "cannot be told apart" in verdict.detail
    assert time.perf_counter() - started < 2
    assert verify(_alike(signed, 1), keyring, now=LATER).reason == Reason.TAMPERED  # a few alike: simply checked


def test_the_sites_own_credentials_need_none_of_that_work(signed: dict[str, Any], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kaptrain.credentials import proof  # noqa: PLC0415

    monkeypatch.setattr(proof, "MAX_CANON_STEPS", 0)
    assert proof.canonize({k: v for k, v in signed.items() if k != "proof"}, make_loader({}))
