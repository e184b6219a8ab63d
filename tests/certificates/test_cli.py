"""`flask certificates ...`: every command's work, audit entries and output, and its refusals of bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from pypdf import PdfWriter
from rq import Queue
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.orm import Session

from kaptrain import audit, jobs
from kaptrain.accounts.models import User
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services, signing
from kaptrain.certificates.models import (
    Certificate,
    CertificateFile,
    CertificateStatus,
    RevocationReason,
    StatusList,
)
from kaptrain.certificates.report import COLUMNS
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.courses.models import Enrolment
from kaptrain.db import get_session, utcnow
from kaptrain.quizzes.models import Attempt, AttemptStatus, Quiz, QuizKind
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, make_test_app
from tests.factories import certified, course, enrolled, make_user
from tests.redis_support import REDIS_URL, run_flask, worker_env

CLI = audit.cli_actor()


@pytest.fixture
def issue(app: Flask, db: Session) -> Callable[..., Certificate]:
    """Take a new learner through the fixture course to a certificate (pending when the course says manual)."""

    def _issue(full_name: str = "Ana Ruiz", manual: bool = False, **profile: str) -> Certificate:
        user = make_user(db, full_name=full_name)
        for name, value in profile.items():
            setattr(user, name, value)
        enrolled(db, user)
        course(db).certificate_approval = "manual" if manual else "automatic"
        with acting(app, db):
            return certified(db, user)

    return _issue


@contextmanager
def acting(app: Flask, db: Session) -> Iterator[None]:
    """Run services as a request would: in an app context (they read its settings), then commit the test's
    session, so the emails they hold for the commit go out here (the CLI runner pushes its own context)."""
    with app.app_context():
        yield
        db.commit()  # a savepoint: the test's transaction still rolls everything back


def certificates_cli(runner, *args: str):  # type: ignore[no-untyped-def]
    """Run `flask certificates ARGS...` in the test's transaction."""
    return runner.invoke(args=["certificates", *args])


def entries(db: Session, action: str) -> list[AuditEntry]:
    """Audit entries of one kind, oldest first."""
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def counts(db: Session) -> tuple[object, ...]:
    """Rows that any command could change, to show that a refused one changed nothing."""
    db.expire_all()
    rows = tuple(db.scalar(select(func.count()).select_from(m)) for m in (Certificate, CertificateFile, AuditEntry))
    by_status = db.execute(select(Certificate.status, func.count()).group_by(Certificate.status))
    return rows + tuple(sorted((str(status), n) for status, n in by_status))


