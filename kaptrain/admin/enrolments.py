"""Enrolments made by an administrator for someone (an employer's or a team's place in a course)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.accounts import mailer
from kaptrain.accounts.models import User
from kaptrain.content.models import Course
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment


def refusal(session: Session, person: User, course: Course | None) -> str | None:
    """Why the person (an account not closed) cannot be enrolled in the course, in words; None when they can."""
    if not person.is_active:
        return "Only an active account can be enrolled: reactivate it first."
    if course is None:
        return "Choose one of the published courses listed."
    if courses.get_enrolment(session, person.id, course.id) is not None:
        return f"{person.full_name} is already enrolled in “{course.title}”."
    return None


def enrol_for(session: Session, person: User, course: Course, actor: User) -> Enrolment:
    """Enrol the person, audited as enrolment.create with the administrator as actor, and email them the course's
    address. The course's disclosures are still theirs to read and acknowledge before its first module."""
    enrolment = courses.enrol(session, person.id, course)
    audit.record(session, "enrolment.create", "user", person.id, actor_id=actor.id, course=course.slug)
    mailer.enrolled_by_staff(person, course)
    return enrolment
