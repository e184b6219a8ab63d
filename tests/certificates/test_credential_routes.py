"""The signed credential in public: status lists, key history, DID documents, the credential download, the API
link, and the page that checks an uploaded certificate file (good files, bad files, tampered and revoked ones)."""

from __future__ import annotations

import io
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader, PdfWriter
from sqlalchemy.orm import Session

from kaptrain.certificates import checking, services, signing
from kaptrain.certificates.models import Certificate, RevocationReason
from kaptrain.credentials import Keyring, sign
from kaptrain.credentials.status_list import is_set
from tests.factories import certified, course, enrolled, make_user

UNKNOWN = "A" * 32  # well-formed, never issued


@contextmanager
def acting(app: Flask, db: Session) -> Iterator[None]:
    """Run services in an app context (they read its settings), then commit the test's session (a savepoint)."""
    with app.app_context():
        yield
        db.commit()


@pytest.fixture
def issue(app: Flask, db: Session):  # type: ignore[no-untyped-def]
    """Issue a new learner a certificate (pending when manual)."""

    def _issue(full_name: str = "Ana Ruiz", manual: bool = False) -> Certificate:
        user = make_user(db, full_name=full_name)
        enrolled(db, user)
        course(db).certificate_approval = "manual" if manual else "automatic"
        with acting(app, db):
            return certified(db, user, "3.25")

    return _issue


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test: checking a file never fetches anything."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def stored_pdf(app: Flask, db: Session, certificate: Certificate) -> bytes:
    with app.app_context():
        pdf = services.stored_pdf(db, certificate)
    assert pdf is not None
    return pdf


