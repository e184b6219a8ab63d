"""Learner pages: home, catalogue, course outline, enrolment, disclosures, modules, dashboard."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from kaptrain import pagecache
from kaptrain.accounts.models import Role
from kaptrain.admin.settings import accreditation_statement, certificate_settings
from kaptrain.auth import user
from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import Certificate
from kaptrain.content import catalogue as content_catalogue
from kaptrain.content.models import Course
from kaptrain.courses import completion, lesson, services
from kaptrain.db import get_session, may_write
from kaptrain.errors import fail

bp = Blueprint("courses", __name__)


def _course_or_404(slug: str) -> Course:
    course = services.catalogue_course(get_session(), slug)
    if course is None:
        fail(404, "There is no course at this address. Browse the catalogue to find one.")
    return course


def _record(course: Course) -> completion.CourseRecord:
    return completion.learner_record(get_session(), user().id, course)


def _status(course: Course, module_slug: str) -> tuple[completion.CourseRecord, completion.ModuleStatus]:
    record = _record(course)
    found = record.module(module_slug)
    if found is None:
        fail(404, f"The course “{course.title}” has no module at this address.")
    return record, found


@bp.route("/")
def home() -> ResponseReturnValue:
    """Landing page."""
    session = get_session()
    accredited = bool(accreditation_statement(session))
    return render_template("courses/home.html", courses=services.catalogue_courses(session), accredited=accredited)


@bp.route("/records-and-privacy")
def records_policy() -> ResponseReturnValue:
    """What the site keeps about a learner, who sees it, for how long, and how to ask or complain."""
    return render_template("courses/records_policy.html")


@bp.route("/courses")
def catalogue() -> ResponseReturnValue:
    """All published courses."""
    session = get_session()
    accredited = bool(accreditation_statement(session))
    return render_template("courses/catalogue.html", courses=services.catalogue_courses(session), accredited=accredited)


@bp.route("/courses/<slug>")
def course(slug: str) -> ResponseReturnValue:
    """A course's outline, CE hours, objectives and disclosures."""
    session = get_session()
    c = _course_or_404(slug)
    record = completion.learner_record(session, current_user.id if current_user.is_authenticated else None, c)
    return render_template(
        "courses/course.html",
        course=c,
        enrolment=record.enrolment,
        record=record,
        statuses=record.modules,
        form=FlaskForm(),
        total_minutes=sum(s.revision.estimated_minutes for s in record.modules),
        accreditation=certificate_settings(session, c).accreditation_statement or "",
    )


@bp.route("/courses/<slug>/enrol", methods=["POST"])
@login_required
def enrol(slug: str) -> ResponseReturnValue:
    """Enrol in a course, then read its disclosures."""
    c = _course_or_404(slug)
    if FlaskForm().validate_on_submit():
        services.enrol(get_session(), user().id, c)
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
        first = services.active_modules(c)[:1]
        if first:
            return redirect(url_for("courses.module", slug=slug, module_slug=first[0].slug))
        return redirect(url_for("courses.course", slug=slug))
    values = certificate_settings(session, c)
    published = content_catalogue.current(session).by_id(c.id)
    # The module quizzes' rules, when they are the same for every one (the shipped course's are), to state them once.
    rules = {(q.passing_score, q.max_attempts, q.cooldown_hours) for q in published.current_quizzes.values()}
    return render_template(
        "courses/disclosures.html",
        course=c,
        enrolment=enrolment,
        form=form,
        accreditation=values.accreditation_statement or "",
        approval=values.approval,
        module_count=len(published.modules),
        final=published.final,
        quiz_rules=rules.pop() if len(rules) == 1 else None,
        review_factor=current_app.config["CLAIM_REVIEW_FACTOR"],
    )


