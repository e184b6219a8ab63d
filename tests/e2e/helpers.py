"""Browser-test helpers: register, log in, read an attempt's answer key and move a learner on from the server side."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pyotp
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.certificates import services as certificates
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.db import utcnow
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, AttemptStatus, Quiz
from tests.factories import correct_answers, evaluation_answers

COURSE = "kap-foundations"

_seq = itertools.count(1)
PASSWORD = "browser test passphrase"


def register(page, name: str = "Robin Browser") -> str:  # type: ignore[no-untyped-def]
    """Create an account through the form; returns its email."""
    email = f"browser{next(_seq)}@example.org"
    page.goto("/register")
    page.get_by_label("Full name, as it should appear on your certificate").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Profession").select_option("Marriage and family therapist")
    page.get_by_label("Credential (optional, e.g. LPC, LCSW, PhD, MD, RN)").fill("LMFT")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # Registering answers "check your email" and logs nobody in (it must not reveal a known address).
    page.get_by_role("heading", name="Check your email").wait_for()
    log_in(page, email, PASSWORD)
    return email


def log_in(page, email: str, password: str, app: Flask | None = None) -> None:  # type: ignore[no-untyped-def]
    """Log in through the form; with the app, also type the code from the account's authenticator (staff)."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    if app is None or "/login/code" not in page.url:
        return
    totp = pyotp.TOTP(totp_secret(app, email))
    # A code works once: when another test logged this account in during the same 30-second step, the current
    # code is refused and the next step's is accepted (the server allows one step of clock drift); failing
    # that too, wait for the step to change.
    for attempt in range(3):
        if attempt == 2:
            time.sleep(30 - time.time() % 30 + 0.5)
        page.get_by_label("Code", exact=True).fill(totp.at(time.time() + (30 if attempt else 0)))
        page.get_by_role("button", name="Log in").click()
        if "/login/code" not in page.url:
            return
    raise AssertionError(f"{email}: the code from the authenticator was refused three times")


def totp_secret(app: Flask, email: str) -> str:
    """The account's TOTP secret, read from the live app's database (what the person's phone holds)."""
    session = app.extensions["kaptrain.db"].new_session()
    try:
        secret = session.scalar(select(User.totp_secret).where(User.email == email))
        assert secret, f"{email} has no two-factor secret"
        return secret
    finally:
        session.close()


def confirm_email(app: Flask, email: str) -> None:
    """Mark the learner's address confirmed, as following the emailed link does (the e2e app sends no mail)."""
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = session.scalars(select(User).where(User.email == email)).one()
        user.email_confirmed_at = utcnow()
        session.commit()
    finally:
        session.close()


def enrol_and_acknowledge(page) -> None:  # type: ignore[no-untyped-def]
    """Enrol in the KAP course and acknowledge its disclosures (lands on module 1)."""
    page.goto("/courses/kap-foundations")
    page.get_by_role("button", name="Enrol in this course").click()
    page.get_by_role("button", name="I have read and understood these disclosures").click()


def answer_key(app: Flask, email: str, right: bool = True) -> dict[int, list[int]]:
    """For the user's open attempt: item id -> shown positions to choose (the right or a wrong answer)."""
    database = app.extensions["kaptrain.db"]
    session = database.new_session()
    try:
        user = session.scalar(select(User).where(User.email == email))
        attempt = session.scalar(
            select(Attempt).where(Attempt.user_id == user.id, Attempt.status == AttemptStatus.OPEN)
        )
        key = {}
        for item in attempt.items:
            correct = {o["id"] for o in item.revision.options if o["correct"]}
            positions = [i for i, oid in enumerate(item.option_order) if (oid in correct) == right]
            key[item.id] = positions if right else positions[:1]
        return key
    finally:
        session.close()


@contextmanager
def _as_learner(app: Flask, email: str) -> Iterator[tuple[Session, User, completion.CourseRecord]]:
    """The live app's database as the learner with this email (enrolled in the KAP course); committed at the end."""
    with app.app_context():  # issuing a certificate reads settings, renders its PDF and emails after the commit
        session = app.extensions["kaptrain.db"].new_session()
        try:
            user = session.scalar(select(User).where(User.email == email))
            course = courses.get_course(session, COURSE)
            assert user is not None and course is not None
            enrolment = courses.get_enrolment(session, user.id, course.id)
            yield session, user, completion.course_record(session, user.id, course, enrolment)
            session.commit()
        finally:
            session.close()


def _pass(session: Session, user: User, quiz: Quiz) -> None:
    """Start an attempt through the real gate and submit the right answers."""
    enrolment = courses.get_enrolment(session, user.id, quiz.course_id)
    gate = completion.quiz_gate(completion.course_record(session, user.id, quiz.course, enrolment), quiz)
    attempt = quizzes.start_attempt(session, user.id, quiz, gate)
    quizzes.submit_attempt(session, attempt, correct_answers(attempt))


def complete_requirements(app: Flask, email: str) -> None:
    """Open every module, read it for its estimated time (as its heartbeats would credit it) and pass its quiz (or
    mark it read), then pass the final assessment: quickly, no browser."""
    with _as_learner(app, email) as (session, user, record):
        for status in record.modules:
            status.progress = courses.open_module(session, user.id, status.module)
            status.progress.seat_seconds = status.revision.estimated_minutes * 60
            if status.quiz is None:
                courses.mark_read(session, status)
            else:
                _pass(session, user, status.quiz)
        assert record.final is not None
        _pass(session, user, record.final)


def submit_evaluation(app: Flask, email: str) -> None:
    """Submit a favourable course evaluation for a learner who met the requirements."""
    with _as_learner(app, email) as (session, _user, record):
        certificates.submit_evaluation(session, record, evaluation_answers(record.course))


def attest(app: Flask, email: str, hours: str = "7.5") -> str:
    """Make the attestation and have the certificate issued; returns the path of its verification page."""
    with _as_learner(app, email) as (session, user, record):
        certificate = certificates.attest(session, record, user, Decimal(hours))
        return f"/verify/{certificate.code}"