def with_attachment(pdf: bytes, content: bytes | None) -> bytes:
    """The PDF with its credential attachment's bytes replaced (None: with no attachments at all)."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    if content is None:
        del writer.root_object["/Names"]
    else:
        names = writer.root_object["/Names"]["/EmbeddedFiles"]["/Names"]
        spec = names[names.index(signing.ATTACHMENT_NAME) + 1].get_object()
        spec["/EF"]["/F"].get_object().set_data(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def attachment(pdf: bytes) -> bytes:
    return PdfReader(io.BytesIO(pdf)).attachments[signing.ATTACHMENT_NAME][0]


def made_elsewhere(credential: bytes) -> bytes:
    """A PDF this site never made (a blank page: it prints nothing the site wrote) carrying this credential."""
    forged = PdfWriter()
    forged.add_blank_page(842, 595)
    forged.add_attachment(signing.ATTACHMENT_NAME, credential)
    out = io.BytesIO()
    forged.write(out)
    return out.getvalue()


def upload(client: FlaskClient, data: bytes, name: str = "certificate.pdf") -> tuple[int, str]:
    response = client.post("/verify", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


# ---------------------------------------------------------------- the issuer's public documents


def test_the_status_list_has_the_revoked_certificates_bit_set(app, client, db, issue):
    kept, revoked = issue("Kept Holder"), issue("Revoked Holder")
    with acting(app, db):
        services.revoke(db, revoked, RevocationReason.ISSUED_IN_ERROR, "duplicate", actor_label="test")
    number, index = signing.status_position(revoked)
    response = client.get(f"/credentials/status/{number}")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    document = response.get_json()
    assert document["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    with app.app_context():
        assert document["id"] == signing.status_list_url(number)
        assert signing.check(None, document).ok  # signed by the site
    encoded = document["credentialSubject"]["encodedList"]
    assert is_set(encoded, index) and not is_set(encoded, signing.status_position(kept)[1])
    assert revoked.credential["credentialStatus"]["statusListCredential"] == document["id"]


@pytest.mark.parametrize("number", [0, 99])
def test_a_status_list_that_does_not_exist_is_a_json_404(client, number):
    response = client.get(f"/credentials/status/{number}")
    assert response.status_code == 404 and response.get_json()["status"] == "unknown"
    assert response.headers["Cache-Control"] == "no-store"


def test_keys_and_did_documents_are_published_without_private_material(app, client, issue):
    certificate = issue()
    key_id = certificate.credential["issuer"]["id"]
    keys = client.get("/credentials/keys.json")
    assert keys.status_code == 200 and keys.headers["Access-Control-Allow-Origin"] == "*"
    assert keys.headers["Cache-Control"] == "public, max-age=300"
    entry = next(k for k in keys.get_json()["keys"] if k["id"] == key_id)
    assert set(entry) == {"id", "publicKeyMultibase", "created", "retired", "compromisedSince"}
    assert entry["publicKeyMultibase"] == key_id.removeprefix("did:key:") and entry["compromisedSince"] is None
    assert b"PRIVATE" not in keys.data and b".pem" not in keys.data
    dids = client.get("/credentials/dids.json")
    assert dids.status_code == 200 and dids.headers["Access-Control-Allow-Origin"] == "*"
    document = dids.get_json()[key_id]
    assert document["id"] == key_id
    assert [m["publicKeyMultibase"] for m in document["verificationMethod"]] == [entry["publicKeyMultibase"]]
    assert b"PRIVATE" not in dids.data


# ---------------------------------------------------------------- the credential download and the API link


def test_the_verification_page_offers_the_signed_credential(app, client, issue):
    certificate = issue()
    page = client.get(f"/verify/{certificate.code}").get_data(as_text=True)
    assert f'href="/verify/{certificate.code}/credential.json"' in page and 'href="/verify"' in page
    response = client.get(f"/verify/{certificate.code}/credential.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == f"attachment; filename={certificate.number}-credential.json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.get_json() == certificate.credential
    with app.app_context():
        assert signing.check(None, response.get_json()).ok


@pytest.mark.parametrize("code", [UNKNOWN, "short", "x" * 65])
def test_no_credential_for_an_unknown_or_malformed_code(client, code):
    response = client.get(f"/verify/{code}/credential.json")
    assert response.status_code == 404 and "Certificate not found" in response.get_data(as_text=True)


def test_a_pending_certificate_has_no_credential_yet(client, issue):
    certificate = issue(manual=True)
    response = client.get(f"/verify/{certificate.code}/credential.json")
    assert response.status_code == 404 and "not been issued yet" in response.get_data(as_text=True)
    assert client.get(f"/api/v1/certificates/{certificate.code}").get_json()["credential"] is None


def test_the_api_links_the_credential(app, client, issue):
    certificate = issue()
    body = client.get(f"/api/v1/certificates/{certificate.code}").get_json()
    with app.app_context():
        assert body["credential"] == f"{services.verification_url(certificate.code)}/credential.json"
    assert body["credential"].startswith(app.config["BASE_URL"])
    path = body["credential"].removeprefix(app.config["BASE_URL"].rstrip("/"))
    assert client.get(path).get_json() == certificate.credential


# ---------------------------------------------------------------- checking an uploaded file


def test_the_upload_page_asks_for_a_pdf_or_json(client):
    response = client.get("/verify")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and '<h1 id="verdict-h">Check a certificate</h1>' in page
    assert "Or check its file — PDF or JSON" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the lookup's button and the upload's each have their own id
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"


def test_a_good_pdf_is_valid_with_what_it_states(app, client, db, issue, no_network):
    certificate = issue()
    status, page = upload(client, stored_pdf(app, db, certificate))
    assert status == 200 and "Valid credential" in page
    for fact in ("Ana Ruiz", certificate.course_title, "3.25 hours", certificate.provider):
        assert fact in page
    assert f"<dt>Certificate no.</dt><dd>{certificate.number}</dd>" in page  # to match the paper
    assert certificate.credential["issuer"]["id"] in page  # which key signed it
    assert "record of this certificate agrees" in page and f"/verify/{certificate.code}" in page
    assert "the very file this site issued" in page


def test_a_genuine_credential_in_a_pdf_made_elsewhere_is_not_taken_for_the_issued_pdf(app, client, db, issue):
    """The attack: any certificate's credential is public at its verification address, so a PDF printing another
    name and more hours can carry a genuine one. The credential checks out; the PDF is said not to be the site's,
    and the page shows what the credential (not the PDF) states."""
    certificate = issue()
    status, page = upload(client, made_elsewhere(attachment(stored_pdf(app, db, certificate))))
    assert status == 200 and "Not the PDF this site issued" in page and "Valid credential" not in page
    assert 'class="verdict verdict-superseded"' in page  # the caution mark, not the green tick
    assert "Ana Ruiz" in page and "3.25 hours" in page and f"/verify/{certificate.code}" in page
    assert "the very file this site issued" not in page


def test_a_pdf_downloaded_before_a_re_render_is_still_the_issued_pdf(app, client, db, issue, monkeypatch):
    certificate = issue()
    before = stored_pdf(app, db, certificate)
    monkeypatch.setitem(app.config, "CERTIFICATE_PAGE_SIZE", "Letter")  # re-rendered on other paper: a new file
    with app.app_context():
        services.render_and_store(db, certificate)
    assert stored_pdf(app, db, certificate) != before
    for pdf in (before, stored_pdf(app, db, certificate)):
        status, page = upload(client, pdf)
        assert status == 200 and "Valid credential" in page and "the very file this site issued" in page


def test_a_good_json_is_valid(client, issue, no_network):
    certificate = issue()
    status, page = upload(client, as_json(certificate.credential), "credential.json")
    assert status == 200 and "Valid credential" in page and "Ana Ruiz" in page


def test_the_public_credential_leaves_the_licence_number_out(app, client, db):
    """Anyone with the link may fetch the credential (verification links are shared on CVs and QR codes), so it
    carries no licence number; the holder's own PDF prints it."""
    holder = make_user(db, full_name="Lee Licensed, PsyD")
    holder.licence_number = "PSY-998877"
    enrolled(db, holder)
    with acting(app, db):
        certificate = certified(db, holder, "3.25")
    assert certificate.licence_number == "PSY-998877"
    response = client.get(f"/verify/{certificate.code}/credential.json")
    assert response.status_code == 200 and "998877" not in response.get_data(as_text=True)
    assert "licenseNumber" not in response.get_json()["credentialSubject"]