@bp.route("/courses/<slug>/modules/<module_slug>")
@login_required
@may_write  # opening a module is recorded: the quiz needs it, and seat time starts from it
def module(slug: str, module_slug: str) -> ResponseReturnValue:
    """A module's lesson; locked modules say what to finish first."""
    c = _course_or_404(slug)
    record, status = _status(c, module_slug)
    if status.state == completion.State.LOCKED:
        return render_template("courses/locked.html", course=c, status=status), 403
    session = get_session()
    status.progress = services.open_module(session, user().id, status.module)
    user_id, module_id = user().id, status.module.id
    pagecache.on_hit(lambda: services.touch_module(user_id, module_id))
    statuses = record.modules
    index = statuses.index(status)
    rendered = content_catalogue.current(session).rendered(status.revision)
    return render_template(
        "courses/module.html",
        course=c,
        status=status,
        statuses=statuses,
        reading_left=completion.reading_minutes_left(c, status),
        body=content_catalogue.current(session).derived(
            ("lesson", status.revision.id), lambda: lesson.scrollable_tables(rendered.html)
        ),
        sections=rendered.sections,
        following=statuses[index + 1] if index + 1 < len(statuses) else None,
        record=record,
        form=FlaskForm(),
        heartbeat_seconds=services.HEARTBEAT_SECONDS,
        idle_seconds=services.READING_IDLE_SECONDS,
    )


@bp.route("/courses/<slug>/modules/<module_slug>/read", methods=["POST"])
@login_required
def mark_read(slug: str, module_slug: str) -> ResponseReturnValue:
    """Record that the learner finished reading the module."""
    c = _course_or_404(slug)
    _, status = _status(c, module_slug)
    if status.state == completion.State.LOCKED:
        fail(403, f"This module is locked. First: {status.blocked_by}.")
    if status.progress is None:
        fail(409, "Open the module and read it first; then mark it as read.")
    if FlaskForm().validate_on_submit():
        services.mark_read(get_session(), status)
    if status.quiz is not None:
        return redirect(url_for("quizzes.quiz", course_slug=c.slug, slug=status.quiz.slug))
    return redirect(url_for("courses.course", slug=slug))


@bp.route("/courses/<slug>/modules/<module_slug>/heartbeat", methods=["POST"])
@login_required
def heartbeat(slug: str, module_slug: str) -> ResponseReturnValue:
    """Credit active seat time; the page calls this only while the learner is active."""
    session = get_session()
    # A module the learner opened (so it was open to them) keeps crediting its reading: one statement finds it,
    # without working out the whole course again every 30 seconds.
    progress = services.opened_progress(session, user().id, slug, module_slug)
    if progress is None:
        _, status = _status(_course_or_404(slug), module_slug)
        abort(403 if status.state == completion.State.LOCKED else 409)  # 409: never opened, no clock to advance
    return jsonify(seat_seconds=services.record_heartbeat(session, progress))


@pagecache.fast_path("courses.heartbeat", method="POST")
def _heartbeat_fast(learner: pagecache.Learner, args: dict[str, Any], _form: MultiDict[str, str]) -> Response | None:
    # Every 30 seconds from every reading learner: plain statements, no ORM (kaptrain.pagecache); a module the
    # learner has not opened goes the normal way above, which says why.
    seat = services.record_heartbeat_fast(learner, args["slug"], args["module_slug"])
    return None if seat is None else jsonify(seat_seconds=seat)


@bp.route("/dashboard")
@login_required
def dashboard() -> ResponseReturnValue:
    """The learner's courses: requirements as a checklist with the next step linked, active time, certificates."""
    session = get_session()
    enrolments = services.enrolments_for(session, user().id)
    records = completion.learner_records(session, user().id, [(e.course, e) for e in enrolments])
    by_course: dict[int, list[Certificate]] = {}
    for certificate in certificates.certificates_for(session, user().id):
        by_course.setdefault(certificate.course_id, []).append(certificate)
    # Certificates of courses the learner is not enrolled in (issued by hand for study recorded elsewhere).
    enrolled = {e.course_id for e in enrolments}
    elsewhere = [(found[0].course, found) for i, found in by_course.items() if i not in enrolled]
    waiting = None
    if user().has_role(Role.ADMIN):  # staff land here after logging in too: say what waits for them
        from kaptrain.admin.views import waiting_certificates  # noqa: PLC0415 - admin imports the courses' peers

        waiting = waiting_certificates()
    return render_template(
        "courses/dashboard.html", records=records, certificates=by_course, elsewhere=elsewhere, waiting=waiting
    )
