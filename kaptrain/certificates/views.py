"""Learner pages for certificates: evaluation, attestation and claim, downloads, transcript."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from kaptrain import pagecache
from kaptrain.admin import settings
from kaptrain.auth import require_owner, user
from kaptrain.certificates import forms, services  # services also registers the evaluation and attestation steps
from kaptrain.certificates.blueprint import bp
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.certificates.pdf import format_hours, hours_phrase, render_pdf
from kaptrain.certificates.transcript import build_transcript, format_duration, quarter_hours
from kaptrain.content.models import Course
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment
from kaptrain.db import get_session, utcnow
from kaptrain.errors import fail
from kaptrain.extensions import limiter
from kaptrain.forms import BaseForm

__all__ = ["bp"]

TRANSCRIPT_TEMPLATE = "certificates/pdf/transcript.html"

bp.add_app_template_filter(format_duration, "duration")
bp.add_app_template_filter(format_hours, "format_hours")
bp.add_app_template_filter(hours_phrase, "hours")
bp.add_app_template_global(services.verification_url, "verification_url")
bp.add_app_template_global(services.profile_changes, "profile_changes")


@bp.app_template_global("certificate_verdict")
def certificate_verdict(certificate: Certificate) -> str:
    """The certificate's public verdict: valid, pending, expired, revoked or superseded."""
    return services.public_status(certificate).verdict


def _course_or_404(slug: str) -> Course:
    """The published course at this address, or a 404 page that says so."""
    course = courses.get_course(get_session(), slug)
    if course is None:
        fail(404, "There is no course at this address. Browse the catalogue to find one.")
    return course


def _enrolment(course: Course) -> Enrolment:
    """The learner's enrolment in the course, or a 403 page asking them to enrol."""
    enrolment = courses.get_enrolment(get_session(), user().id, course.id)
    if enrolment is None:
        fail(403, f"Enrol in “{course.title}” first; its evaluation, attestation and transcript are for its learners.")
    return enrolment


def _record(course: Course) -> completion.CourseRecord:
    """The enrolled learner's record in the course, from the completion rule."""
    return completion.course_record(get_session(), user().id, course, _enrolment(course))


def _locked(course: Course, record: completion.CourseRecord, page: str, first: str) -> ResponseReturnValue:
    """The 403 page of a step that is not open yet, saying what to finish first."""
    return render_template("certificates/locked.html", course=course, record=record, page=page, first=first), 403


def _refused(form: BaseForm, exc: services.CertificateError, done_url: str) -> ResponseReturnValue | None:
    """A service's refusal: on the form field it names, a redirect when it was already done, else an error page."""
    if exc.field is not None:
        field = getattr(form, exc.field, None)
        if field is not None:
            field.errors = [*field.errors, str(exc)]
        else:
            form.form_errors.append(str(exc))
        return None
    if exc.status == 409:  # already done: a double click, or a second tab
        flash(str(exc), "info")
        return redirect(done_url)
    fail(exc.status, str(exc))


@bp.route("/courses/<slug>/evaluation", methods=["GET", "POST"])
@login_required
def evaluation(slug: str) -> ResponseReturnValue:
    """The CE course evaluation, open once the learning requirements are met and submitted once."""
    course = _course_or_404(slug)
    record = _record(course)
    if not record.requirements_met:
        return _locked(course, record, "The course evaluation", "pass every module quiz and the final assessment")
    session = get_session()
    done = services.get_evaluation(session, user().id, course.id)
    if done is not None and request.method == "POST":
        flash("You had already submitted your evaluation of this course; your first answers are kept.", "info")
        return redirect(url_for(".evaluation", slug=slug))
    form = forms.evaluation_form(course)
    if done is None and form.validate_on_submit():
        try:
            services.submit_evaluation(session, record, form.answers())
        except services.CertificateError as exc:
            if (response := _refused(form, exc, url_for(".evaluation", slug=slug))) is not None:
                return response
        else:
            flash("Thank you: your evaluation was submitted.", "success")
            return redirect(url_for(".attestation", slug=slug))
    attested = services.get_attestation(session, user().id, course.id) is not None
    context = {"course": course, "form": form, "done": done, "attested": attested}
    return render_template("certificates/evaluation.html", **context), 422 if form.errors else 200