def test_an_anonymous_poison_graph_upload_is_refused_at_once(client, issue, no_network):
    """Blank nodes that name and point at one another make canonicalisation exponential (eight took a minute);
    the public check refuses them before any JSON-LD processing, so one upload cannot hold a worker."""
    poisoned = dict(issue().credential)
    nodes = [{"id": f"_:p{i}", "description": [{"id": f"_:p{j}"} for j in range(8) if j != i]} for i in range(8)]
    poisoned["credentialSubject"] = [poisoned["credentialSubject"], *nodes]
    started = time.perf_counter()
    status, page = upload(client, as_json(poisoned), "credential.json")
    assert status == 422 and "blank nodes" in page
    assert time.perf_counter() - started < 2


def test_an_attachment_that_inflates_to_megabytes_is_refused_at_once(app, client, db, issue, no_network):
    """A small PDF whose compressed credential.json inflates to megabytes: refused without inflating it all."""
    bomb = b'{"a": [' + b"0," * 5_000_000 + b"0]}"  # 10 MB of JSON, a few kilobytes once compressed
    pdf = with_attachment(stored_pdf(app, db, issue()), bomb)
    assert len(pdf) < 200_000
    started = time.perf_counter()
    status, page = upload(client, pdf)
    assert status == 422 and "far larger than any this site signs" in page
    assert time.perf_counter() - started < 5  # it took 20 s and 3 GB before


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b'{"a": [' + b"0," * 30_000 + b"0]}", "far larger or deeper"),  # one list of 30,000 numbers
        (b"[" * 30_000 + b"]" * 30_000, "nested far deeper"),  # deeper than the JSON parser goes
        (b'{"a": "' + b"x" * 70_000 + b'"}', "far larger than any this site signs"),  # over 64 KB
    ],
    ids=["long-list", "deep-nesting", "too-big"],
)
def test_oversized_json_gets_a_verdict_in_words_at_once(client, no_network, document, words):
    started = time.perf_counter()
    status, page = upload(client, document, "credential.json")
    assert status == 422 and words in page
    assert time.perf_counter() - started < 5  # seconds, where a list of millions took 2 s and 3 GB


