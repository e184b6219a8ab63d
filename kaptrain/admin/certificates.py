"""Certificates console: search, the approval queue (bulk approval as jobs), manual issue, revoke, re-issue.

Every action calls the same services as `flask certificates ...`, so the audit entries are the same too."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from kaptrain import audit, jobs
from kaptrain.accounts.models import Role, User
from kaptrain.accounts.services import find_user_by_email
from kaptrain.admin import settings
from kaptrain.admin.console_forms import (
    ApproveForm,
    ApproveOneForm,
    CertificateSearchForm,
    DeclineCorrectionForm,
    IssueForm,
    ReissueForm,
    ReturnClaimForm,
    RevokeForm,
)
from kaptrain.admin.views import bp
from kaptrain.auth import role_required, user
from kaptrain.certificates import services, tasks
from kaptrain.certificates.models import Certificate, CertificateStatus, RevocationReason
from kaptrain.certificates.pdf import format_hours
from kaptrain.certificates.views import download
from kaptrain.content.models import Course
from kaptrain.db import get_session
from kaptrain.errors import fail
from kaptrain.forms import BaseForm, whole_number

PER_PAGE = 25
SEARCHED = (Certificate.number, Certificate.code, Certificate.holder_name, Certificate.course_title)
EXPIRED = "The form expired or was not sent from this site. Reload the page and try again; nothing was changed."
BATCH_KEY = "approval_batch"  # the ids of the last bulk approval, to show its progress


@dataclass
class CertificatePage:
    """One page of search results."""

    rows: list[Certificate]
    total: int
    page: int
    pages: int


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_certificates(
    db: Session, text: str = "", status: CertificateStatus | None = None, page: int = 1
) -> CertificatePage:
    """Certificates matching number, code, holder name or course title (a literal substring), newest first."""
    stmt = select(Certificate)
    if text.strip():
        pattern = f"%{_escape_like(text.strip())}%"
        stmt = stmt.where(or_(*(column.ilike(pattern, escape="\\") for column in SEARCHED)))
    if status is not None:
        stmt = stmt.where(Certificate.status == status)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(page, pages)
    rows = db.scalars(stmt.order_by(Certificate.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE))
    return CertificatePage(list(rows), total, page, pages)


def batch_progress(db: Session, ids: list[int]) -> tuple[int, int]:
    """(queued, done) for a bulk approval: done are those no longer pending."""
    if not ids:
        return 0, 0
    waiting = db.scalar(
        select(func.count()).where(Certificate.id.in_(ids), Certificate.status == CertificateStatus.PENDING)
    )
    return len(ids), len(ids) - int(waiting or 0)


def _certificate_or_404(certificate_id: int, lock: bool = False) -> Certificate:
    """The certificate, or the 404 page; `lock` holds its row until the request ends (PostgreSQL: FOR UPDATE), so
    an approval and a return of the same claim sent at once are made one after the other, the second finding the
    first's result."""
    found = get_session().get(Certificate, certificate_id, with_for_update={"of": Certificate} if lock else None)
    if found is None:
        if _was_returned(certificate_id):  # a colleague (or another tab) sent the claim back meanwhile
            fail(
                409,
                "This claim was returned to the learner, so there is nothing to approve or return any more: the "
                "learner attests again, and a new claim then waits on the Certificates page.",
            )
        fail(404, "There is no certificate at this address.")
    return found


def _was_returned(certificate_id: int) -> bool:
    """Whether a waiting claim with this id was returned to its learner (its row went; the audit log keeps it)."""
    entry = get_session().scalar(
        select(audit.AuditEntry.id).where(
            audit.AuditEntry.subject_type == "certificate",
            audit.AuditEntry.subject_id == certificate_id,
            audit.AuditEntry.action == "certificate.claim_returned",
        )
    )
    return entry is not None


def _issue_form() -> IssueForm:
    form = IssueForm()
    courses = get_session().scalars(select(Course).order_by(Course.title))
    form.course.choices = [SelectChoice(0, "Choose a course")] + [SelectChoice(c.id, c.title) for c in courses]
    return form


def _console(issue_form: IssueForm | None = None, status: int = 200) -> ResponseReturnValue:
    db = get_session()
    search = CertificateSearchForm(formdata=request.args)
    valid = search.validate()
    result = search_certificates(
        db,
        search.q.data or "" if valid else "",
        CertificateStatus(search.status.data) if valid and search.status.data else None,
        (search.page.data or 1) if valid else 1,
    )
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    queued, done = batch_progress(db, session.get(BATCH_KEY, []))
    pending = services.pending_certificates(db)
    attestations = services.attestations_for(db, pending)
    return render_template(
        "admin/certificates.html",
        corrections=services.correction_requests(db),
        unsigned_courses=settings.unsigned_courses(get_session()),
        search=search,
        result=result,
        args=args,
        pending=pending,
        attestations=attestations,
        held={i for i, a in attestations.items() if services.over_claimed(a)},
        approve_form=ApproveForm(formdata=None),
        issue_form=issue_form or _issue_form(),
        queued=queued,
        done=done,
    ), status if valid else 400