@bp.route("/courses/<slug>/attestation", methods=["GET", "POST"])
@login_required
def attestation(slug: str) -> ResponseReturnValue:
    """Attest to having completed the course and claim hours; the certificate is issued or sent for approval."""
    course = _course_or_404(slug)
    record = _record(course)
    session = get_session()
    if not record.requirements_met:
        return _locked(course, record, "The attestation", "pass every module quiz and the final assessment")
    if services.get_evaluation(session, user().id, course.id) is None:
        return _locked(course, record, "The attestation", "submit the course evaluation")
    if not user().is_email_confirmed:
        return _locked(course, record, "The attestation", "confirm your email address")
    done = services.get_attestation(session, user().id, course.id)
    held = services.held_by_hand(session, user().id, course.id) if done is None else None
    if held is not None:  # a certificate issued by hand, before the learner finished here
        flash(services.already_held(held), "info")
        return redirect(url_for("courses.dashboard"))
    if done is not None and request.method == "POST":
        flash("You had already made your attestation for this course; your certificate is below.", "info")
        return redirect(url_for("courses.dashboard"))
    form = forms.attestation_form(course.ce_hours)
    if done is None and form.validate_on_submit():
        try:
            hours = services.parse_hours(form.hours.data or "", course.ce_hours)
            certificate = services.attest(session, record, user(), hours, note=form.note.data or "")
        except services.CertificateError as exc:
            if (response := _refused(form, exc, url_for("courses.dashboard"))) is not None:
                return response
        else:
            flash(_requested(certificate, record.active_seconds), "info" if certificate.number is None else "success")
            return redirect(url_for("courses.dashboard"))
    elif done is None and form.is_submitted() and form.hours.data and not form.hours.errors:
        # The box not ticked: say what is wrong with the hours now too, not on the next try.
        try:
            services.parse_hours(form.hours.data, course.ce_hours)
        except services.CertificateError as exc:
            form.hours.errors = [*form.hours.errors, str(exc)]
    suggested = min(quarter_hours(record.active_seconds), course.ce_hours)
    review = current_app.config["CLAIM_REVIEW_FACTOR"]
    context = {"course": course, "record": record, "form": form, "done": done, "suggested": suggested, "review": review}
    return render_template("certificates/attestation.html", **context), 422 if form.errors else 200


def _requested(certificate: Certificate, active_seconds: int) -> str:
    """What the learner is told once the certificate is requested: issued, or waiting for approval (and why, when
    it is the claim that holds it)."""
    held = certificate.status == CertificateStatus.PENDING
    if held and services.claim_needs_review(certificate.hours, active_seconds):
        return (
            f"You claimed {hours_phrase(certificate.hours)}, more than "
            f"{current_app.config['CLAIM_REVIEW_FACTOR']} times the active time measured here "
            f"({format_duration(active_seconds)}), so an administrator reviews the claim before your certificate is "
            "issued. We will email you when it is; if you studied away from the site, be ready to say how."
        )
    if held:
        return (
            "Your certificate is waiting for an administrator's approval. We will email you when it is issued; "
            "it will then be ready to download here."
        )
    return "Your certificate was issued. Download it below, or share its verification link; we have also emailed you."


def _own_certificate(certificate_id: int) -> Certificate:
    """The logged-in learner's certificate with this id; 404 when it is missing or someone else's."""
    certificate = get_session().get(Certificate, certificate_id)
    if certificate is None:
        fail(404, "There is no certificate at this address. Your certificates are listed under My learning.")
    require_owner(certificate.user_id)
    return certificate