def test_a_superseded_certificates_file_is_refused_and_the_record_says_why(app, client, db, issue):
    old = issue()
    with acting(app, db):
        services.reissue(db, old, actor_label="test")
    status, page = upload(client, stored_pdf(app, db, old))
    # The record comes first: a verifier must not read "valid" about a certificate that was replaced.
    assert status == 422 and "Valid credential" not in page and 'class="verdict verdict-superseded"' in page
    assert (
        "Superseded certificate" in page
        and "no longer the one in force" in page
        and "ask the holder for the current" in page
    )
    assert "later revoked" not in page  # the version that replaced it was not
    assert "The file is genuine and unaltered" in page
    # The old version's credential in a PDF made elsewhere: the record's verdict, and the file is not called genuine.
    status, page = upload(client, made_elsewhere(attachment(stored_pdf(app, db, old))))
    assert status == 422 and "Superseded certificate" in page and "genuine and unaltered" not in page
    assert "the PDF itself is not the file this site issued" in page


def test_a_checked_file_says_what_its_page_says_when_revoked_or_replaced_by_a_revoked_version(app, client, db, issue):
    first = issue()
    with acting(app, db):
        second = services.reissue(db, first, actor_label="test", reason="name corrected")
        services.revoke(db, second, RevocationReason.ACADEMIC_MISCONDUCT, "copied", actor_label="test")
    status, page = upload(client, stored_pdf(app, db, first))
    assert status == 422 and "Superseded certificate" in page and "no longer the one in force" in page
    assert f"/verify/{first.code}" in page and "Valid credential" not in page
    status, page = upload(client, stored_pdf(app, db, second))
    assert status == 422 and "Revoked" in page and "The issuer has revoked this certificate" in page
    assert "Reason: <strong>revoked</strong>" not in page  # the heading says it: no "Reason: revoked — revoked"
    assert f"/verify/{second.code}" in page


def test_the_files_of_superseded_versions_are_revoked_in_the_status_list(app, client, db, issue):
    first = issue()
    with acting(app, db):
        second = services.reissue(db, first, actor_label="test", reason="name corrected")
        third = services.reissue(db, second, actor_label="test", reason="name corrected again")
    old_files = [dict(first.credential), dict(second.credential)]
    with acting(app, db):
        services.revoke(db, third, RevocationReason.ACADEMIC_MISCONDUCT, "copied", actor_label="test")
    for old in (first, second):
        number, index = signing.status_position(old)
        listed = client.get(f"/credentials/status/{number}").get_json()
        assert is_set(listed["credentialSubject"]["encodedList"], index)
        page = client.get(f"/verify/{old.code}").get_data(as_text=True)
        assert "that version was revoked on" in page and "academic misconduct" in page
        api = client.get(f"/api/v1/certificates/{old.code}").get_json()
        assert api["status"] == "superseded" and not api["valid"] and api["replacement_revoked_on"]
    with app.app_context():
        for credential in old_files:
            assert signing.check(db, credential).reason == "revoked"  # what any verifier reading the list sees
    kept = issue("Kept Holder")
    with acting(app, db):
        newer = services.reissue(db, kept, actor_label="test")
    page = client.get(f"/verify/{kept.code}").get_data(as_text=True)
    assert "Ask the holder for the current certificate" in page and "was revoked" not in page
    # A superseded version's bit is set too (its old file, under its old name, say, must not check as in force);
    # the version in force keeps its bit clear.
    for version, expected in ((kept, True), (newer, False)):
        number, index = signing.status_position(version)
        listed = client.get(f"/credentials/status/{number}").get_json()
        assert is_set(listed["credentialSubject"]["encodedList"], index) is expected
    with app.app_context():
        assert signing.check(db, kept.credential).reason == "revoked"
        assert signing.check(db, newer.credential).ok
    assert newer.status.value == "active"


