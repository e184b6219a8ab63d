"""The database itself refuses every row that breaks an invariant the code relies on (SQLite and PostgreSQL).

Each case takes a valid row, made as the site makes it, and writes one wrong value straight into the database
with SQL, past every service check, as a bug, a hand edit or a half-done import would. The database must refuse
it with IntegrityError naming the constraint, and the row must stay as it was. Cases that differ only slightly
from a refused one are written too and must be accepted, so no constraint is broader than its rule (a revoked
certificate plus a new active one; an open attempt beside graded ones). docs/architecture.md, "Data integrity",
lists the invariants; `test_models_and_database_have_the_same_checks` keeps models and migrations in step, which
`flask db check` cannot do for CHECK constraints.

Run: .venv/bin/pytest tests/test_constraints.py (add TEST_DATABASE_URL=postgresql+psycopg://... for PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import CheckConstraint, Index, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain.accounts.models import AccountToken, TokenPurpose, User
from kaptrain.authoring.models import Draft, Upload
from kaptrain.certificates.models import (
    Attestation,
    Certificate,
    CertificateStatus,
    Evaluation,
    RevocationReason,
    StatusList,
)
from kaptrain.content.models import Module, ModuleRevision
from kaptrain.courses import services as courses
from kaptrain.db import utcnow
from kaptrain.models import Base
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import (
    AccommodationChange,
    Attempt,
    AttemptItem,
    Question,
    QuestionRevision,
    QuizSettingsRevision,
    Vignette,
    VignetteRevision,
)
from tests.factories import course, enrolled, make_user, pass_quiz, quiz, start

NOW = dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC)


class Rows:
    """The valid rows a case starts from, each made on first use within the test's transaction."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self._made: dict[str, Any] = {}
        self._serial = 0

    def get(self, name: str) -> Any:
        """The row called name (see the builders below)."""
        if name not in self._made:
            self._made[name] = getattr(self, f"_{name}")()
        return self._made[name]

    def _learner(self) -> User:
        user = make_user(self.db)
        enrolled(self.db, user)
        return user

    def _other_learner(self) -> User:
        return self._learner()

    def _enrolment(self) -> Any:
        return courses.get_enrolment(self.db, self.get("learner").id, course(self.db).id)

    def _graded_attempt(self) -> Attempt:
        return pass_quiz(self.db, self.get("learner"), "alpha-quiz")

    def _open_attempt(self) -> Attempt:
        self.get("graded_attempt")  # beta opens once alpha is passed
        beta = quiz(self.db, "beta-quiz")
        assert beta.module is not None
        courses.open_module(self.db, self.get("learner").id, beta.module)
        return start(self.db, self.get("learner"), beta)

    def _item(self) -> AttemptItem:
        return self.get("graded_attempt").items[0]

    def _progress(self) -> Any:
        return courses.open_module(self.db, self.get("learner").id, quiz(self.db, "alpha-quiz").module)

    def _accommodation(self) -> Any:
        admin = make_user(self.db)
        return quizzes.grant_accommodation(self.db, self.get("learner").id, quiz(self.db, "alpha-quiz"), 10, 1,
                                           "Documented need", admin.id)  # fmt: skip

    def _accommodation_change(self) -> AccommodationChange:
        return self.get("accommodation").changes[0]

    def _token(self) -> AccountToken:
        return self._add(AccountToken(user_id=self.get("learner").id, purpose=TokenPurpose.CONFIRM_EMAIL,
                                      token_hash="ab" * 32, email="x@example.org", password_stamp="s",
                                      expires_at=NOW))  # fmt: skip

    def _evaluation(self) -> Evaluation:
        return self._add(Evaluation(user_id=self.get("learner").id, course_id=course(self.db).id, objectives_met={},
                                    relevance=4, quality=5, overall=4, free_of_bias=True))  # fmt: skip

    def _attestation(self) -> Attestation:
        return self._add(Attestation(user_id=self.get("learner").id, course_id=course(self.db).id, statement="s",
                                     hours_claimed=Decimal("3.5"), active_seconds=600))  # fmt: skip

    def certificate(self, status: CertificateStatus = CertificateStatus.ACTIVE, **values: Any) -> Certificate:
        """A certificate of the learner's, valid in the given status (issued ones numbered and dated)."""
        issued = status != CertificateStatus.PENDING
        self._serial += 1
        row = Certificate(
            code=f"constraints-{self._serial}-{utcnow().timestamp()}", user_id=self.get("learner").id,
            course_id=course(self.db).id, status=status, holder_name="Dana", course_title="t", hours=Decimal("3.5"),
            max_hours=Decimal("4"), delivery_format="d", provider="p", signatory_name="s", signatory_title="t",
            completed_at=NOW, issued_at=NOW if issued else None,
            number=f"CONSTRAINTS-{self._serial}-{utcnow().timestamp()}" if issued else None,
            revoked_at=NOW if status == CertificateStatus.REVOKED else None,
            revocation_reason=RevocationReason.OTHER if status == CertificateStatus.REVOKED else None,
            superseded_at=NOW if status == CertificateStatus.SUPERSEDED else None,
        )  # fmt: skip
        for name, value in values.items():
            setattr(row, name, value)
        return self._add(row)

    def _active_certificate(self) -> Certificate:
        return self.certificate()

    def _status_list(self) -> StatusList:
        return self._add(StatusList(number=90_000, encoded="u", credential={}))

    def _draft(self) -> Draft:
        module = self.db.scalars(select(Module).order_by(Module.id)).first()
        assert module is not None
        return self._add(Draft(course_id=module.course_id, module_id=module.id, data={}))

    def _upload(self) -> Upload:
        return self._add(Upload(stored_name="constraints-test.png", original_name="x.png", content_type="image/png",
                                size_bytes=10, width=2, height=2, sha256="0" * 64))  # fmt: skip

    def _course(self) -> Any:
        return course(self.db)

    def _module(self) -> Module:
        return self.db.scalars(select(Module).order_by(Module.id)).first()

    def _question(self) -> Question:
        return self.db.scalars(select(Question).order_by(Question.id)).first()

    def _vignette(self) -> Vignette:
        return self.db.scalars(select(Vignette).order_by(Vignette.id)).first()

    def _module_revision(self) -> ModuleRevision:
        return self.db.scalars(select(ModuleRevision).order_by(ModuleRevision.id)).first()

    def _quiz(self) -> Any:
        return quiz(self.db, "alpha-quiz")

    def _quiz_settings(self) -> QuizSettingsRevision:
        return quiz(self.db, "alpha-quiz").settings

    def _question_revision(self) -> QuestionRevision:
        return self.db.scalars(select(QuestionRevision).order_by(QuestionRevision.id)).first()

    def _vignette_revision(self) -> VignetteRevision:
        return self.db.scalars(select(VignetteRevision).order_by(VignetteRevision.id)).first()

    def _add(self, row: Any) -> Any:
        self.db.add(row)
        self.db.flush()
        return row


