"""Every certificate is a signed Open Badges 3.0 credential: in its PDF, on the status list, and accepted by
Digital Bazaar's verifier under Node.js (fresh, re-issued, and signed with a key rotated out since)."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from pypdf import PdfReader, PdfWriter

from kaptrain.certificates import services, signing, tasks
from kaptrain.certificates.models import RevocationReason, StatusList
from kaptrain.credentials import status_list as bitstring
from tests.credentials.node_support import run_node_verifier
from tests.factories import certified, enrolled, make_user


@pytest.fixture(autouse=True)
def own_keys(app: Flask, tmp_path: Path) -> Iterator[Path]:
    """An app context with a key directory of this test's own (tests here rotate keys)."""
    saved = app.config["CREDENTIAL_KEY_DIR"]
    app.config["CREDENTIAL_KEY_DIR"] = str(tmp_path / "keys")
    with app.app_context():
        yield tmp_path / "keys"
    app.config["CREDENTIAL_KEY_DIR"] = saved


def issue_one(db, name: str = "José Müller-Ñandú"):  # type: ignore[no-untyped-def]
    user = make_user(db, full_name=name)
    enrolled(db, user)
    return certified(db, user)


def test_the_pdf_carries_the_signed_credential_and_it_verifies(db):
    certificate = issue_one(db)
    credential = certificate.credential
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["credentialSubject"]["name"] == "José Müller-Ñandú"
    assert "example.org" not in str(credential)  # no email in clear text
    assert credential["id"] == services.verification_url(certificate.code)
    pdf = services.stored_pdf(db, certificate)
    assert signing.extract_credential(pdf) == credential
    verdict = signing.check(db, credential)
    assert verdict.ok, verdict


def test_the_credential_survives_a_pdf_readers_save_as(db):
    pdf = services.stored_pdf(db, issue_one(db))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    saved = io.BytesIO()
    writer.write(saved)
    assert saved.getvalue() != pdf
    assert signing.check(db, signing.extract_credential(saved.getvalue())).ok


def test_one_changed_byte_in_the_attached_credential_is_refused(db):
    certificate = issue_one(db)
    changed = copy.deepcopy(certificate.credential)
    changed["credentialSubject"]["creditsEarned"] = 8
    verdict = signing.check(db, changed)
    assert not verdict.ok and verdict.reason == "tampered"


def test_revoking_flips_the_bit_in_the_same_transaction_and_the_list_is_reused_until_then(db):
    certificate = issue_one(db)
    number, index = signing.status_position(certificate)
    before = signing.refresh_status_list(db, number)
    first_signed = before.credential["proof"]["proofValue"]
    assert signing.refresh_status_list(db, number).credential["proof"]["proofValue"] == first_signed  # cached
    services.revoke(db, certificate, RevocationReason.ISSUED_IN_ERROR, "duplicate", actor_label="test")
    row = db.get(StatusList, number)
    assert bitstring.is_set(row.encoded, index)
    assert row.credential["proof"]["proofValue"] != first_signed
    verdict = signing.check(db, certificate.credential)
    assert not verdict.ok and verdict.reason == "revoked"


def test_rerender_keeps_number_code_and_credential_and_signs_old_certificates(db):
    certificate = issue_one(db)
    number, code, credential = certificate.number, certificate.code, certificate.credential
    tasks.rerender_job(certificate.id)
    db.expire_all()
    assert (certificate.number, certificate.code, certificate.credential) == (number, code, credential)
    certificate.credential = None  # a certificate issued before credentials existed
    db.flush()
    tasks.rerender_job(certificate.id)
    db.expire_all()
    assert certificate.number == number and certificate.credential is not None
    assert signing.extract_credential(services.stored_pdf(db, certificate)) == certificate.credential


def test_rotating_the_key_keeps_earlier_credentials_valid(db):
    old = issue_one(db)
    signing.keyring().rotate()
    new = issue_one(db, "Second Holder")
    assert old.credential["issuer"]["id"] != new.credential["issuer"]["id"]
    assert signing.check(db, old.credential).ok and signing.check(db, new.credential).ok


def test_digital_bazaar_accepts_fresh_reissued_and_rotated_key_credentials(db, node, tmp_path):
    fresh = issue_one(db)
    signing.keyring().rotate()  # `fresh` is now signed by a key rotated out
    reissued = services.reissue(db, issue_one(db, "Name Before"), actor_label="test")
    lists = (signing.refresh_status_list(db, signing.status_position(fresh)[0]).credential,)
    dids = signing.keyring().public_history().did_documents()
    for certificate in (fresh, reissued):
        result = run_node_verifier(node, tmp_path, certificate.credential, dids, status_lists=lists)
        assert result["verified"] is True, result
    changed = copy.deepcopy(fresh.credential)
    changed["credentialSubject"]["name"] = "Someone Else"
    assert run_node_verifier(node, tmp_path, changed, dids)["verified"] is False
    forged = copy.deepcopy(fresh.credential)
    value = forged["proof"]["proofValue"]
    forged["proof"]["proofValue"] = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert run_node_verifier(node, tmp_path, forged, dids)["verified"] is False


def test_a_certificates_place_in_the_status_list_is_random_not_its_number(db, monkeypatch):
    """The attack read the revoked certificate numbers off the public list, whose index was the id at the end of
    the printed number. Slots are drawn at random; one already taken is drawn again."""
    draws = iter([40_000, 40_000, 7])
    monkeypatch.setattr(signing.secrets, "randbelow", lambda _n: next(draws))
    first, second = issue_one(db, "First Holder"), issue_one(db, "Second Holder")
    assert (first.status_slot, second.status_slot) == (40_000, 7)  # the second's first draw was taken
    for certificate in (first, second):
        number, index = signing.status_position(certificate)
        status = certificate.credential["credentialStatus"]
        assert (number, index) == (1, certificate.status_slot) and index != certificate.id
        assert status["statusListIndex"] == str(index) and status["statusListCredential"].endswith("/status/1")
    services.revoke(db, second, RevocationReason.ISSUED_IN_ERROR, "duplicate", actor_label="test")
    encoded = db.get(StatusList, 1).encoded
    assert bitstring.is_set(encoded, 7) and not bitstring.is_set(encoded, second.id)
    assert not bitstring.is_set(encoded, 40_000)