def test_a_replacement_for_a_revoked_certificate_is_valid_and_its_old_page_says_one_exists(app, client, db, issue):
    first = issue()
    with acting(app, db):
        second = services.reissue(db, first, actor_label="test", reason="name corrected")
        services.revoke(db, second, RevocationReason.ISSUED_IN_ERROR, "wrong learner", actor_label="test")
        third = services.reissue(db, second, actor_label="test", reason="revoked in error")
    assert second.status.value == "revoked" and third.status.value == "active" and third.supersedes_id == second.id
    page = client.get(f"/verify/{second.code}").get_data(as_text=True)
    assert "Revoked certificate" in page and "issued a replacement certificate on" in page
    assert third.number not in page and third.code not in page  # the holder shares the new one, not this page
    api = client.get(f"/api/v1/certificates/{second.code}").get_json()
    assert api["status"] == "revoked" and api["replaced_on"] == third.local_day(third.issued_at).isoformat()
    page = client.get(f"/verify/{first.code}").get_data(as_text=True)
    assert "Ask the holder for the current certificate" in page and "Neither version is valid" not in page
    assert "replacement_revoked_on" not in client.get(f"/api/v1/certificates/{first.code}").get_json()
    assert "Valid certificate" in client.get(f"/verify/{third.code}").get_data(as_text=True)
    number, index = signing.status_position(third)
    listed = client.get(f"/credentials/status/{number}").get_json()["credentialSubject"]["encodedList"]
    assert not is_set(listed, index) and is_set(listed, signing.status_position(second)[1])
    with app.app_context():
        assert signing.check(db, third.credential).ok
        assert signing.check(db, second.credential).reason == "revoked"
    status, page = upload(client, stored_pdf(app, db, second))
    assert status == 422 and "The issuer has revoked this certificate" in page
    status, page = upload(client, stored_pdf(app, db, first))
    assert status == 422 and "Superseded certificate" in page and "no longer the one in force" in page
    valid = client.get(f"/api/v1/certificates/{third.code}").get_json()
    assert valid["valid"] and "replaced_on" not in valid


def test_a_pdf_whose_attachment_changed_by_one_byte_is_tampered(app, client, db, issue, no_network):
    pdf = stored_pdf(app, db, issue())
    original = attachment(pdf)
    changed = original.replace(b'"creditsEarned": 3.25', b'"creditsEarned": 9.25')
    assert len(changed) == len(original) and sum(a != b for a, b in zip(changed, original, strict=True)) == 1
    status, page = upload(client, with_attachment(pdf, changed))
    assert status == 422 and "Changed after it was issued" in page and "<strong>tampered</strong>" in page
    assert "9.25" not in page  # nothing of a refused credential is shown as fact


def test_a_revoked_certificates_pdf_is_refused_as_revoked(app, client, db, issue, no_network):
    certificate = issue()
    pdf = stored_pdf(app, db, certificate)
    with acting(app, db):
        services.revoke(db, certificate, RevocationReason.ACADEMIC_MISCONDUCT, "copied", actor_label="test")
    status, page = upload(client, pdf)
    assert status == 422 and '<h1 id="verdict-h">Revoked</h1>' in page and "has revoked this certificate" in page
    assert f"/verify/{certificate.code}" in page  # the site's record, which says when and why


# The caution for a file with no credential, and the look-up by number and surname it offers instead.
NO_CREDENTIAL_WORDS = "does not make the certificate false. Check it instead by the verification address printed under"