@dataclass(frozen=True)
class Case:
    """One wrong value written into one valid row, and the constraint that must refuse it."""

    row: str  # a Rows builder
    change: str  # the SQL SET clause; :other is another row's id where a case needs one
    constraint: str  # what PostgreSQL names ("a|b": either); SQLite names CHECKs too, UNIQUE by columns
    sqlite_says: str | None = None  # what SQLite reports instead, where it does not name the constraint


TABLES = {
    "learner": "users", "enrolment": "enrolments", "token": "account_tokens", "course": "courses",
    "module": "modules", "question": "questions", "vignette": "vignettes", "module_revision": "module_revisions",
    "progress": "module_progress", "quiz": "quizzes", "quiz_settings": "quiz_settings_revisions",
    "question_revision": "question_revisions", "vignette_revision": "vignette_revisions",
    "graded_attempt": "attempts", "open_attempt": "attempts", "item": "attempt_items",
    "accommodation": "accommodations", "accommodation_change": "accommodation_changes", "evaluation": "evaluations",
    "attestation": "attestations", "active_certificate": "certificates", "status_list": "status_lists",
    "draft": "drafts", "upload": "uploads",
}  # fmt: skip
KEYS = {"status_list": "number"}

CASES = {
    # accounts
    "role outside the list": Case("learner", "role = 'superuser'", "ck_users_role"),
    "session version 0": Case("learner", "session_version = 0", "ck_users_session_version"),
    "two factor on without a secret": Case(
        "learner", "totp_enabled_at = CURRENT_TIMESTAMP, totp_secret = NULL", "ck_users_totp_secret"
    ),
    "an email address taken": Case("learner", "email = :other_email", "uq_users_email",
                                   "UNIQUE constraint failed: users.email"),  # fmt: skip
    "enrolled twice": Case("enrolment", "user_id = :other_learner", "uq_enrolments_user_id_course_id",
                           "UNIQUE constraint failed: enrolments.user_id, enrolments.course_id"),
    "token purpose unknown": Case("token", "purpose = 'login'", "ck_account_tokens_purpose"),
    # content and rules
    "course with no CE hours": Case("course", "ce_hours = 0", "ck_courses_ce_hours"),
    "course pass mark 0": Case("course", "passing_score = 0", "ck_courses_passing_score"),
    "course pass mark 101": Case("course", "passing_score = 101", "ck_courses_passing_score"),
    "reading share over 100": Case("course", "min_reading_percent = 101", "ck_courses_min_reading_percent"),
    "approval mode unknown": Case("course", "certificate_approval = 'sometimes'", "ck_courses_certificate_approval"),
    "validity of 0 months": Case(
        "course", "certificate_validity_months = 0", "ck_courses_certificate_validity_months"
    ),
    # an item points at revisions of its own only
    "published revision of another module": Case(
        "module", "published_revision_id = (SELECT min(id) FROM module_revisions WHERE module_id <> modules.id)",
        "fk_modules_published_revision_id_module_revisions", "FOREIGN KEY constraint failed",
    ),
    "file revision of another module": Case(
        "module", "file_revision_id = (SELECT min(id) FROM module_revisions WHERE module_id <> modules.id)",
        "fk_modules_file_revision_id_module_revisions", "FOREIGN KEY constraint failed",
    ),
    "published revision of another question": Case(
        "question",
        "published_revision_id = (SELECT min(id) FROM question_revisions WHERE question_id <> questions.id)",
        "fk_questions_published_revision_id_question_revisions", "FOREIGN KEY constraint failed",
    ),
    "published text of another case": Case(
        "vignette",
        "published_revision_id = (SELECT min(id) FROM vignette_revisions WHERE vignette_id <> vignettes.id)",
        "fk_vignettes_published_revision_id_vignette_revisions", "FOREIGN KEY constraint failed",
    ),
    "published rules of another quiz": Case(
        "quiz", "published_revision_id = (SELECT min(id) FROM quiz_settings_revisions WHERE quiz_id <> quizzes.id)",
        "fk_quizzes_published_revision_id_quiz_settings_revisions", "FOREIGN KEY constraint failed",
    ),
    "attempt under another quiz's rules": Case(
        "graded_attempt",
        "settings_id = (SELECT min(id) FROM quiz_settings_revisions WHERE quiz_id <> attempts.quiz_id)",
        "fk_attempts_settings_id_quiz_settings_revisions", "FOREIGN KEY constraint failed",
    ),
    "module revision 0": Case("module_revision", "number = 0", "ck_module_revisions_number"),
    "module of 0 minutes": Case("module_revision", "estimated_minutes = 0", "ck_module_revisions_estimated_minutes"),
    "quiz kind unknown": Case("quiz", "kind = 'midterm'", "ck_quizzes_kind"),
    "rules revision 0": Case("quiz_settings", "number = 0", "ck_quiz_settings_revisions_number"),
    "draw of 0": Case("quiz_settings", "draw = 0", "ck_quiz_settings_revisions_draw"),
    "quiz pass mark 101": Case("quiz_settings", "passing_score = 101", "ck_quiz_settings_revisions_passing_score"),
    "no attempts allowed": Case("quiz_settings", "max_attempts = 0", "ck_quiz_settings_revisions_max_attempts"),
    "negative cooldown": Case("quiz_settings", "cooldown_hours = -1", "ck_quiz_settings_revisions_cooldown_hours"),
    "time limit 0": Case("quiz_settings", "time_limit_minutes = 0", "ck_quiz_settings_revisions_time_limit_minutes"),
    "reveal policy unknown": Case(
        "quiz_settings", "reveal_answers = 'sometimes'", "ck_quiz_settings_revisions_reveal_answers"
    ),
    "question revision 0": Case("question_revision", "number = 0", "ck_question_revisions_number"),
    "question type unknown": Case("question_revision", "type = 'essay'", "ck_question_revisions_type"),
    "case revision 0": Case("vignette_revision", "number = 0", "ck_vignette_revisions_number"),
    "draft version 0": Case("draft", "version = 0", "ck_drafts_version"),
    "draft of two items": Case("draft", "quiz_id = (SELECT min(id) FROM quizzes)", "ck_drafts_one_item"),
    "empty upload": Case("upload", "size_bytes = 0", "ck_uploads_size"),
    # the learner's path
    "negative seat time": Case("progress", "seat_seconds = -1", "ck_module_progress_seat_seconds"),
    # An unknown status breaks two rules at once; PostgreSQL names whichever it checks first.
    "status unknown": Case("graded_attempt", "status = 'lost'", "ck_attempts_status|ck_attempts_open_or_graded"),
    "graded without a score": Case("graded_attempt", "score = NULL", "ck_attempts_open_or_graded"),
    "graded without a pass flag": Case("graded_attempt", "passed = NULL", "ck_attempts_open_or_graded"),
    "graded without a time": Case("graded_attempt", "submitted_at = NULL", "ck_attempts_open_or_graded"),
    "claimed but not graded": Case("open_attempt", "status = 'submitted', submitted_at = CURRENT_TIMESTAMP",
                                   "ck_attempts_open_or_graded"),  # fmt: skip
    "open with a score": Case("open_attempt", "score = 50", "ck_attempts_open_or_graded"),
    "reopened with its result": Case("graded_attempt", "status = 'open'", "ck_attempts_open_or_graded"),
    "score over 100": Case("graded_attempt", "score = 100.5", "ck_attempts_score"),
    "negative score": Case("graded_attempt", "score = -1, passed = false", "ck_attempts_score"),
    "pass flag against the score": Case("graded_attempt", "passed = false", "ck_attempts_passed_by_score"),
    "pass mark raised past the score": Case("graded_attempt", "passing_score = 100, score = 99",
                                            "ck_attempts_passed_by_score"),  # fmt: skip
    "attempt pass mark 0": Case("graded_attempt", "passing_score = 0, passed = true", "ck_attempts_passing_score"),
    "attempt number 0": Case("graded_attempt", "number = 0", "ck_attempts_number"),
    "negative quiz time": Case("graded_attempt", "active_seconds = -1", "ck_attempts_active_seconds"),
    "attempt number taken": Case("open_attempt", "quiz_id = :quiz, number = :number",
                                 "uq_attempts_user_id_quiz_id_number",
                                 "UNIQUE constraint failed: attempts.user_id, attempts.quiz_id, attempts.number"),
    "second open attempt": Case("graded_attempt", "status = 'open', submitted_at = NULL, score = NULL, passed = NULL,"
                                " quiz_id = :open_quiz, number = 99", "uq_attempts_one_open",
                                "UNIQUE constraint failed: attempts.user_id, attempts.quiz_id"),
    "attempt of nobody": Case("graded_attempt", "user_id = 999999999", "fk_attempts_user_id_users",
                              "FOREIGN KEY constraint failed"),
    "attempt without its rules": Case("graded_attempt", "settings_id = NULL", "settings_id",
                                      "NOT NULL constraint failed: attempts.settings_id"),
    "item position -1": Case("item", "position = -1", "ck_attempt_items_position"),
    "credit over one mark": Case("item", "credit = 1.5", "ck_attempt_items_credit"),
    "negative credit": Case("item", "credit = -0.5", "ck_attempt_items_credit"),
    "two answers in one place": Case("item", "position = position + 1", "uq_attempt_items_attempt_id_position",
                                     "UNIQUE constraint failed: attempt_items.attempt_id, attempt_items.position"),
    "two records of one module": Case("progress", "module_id = :other_module", "uq_module_progress_user_id_module_id",
                           "UNIQUE constraint failed: module_progress.user_id, module_progress.module_id"),
    "negative extra time": Case("accommodation", "extra_minutes = -5", "ck_accommodations_extra_minutes"),
    "negative extra attempts": Case("accommodation", "extra_attempts = -1", "ck_accommodations_extra_attempts"),
    "accommodation action unknown": Case("accommodation_change", "action = 'deleted'",
                                         "ck_accommodation_changes_action"),
    # certificates
    "rating of 6": Case("evaluation", "relevance = 6", "ck_evaluations_ratings"),
    "rating of 0": Case("evaluation", "overall = 0", "ck_evaluations_ratings"),
    "no hours claimed": Case("attestation", "hours_claimed = 0", "ck_attestations_hours_claimed"),
    "negative attested time": Case("attestation", "active_seconds = -1", "ck_attestations_active_seconds"),
    "certificate status unknown": Case("active_certificate", "status = 'lost'", "ck_certificates_status"),
    "issued without a number": Case("active_certificate", "number = NULL", "ck_certificates_issued"),
    "issued without a date": Case("active_certificate", "issued_at = NULL", "ck_certificates_issued"),
    "revoked without a time": Case("active_certificate", "status = 'revoked', revocation_reason = 'other'",
                                   "ck_certificates_revoked"),  # fmt: skip
    "revoked without a reason": Case("active_certificate", "status = 'revoked', revoked_at = CURRENT_TIMESTAMP",
                                     "ck_certificates_revoked"),  # fmt: skip
    "active with a revocation": Case("active_certificate", "revoked_at = CURRENT_TIMESTAMP",
                                     "ck_certificates_revoked"),  # fmt: skip
    "revocation reason unknown": Case(
        "active_certificate",
        "status = 'revoked', revoked_at = CURRENT_TIMESTAMP, revocation_reason = 'bored'",
        "ck_certificates_revocation_reason",
    ),
    "superseded without a time": Case("active_certificate", "status = 'superseded'", "ck_certificates_superseded"),
    "active with a supersession time": Case("active_certificate", "superseded_at = CURRENT_TIMESTAMP",
                                            "ck_certificates_superseded"),  # fmt: skip
    "no hours certified": Case("active_certificate", "hours = 0", "ck_certificates_hours"),
    "more hours than the course": Case("active_certificate", "hours = max_hours + 1", "ck_certificates_hours"),
    "certificate of nobody": Case("active_certificate", "user_id = 999999999", "fk_certificates_user_id_users",
                                  "FOREIGN KEY constraint failed"),
    "status list -1": Case("status_list", "number = -1", "ck_status_lists_number"),
}  # fmt: skip


def other_values(db: Session, rows: Rows) -> dict[str, Callable[[], Any]]:
    """Values a case takes from another valid row (made only when the case names them)."""
    graded: Callable[[], Attempt] = lambda: rows.get("graded_attempt")  # noqa: E731
    return {
        "quiz": lambda: graded().quiz_id,
        "number": lambda: graded().number,
        "open_quiz": lambda: rows.get("open_attempt").quiz_id,
        "other_module": lambda: courses.open_module(db, rows.get("learner").id, quiz(db, "beta-quiz").module).module_id,
        "other_email": lambda: rows.get("other_learner").email,
        "other_learner": lambda: rows.get("other_learner").id,
    }


def refused(db: Session, sql: str, params: dict[str, Any]) -> str:
    """Run one statement in a savepoint; the database's refusal in its own words (fails if it was accepted)."""
    with pytest.raises(IntegrityError) as error, db.begin_nested():
        db.execute(text(sql), params)
    return str(error.value.orig)


@pytest.fixture
def rows(db: Session) -> Rows:
    """Valid rows to break, made lazily in the test's transaction."""
    return Rows(db)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_database_refuses_a_row_that_breaks_an_invariant(db: Session, rows: Rows, case: Case) -> None:
    row = rows.get(case.row)
    table, key = TABLES[case.row], KEYS.get(case.row, "id")
    params: dict[str, Any] = {"key": getattr(row, key)}
    params.update({name: value() for name, value in other_values(db, rows).items() if f":{name}" in case.change})
    before = db.execute(text(f"SELECT * FROM {table} WHERE {key} = :key"), params).one()  # noqa: S608
    message = refused(db, f"UPDATE {table} SET {case.change} WHERE {key} = :key", params)  # noqa: S608
    sqlite = db.get_bind().dialect.name == "sqlite"
    expected = case.sqlite_says if sqlite and case.sqlite_says else case.constraint
    assert any(name in message for name in expected.split("|")), message
    assert db.execute(text(f"SELECT * FROM {table} WHERE {key} = :key"), params).one() == before  # noqa: S608