@bp.route("/certificates")
@role_required(Role.ADMIN)
def certificates() -> ResponseReturnValue:
    """Search every certificate; the approval queue; issue a certificate by hand."""
    return _console()


@bp.route("/certificates/approve", methods=["POST"])
@role_required(Role.ADMIN)
def approve_certificates() -> ResponseReturnValue:
    """Queue one approval job per chosen (or every) pending certificate."""
    form = ApproveForm()
    if not form.validate_on_submit():
        fail(400, EXPIRED)
    db = get_session()
    waiting = services.pending_certificates(db)
    held = services.held_for_review(db, waiting)
    pending = {c.id for c in waiting}
    chosen = sorted(pending) if form.everything.data else [i for i in _ids(request.form.getlist("ids")) if i in pending]
    left_out = [i for i in chosen if i in held]  # a claim under review is approved one by one, from its page
    chosen = [i for i in chosen if i not in held]
    if left_out:
        n = len(left_out)
        flash(
            f"{n} certificate{'s' if n != 1 else ''} with hours claimed over {services.review_factor()} times the "
            "measured time left out: approve each from its page, where you can certify fewer hours.",
            "info" if chosen else "error",
        )
    if not chosen:
        if not left_out:
            flash("Choose at least one certificate waiting for approval.", "error")
        return redirect(url_for("admin.certificates"))
    # The request itself writes who queued what: the jobs run once that commits (and never if it fails).
    audit.record(db, "certificate.approve_queued", "certificate", None, actor_id=user().id, ids=chosen)
    for certificate_id in chosen:
        jobs.enqueue(tasks.approve_job, certificate_id, f"user:{user().id}")
    session[BATCH_KEY] = chosen
    flash(f"{len(chosen)} approval{'s' if len(chosen) != 1 else ''} queued.", "success")
    return redirect(url_for("admin.certificates"))


def _ids(raw: list[str]) -> list[int]:
    return [n for n in map(whole_number, raw) if n is not None]


@bp.route("/certificates/issue", methods=["POST"])
@role_required(Role.ADMIN)
def issue_certificate() -> ResponseReturnValue:
    """Issue a certificate for a completion recorded elsewhere; a reason is required."""
    db = get_session()
    form = _issue_form()
    if form.validate_on_submit():
        holder = find_user_by_email(db, form.email.data or "")
        course = db.get(Course, form.course.data)
        if holder is None:
            form.email.errors = ["No account has this email."]
        elif course is None:
            form.course.errors = ["Choose a course."]
        else:
            try:
                hours = services.parse_hours(form.hours.data or "", course.ce_hours)
                made = services.issue_without_course(
                    db,
                    holder,
                    course,
                    form.reason.data or "",
                    actor_id=user().id,
                    hours=hours,
                    completed_on=form.completed_on.data,
                )
            except services.CertificateError as exc:
                if exc.field in ("hours", "completed_on"):
                    form[exc.field].errors = [str(exc)]
                else:
                    form.form_errors.append(str(exc))
            else:
                flash(f"Certificate {made.number} issued to {holder.full_name}.", "success")
                return redirect(url_for("admin.certificate", certificate_id=made.id))
    return _console(form, 422)


def _detail(
    c: Certificate,
    revoke: RevokeForm | None = None,
    status: int = 200,
    reissue: ReissueForm | None = None,
    approve: ApproveOneForm | None = None,
    return_form: ReturnClaimForm | None = None,
    decline: DeclineCorrectionForm | None = None,
) -> ResponseReturnValue:
    # The learner's claim beside the time the site measured when it was made, as a CE auditor compares them.
    attestation = services.attestations_for(get_session(), [c]).get(c.id)
    # An approval (pending) or a re-issue (active, revoked) prints the holder's profile as it is then: the page shows
    # it, and each form carries its fingerprint (_changed_since_shown).
    acting_on = (CertificateStatus.PENDING, CertificateStatus.ACTIVE, CertificateStatus.REVOKED)
    holder_now = get_session().get(User, c.user_id) if c.status in acting_on else None
    profile = holder_now if c.status == CertificateStatus.PENDING else None
    now_printed = holder_now if c.status != CertificateStatus.PENDING else None
    if reissue is None:
        digest = services.holder_digest(now_printed) if now_printed is not None else ""
        reissue = ReissueForm(formdata=None, holder=digest)
    # The holder asked for a corrected version: what the profile says now, beside what the certificate prints.
    asked = services.correction_waiting(c)
    holder = now_printed if asked else None
    if holder is not None and not reissue.reason.data:
        reissue.reason.data = "Details corrected at the holder's request"
    if approve is None:
        digest = services.holder_digest(profile) if profile is not None else ""
        approve = ApproveOneForm(formdata=None, hours=format_hours(c.hours), holder=digest)
    return render_template(
        "admin/certificate.html",
        unsigned_courses=[course for course in settings.unsigned_courses(get_session()) if course.id == c.course_id]
        if c.status == CertificateStatus.PENDING
        else [],
        c=c,
        attestation=attestation,
        fewer_because=services.hours_reasons(get_session(), [c.id]).get(c.id),
        review=attestation is not None and services.over_claimed(attestation),
        approve_form=approve,
        profile=profile,
        return_form=return_form or ReturnClaimForm(formdata=None),
        verdict=services.public_status(c).verdict,
        replacement=services.replacement_of(get_session(), c),
        revoke_form=revoke or RevokeForm(formdata=None),
        reissue_form=reissue,
        now_printed=now_printed,
        correction_holder=holder,
        decline_form=decline or DeclineCorrectionForm(formdata=None),
        corrections=services.profile_changes(c, holder) if holder is not None else [],
    ), status


