"""Learner pages: home, catalogue, course outline, enrolment, disclosures, modules, dashboard."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from kaptrain.auth import user
from kaptrain.content.models import Course
from kaptrain.content.render import render_markdown, section_headings
from kaptrain.courses import services
from kaptrain.db import get_session
from kaptrain.errors import fail

bp = Blueprint("courses", __name__)


def _course_or_404(slug: str) -> Course:
    course = services.get_course(get_session(), slug)
    if course is None:
        fail(404, "There is no course at this address. Browse the catalogue to find one.")
    return course


def _status(course: Course, module_slug: str) -> tuple[list[services.ModuleStatus], services.ModuleStatus]:
    session = get_session()
    enrolment = services.get_enrolment(session, user().id, course.id)
    statuses = services.module_statuses(session, user().id, course, enrolment)
    found = next((s for s in statuses if s.module.slug == module_slug), None)
    if found is None:
        fail(404, f"The course “{course.title}” has no module at this address.")
    return statuses, found


@bp.route("/")
def home() -> ResponseReturnValue:
    """Landing page."""
    return render_template("courses/home.html", courses=services.published_courses(get_session()))


@bp.route("/courses")
def catalogue() -> ResponseReturnValue:
    """All published courses."""
    return render_template("courses/catalogue.html", courses=services.published_courses(get_session()))


@bp.route("/courses/<slug>")
def course(slug: str) -> ResponseReturnValue:
    """A course's outline, CE hours, objectives and disclosures."""
    session = get_session()
    c = _course_or_404(slug)
    enrolment = services.get_enrolment(session, current_user.id, c.id) if current_user.is_authenticated else None
    user_id = current_user.id if current_user.is_authenticated else 0
    statuses = services.module_statuses(session, user_id, c, enrolment)
    return render_template(
        "courses/course.html",
        course=c,
        enrolment=enrolment,
        statuses=statuses,
        next_status=services.next_step(statuses),
        form=FlaskForm(),
        total_minutes=sum(s.revision.estimated_minutes for s in statuses),
        accreditation=current_app.config["ACCREDITATION_STATEMENT"],
    )


@bp.route("/courses/<slug>/enrol", methods=["POST"])
@login_required
def enrol(slug: str) -> ResponseReturnValue:
    """Enrol in a course, then read its disclosures."""
    c = _course_or_404(slug)
    if FlaskForm().validate_on_submit():
        session = get_session()
        services.enrol(session, user().id, c)
        session.commit()
        flash(f"You are enrolled in “{c.title}”.", "success")
    return redirect(url_for("courses.disclosures", slug=slug))


@bp.route("/courses/<slug>/disclosures", methods=["GET", "POST"])
@login_required
def disclosures(slug: str) -> ResponseReturnValue:
    """The course disclosures, acknowledged once before module 1."""
    session = get_session()
    c = _course_or_404(slug)
    enrolment = services.get_enrolment(session, user().id, c.id)
    if enrolment is None:
        fail(403, "Enrol in this course first; its disclosures come next.")
    form = FlaskForm()
    if form.validate_on_submit():
        services.acknowledge_disclosures(session, enrolment)
        session.commit()
        first = services.active_modules(c)[:1]
        if first:
            return redirect(url_for("courses.module", slug=slug, module_slug=first[0].slug))
        return redirect(url_for("courses.course", slug=slug))
    return render_template(
        "courses/disclosures.html",
        course=c,
        enrolment=enrolment,
        form=form,
        accreditation=current_app.config["ACCREDITATION_STATEMENT"],
    )


@bp.route("/courses/<slug>/modules/<module_slug>")
@login_required
def module(slug: str, module_slug: str) -> ResponseReturnValue:
    """A module's lesson; locked modules say what to finish first."""
    c = _course_or_404(slug)
    statuses, status = _status(c, module_slug)
    if status.state == services.State.LOCKED:
        return render_template("courses/locked.html", course=c, status=status), 403
    session = get_session()
    status.progress = services.open_module(session, user().id, status.module)
    session.commit()
    index = statuses.index(status)
    return render_template(
        "courses/module.html",
        course=c,
        status=status,
        statuses=statuses,
        body=render_markdown(status.revision.body),
        sections=section_headings(status.revision.body),
        following=statuses[index + 1] if index + 1 < len(statuses) else None,
        form=FlaskForm(),
        heartbeat_seconds=services.HEARTBEAT_SECONDS,
    )


@bp.route("/courses/<slug>/modules/<module_slug>/read", methods=["POST"])
@login_required
def mark_read(slug: str, module_slug: str) -> ResponseReturnValue:
    """Record that the learner finished reading the module."""
    c = _course_or_404(slug)
    _statuses, status = _status(c, module_slug)
    if status.state == services.State.LOCKED:
        fail(403, f"This module is locked. First: {status.blocked_by}.")
    if FlaskForm().validate_on_submit():
        session = get_session()
        services.mark_read(session, status)
        services.refresh_completion(session, user().id, c)
        session.commit()
    if status.quiz is not None:
        return redirect(url_for("quizzes.quiz", slug=status.quiz.slug))
    return redirect(url_for("courses.course", slug=slug))


@bp.route("/courses/<slug>/modules/<module_slug>/heartbeat", methods=["POST"])
@login_required
def heartbeat(slug: str, module_slug: str) -> ResponseReturnValue:
    """Credit active seat time; the page calls this only while the learner is active."""
    c = _course_or_404(slug)
    _statuses, status = _status(c, module_slug)
    if status.state == services.State.LOCKED:
        abort(403)
    if status.progress is None:
        abort(409)  # the page was never opened, so there is no clock to advance
    session = get_session()
    total = services.record_heartbeat(session, status.progress)
    session.commit()
    return jsonify(seat_seconds=total)


@bp.route("/dashboard")
@login_required
def dashboard() -> ResponseReturnValue:
    """The learner's courses, progress per module and next step."""
    session = get_session()
    rows = []
    for enrolment in services.enrolments_for(session, user().id):
        statuses = services.module_statuses(session, user().id, enrolment.course, enrolment)
        done = sum(s.state == services.State.COMPLETED for s in statuses)
        rows.append(
            {
                "enrolment": enrolment,
                "course": enrolment.course,
                "statuses": statuses,
                "done": done,
                "percent": round(100 * done / len(statuses)) if statuses else 0,
                "next": services.next_step(statuses),
                "final": services.final_quiz(session, enrolment.course),
            }
        )
    return render_template("courses/dashboard.html", rows=rows)