def insert_certificate(db: Session, rows: Rows, status: CertificateStatus, **values: Any) -> Callable[[], Any]:
    """A second certificate of the same learner and course, written in a savepoint when called."""

    def write() -> Any:
        with db.begin_nested():
            return rows.certificate(status, **values)

    return write


@pytest.mark.parametrize("status", [CertificateStatus.ACTIVE, CertificateStatus.PENDING])
@pytest.mark.parametrize("current", [CertificateStatus.ACTIVE, CertificateStatus.PENDING])
def test_one_certificate_in_force_or_waiting_per_learner_and_course(
    db: Session, rows: Rows, current: CertificateStatus, status: CertificateStatus
) -> None:
    rows.certificate(current)
    with pytest.raises(IntegrityError) as error:
        insert_certificate(db, rows, status)()
    message = str(error.value.orig)
    assert "uq_certificates_one_current" in message or "certificates.user_id, certificates.course_id" in message
    learner = rows.get("learner")
    count = db.scalar(text("SELECT count(*) FROM certificates WHERE user_id = :u"), {"u": learner.id})
    assert count == 1


@pytest.mark.parametrize("earlier", [CertificateStatus.REVOKED, CertificateStatus.SUPERSEDED])
def test_a_new_certificate_may_follow_a_revoked_or_superseded_one(
    db: Session, rows: Rows, earlier: CertificateStatus
) -> None:
    old = rows.certificate(earlier)
    new = insert_certificate(db, rows, CertificateStatus.ACTIVE, supersedes_id=old.id)()
    assert (old.status, new.status) == (earlier, CertificateStatus.ACTIVE)