@bp.route("/certificates/<int:certificate_id>")
@role_required(Role.ADMIN)
def certificate(certificate_id: int) -> ResponseReturnValue:
    """One certificate, with its revoke and re-issue actions."""
    return _detail(_certificate_or_404(certificate_id))


@bp.route("/certificates/<int:certificate_id>/pdf")
@role_required(Role.ADMIN)
def certificate_pdf(certificate_id: int) -> ResponseReturnValue:
    """The PDF stored at issuance, whatever the certificate's status now (a record the provider keeps)."""
    c = _certificate_or_404(certificate_id)
    pdf = services.stored_pdf(get_session(), c) if c.status != CertificateStatus.PENDING else None
    if pdf is None:
        fail(404, "This certificate has no stored PDF yet: it is made when the certificate is issued.")
    return download(pdf, "application/pdf", f"{c.number}.pdf")


def _already(c: Certificate, message: str) -> ResponseReturnValue:
    """The certificate's page after an action its state no longer allows (another tab, a colleague): what happened,
    at the top of the page, with nothing marked as a mistake in its forms."""
    flash(f"{message} Nothing was changed.", "info")
    return _detail(c, status=409)


def _no_longer_pending(c: Certificate, form: BaseForm) -> ResponseReturnValue | None:
    """An expired form is refused (400); a certificate approved meanwhile (a double submit, a bulk approval) shows
    its page with a 409; else None, and the approval or return goes on."""
    if "csrf_token" in form.errors:
        fail(400, EXPIRED)
    if c.status == CertificateStatus.PENDING:
        return None
    # Said at the top of the page, not as an error of a form on it: nothing was refused that the admin still wants.
    if c.status == CertificateStatus.ACTIVE:
        flash(
            "This certificate is active, not waiting for approval: it was approved already (by a second click, or "
            "by a colleague), and nothing more was done.",
            "info",
        )
    else:
        flash(f"This certificate is {c.status.value}, not waiting for approval: nothing was changed.", "error")
    return _detail(c, status=409)


def _changed_since_shown(c: Certificate, form: ApproveOneForm | ReissueForm, then: str) -> bool:
    """Whether the holder changed their profile after the page the form came from was shown: the administrator
    approves or re-issues what they saw. When so, the form carries the new fingerprint and says what to do."""
    holder = get_session().get(User, c.user_id)
    if holder is None or form.holder.data == services.holder_digest(holder):
        return False
    form.holder.data = services.holder_digest(holder)  # sent again, the form acts on what the page now shows
    form.form_errors.append(f"The holder changed their profile after this page was shown. {then}")
    return True


@bp.route("/certificates/<int:certificate_id>/approve", methods=["POST"])
@role_required(Role.ADMIN)
def approve_certificate(certificate_id: int) -> ResponseReturnValue:
    """Approve one pending certificate now, for the hours claimed or fewer (with the reason)."""
    c = _certificate_or_404(certificate_id, lock=True)
    form = ApproveOneForm()
    valid = form.validate_on_submit()
    if (refused := _no_longer_pending(c, form)) is not None:
        return refused
    if not valid:
        return _detail(c, approve=form, status=422)
    if _changed_since_shown(c, form, "Check the details the certificate will print, above, then approve again."):
        return _detail(c, approve=form, status=409)
    try:
        hours = services.parse_hours(form.hours.data or "", c.max_hours)
        services.approve(get_session(), c, actor_id=user().id, hours=hours, reason=form.reason.data or "")
    except services.CertificateError as exc:
        field = getattr(form, exc.field or "", None)
        if field is not None:
            field.errors = [str(exc)]
        else:
            form.form_errors.append(str(exc))
        return _detail(c, approve=form, status=422)
    flash(f"Certificate {c.number} issued to {c.holder_name} for {format_hours(c.hours)} hours.", "success")
    return redirect(url_for("admin.certificate", certificate_id=c.id))


