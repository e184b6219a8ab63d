"""Public verification: the page and the JSON API for every verdict, unknown codes, the rate limit, and numbers
that stay distinct when many certificates are issued at once."""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus, RevocationReason, StatusList
from kaptrain.certificates.pdf import format_date
from kaptrain.db import utcnow
from tests.factories import certified, complete_learning, course, enrolled, evaluation_answers, make_user, purge_user
from tests.factories import record as course_record

EMAIL = "ana.public@example.org"
LICENCE = "LIC-998877"
UNKNOWN = "A" * 32  # well-formed, never issued
MALFORMED = ["short", "x" * 65, "has space", "a.b", "a/b/c", "%C3%A9" * 20, "'OR'1'='1'--aaaaaaaaaaaa"]


def _holder(db: Session) -> User:
    user = make_user(db, email=EMAIL, full_name="Ana Ruiz")
    user.credential, user.licence_number, user.jurisdiction = "LCSW", LICENCE, "Oregon"
    enrolled(db, user)
    return user


@pytest.fixture
def issue(app: Flask, db: Session):  # type: ignore[no-untyped-def]
    """Issue the holder a certificate, changing any of its fields afterwards."""

    def _issue(**changes: object) -> Certificate:
        with acting(app, db):
            certificate = certified(db, _holder(db), "3.25")
        for name, value in changes.items():
            setattr(certificate, name, value)
        db.flush()
        return certificate

    return _issue


@contextmanager
def acting(app: Flask, db: Session) -> Iterator[None]:
    """Run services in an app context (they read its settings), then commit the test's session there, so the
    emails they hold for the commit go out now; the test's transaction still rolls everything back."""
    with app.app_context():
        yield
        db.commit()


def page(client: FlaskClient, code: str) -> tuple[int, str]:
    response = client.get(f"/verify/{code}")
    return response.status_code, response.get_data(as_text=True)


def test_a_valid_certificate_shows_who_what_when_and_who_issued_it(client, db, issue):
    c = issue()
    status, body = page(client, c.code)
    assert status == 200
    assert "Valid certificate" in body and "verdict-valid" in body
    for fact in ("Ana Ruiz", "LCSW", c.course_title, format_date(c.completed_at.date()), "3.25 hours", c.number):
        assert fact in body
    assert "Issued by" in body and c.provider in body
    assert EMAIL not in body and LICENCE not in body  # private: never shown publicly
    # When it was checked, for a board that prints the page for its file.
    checked = re.search(r"at the moment it was checked: <strong>([^<]+)</strong>", body)
    assert checked is not None and format_date(utcnow().date()) in checked.group(1)
    assert "max-age" not in client.get(f"/verify/{c.code}").headers.get("Cache-Control", "")  # never a stale stamp
    # The test site has no accreditation statement: the page says the hours are not CE credit.
    assert "Continuing-education credit" in body and "not approved for CE credit" in body
    c.accreditation_statement = "Approved by the Board."
    db.commit()
    _, body = page(client, c.code)
    assert "not approved for CE credit" not in body


def test_the_verification_url_printed_on_the_certificate_opens_its_page(app, client, issue):
    c = issue()
    with app.app_context():
        url = services.verification_url(c.code)
    response = client.get(urlsplit(url).path)
    assert response.status_code == 200 and c.number in response.get_data(as_text=True)


def test_the_api_returns_the_public_record_as_json_to_any_site(app, client, issue):
    c = issue()
    response = client.get(f"/api/v1/certificates/{c.code}")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    with app.app_context():
        credential = f"{services.verification_url(c.code)}/credential.json"
        assert data == {**services.public_status(c).as_json(), "credential": credential}
    assert data["status"] == "valid" and data["valid"] is True and data["number"] == c.number
    assert data["holder"] == {"name": "Ana Ruiz", "credential": "LCSW"}
    assert data["course"]["title"] == c.course_title and data["course"]["provider"] == c.provider
    assert data["hours"] == "3.25" and data["completed_on"] == c.completed_at.date().isoformat()
    assert data["revoked_on"] is None and data["revocation_reason"] is None
    assert data["verification_url"].endswith(f"/verify/{c.code}")
    assert EMAIL not in response.get_data(as_text=True) and LICENCE not in response.get_data(as_text=True)