def _other_issuer(credential: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    key = Keyring(tmp_path / "someone-else").current()
    return sign({**credential, "issuer": {**credential["issuer"], "id": key.key_id}}, key)


def _unknown_context(credential: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return {**credential, "@context": [*credential["@context"], "https://example.org/contexts/unknown/v1"]}


@pytest.mark.parametrize(
    ("make", "heading", "words"),
    [
        # No credential at all (a transcript, a re-saved copy, a scan): a caution that offers the look-up instead.
        (lambda c, pdf, tmp: with_attachment(pdf, None), "Nothing in this file to check", NO_CREDENTIAL_WORDS),
        (lambda c, pdf, tmp: b"Certificate of completion, honest.", "Nothing in this file", NO_CREDENTIAL_WORDS),
        (lambda c, pdf, tmp: b"[1, 2, 3]", "Nothing in this file to check", NO_CREDENTIAL_WORDS),
        (lambda c, pdf, tmp: as_json({"name": "A certificate"}), "Not a credential this site", "malformed"),
        (lambda c, pdf, tmp: as_json(_other_issuer(c, tmp)), "Not issued by this site", "unknown issuer key"),
        (lambda c, pdf, tmp: as_json(_unknown_context(c, tmp)), "Unknown vocabulary", "context not shipped"),
    ],
    ids=[
        "pdf-without-attachment",
        "not-json",
        "json-array",
        "json-not-a-credential",
        "other-issuer",
        "unknown-context",
    ],
)
def test_bad_files_get_a_verdict_in_words_and_nothing_is_fetched(
    app, client, db, issue, no_network, tmp_path, make, heading, words
):
    certificate = issue()
    status, page = upload(client, make(certificate.credential, stored_pdf(app, db, certificate), tmp_path))
    assert status == 422 and heading in page and words in page
    assert "Valid credential" not in page and "Ana Ruiz" not in page
    if words == NO_CREDENTIAL_WORDS:
        assert 'action="/verify/find"' in page and "verdict-revoked" not in page and "Reason:" not in page
        assert "This PDF carries no signed credential" in page or "not a credential" in page or "neither" in page


def test_no_file_is_a_form_error(client):
    response = client.post("/verify", data={}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose the certificate PDF or its credential JSON." in response.get_data(as_text=True)


@pytest.fixture
def limited(app: Flask, extra_app):  # type: ignore[no-untyped-def]
    """An app allowing 2 verifications a minute."""
    yield extra_app(RATELIMIT_ENABLED=True, VERIFY_RATE_LIMIT="2 per minute")
    extra_app()  # the limiter is one object shared by every app: leave it switched off, as other tests expect


def test_checking_files_is_rate_limited_with_the_verification_page(limited):
    client = limited.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.78.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    assert [upload(client, b"not a certificate")[0] for _ in range(2)] == [422, 422]
    assert client.get("/verify").status_code == 200  # showing the form is not counted
    assert upload(client, b"not a certificate")[0] == 429
    assert client.get(f"/verify/{UNKNOWN}").status_code == 429  # one limit for the page and the check


def test_a_number_tried_with_wrong_surnames_is_no_longer_looked_up_that_day(app, extra_app):  # app: migrates
    """The second attack guessed common surnames for one number from several addresses; the third shut the lookup
    of a number for everyone with five misses from one address (numbers run in sequence: every certificate, every
    day). Now five misses a day shut it for that address, and twenty from any addresses for everyone."""
    limited = extra_app(RATELIMIT_ENABLED=True, VERIFY_RATE_LIMIT="100 per minute")  # room for one address's tries
    number = f"KAP-2026-{uuid.uuid4().int % 900000 + 100000}"
    network = uuid.uuid4().int % 250

    def guess(code: str, n: int, host: int) -> int:
        client = limited.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.81.{network}.{host}"
        return client.get("/verify/find", query_string={"code": code, "surname": f"Surname{n}"}).status_code

    written = [number, number.lower(), number.replace("-", ""), number.replace("-", " "), f"{number[:8]}-0{number[9:]}"]
    assert [guess(typed, n, 1) for n, typed in enumerate(written + [number])] == [422] * 5 + [429]  # one address
    shut = limited.test_client()
    shut.environ_base["REMOTE_ADDR"] = f"10.81.{network}.1"
    page = shut.get("/verify/find", query_string={"code": number, "surname": "Any"}).text
    # Said on the check page, with the ways that still work (a walk-through got "wait a minute", a day long).
    assert "looked up as often as a day allows" in page and "QR code" in page and 'name="surname"' in page
    assert guess(number, 6, 2) == 422  # another address is not held up by the first one's misses
    # Twenty tries of the number in all (the refused ones above count too: every try does).
    assert [guess(number, n, 3 + n) for n in range(12)] == [422] * 12
    assert guess(number, 20, 99) == 429  # the twenty-first, from anywhere
    assert guess(f"KAP-2026-{uuid.uuid4().int % 900000 + 100000}", 7, 1) == 422  # another number is not held up


def test_lookups_sent_at_once_are_each_counted_before_the_answer(app, extra_app, issue):
    """The second attack sent 55 wrong surnames for one number at once from one address: misses were counted after
    each answer, so all were looked up, and the number was then shut for everyone. Each try now counts first."""
    limited = extra_app(RATELIMIT_ENABLED=True, VERIFY_RATE_LIMIT="1000 per minute")
    certificate = issue("Dana Garcia")
    address = f"10.82.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"

    def guess(surname: str) -> int:
        client = limited.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client.get("/verify/find", query_string={"code": certificate.number, "surname": surname}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(guess, [f"Wrong{n}" for n in range(24)]))
    assert answers.count(422) == 5 and answers.count(429) == 19
    assert guess("Garcia") == 429  # that address is done for the day, right surname or not


def test_looking_up_numbers_and_surnames_counts_in_the_same_limit(limited):
    client = limited.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.79.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    tries = [{"code": f"KAP-2026-00000{n}", "surname": "Ruiz"} for n in range(3)]
    assert [client.get("/verify/find", query_string=q).status_code for q in tries] == [422, 422, 429]


def test_the_check_page_finds_a_certificate_by_its_address_or_code_or_number_with_surname(client, issue):
    certificate = issue("Marisol Ortega-Díaz")
    page = client.get("/verify").get_data(as_text=True)
    assert 'action="/verify/find"' in page
    for typed in (f"  http://localhost:5000/verify/{certificate.code}/  ", certificate.code):
        found = client.get("/verify/find", query_string={"code": typed})
        assert found.status_code == 302 and found.location.endswith(f"/verify/{certificate.code}"), typed
    by_number = client.get("/verify/find", query_string={"code": certificate.number})
    assert by_number.status_code == 422 and "numbers alone are not looked up" in by_number.get_data(as_text=True)
    # With the holder's surname, as a board's CE form records it: accents, case and one part of a hyphenated name.
    for surname in ("Ortega-Díaz", "ortega-diaz", "DIAZ", "Ortega", "Ortega Diaz"):
        query = {"code": certificate.number.lower(), "surname": f" {surname} "}
        found = client.get("/verify/find", query_string=query)
        assert found.status_code == 302 and found.location.endswith(f"/verify/{certificate.code}"), surname
    for surname in ("Ruiz", "Mari", "D", "Ortega-Díaz Smith"):
        wrong = client.get("/verify/find", query_string={"code": certificate.number, "surname": surname})
        assert wrong.status_code == 422 and "No certificate of this site has that number" in wrong.text, surname
    # The number as people copy it: no hyphens, spaces, a dash from a word processor, the zeros left out.
    prefix, year, serial = certificate.number.split("-")
    for typed in (f"{prefix}{year}{serial}", f"{prefix.lower()} {year} {serial}", f"{prefix}–{year}–{int(serial)}"):
        found = client.get("/verify/find", query_string={"code": typed, "surname": "Díaz"})
        assert found.status_code == 302 and found.location.endswith(f"/verify/{certificate.code}"), typed
    for typed, words in (
        ("KAP-2026-" + "9" * 400, "not a verification address"),  # too long to be a number
        ("KAP-2026-" + "9" * 5000, "longer than any verification address"),
        ("KAP-٢٠٢٦-000001", "not a verification address"),  # not ASCII digits
    ):
        refused = client.get("/verify/find", query_string={"code": typed, "surname": "Díaz"})
        assert refused.status_code == 422 and words in refused.text
    bare = client.get("/verify/find", query_string={"code": f"{year}-{serial}", "surname": "Díaz"})  # no letters
    assert bare.status_code == 422 and f"for example {certificate.number}." in bare.text
    missing = client.get("/verify/find", query_string={"code": "KAP-2026-999999", "surname": "Ortega-Díaz"})
    assert missing.status_code == 422 and "No certificate of this site has that number" in missing.text
    # A verdict, as for a wrong address, naming what was looked up; not a form to correct.
    assert '<h1 id="verdict-h">No certificate found</h1>' in missing.text and "error-summary" not in missing.text
    assert "<strong>KAP-2026-999999</strong>, <strong>Ortega-Díaz</strong>" in missing.text


@pytest.mark.parametrize(
    ("holder", "found_by", "not_by"),
    [
        ("Jane Doe Jr.", ["Doe", "Jane Doe Jr."], ["Jr.", "jr", "J", "Doe Jane"]),  # a suffix is nobody's surname
        ("Elif Yılmaz", ["Yilmaz", "YILMAZ", "Yılmaz"], ["Elif Yilmazer", "Yil"]),  # as typed on an English keyboard
        ("Ana María de la Cruz", ["de la Cruz", "Cruz", "Maria"], ["de Cruz", "la Cruz Ana"]),
        # Family names first, as in many countries; a compound one in its parts; CJK written without a space.
        (
            "Zoë Ñandú-Łukasz 王芳",
            ["Ñandú-Łukasz", "Nandu-Lukasz", "nandu lukasz", "Lukasz", "王", "王芳"],
            ["芳", "Nan"],
        ),
        ("Nguyen Van An", ["Nguyen", "nguyễn"], ["Ngu", "An Nguyen"]),
        # As a phone types an apostrophe (curly), without it, and hyphenated parts typed joined.
        ("Siobhán O'Brien-Smith", ["O’Brien-Smith", "OBrien-Smith", "obrien smith", "OBrienSmith"], ["Brien"]),
        ("Kim Min-jun", ["Minjun", "Min-jun", "Kim"], ["Minju", "Junmin"]),
        # An invisible joiner stored inside a name (from before such names were refused) is no part of it.
        ("Dana Ru\u200diz", ["Ruiz"], ["Ru"]),
    ],
)
def test_surnames_are_matched_as_a_board_types_them(client, issue, holder, found_by, not_by):
    certificate = issue(holder)
    for surname, expected in [(s, 302) for s in found_by] + [(s, 422) for s in not_by]:
        answer = client.get("/verify/find", query_string={"code": certificate.number, "surname": surname})
        assert answer.status_code == expected, surname
    for typed, words in (("", "Enter the address"), ("hello", "not a verification address")):
        refused = client.get("/verify/find", query_string={"code": typed})
        assert refused.status_code == 422 and words in refused.get_data(as_text=True)


@pytest.mark.parametrize(
    ("value", "words"), [(6, "6.0 hours"), (6.5, "6.5 hours"), (1, "1.0 hour"), (True, ""), ("6", "")]
)
def test_a_checked_files_hours_read_as_the_certificate_prints_them(value, words):
    assert checking._hours(value) == words  # noqa: SLF001


def test_a_revoked_credential_with_its_status_renamed_is_not_shown_valid(app, client, db, issue):
    certificate = issue()
    with acting(app, db):
        services.revoke(db, certificate, RevocationReason.ACADEMIC_MISCONDUCT, "copied", actor_label="test")
    credential = dict(certificate.credential)
    credential["https://www.w3.org/2018/credentials#credentialStatus"] = credential.pop("credentialStatus")
    credential["@id"] = credential.pop("id")
    status, page = upload(client, json.dumps(credential).encode(), name="credential.json")
    assert status == 422 and "Valid credential" not in page
    assert "not in the form this issuer signs" in page.replace("&#39;", "'")


def test_after_a_move_to_a_new_address_the_earlier_addresses_credentials_still_check(
    app, client, db, issue, monkeypatch
):
    old_base = app.config["BASE_URL"]
    kept, revoked = issue("Kept Holder"), issue("Revoked Holder")
    with acting(app, db):
        services.revoke(db, revoked, RevocationReason.ACADEMIC_MISCONDUCT, "copied", actor_label="test")
    kept_pdf, revoked_pdf = stored_pdf(app, db, kept), stored_pdf(app, db, revoked)
    monkeypatch.setitem(app.config, "BASE_URL", "https://ce.provider.example")
    # Moved without saying where from: the old files name lists and records the site no longer recognises.
    status, page = upload(client, kept_pdf)
    assert status == 422 and "Valid credential" not in page
    monkeypatch.setitem(app.config, "PREVIOUS_BASE_URLS", [old_base + "/"])
    status, page = upload(client, kept_pdf)
    assert status == 200 and "Valid credential" in page and "Kept Holder" in page
    status, page = upload(client, revoked_pdf)
    assert status == 422 and "Revoked" in page and "Valid credential" not in page
    # A revocation made after the move signs the list under the new address; old files still check against it.
    with acting(app, db):
        services.revoke(db, kept, RevocationReason.ISSUED_IN_ERROR, "moved", actor_label="test")
    status, page = upload(client, kept_pdf)
    assert status == 422 and "Revoked" in page