def assert_refused(result, argument: str, words: str) -> None:  # type: ignore[no-untyped-def]
    """Exit status 1, one line naming the argument, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"Error: {argument}: "), result.output
    assert words in lines[0] and "Traceback" not in result.output


# ---------------------------------------------------------------- issue


def test_issue_records_a_completion_from_elsewhere_and_emails_after_the_commit(db, runner, caplog):
    user = make_user(db, email="migrated@example.org", full_name="Mo Migrated")
    with caplog.at_level(logging.INFO, logger="kaptrain.mail"):
        result = certificates_cli(
            runner,
            "issue",
            *("--email", "Migrated@Example.org", "--course", "demo-course", "--reason", "Old LMS #42"),
            *("--completed", "2024-02-29"),
        )
    assert result.exit_code == 0, result.output
    c = db.scalar(select(Certificate).where(Certificate.user_id == user.id))
    assert c.status == CertificateStatus.ACTIVE and c.issue_reason == "Old LMS #42" and c.hours == Decimal("3.5")
    assert c.completion_day == dt.date(2024, 2, 29)
    assert f"Issued {c.number} to migrated@example.org for demo-course (3.50 hours, completed 2024-02-29)." in (
        result.output
    )
    assert f"/verify/{c.code}" in result.output
    assert db.scalar(select(CertificateFile.pdf).where(CertificateFile.certificate_id == c.id))[:5] == b"%PDF-"
    [entry] = entries(db, "certificate.issue_manual")
    assert (entry.subject_id, entry.actor_id, entry.actor_label) == (c.id, None, CLI)
    assert entry.details["reason"] == "Old LMS #42"
    assert any(f"your certificate for {c.course_title}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("args", "argument", "words"),
    [
        (["--email", "nobody@example.org", "--course", "demo-course", "--reason", "x"], "--email", "no account"),
        (["--email", "holder@example.org", "--course", "no-such-course", "--reason", "x"], "--course", "no course"),
        (["--email", "holder@example.org", "--course", "demo-course", "--reason", "  "], "--reason", "say why"),
        (["--email", "issued@example.org", "--course", "demo-course", "--reason", "x"], "--email", "already has"),
        (
            ["--email", "holder@example.org", "--course", "demo-course", "--reason", "x", "--completed", "2999-01-01"],
            "--completed",
            "cannot be in the future",
        ),
        (
            ["--email", "holder@example.org", "--course", "demo-course", "--reason", "x", "--completed", "1989-12-31"],
            "--completed",
            "on or after 1 January 1990",
        ),
    ],
    ids=["unknown-email", "unknown-course", "blank-reason", "already-certified", "future-day", "implausible-day"],
)
def test_issue_refuses_bad_input_and_changes_nothing(app, db, runner, args, argument, words):
    make_user(db, email="holder@example.org")
    issued = make_user(db, email="issued@example.org")
    enrolled(db, issued)
    with acting(app, db):
        certified(db, issued)
    before = counts(db)
    assert_refused(certificates_cli(runner, "issue", *args), argument, words)
    assert counts(db) == before


# ---------------------------------------------------------------- revoke and reissue


def test_revoke_records_the_category_and_the_private_note(db, runner, issue):
    c = issue()
    reason = ("--reason", "Shared quiz answers", "--category", "academic_misconduct")
    result = certificates_cli(runner, "revoke", c.code, *reason)
    assert result.exit_code == 0, result.output
    assert f"Revoked {c.number} (Ana Ruiz, {c.course_title}): academic misconduct." in result.output
    db.refresh(c)
    assert c.status == CertificateStatus.REVOKED and c.revocation_reason == RevocationReason.ACADEMIC_MISCONDUCT
    assert c.revocation_note == "Shared quiz answers" and c.revoked_at is not None
    [entry] = entries(db, "certificate.revoke")
    assert entry.actor_label == CLI and entry.details["reason"] == "academic_misconduct"


def test_revoke_by_number_with_the_default_category(db, runner, issue):
    c = issue()
    result = certificates_cli(runner, "revoke", c.number, "--reason", "Duplicate record")
    assert result.exit_code == 0, result.output
    db.refresh(c)
    assert c.revocation_reason == RevocationReason.OTHER


@pytest.mark.parametrize(
    ("args", "argument", "words"),
    [
        (["A" * 32, "--reason", "x"], "CODE", "no certificate"),
        (["{code}", "--reason", "x", "--category", "typo"], "--category", "choose one of issued_in_error"),
        (["{code}", "--reason", " "], "--reason", "say why"),
        (["{revoked}", "--reason", "again"], "CODE", "this one is revoked"),
    ],
    ids=["unknown-code", "bad-category", "blank-reason", "already-revoked"],
)
def test_revoke_refuses_bad_input_and_changes_nothing(app, db, runner, issue, args, argument, words):
    c, revoked = issue(), issue("Bo Revoked")
    with acting(app, db):
        services.revoke(db, revoked, RevocationReason.OTHER, "earlier", actor_label="test")
    before = counts(db)
    args = [a.format(code=c.code, revoked=revoked.code) for a in args]
    assert_refused(certificates_cli(runner, "revoke", *args), argument, words)
    assert counts(db) == before


def test_reissue_supersedes_and_takes_the_current_profile(db, runner, issue):
    old = issue()
    db.get(User, old.user_id).full_name = "Ana Ruiz-Lopez"
    db.flush()
    result = certificates_cli(runner, "reissue", old.code)
    assert result.exit_code == 0, result.output
    db.expire_all()
    new = db.scalar(select(Certificate).where(Certificate.supersedes_id == old.id))
    assert old.status == CertificateStatus.SUPERSEDED and new.status == CertificateStatus.ACTIVE
    assert new.holder_name == "Ana Ruiz-Lopez" and new.number != old.number
    assert f"Re-issued {old.number} as {new.number} for Ana Ruiz-Lopez" in result.output
    [entry] = entries(db, "certificate.reissue")
    assert entry.subject_id == new.id and entry.actor_label == CLI


def test_reissue_corrects_the_hours_with_a_reason_and_names_the_bad_option(db, runner, issue):
    old = issue()
    no_reason = certificates_cli(runner, "reissue", old.code, "--hours", "1.5")
    assert no_reason.exit_code == 1 and "--reason: Say why the hours are changed." in no_reason.output
    too_many = certificates_cli(runner, "reissue", old.code, "--hours", "99", "--reason", "Agreed")
    assert too_many.exit_code == 1 and "--hours: " in too_many.output
    assert db.scalar(select(Certificate).where(Certificate.supersedes_id == old.id)) is None  # nothing made
    result = certificates_cli(runner, "reissue", old.code, "--hours", "1.5", "--reason", "Hours agreed")
    assert result.exit_code == 0, result.output
    db.expire_all()
    new = db.scalar(select(Certificate).where(Certificate.supersedes_id == old.id))
    assert new.hours == Decimal("1.5") and entries(db, "certificate.hours_changed")


def test_reissue_replaces_a_revoked_certificate_once_and_refuses_what_cannot_be_reissued(app, db, runner, issue):
    c = issue()
    with acting(app, db):
        services.revoke(db, c, RevocationReason.ISSUED_IN_ERROR, "revoked the wrong learner", actor_label="test")
    result = certificates_cli(runner, "reissue", c.code, "--reason", "revoked in error")
    assert result.exit_code == 0, result.output
    db.expire_all()
    new = db.scalar(select(Certificate).where(Certificate.supersedes_id == c.id))
    assert c.status == CertificateStatus.REVOKED and new.status == CertificateStatus.ACTIVE
    assert f"Re-issued {c.number} as {new.number}" in result.output and f"{c.number} stays revoked" in result.output
    before = counts(db)
    assert_refused(certificates_cli(runner, "reissue", c.code), "CODE", f"already replaced by {new.number}")
    assert_refused(certificates_cli(runner, "reissue", "not-a-code"), "CODE", "no certificate")
    assert counts(db) == before
    pending = issue("Waiting Holder", manual=True)
    before = counts(db)
    assert_refused(certificates_cli(runner, "reissue", pending.code), "CODE", "Only an active or revoked certificate")
    assert counts(db) == before


# ---------------------------------------------------------------- approve


def test_approve_all_issues_every_pending_certificate_with_a_progress_bar(db, runner, issue):
    waiting = [issue(f"Pending {n}", manual=True) for n in range(3)]
    assert {c.status for c in waiting} == {CertificateStatus.PENDING}
    result = certificates_cli(runner, "approve", "--all")
    assert result.exit_code == 0, result.output
    assert "Approving certificates" in result.stderr  # click's bar; without a terminal, its label
    db.expire_all()
    assert {c.status for c in waiting} == {CertificateStatus.ACTIVE} and all(c.number for c in waiting)
    assert f"Approved and issued 3 certificate(s): {', '.join(sorted(c.number for c in waiting))}." in result.stdout
    approvals = entries(db, "certificate.approve")
    assert [e.subject_id for e in approvals] == [c.id for c in waiting]
    assert {e.actor_label for e in approvals} == {CLI}
    assert certificates_cli(runner, "approve", "--all").output.strip() == "No certificates are waiting for approval."


def test_approve_named_codes_leaves_the_others_waiting(db, runner, issue):
    first, second = issue("First", manual=True), issue("Second", manual=True)
    result = certificates_cli(runner, "approve", first.code, first.code)
    assert result.exit_code == 0, result.output
    db.expire_all()
    assert (first.status, second.status) == (CertificateStatus.ACTIVE, CertificateStatus.PENDING)
    assert len(entries(db, "certificate.approve")) == 1


@pytest.mark.parametrize(
    ("args", "argument", "words"),
    [
        ([], "CODE", "or --all"),
        (["--all", "{pending}"], "--all", "not both"),
        (["{pending}", "Z" * 32], "CODE", "no certificate"),
        (["{pending}", "{active}"], "CODE", "is active, not waiting for approval"),
    ],
    ids=["nothing", "both", "unknown-code", "already-active"],
)
def test_approve_refuses_bad_input_and_changes_nothing(db, runner, issue, args, argument, words):
    pending, active = issue("Waiting", manual=True), issue("Done")
    before = counts(db)
    args = [a.format(pending=pending.code, active=active.code) for a in args]
    assert_refused(certificates_cli(runner, "approve", *args), argument, words)
    assert counts(db) == before


# ---------------------------------------------------------------- rerender and reminders


def test_rerender_keeps_numbers_and_codes_and_notes_it(db, runner, issue):
    c, other = issue(), issue("Other")
    number, code = c.number, c.code
    rendered_before = db.get(CertificateFile, c.id).rendered_at
    result = certificates_cli(runner, "rerender", c.code)
    assert result.exit_code == 0, result.output
    assert "Re-rendering certificates" in result.stderr
    assert "Re-rendered 1 certificate PDF(s); numbers and codes are unchanged." in result.stdout
    db.expire_all()
    assert (c.number, c.code) == (number, code)
    assert db.get(CertificateFile, c.id).rendered_at > rendered_before
    assert [e.subject_id for e in entries(db, "certificate.rerender")] == [c.id]
    assert other.id not in [e.subject_id for e in entries(db, "certificate.rerender")]


def test_rerender_all_covers_issued_certificates_but_not_pending_ones(db, runner, issue):
    active, pending = issue(), issue("Waiting", manual=True)
    result = certificates_cli(runner, "rerender", "--all")
    assert result.exit_code == 0, result.output
    noted = {e.subject_id for e in entries(db, "certificate.rerender")}
    assert active.id in noted and pending.id not in noted
    assert_refused(certificates_cli(runner, "rerender", pending.code), "CODE", "is pending")


def test_remind_expiring_emails_once_per_certificate(db, runner, issue, caplog):
    soon, later = issue(), issue("Later")
    soon.expires_at, later.expires_at = utcnow() + dt.timedelta(days=10), utcnow() + dt.timedelta(days=90)
    db.flush()
    with caplog.at_level(logging.INFO, logger="kaptrain.mail"):
        result = certificates_cli(runner, "remind-expiring", "--days", "30")
    assert result.exit_code == 0, result.output
    assert "Sent 1 expiry reminder(s) for certificates expiring within 30 days." in result.stdout
    assert "Sending expiry reminders" in result.stderr
    db.expire_all()
    assert soon.expiry_reminded_at is not None and later.expiry_reminded_at is None
    assert sum("expires soon" in r.getMessage() for r in caplog.records) == 1
    assert [e.subject_id for e in entries(db, "certificate.expiry_reminder")] == [soon.id]
    again = certificates_cli(runner, "remind-expiring", "--days", "30")
    assert again.exit_code == 0 and "No certificates expire within 30 days" in again.output


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_remind_expiring_refuses_a_bad_number_of_days(db, runner, days):
    assert_refused(certificates_cli(runner, "remind-expiring", "--days", days), "--days", "whole number")


# ---------------------------------------------------------------- export


def read_csv(text_: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text_)))
    assert tuple(rows[0]) == COLUMNS
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]


def test_export_states_the_final_attempt_that_completed_the_course_and_the_attempts_made(db, runner, issue):
    """The score and the day are those of the attempt that first passed (a later, better attempt does not move the
    completion), and the count includes the failed attempts."""
    kept = issue()
    first_pass = db.scalar(
        select(Attempt).join(Quiz).where(Attempt.user_id == kept.user_id, Quiz.kind == QuizKind.FINAL, Attempt.passed)
    )
    first_pass.score, first_pass.submitted_at = 85.0, dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC)

    def graded(number: int, score: float, day: int) -> Attempt:
        return Attempt(
            user_id=kept.user_id, quiz_id=first_pass.quiz_id, number=number, status=AttemptStatus.SUBMITTED,
            started_at=dt.datetime(2026, 3, day, 14, tzinfo=dt.UTC),
            submitted_at=dt.datetime(2026, 3, day, 15, tzinfo=dt.UTC), score=score,
            passed=score >= first_pass.passing_score, passing_score=first_pass.passing_score,
            settings_id=first_pass.settings_id,
        )  # fmt: skip

    db.add_all([graded(first_pass.number + 1, 40.0, 1), graded(first_pass.number + 2, 100.0, 9)])
    db.flush()
    result = certificates_cli(runner, "export", "--since", "2021-01-01")
    assert result.exit_code == 0, result.output
    row = {r["number"]: r for r in read_csv(result.stdout)}[kept.number]
    assert (row["final_assessment_percent"], row["final_assessment_passed_on"]) == ("85", "2026-03-02")
    assert row["final_assessment_attempts"] == "3"
    enrolment = db.scalar(select(Enrolment).where(Enrolment.user_id == kept.user_id))
    assert row["enrolled_on"] == enrolment.enrolled_at.date().isoformat()
    assert row["disclosures_acknowledged_on"] == enrolment.disclosures_acknowledged_at.date().isoformat()


def test_export_writes_one_row_per_issued_certificate_with_the_ce_record(app, db, runner, issue):
    kept = issue(licence_number="LIC-1", jurisdiction="Oregon", credential="LCSW")
    with acting(app, db):
        newer = services.reissue(db, kept, actor_label="test")
        services.revoke(db, newer, RevocationReason.ISSUED_IN_ERROR, "x", actor_label="test")
    pending = issue("Waiting", manual=True)
    reviewed = issue("Reviewed Claim", manual=True)
    with acting(app, db):
        services.approve(
            db, reviewed, actor_label="cli:reviewer", hours=Decimal("2"), reason="Read offline; 2 h shown."
        )
    old = issue("Old Timer")
    old.issued_at = dt.datetime(2020, 3, 1, 12, tzinfo=dt.UTC)
    db.flush()
    result = certificates_cli(runner, "export", "--since", "2021-01-01")
    assert result.exit_code == 0, result.output
    rows = {r["number"]: r for r in read_csv(result.stdout)}
    assert kept.number in rows and newer.number in rows
    assert old.number not in rows and "" not in rows  # pending certificates have no number: none listed
    assert pending.status == CertificateStatus.PENDING
    first, second = rows[kept.number], rows[newer.number]
    assert first["status"] == "superseded" and first["superseded_by"] == newer.number and first["supersedes"] == ""
    assert second["status"] == "revoked" and second["supersedes"] == kept.number
    assert second["revoked_on"] == newer.revoked_at.date().isoformat()
    assert second["revocation_reason"] == "issued in error" and second["revocation_note"] == "x"
    # Who issued each, and why fewer hours than claimed: from the audit log.
    assert (first["issued_by"], second["issued_by"]) == ("automatic", "test")
    assert rows[reviewed.number]["issued_by"] == "cli:reviewer"
    assert rows[reviewed.number]["hours_reduced_because"] == "Read offline; 2 h shown."
    assert rows[reviewed.number]["hours_certified"] == "2.00" and rows[reviewed.number]["hours_claimed"] == "3.50"
    assert first["hours_reduced_because"] == "" and first["issue_reason"] == ""
    final = db.scalar(
        select(Attempt).join(Quiz).where(Attempt.user_id == kept.user_id, Quiz.kind == QuizKind.FINAL, Attempt.passed)
    )
    assert first["final_assessment_percent"] == f"{final.score:g}"
    assert first["final_assessment_passed_on"] == final.submitted_at.date().isoformat()
    attestation = services.get_attestation(db, kept.user_id, kept.course_id)
    evaluation = services.get_evaluation(db, kept.user_id, kept.course_id)
    assert first == first | {
        "issued_on": kept.issued_at.date().isoformat(),
        "completed_on": kept.completed_at.date().isoformat(),
        "holder_name": "Ana Ruiz",
        "holder_credential": "LCSW",
        "profession": db.get(User, kept.user_id).profession,
        "licence_number": "LIC-1",
        "jurisdiction": "Oregon",
        "email": db.get(User, kept.user_id).email,
        "course_slug": "demo-course",
        "course_title": kept.course_title,
        "hours_certified": "3.50",
        "hours_claimed": f"{attestation.hours_claimed:f}",
        "course_max_hours": "3.50",
        "provider": kept.provider,
        "evaluation_submitted_on": evaluation.submitted_at.date().isoformat(),
        "attested_on": attestation.attested_at.date().isoformat(),
        "active_minutes": str(attestation.active_seconds // 60),
        "time_zone": "UTC",  # the zone of the days above
        "issued_at_utc": kept.issued_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
    }
    assert f"Exported {len(rows)} certificate(s) issued since 2021-01-01 to standard output." in result.stderr
    [entry] = entries(db, "certificate.export")
    assert entry.actor_label == CLI and entry.details == {"since": "2021-01-01", "rows": len(rows), "output": "stdout"}


def test_export_since_filters_by_issue_date_and_writes_a_file(db, runner, issue, tmp_path):
    recent, old = issue(), issue("Old Timer")
    old.issued_at = dt.datetime(2020, 3, 1, 12, tzinfo=dt.UTC)
    db.flush()
    target = tmp_path / "ce.csv"
    result = certificates_cli(runner, "export", "--since", "2020-03-01", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert f"to {target}." in result.stdout
    numbers = [r["number"] for r in read_csv(target.read_text(encoding="utf-8"))]
    assert recent.number in numbers and old.number in numbers
    later = certificates_cli(runner, "export", "--since", "2020-03-02")
    numbers = [r["number"] for r in read_csv(later.stdout)]
    assert recent.number in numbers and old.number not in numbers


def test_export_neutralises_spreadsheet_formulas_in_profile_fields(db, runner, issue):
    c = issue('=HYPERLINK("http://evil.example","Click")', licence_number="+1-555")
    rows = {r["number"]: r for r in read_csv(certificates_cli(runner, "export", "--since", "2000-01-01").stdout)}
    assert rows[c.number]["holder_name"] == '\'=HYPERLINK("http://evil.example","Click")'
    assert rows[c.number]["licence_number"] == "'+1-555"


@pytest.mark.parametrize(
    ("args", "argument", "words"),
    [
        (["--since", "31/01/2026"], "--since", "YYYY-MM-DD"),
        (["--since", "2026-02-30"], "--since", "YYYY-MM-DD"),
        (["--since", "2026-01-01", "--output", "/no/such/dir/ce.csv"], "--output", "cannot write"),
    ],
    ids=["format", "no-such-day", "unwritable"],
)
def test_export_refuses_bad_input_and_changes_nothing(db, runner, args, argument, words):
    before = counts(db)
    assert_refused(certificates_cli(runner, "export", *args), argument, words)
    assert counts(db) == before


# ---------------------------------------------------------------- verify, rotate-key, compromise-key


@pytest.fixture
def own_keys(app: Flask, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key directory of this test's own, so rotating or compromising keys leaves other tests' keys alone.

    Status lists signed with the run's shared keys are dropped inside the test's transaction (rolled back)."""
    monkeypatch.setitem(app.config, "CREDENTIAL_KEY_DIR", str(tmp_path / "keys"))
    db.execute(delete(StatusList))
    return tmp_path / "keys"