@bp.route("/certificates/<int:certificate_id>/return", methods=["POST"])
@role_required(Role.ADMIN)
def return_claim(certificate_id: int) -> ResponseReturnValue:
    """Return a pending claim to the learner with a note, instead of approving it."""
    c = _certificate_or_404(certificate_id, lock=True)
    form = ReturnClaimForm()
    valid = form.validate_on_submit()
    if (refused := _no_longer_pending(c, form)) is not None:
        return refused
    if not valid:
        return _detail(c, return_form=form, status=422)
    holder, course = c.holder_name, c.course_title
    try:
        services.return_claim(get_session(), c, form.note.data or "", actor_id=user().id)
    except services.CertificateError as exc:
        form.form_errors.append(str(exc))
        return _detail(c, return_form=form, status=exc.status)
    flash(
        f"The claim of {holder} for “{course}” was returned to them with your note; they can attest again.", "success"
    )
    return redirect(url_for("admin.certificates"))


@bp.route("/certificates/<int:certificate_id>/decline-correction", methods=["POST"])
@role_required(Role.ADMIN)
def decline_correction(certificate_id: int) -> ResponseReturnValue:
    """Answer the holder's correction request with a note instead of a re-issue."""
    c = _certificate_or_404(certificate_id)
    form = DeclineCorrectionForm()
    valid = form.validate_on_submit()
    if "csrf_token" in form.errors:
        fail(400, EXPIRED)
    if not services.correction_waiting(c):
        # Answered meanwhile (a second click, a colleague): said at the top, as the service would say it.
        return _already(c, services.no_correction_waiting(c))
    if not valid:
        return _detail(c, decline=form, status=422)
    try:
        services.decline_correction(get_session(), c, form.note.data or "", actor_id=user().id)
    except services.CertificateError as exc:
        return _already(c, str(exc))
    flash(f"The correction request for {c.number} was declined; {c.holder_name} is emailed your note.", "success")
    return redirect(url_for("admin.certificates"))


@bp.route("/certificates/<int:certificate_id>/revoke", methods=["POST"])
@role_required(Role.ADMIN)
def revoke_certificate(certificate_id: int) -> ResponseReturnValue:
    """Revoke with a reason category and a note; without them nothing changes."""
    c = _certificate_or_404(certificate_id)
    form = RevokeForm()
    if form.validate_on_submit():
        try:
            reason = RevocationReason(form.reason.data)
            services.revoke(get_session(), c, reason, form.note.data or "", actor_id=user().id)
        except services.CertificateError as exc:
            if exc.status == 409:  # revoked meanwhile (another tab, a colleague): nothing to correct in the form
                return _already(c, str(exc))
            form.form_errors.append(str(exc))
        else:
            flash(f"Certificate {c.number} revoked; its verification page says so from now on.", "success")
            return redirect(url_for("admin.certificate", certificate_id=c.id))
    return _detail(c, form, 422)


@bp.route("/certificates/<int:certificate_id>/reissue", methods=["POST"])
@role_required(Role.ADMIN)
def reissue_certificate(certificate_id: int) -> ResponseReturnValue:
    """Re-issue from the holder's current profile: an active certificate is superseded, a revoked one replaced."""
    c = _certificate_or_404(certificate_id)
    form = ReissueForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            fail(400, EXPIRED)
        return _detail(c, reissue=form, status=422)
    if _changed_since_shown(
        c, form, "Nothing was issued. Check the details the new certificate will print, below, then re-issue again."
    ):
        return _detail(c, reissue=form, status=409)
    try:
        hours = services.parse_hours(form.hours.data, c.max_hours) if (form.hours.data or "").strip() else None
        new = services.reissue(
            get_session(), c, actor_id=user().id, reason=form.reason.data or "", hours=hours,
            seen_status=form.seen_status.data or None, hours_reason=form.hours_reason.data or "",
        )  # fmt: skip
    except services.CertificateError as exc:
        if exc.field in ("hours", "hours_reason"):
            getattr(form, exc.field).errors = [str(exc)]
            return _detail(c, reissue=form, status=422)
        return _already(c, str(exc))  # changed meanwhile (replaced, revoked): said at the top, not as a form error
    outcome = "stays revoked" if c.status == CertificateStatus.REVOKED else "is superseded"
    flash(f"Certificate {new.number} issued; {c.number} {outcome}.", "success")
    return redirect(url_for("admin.certificate", certificate_id=new.id))
