"""Instructor pages: each learner's standing in a course, and the course's evaluation summary (read-only)."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain import csvout
from kaptrain.accounts.models import Role, User
from kaptrain.admin.charts import bar_chart
from kaptrain.auth import role_required
from kaptrain.certificates.transcript import build_transcript
from kaptrain.content.models import Course
from kaptrain.courses.models import Enrolment
from kaptrain.db import get_session, utcnow
from kaptrain.errors import fail
from kaptrain.instructor import evaluations, oversight

bp = Blueprint("instructor", __name__, url_prefix="/instructor")
bp.add_app_template_global(bar_chart, "bar_chart")  # the item-analysis page draws its chart with it too

PER_PAGE = 50


def _course_or_404(slug: str) -> Course:
    course = get_session().scalar(select(Course).where(Course.slug == slug))
    if course is None:
        fail(404, "There is no course at this address.")
    return course


def _list_filters() -> tuple[bool, str, str]:
    """The learner list's filters from the query string: stuck only, step, and a part of a name or email."""
    name = " ".join(request.args.get("name", "").split())[:200]
    return request.args.get("stuck") == "1", request.args.get("step", ""), name


@bp.route("/courses/<slug>/learners")
@role_required(Role.INSTRUCTOR)
def learners(slug: str) -> ResponseReturnValue:
    """Where each learner stands: step, last activity, attempts on the current quiz, stuck or not."""
    course = _course_or_404(slug)
    stuck_only, step, name = _list_filters()
    page = request.args.get("page", 1, type=int) or 1
    found = oversight.overview(get_session(), course, stuck_only, step, page, PER_PAGE, name=name)
    return render_template(
        "instructor/learners.html",
        course=course,
        rows=found.rows,
        total=found.total,
        matching=found.matching,
        stuck_total=found.stuck_total,
        steps=found.steps,
        stuck_only=stuck_only,
        step=step,
        name=name,
        page=found.page,
        pages=found.pages,
        args={k: v for k, v in request.args.items() if k != "page" and v},
        now=utcnow(),
    )


@bp.route("/courses/<slug>/learners.csv")
@role_required(Role.INSTRUCTOR)
def learners_csv(slug: str) -> ResponseReturnValue:
    """The learner list as CSV, with the same filters as the page (name or email, step, stuck only), streamed."""
    course = _course_or_404(slug)
    stuck_only, step, name = _list_filters()
    course_id = course.id

    def lines(session: Session) -> Iterator[str]:
        found = session.get(Course, course_id)
        assert found is not None
        yield from csvout.lines(oversight.CSV_HEADER, oversight.csv_rows(session, found, stuck_only, step, name))

    return csvout.download(csvout.read_apart(lines), f"{course.slug}-learners.csv")


@bp.route("/courses/<slug>/learners/<int:user_id>")
@role_required(Role.INSTRUCTOR)
def learner(slug: str, user_id: int) -> ResponseReturnValue:
    """One learner's record in the course, read-only: modules, quiz scores and attempts, time, claim, certificate."""
    course = _course_or_404(slug)
    session = get_session()
    enrolment = session.scalar(select(Enrolment).where(Enrolment.course_id == course.id, Enrolment.user_id == user_id))
    person = session.get(User, user_id)
    if enrolment is None or person is None:
        fail(404, "This person is not enrolled in this course.")
    record = build_transcript(session, person, enrolment)
    attempts = oversight.attempt_history(session, course, user_id)
    return render_template(
        "instructor/learner.html", course=course, person=person, transcript=record, attempts=attempts
    )


@bp.route("/courses/<slug>/evaluations")
@role_required(Role.INSTRUCTOR)
def course_evaluations(slug: str) -> ResponseReturnValue:
    """The evaluation summary: ratings as charts with tables, objectives met, bias and balance, hours, comments."""
    course = _course_or_404(slug)
    group = current_app.config["EVALUATION_MIN_GROUP"]
    summary = evaluations.summarise(get_session(), course, group)
    charts = {
        r.name: bar_chart([(f"{k} of 5", n) for k, n in r.counts.items()], label_width=80) for r in summary.ratings
    }
    context = {"course": course, "summary": summary, "charts": charts, "min_group": group}
    return render_template("instructor/evaluations.html", **context)


@bp.route("/courses/<slug>/evaluations.csv")
@role_required(Role.INSTRUCTOR)
def course_evaluations_csv(slug: str) -> ResponseReturnValue:
    """Every evaluation of the course as CSV, streamed; none while fewer learners than the group size evaluated it."""
    course = _course_or_404(slug)
    group = current_app.config["EVALUATION_MIN_GROUP"]
    made = evaluations.count(get_session(), course.id)
    if made and not evaluations.released(made, group):
        fail(409, f"The evaluations can be downloaded once at least {group} learners have evaluated the course, so "
             "that no one learner's answers can be picked out.")  # fmt: skip
    lines = _evaluation_lines(course.id, [o["id"] for o in course.objectives], group)
    return csvout.download(lines, f"{course.slug}-evaluations.csv")


def _evaluation_lines(course_id: int, objective_ids: list[str], group: int) -> Iterator[str]:
    """The evaluations CSV, read apart from the request (csvout.read_apart)."""
    return csvout.read_apart(lambda session: evaluations.csv_lines(session, course_id, objective_ids, group))