def test_the_page_is_not_cross_origin_readable_nor_indexed(client, issue):
    c = issue()
    response = client.get(f"/verify/{c.code}")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_revoked_certificate_says_when_and_why_but_not_the_private_note(app, client, db, issue):
    c = issue()
    with acting(app, db):
        services.revoke(db, c, RevocationReason.ACADEMIC_MISCONDUCT, "Quiz answers shared on a forum", actor_label="t")
    status, body = page(client, c.code)
    assert status == 200 and "Revoked certificate" in body and "verdict-revoked" in body
    assert f"revoked on {format_date(c.revoked_at.date())}" in body and "academic misconduct" in body
    assert "forum" not in body
    data = client.get(f"/api/v1/certificates/{c.code}").get_json()
    assert data["status"] == "revoked" and data["valid"] is False
    assert data["revoked_on"] == c.revoked_at.date().isoformat() and data["revocation_reason"] == "academic misconduct"


def test_a_superseded_certificate_says_a_newer_version_exists_without_naming_it(app, client, db, issue):
    old = issue()
    with acting(app, db):
        new = services.reissue(db, old, actor_label="t")
    status, body = page(client, old.code)
    assert (
        status == 200
        and "Superseded certificate" in body
        and "The provider re-issued this certificate" in body
        and "The completion was not withdrawn" in body
    )
    assert new.number not in body and new.code not in body
    data = client.get(f"/api/v1/certificates/{old.code}").get_json()
    assert data["status"] == "superseded" and data["valid"] is False
    assert new.code not in str(data) and new.number not in str(data)
    assert page(client, new.code)[0] == 200 and "Valid certificate" in page(client, new.code)[1]


def test_an_expired_certificate_says_so(client, issue):
    c = issue(expires_at=utcnow() - dt.timedelta(days=1))
    status, body = page(client, c.code)
    assert status == 200 and "Expired certificate" in body and "Expired on" in body
    assert client.get(f"/api/v1/certificates/{c.code}").get_json()["status"] == "expired"