def pdf_file(app: Flask, db: Session, certificate: Certificate, path: Path) -> str:
    """Write the certificate's stored PDF to a file; its name."""
    with app.app_context():
        path.write_bytes(services.stored_pdf(db, certificate) or b"")
    return str(path)


def key_history(app: Flask) -> list[dict[str, object]]:
    with app.app_context():
        return signing.keyring().public_history().to_json()["keys"]  # type: ignore[no-any-return]


def test_verify_says_a_certificate_pdf_is_valid_offline(app, db, runner, issue, tmp_path):
    c = issue()
    result = certificates_cli(runner, "verify", pdf_file(app, db, c, tmp_path / "c.pdf"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"valid — signed by {c.credential['issuer']['id']}"
    assert "Revocation was not checked" in lines[1] and "--online" in lines[1]


def test_verify_says_a_changed_json_is_tampered(db, runner, issue, tmp_path):
    c = issue()
    changed = {**c.credential, "credentialSubject": {**c.credential["credentialSubject"], "creditsEarned": 35}}
    (tmp_path / "c.json").write_text(json.dumps(changed))
    result = certificates_cli(runner, "verify", str(tmp_path / "c.json"))
    assert result.exit_code == 1
    assert result.output.splitlines() == ["not valid: tampered — the proof does not match the credential's content"]


def test_verify_says_a_pdf_without_its_attachment_holds_no_credential(app, db, runner, issue, tmp_path):
    writer = PdfWriter(clone_from=pdf_file(app, db, issue(), tmp_path / "c.pdf"))
    del writer.root_object["/Names"]  # the embedded files
    writer.write(tmp_path / "bare.pdf")
    result = certificates_cli(runner, "verify", str(tmp_path / "bare.pdf"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("not valid: no credential — This PDF carries no signed credential")


def test_verify_refuses_a_missing_file(runner, tmp_path):
    assert_refused(certificates_cli(runner, "verify", str(tmp_path / "nothing.pdf")), "FILE", "cannot read")


@pytest.fixture
def status_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on a free loopback port serving the bodies put in its dict by path."""
    bodies: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_verify_online_fetches_the_status_list_and_sees_a_revocation(
    app, db, runner, issue, tmp_path, monkeypatch, status_server
):
    base, bodies = status_server
    monkeypatch.setitem(app.config, "BASE_URL", base)  # the credential names this server's status list
    db.execute(delete(StatusList))  # lists made under another BASE_URL (rolled back with the test)
    c = issue()
    path = pdf_file(app, db, c, tmp_path / "c.pdf")
    number = signing.status_position(c)[0]

    def serve_list() -> None:
        with app.app_context():
            bodies[f"/credentials/status/{number}"] = json.dumps(signing.signed_status_list(db, number)).encode()

    serve_list()
    valid = certificates_cli(runner, "verify", "--online", path)
    assert valid.exit_code == 0, valid.output
    assert valid.output.splitlines()[1] == "Not revoked, according to the issuer's status list."
    with acting(app, db):
        services.revoke(db, c, RevocationReason.ISSUED_IN_ERROR, "duplicate", actor_label=CLI)
    serve_list()
    revoked = certificates_cli(runner, "verify", "--online", path)
    assert revoked.exit_code == 1
    assert revoked.output.splitlines() == ["not valid: revoked — the issuer has revoked this credential"]
    bodies.clear()
    gone = certificates_cli(runner, "verify", "--online", path)
    assert gone.exit_code == 1 and gone.output.startswith("not valid: status unavailable — could not fetch")
    assert "HTTP 404" in gone.output


def test_verify_online_fetches_only_http_addresses(app, db, runner, issue, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "BASE_URL", "file:///etc")  # a credential naming a file:// status list
    c = issue()
    (tmp_path / "c.json").write_text(json.dumps(c.credential))
    assert c.credential["credentialStatus"]["statusListCredential"].startswith("file:///etc/")
    result = certificates_cli(runner, "verify", "--online", str(tmp_path / "c.json"))
    assert result.exit_code == 1
    assert "not valid: status unavailable — refusing to fetch 'file:///etc/" in result.output
    assert "only http and https addresses are fetched" in result.output


def test_rotate_key_keeps_the_old_certificate_valid(app, db, runner, client, issue, own_keys, tmp_path):
    old = issue()
    old_key = old.credential["issuer"]["id"]
    result = certificates_cli(runner, "rotate-key")
    assert result.exit_code == 0, result.output
    keys = key_history(app)
    assert [k["id"] for k in keys][0] == old_key and keys[0]["retired"] is not None and keys[1]["retired"] is None
    assert result.output.splitlines()[0] == f"New signing key: {keys[1]['id']}"
    assert "PRIVATE" not in result.output and "BEGIN" not in result.output
    [entry] = entries(db, "signing_key.rotate")
    assert (entry.subject_type, entry.actor_label, entry.details) == (
        "signing_key",
        CLI,
        {"retired": old_key, "current": keys[1]["id"]},
    )
    verified = certificates_cli(runner, "verify", pdf_file(app, db, old, tmp_path / "old.pdf"))
    assert verified.exit_code == 0 and verified.output.startswith(f"valid — signed by {old_key}")
    with app.app_context():
        pdf = services.stored_pdf(db, old) or b""
    page = client.post("/verify", data={"file": (io.BytesIO(pdf), "old.pdf")}, content_type="multipart/form-data")
    assert page.status_code == 200 and "Valid credential" in page.get_data(as_text=True)
    assert issue("New Holder").credential["issuer"]["id"] == keys[1]["id"]  # new ones: the new key


def test_compromise_key_since_before_issuance_fails_what_it_signed(app, db, runner, client, issue, own_keys, tmp_path):
    c = issue()
    key = c.credential["issuer"]["id"]
    since = (c.issued_at - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    result = certificates_cli(runner, "compromise-key", key, "--since", since)
    assert result.exit_code == 0, result.output
    keys = key_history(app)
    assert keys[0]["id"] == key and keys[0]["compromisedSince"].startswith(since)
    assert keys[0]["retired"] is not None and keys[1]["retired"] is None  # the signing key was rotated
    assert f"Marked {key} compromised since {since}" in result.output and keys[1]["id"] in result.output
    [entry] = entries(db, "signing_key.compromise")
    assert entry.subject_type == "signing_key" and entry.details["key"] == key and entry.actor_label == CLI
    verified = certificates_cli(runner, "verify", pdf_file(app, db, c, tmp_path / "c.pdf"))
    assert verified.exit_code == 1 and verified.output.startswith("not valid: key compromised — signed on")
    page = client.post(
        "/verify", data={"file": ((tmp_path / "c.pdf").open("rb"), "c.pdf")}, content_type="multipart/form-data"
    )
    assert page.status_code == 422 and "Signed with a compromised key" in page.get_data(as_text=True)
    # The status lists it had signed are signed again, so certificates by the new key still check out.
    fresh = issue("New Holder")
    assert fresh.credential["issuer"]["id"] == keys[1]["id"]
    with app.app_context():
        assert signing.check(db, fresh.credential).ok
        pdf = services.stored_pdf(db, fresh) or b""
    page = client.post("/verify", data={"file": (io.BytesIO(pdf), "f.pdf")}, content_type="multipart/form-data")
    assert page.status_code == 200, page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("args", "argument", "words"),
    [
        (["did:key:z6MkNoSuchKeyAtAll", "--since", "2026-01-01"], "KEY_ID", "never used the key"),
        (["{key}", "--since", "31/01/2026"], "--since", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        (["{key}", "--since", "2026-02-30"], "--since", "YYYY-MM-DD"),
        (["{key}", "--since", "2999-01-01"], "--since", "in the future"),
    ],
    ids=["unknown-key", "format", "no-such-day", "future"],
)
def test_compromise_key_refuses_bad_input_and_changes_nothing(app, db, runner, issue, own_keys, args, argument, words):
    key = issue().credential["issuer"]["id"]
    before, history = counts(db), key_history(app)
    result = certificates_cli(runner, "compromise-key", *(a.format(key=key) for a in args))
    assert_refused(result, argument, words)
    assert counts(db) == before and key_history(app) == history


# ---------------------------------------------------------------- a real worker


def test_a_real_worker_issues_approvals_the_cli_queued(redis_db, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'approve.sqlite3'}"
    env = worker_env(db_url)
    migrated = run_flask(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    app = make_test_app(db_url, REDIS_URL=REDIS_URL)
    with app.app_context():
        session = get_session()
        import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
        user = make_user(session, email="queued@example.org")
        pending = services.new_certificate(session, user, course(session), Decimal("2"), utcnow())
        session.commit()
        pending_id = pending.id
    app.extensions["kaptrain.db"].engine.dispose()

    queued = run_flask(env, "certificates", "approve", "--all")
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert "Queued 1 approval(s) for the worker." in queued.stdout
    [job] = Queue(jobs.QUEUE, connection=redis_db).get_jobs()
    assert job.func_name == "kaptrain.certificates.tasks.approve_job" and job.args == (pending_id, CLI)

    worker = run_flask(env, "worker", "--burst")
    output = worker.stdout + worker.stderr
    assert worker.returncode == 0, output
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, number FROM certificates WHERE id = :id"), {"id": pending_id}).one()
        pdf = conn.execute(text("SELECT pdf FROM certificate_files WHERE certificate_id = :id"), {"id": pending_id})
        actor = conn.execute(text("SELECT actor_label FROM audit_log WHERE action = 'certificate.approve'")).scalar()
        pdf_bytes = pdf.scalar()
    engine.dispose()
    assert row.status == "active" and row.number.startswith("KAP-") and row.number.endswith(f"{pending_id:06d}")
    assert pdf_bytes[:5] == b"%PDF-" and actor == CLI
    assert "your certificate for" in output  # the "issued" email: a second job, queued after the approval's commit
    assert Queue(jobs.QUEUE, connection=redis_db).failed_job_registry.count == 0


def test_the_export_names_the_reason_for_fewer_hours_on_every_version_that_certifies_them(app, db, runner, issue):
    kept = issue("Corrected Later")
    with acting(app, db):
        newer = services.reissue(db, kept, actor_label="test", reason="Hours agreed", hours=Decimal("2"))
        renamed = services.reissue(db, newer, actor_label="test", reason="name corrected")
        restored = services.reissue(
            db, renamed, actor_label="test", reason="Offline reading shown", hours=Decimal("3.5")
        )
    rows = {r["number"]: r for r in read_csv(certificates_cli(runner, "export", "--since", "2000-01-01").stdout)}
    assert rows[kept.number]["hours_reduced_because"] == ""  # its own hours never changed
    assert rows[newer.number]["issue_reason"] == "Hours agreed"  # what changed, as the re-issue was told
    assert rows[newer.number]["hours_reduced_because"] == "Hours agreed"
    assert rows[newer.number]["hours_certified"] == "2.00" and rows[newer.number]["issued_by"] == "test"
    # A later version that carries the reduced hours carries its reason; one back at the hours claimed has none.
    assert rows[renamed.number]["hours_reduced_because"] == "Hours agreed"
    assert rows[renamed.number]["issue_reason"] == "name corrected"
    assert rows[restored.number]["hours_certified"] == "3.50" and rows[restored.number]["hours_reduced_because"] == ""