def test_a_certificate_is_replaced_by_one_reissue_at_most(db: Session, rows: Rows) -> None:
    old = rows.certificate(CertificateStatus.SUPERSEDED)
    rows.certificate(CertificateStatus.SUPERSEDED, supersedes_id=old.id)
    with pytest.raises(IntegrityError) as error:
        insert_certificate(db, rows, CertificateStatus.ACTIVE, supersedes_id=old.id)()
    message = str(error.value.orig)
    assert "uq_certificates_supersedes_id" in message or "certificates.supersedes_id" in message


def test_an_open_attempt_may_sit_beside_graded_ones_and_be_graded(db: Session, rows: Rows) -> None:
    """The refusals above are narrow: the states the site writes are all accepted, through grading itself."""
    attempt = rows.get("open_attempt")
    assert attempt.score is None and attempt.submitted_at is None
    graded = quizzes.submit_attempt(db, attempt, {f"q-{i.id}": ["0"] for i in attempt.items}, utcnow())
    db.flush()
    assert graded.status.value == "submitted" and graded.score is not None and graded.passed is not None
    assert graded.passed == (graded.score >= graded.passing_score)
    assert all(item.credit is not None for item in graded.items)


def test_models_and_database_have_the_same_checks(app: Flask) -> None:
    """Every named CHECK and unique partial index of the models is in the migrated database and no other: Alembic's
    `db check` compares columns and indexes but not CHECK constraints, so this keeps migrations honest."""
    inspector = inspect(app.extensions["kaptrain.db"].engine)
    for table in Base.metadata.sorted_tables:
        model = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        database = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert database == model, table.name
        unique = {i.name for i in table.indexes if isinstance(i, Index) and i.unique}
        assert unique <= {i["name"] for i in inspector.get_indexes(table.name) if i["unique"]}, table.name
    named = {c["name"] for c in inspector.get_check_constraints("attempts")}
    assert {"ck_attempts_open_or_graded", "ck_attempts_passed_by_score"} <= named
    assert "uq_certificates_one_current" in {i["name"] for i in inspector.get_indexes("certificates")}
