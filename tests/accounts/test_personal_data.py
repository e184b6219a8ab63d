"""A learner downloads everything the site keeps about them from the account page (kaptrain.accounts.personal_data):
their own records, nobody else's, no secrets and no answer key; the download is audited; refusals in words."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.audit import AuditEntry
from kaptrain.quizzes.models import Attempt
from tests.factories import certified, enrolled, make_user, pass_quiz


def _download(client: FlaskClient, **kw: Any) -> Any:
    return client.post("/account/data", **kw)


def _walk(value: Any) -> list[Any]:
    """Every key and value in a JSON document, nested ones included."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (k, *_walk(v))]
    if isinstance(value, list):
        return [x for v in value for x in _walk(v)]
    return [value]


def test_a_certified_learner_downloads_their_own_records(
    app: Flask, client: FlaskClient, learner: User, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_user(db, email="someone.else@example.org", full_name="Someone Else")
    enrolled(db, other)
    pass_quiz(db, other, "alpha-quiz")
    with app.app_context():
        certificate = certified(db, learner)
        db.commit()
    page = client.get("/account").get_data(as_text=True)
    assert "Download my data (JSON)" in page

    monkeypatch.setitem(app.config, "BASE_URL", "https://ce.example.org")  # not the request's host (localhost)
    response = _download(client)
    assert response.status_code == 200 and response.mimetype == "application/json"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="my-data-\d{4}-\d{2}-\d{2}\.json"', disposition)
    assert "no-store" in response.headers["Cache-Control"]
    data = response.get_json()
    assert data["account"]["email"] == learner.email and data["account"]["full_name"] == learner.full_name
    assert [e["course"] for e in data["enrolments"]] == [certificate.course_title]
    progress = data["module_progress"]
    assert len(progress) == 3 and all(p["module"] and p["first_opened_at"] for p in progress)

    attempts = db.scalars(select(Attempt).where(Attempt.user_id == learner.id)).all()
    assert len(data["quiz_attempts"]) == len(attempts) >= 3
    first = data["quiz_attempts"][0]
    assert first["score_percent"] == 100 and first["passed"] is True and first["answers"]
    answer = first["answers"][0]
    assert answer["question"] and answer["your_answer"] and set(answer["your_answer"]) <= set(answer["options_shown"])

    assert [c["number"] for c in data["certificates"]] == [certificate.number]
    # The address printed on the certificate (KAPTRAIN_BASE_URL), whatever Host the request came with.
    assert data["certificates"][0]["verify_at"] == f"{app.config['BASE_URL'].rstrip('/')}/verify/{certificate.code}"
    assert "localhost" not in response.get_data(as_text=True)
    assert data["certificates"][0]["hours"] == "3.50"
    assert len(data["course_evaluations"]) == 1 and len(data["attestations"]) == 1
    assert data["attestations"][0]["hours_claimed"] == "3.50"
    evaluation = data["course_evaluations"][0]
    assert (evaluation["evidence_based_and_balanced"], evaluation["evidence_comment"]) == ("yes", "")
    assert evaluation["hours_spent"] == "3.50"  # what the learner said they spent (tests/factories.py)
    assert (evaluation["practice_change"], evaluation["change_plan"]) == ("unsure", "")

    everything = _walk(data)
    text = json.dumps(data)
    assert learner.password_hash not in text and "password" not in everything and "totp_secret" not in everything
    assert "correct" not in everything  # the answer key is the question bank's, not the learner's
    assert "someone.else@example.org" not in text and "Someone Else" not in text

    exported = db.scalars(select(AuditEntry).where(AuditEntry.action == "account.data_export")).all()
    assert [(e.subject_id, e.actor_id) for e in exported] == [(learner.id, learner.id)]
    again = _download(client).get_json()
    assert any(e["action"] == "account.data_export" and e["by"] == "you" for e in again["audit_log"])


def test_a_new_learner_gets_empty_lists_not_an_error(client: FlaskClient, learner: User) -> None:
    data = _download(client).get_json()
    assert data["quiz_attempts"] == [] and data["certificates"] == [] and data["attestations"] == []
    assert data["account"]["two_factor_sign_in"] is False


def test_the_download_needs_a_signed_in_person_and_a_form_from_this_site(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None
) -> None:
    forged = _download(client)  # no CSRF token: another site cannot make the browser fetch it
    assert forged.status_code == 400 and forged.mimetype == "text/html"
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "account.data_export")).all() == []
    assert client.get("/account/data").status_code == 405
    stranger = app.test_client()
    signed_out = stranger.post("/account/data")
    assert signed_out.status_code in (302, 400) and signed_out.mimetype != "application/json"