def download(body: bytes, mimetype: str, filename: str) -> Response:
    """A response the browser saves as a file with this name."""
    response = Response(body, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response


@bp.route("/certificates/<int:certificate_id>/correction", methods=["POST"])
@login_required
def request_correction(certificate_id: int) -> ResponseReturnValue:
    """The holder asks for a corrected certificate, printing the details their profile has now."""
    certificate = _own_certificate(certificate_id)
    if not BaseForm().validate_on_submit():
        fail(400, "The form expired. Go back to My learning and ask again.")
    try:
        asked = services.request_correction(get_session(), certificate, user())
    except services.CertificateError as exc:
        fail(exc.status, str(exc))
    if asked:
        flash(
            "Your request was sent. An administrator will re-issue your certificate with the details on your profile; "
            "we will email you the corrected certificate, which has a verification link of its own (the old link will "
            "then say it was replaced).",
            "success",
        )
    else:
        flash("You have already asked for a corrected certificate: it is waiting for an administrator.", "info")
    return redirect(url_for("courses.dashboard"))


@bp.route("/certificates/<int:certificate_id>.pdf")
@login_required
def certificate_pdf(certificate_id: int) -> ResponseReturnValue:
    """The certificate's PDF as stored at issuance, for its holder."""
    certificate = _own_certificate(certificate_id)
    if certificate.status == CertificateStatus.PENDING:
        fail(404, "This certificate is waiting for an administrator's approval; its PDF is made when it is issued.")
    if certificate.status == CertificateStatus.REVOKED:
        fail(404, "This certificate was revoked, so its PDF is no longer offered. Its verification page says why.")
    if certificate.status == CertificateStatus.SUPERSEDED:
        fail(404, "This certificate was replaced by a re-issue. Download the current one from My learning.")
    pdf = services.stored_pdf(get_session(), certificate)
    if pdf is None:
        fail(404, "This certificate's PDF is being prepared. Please try again in a few minutes.")
    return download(pdf, "application/pdf", f"{certificate.number}.pdf")


# The holder's download without the ORM (kaptrain.pagecache): one statement finds the certificate, checks its
# holder and status and names its stored file; the bytes are kept per process under their SHA-256, so they can
# never be another version's. Anything unusual (not theirs, not active, no file yet) goes the normal way above.
_PDF_SQL = (
    "SELECT c.number, f.sha256 FROM certificates c JOIN certificate_files f ON f.certificate_id = c.id "  # noqa: S608 - a constant
    f"JOIN users u ON {pagecache.SESSION_SQL} WHERE c.id = :id AND c.user_id = :user AND c.status = 'active'"
)
_stored_pdfs = pagecache.PageStore(max_bytes=32 * 1024 * 1024)


@pagecache.fast_path("certificates.certificate_pdf")
def _holders_pdf(learner: pagecache.Learner, args: dict[str, Any], _form: MultiDict[str, str]) -> Response | None:
    found = pagecache.run_sql(_PDF_SQL, {**learner.params(), "id": args["certificate_id"]})
    if found is None:
        return None
    number, digest = found
    entry = _stored_pdfs.get((digest,), utcnow())
    if entry is None:
        row = pagecache.run_sql(
            "SELECT pdf FROM certificate_files WHERE certificate_id = :id", {"id": args["certificate_id"]}
        )
        if row is None or hashlib.sha256(bytes(row[0])).hexdigest() != digest:
            return None
        entry = pagecache.Entry(bytes(row[0]), None, None)
        _stored_pdfs.put((digest,), entry)
    assert isinstance(entry.body, bytes)
    return download(entry.body, "application/pdf", f"{number}.pdf")


@bp.route("/certificates/<int:certificate_id>.json")
@login_required
def certificate_json(certificate_id: int) -> ResponseReturnValue:
    """The certificate's signed credential as JSON, for its holder (its public record until it is signed)."""
    certificate = _own_certificate(certificate_id)
    response = jsonify(certificate.credential or services.public_status(certificate).as_json())
    name = certificate.number or f"certificate-{certificate.id}"
    response.headers.set("Content-Disposition", "attachment", filename=f"{name}.json")
    return response


@bp.route("/courses/<slug>/transcript")
@login_required
def transcript(slug: str) -> ResponseReturnValue:
    """The learner's transcript of the course: modules, scores, time, claim and certificate."""
    course = _course_or_404(slug)
    data = build_transcript(get_session(), user(), _enrolment(course))
    return render_template("certificates/transcript.html", course=course, transcript=data)


def _per_account() -> str:
    return f"transcript-pdf:{user().id}" if current_user.is_authenticated else f"transcript-pdf:{request.remote_addr}"


@bp.route("/courses/<slug>/transcript.pdf")
@login_required
# Drawn afresh each time (a fraction of a second of a worker's time): a loop of downloads must not hold the site up.
@limiter.limit(lambda: str(current_app.config["TRANSCRIPT_PDF_RATE_LIMIT"]), key_func=_per_account)
def transcript_pdf(slug: str) -> ResponseReturnValue:
    """The transcript as a PDF to keep or send to a licensing board."""
    course = _course_or_404(slug)
    data = build_transcript(get_session(), user(), _enrolment(course))
    pdf = render_pdf(TRANSCRIPT_TEMPLATE, page_size=settings.page_size(get_session()), transcript=data, now=utcnow())
    return download(pdf, "application/pdf", f"transcript-{course.slug}.pdf")
