"""Instructor pages: each learner's standing in a course, and the course's evaluation summary (read-only)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.admin.charts import bar_chart
from kaptrain.auth import role_required
from kaptrain.content.models import Course
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


@bp.route("/courses/<slug>/learners")
@role_required(Role.INSTRUCTOR)
def learners(slug: str) -> ResponseReturnValue:
    """Where each learner stands: step, last activity, attempts on the current quiz, stuck or not."""
    course = _course_or_404(slug)
    rows = oversight.course_learners(get_session(), course)
    stuck_only = request.args.get("stuck") == "1"
    step = request.args.get("step", "")
    steps = {r.step: r.step_label for r in rows}
    shown = oversight.filter_rows(rows, stuck_only, step if step in steps else "")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    pages = max(1, -(-len(shown) // PER_PAGE))
    page = min(page, pages)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "instructor/learners.html",
        course=course,
        rows=shown[(page - 1) * PER_PAGE : page * PER_PAGE],
        total=len(rows),
        matching=len(shown),
        stuck_total=sum(r.stuck for r in rows),
        steps=sorted(steps.items()),
        stuck_only=stuck_only,
        step=step,
        page=page,
        pages=pages,
        args=args,
        now=utcnow(),
    )


@bp.route("/courses/<slug>/evaluations")
@role_required(Role.INSTRUCTOR)
def course_evaluations(slug: str) -> ResponseReturnValue:
    """The evaluation summary: ratings as charts with tables, objectives met, bias reports, comments."""
    course = _course_or_404(slug)
    summary = evaluations.summarise(get_session(), course)
    charts = {
        r.name: bar_chart([(f"{k} of 5", n) for k, n in r.counts.items()], label_width=80) for r in summary.ratings
    }
    return render_template("instructor/evaluations.html", course=course, summary=summary, charts=charts)


@bp.route("/courses/<slug>/evaluations.csv")
@role_required(Role.INSTRUCTOR)
def course_evaluations_csv(slug: str) -> ResponseReturnValue:
    """Every evaluation of the course as CSV, streamed."""
    course = _course_or_404(slug)
    return Response(
        stream_with_context(evaluations.csv_lines(get_session(), course.id, [o["id"] for o in course.objectives])),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{course.slug}-evaluations.csv"'},
    )