def test_a_pending_certificate_is_not_yet_valid(app, client, db):
    user = _holder(db)
    with acting(app, db):
        done = complete_learning(db, user)
        done.course.certificate_approval = "manual"
        services.submit_evaluation(db, done, evaluation_answers(done.course))
        c = services.attest(db, course_record(db, user), user, Decimal("2"))
    assert c.status == CertificateStatus.PENDING
    status, body = page(client, c.code)
    assert status == 200 and "not yet issued" in body and "Not yet assigned" in body
    assert client.get(f"/api/v1/certificates/{c.code}").get_json()["status"] == "pending"


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL the app sends while the test runs."""
    sent: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(re.sub(r"sa_savepoint_\d+", "sa_savepoint", statement))  # names count up per session

    engine = app.extensions["kaptrain.db"].engine
    event.listen(engine, "before_cursor_execute", note)
    yield sent
    event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("code", MALFORMED)
def test_malformed_codes_get_exactly_what_unknown_ones_get_after_the_same_work(client, statements, code):
    unknown = client.get(f"/verify/{UNKNOWN}")
    unknown_sql = list(statements)
    statements.clear()
    malformed = client.get(f"/verify/{code}")
    assert (malformed.status_code, malformed.data) == (unknown.status_code, unknown.data)
    assert malformed.status_code == 404
    assert dict(malformed.headers) == dict(unknown.headers)
    assert statements == unknown_sql  # the same lookup, so the time taken tells them apart no more than the page
    body = malformed.get_data(as_text=True)
    assert "We could not find a certificate with this code. Check the address" in body
    api_unknown = client.get(f"/api/v1/certificates/{UNKNOWN}")
    api = client.get(f"/api/v1/certificates/{code}")
    assert (
        (api.status_code, api.get_json())
        == (api_unknown.status_code, api_unknown.get_json())
        == (
            404,
            {"status": "unknown"},
        )
    )
    assert api.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture
def limited(app: Flask, extra_app) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    """An app allowing 3 verifications a minute (app: the session app migrates the database it reads)."""
    yield extra_app(RATELIMIT_ENABLED=True, VERIFY_RATE_LIMIT="3 per minute")
    extra_app()  # the limiter is one object shared by every app: leave it switched off, as other tests expect


def test_verification_is_rate_limited_per_address_across_page_and_api(limited):
    client = limited.test_client()
    client.environ_base["REMOTE_ADDR"] = address = f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    codes = [
        client.get(f"/verify/{UNKNOWN}").status_code,
        client.get(f"/api/v1/certificates/{UNKNOWN}").status_code,
        client.get("/verify/malformed").status_code,
    ]
    assert codes == [404, 404, 404]
    blocked_page = client.get(f"/verify/{UNKNOWN}")
    assert blocked_page.status_code == 429 and "Too many attempts" in blocked_page.get_data(as_text=True)
    blocked_api = client.get(f"/api/v1/certificates/{UNKNOWN}")
    assert blocked_api.status_code == 429 and blocked_api.get_json()["status"] == "rate_limited"
    assert blocked_api.headers["Access-Control-Allow-Origin"] == "*"  # so the verifier's page can tell its user
    other = limited.test_client()
    other.environ_base["REMOTE_ADDR"] = address.rsplit(".", 1)[0] + ".254"
    assert other.get(f"/api/v1/certificates/{UNKNOWN}").status_code == 404
    assert client.get("/courses").status_code == 200  # the rest of the site is not limited by it


ISSUED_AT_ONCE = 50


@pytest.fixture
def learners(app: Flask) -> Iterator[list[int]]:
    """ISSUED_AT_ONCE learners committed to the shared test database, removed (with their records) afterwards."""
    engine = app.extensions["kaptrain.db"].engine
    tag = uuid.uuid4().hex[:8]
    with Session(engine) as s:
        users = [make_user(s, email=f"race-{tag}-{i}@example.org") for i in range(ISSUED_AT_ONCE)]
        s.commit()
        ids = [u.id for u in users]
    yield ids
    with Session(engine) as s:
        for user_id in ids:
            purge_user(s, user_id)
        # Issuing made the status list: signed with this run's shared key, it would stand in other tests' way.
        s.execute(delete(StatusList))
        s.commit()


def test_certificates_issued_at_once_get_distinct_numbers(app, learners, monkeypatch):
    # The race is over the numbers; rendering and email are tested elsewhere and would only slow the threads.
    monkeypatch.setattr(services, "certificate_pdf", lambda *args, **kwargs: b"%PDF-1.7 test")
    monkeypatch.setattr(services, "_email_after_commit", lambda *args: None)
    engine = app.extensions["kaptrain.db"].engine
    barrier = threading.Barrier(len(learners))
    errors: list[BaseException] = []

    def issue_one(user_id: int) -> None:
        try:
            barrier.wait(timeout=30)  # before any query: no thread holds a connection while others wait
            with app.app_context(), Session(engine) as s:
                user = s.get(User, user_id)
                services.issue_without_course(s, user, course(s), "migrated record", actor_label="test")
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=issue_one, args=(user_id,)) for user_id in learners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with Session(engine) as s:
        mine = Certificate.user_id.in_(learners)
        issued = s.execute(select(Certificate.number, Certificate.status).where(mine)).all()
    numbers = [n for n, _status in issued]
    assert len(issued) == ISSUED_AT_ONCE and all(s == CertificateStatus.ACTIVE for _n, s in issued)
    assert len(set(numbers)) == ISSUED_AT_ONCE and all(n and n.startswith("KAP-") for n in numbers)
