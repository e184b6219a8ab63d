"""Factory helpers: each creates a row, flushes, never commits."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role, User
from kaptrain.activity import ActivityClock
from kaptrain.audit import AuditEntry
from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import Attestation, Certificate, CertificateFile, Evaluation
from kaptrain.certificates.services import EvaluationAnswers
from kaptrain.content import revisions
from kaptrain.content.models import Course
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, AttemptItem, Quiz
from tests.conftest import PASSWORD

_seq = itertools.count(1)


def make_user(
    session: Session,
    role: Role = Role.LEARNER,
    email: str | None = None,
    full_name: str = "Dana Example",
    password: str = PASSWORD,
    confirmed: bool = True,
) -> User:
    """Create an account, its email address confirmed unless confirmed=False."""
    email = email or f"user{next(_seq)}@example.org"
    return accounts.create_user(
        session,
        email,
        password,
        accounts.Profile(full_name=full_name, profession="Social worker"),
        role,
        confirmed=confirmed,
    )


def course(session: Session, slug: str = "demo-course") -> Course:
    """The fixture course loaded for the session."""
    found = session.scalar(select(Course).where(Course.slug == slug))
    assert found is not None
    return found


def quiz(session: Session, slug: str, course_slug: str = "demo-course") -> Quiz:
    """A fixture quiz by slug."""
    found = session.scalar(select(Quiz).join(Course).where(Quiz.slug == slug, Course.slug == course_slug))
    assert found is not None
    return found


def set_rules(session: Session, q: Quiz, **changes: object) -> Quiz:
    """Publish a new revision of the quiz's rules with these changes (as an instructor's edit would)."""
    data = {**revisions.revision_data(revisions.QUIZ, q.settings), **changes}
    revisions.publish(q, revisions.add_revision(session, q, revisions.revision_values(revisions.QUIZ, data), None))
    session.flush()
    session.refresh(q)
    return q


def record(session: Session, user: User, course_slug: str = "demo-course") -> completion.CourseRecord:
    """The learner's record in a course, from the one completion rule."""
    c = course(session, course_slug)
    return completion.course_record(session, user.id, c, courses.get_enrolment(session, user.id, c.id))


def start(session: Session, user: User, q: Quiz) -> Attempt:
    """Start an attempt through the real gate (raises QuizError when the learner may not take it)."""
    gate = completion.quiz_gate(record(session, user, q.course.slug), q)
    return quizzes.start_attempt(session, user.id, q, gate)


def enrolled(session: Session, user: User, acknowledged: bool = True) -> Enrolment:
    """Enrol the user in the fixture course, disclosures acknowledged by default."""
    enrolment = courses.enrol(session, user.id, course(session))
    if acknowledged:
        courses.acknowledge_disclosures(session, enrolment)
    return enrolment


def correct_answers(attempt: Attempt, right: bool = True) -> dict[str, list[str]]:
    """A form answering every question in the attempt correctly (or every one wrongly)."""
    form = {}
    for item in attempt.items:
        opts = item.revision.options
        chosen = [o["id"] for o in opts if bool(o["correct"]) == right]
        form[f"q-{item.id}"] = quizzes.form_for(item, chosen if right else chosen[:1])
    return form


def pass_quiz(session: Session, user: User, slug: str, course_slug: str = "demo-course") -> Attempt:
    """Open the quiz's module (as a learner must), then start and pass the quiz."""
    q = quiz(session, slug, course_slug)
    if q.module is not None:
        courses.open_module(session, user.id, q.module)
    attempt = start(session, user, q)
    return quizzes.submit_attempt(session, attempt, correct_answers(attempt))


def purge_user(session: Session, user_id: int) -> None:
    """Delete a user committed by a test and every record of theirs (CE records RESTRICT a plain delete)."""
    attempts = select(Attempt.id).where(Attempt.user_id == user_id)
    held = select(Certificate.id).where(Certificate.user_id == user_id)
    for stmt in (
        delete(AuditEntry).where(
            (AuditEntry.actor_id == user_id)
            | ((AuditEntry.subject_type == "certificate") & AuditEntry.subject_id.in_(held))
        ),
        delete(CertificateFile).where(CertificateFile.certificate_id.in_(held)),
        update(Certificate).where(Certificate.user_id == user_id).values(supersedes_id=None),
        delete(Certificate).where(Certificate.user_id == user_id),
        delete(Attestation).where(Attestation.user_id == user_id),
        delete(Evaluation).where(Evaluation.user_id == user_id),
        delete(AttemptItem).where(AttemptItem.attempt_id.in_(attempts)),
        delete(Attempt).where(Attempt.user_id == user_id),
        delete(ActivityClock).where(ActivityClock.user_id == user_id),
        delete(ModuleProgress).where(ModuleProgress.user_id == user_id),
        delete(Enrolment).where(Enrolment.user_id == user_id),
        delete(User).where(User.id == user_id),
    ):
        # On the connection, not the session: the application refuses to delete audit entries (kaptrain.audit
        # guards ORM execution); only this cleanup of rows a test committed goes around it.
        session.connection().execute(stmt)


def complete_learning(session: Session, user: User) -> completion.CourseRecord:
    """Take the learner through every module and the final assessment of the fixture course."""
    for slug in ("alpha-quiz", "beta-quiz"):
        pass_quiz(session, user, slug)
    gamma = record(session, user).modules[2]
    gamma.progress = courses.open_module(session, user.id, gamma.module)
    courses.mark_read(session, gamma)
    pass_quiz(session, user, "demo-final")
    return record(session, user)


def evaluation_answers(course: Course) -> EvaluationAnswers:
    """A complete, favourable course evaluation."""
    objectives = {o["id"]: "met" for o in course.objectives}
    return EvaluationAnswers(objectives, 4, 5, 4, True, evidence_balanced="yes", hours_spent=Decimal("3.5"))


def holders_pdf(app: Flask, session: Session, user: User) -> tuple[Certificate, str]:
    """The learner's certificate, issued (see `certified`) and committed, and the address of its PDF."""
    with app.app_context():
        certificate = certified(session, user)
        session.commit()
    return certificate, f"/certificates/{certificate.id}.pdf"


def certified(session: Session, user: User, hours: str = "3.5") -> Certificate:
    """Complete the fixture course, evaluate, attest and get the certificate."""
    done = complete_learning(session, user)
    certificates.submit_evaluation(session, done, evaluation_answers(done.course))
    return certificates.attest(session, record(session, user), user, Decimal(hours))


def forged(token: str) -> str:
    """A signed token ("payload.timestamp.signature") with its signature's first character changed: always a
    different signature (changing its last characters may not be, since base64 ignores their last bits)."""
    body, signature = token.rsplit(".", 1)
    return f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def run_at_once(count: int, action: Callable[[], object]) -> list[BaseException]:
    """Run `action` in `count` threads released together (a barrier); the errors they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            action()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors
