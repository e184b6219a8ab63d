"""Factory helpers: each creates a row, flushes, never commits."""

from __future__ import annotations

import itertools

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role, User
from kaptrain.content.models import Course
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, Quiz
from tests.conftest import PASSWORD

_seq = itertools.count(1)


def make_user(
    session: Session,
    role: Role = Role.LEARNER,
    email: str | None = None,
    full_name: str = "Dana Example, LCSW",
    password: str = PASSWORD,
) -> User:
    """Create an account."""
    email = email or f"user{next(_seq)}@example.org"
    return accounts.create_user(
        session, email, password, accounts.Profile(full_name=full_name, profession="Social worker"), role
    )


def course(session: Session, slug: str = "demo-course") -> Course:
    """The fixture course loaded for the session."""
    found = session.scalar(select(Course).where(Course.slug == slug))
    assert found is not None
    return found


def quiz(session: Session, slug: str) -> Quiz:
    """A fixture quiz by slug."""
    found = session.scalar(select(Quiz).where(Quiz.slug == slug))
    assert found is not None
    return found


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


def pass_quiz(session: Session, user: User, slug: str) -> Attempt:
    """Start and pass a quiz."""
    attempt = quizzes.start_attempt(session, user.id, quiz(session, slug))
    return quizzes.submit_attempt(session, attempt, correct_answers(attempt))
