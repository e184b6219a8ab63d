"""People console: search and filter accounts, one learner's full record, role and status changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from wtforms import Field, SelectChoice
from wtforms.validators import DataRequired

from kaptrain import audit
from kaptrain.accounts import mailer, ownership, twofactor
from kaptrain.accounts import services as accounts
from kaptrain.accounts.forms import ProfileForm, profile_from
from kaptrain.accounts.models import Role, User
from kaptrain.admin import directory, enrolments
from kaptrain.admin.people_forms import (
    CloseAccountForm,
    DeactivateForm,
    EnrolForm,
    InviteForm,
    PeopleSearchForm,
    RoleForm,
    StatusForm,
)
from kaptrain.admin.views import bp
from kaptrain.auth import role_required, user
from kaptrain.certificates.models import CertificateStatus
from kaptrain.certificates.services import certificates_for
from kaptrain.courses import services as courses
from kaptrain.db import get_session
from kaptrain.errors import fail

EXPIRED = "The form expired or was not sent from this site. Reload the page and try again; nothing was changed."


def _person_or_404(user_id: int) -> User:
    person = get_session().get(User, user_id)
    if person is None:
        fail(404, "There is no account at this address.")
    return person


@bp.route("/")
@role_required(Role.ADMIN)
def home() -> ResponseReturnValue:
    """The administrator's pages start at the people list (the Admin link in the header goes there too)."""
    return redirect(url_for("admin.people"))


@bp.route("/people")
@role_required(Role.ADMIN)
def people() -> ResponseReturnValue:
    """Search, filter and page through every account."""
    session = get_session()
    courses = directory.all_courses(session)
    form = PeopleSearchForm(formdata=request.args, course_choices=[SelectChoice(str(c.id), c.title) for c in courses])
    if not form.validate():
        return render_template("admin/people.html", form=form, result=None, courses=courses), 400
    query = directory.PeopleQuery(
        text=form.q.data or "",
        role=Role(form.role.data) if form.role.data else None,
        status=form.status.data or "",
        course_id=int(form.course.data) if form.course.data else None,
        page=form.page.data or 1,
    )
    result = directory.search_people(session, query)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("admin/people.html", form=form, result=result, courses=courses, args=args)


def _record_page(
    person: User,
    status: int = 200,
    role_form: RoleForm | None = None,
    deactivate_form: DeactivateForm | None = None,
    enrol_form: EnrolForm | None = None,
) -> ResponseReturnValue:
    record = directory.learner_record(get_session(), person)
    role_form = role_form or RoleForm(formdata=None, data={"role": person.role.value})
    return render_template(
        "admin/learner.html",
        person=person,
        record=record,
        role_form=role_form,
        status_form=StatusForm(formdata=None),
        deactivate_form=deactivate_form or DeactivateForm(formdata=None),
        enrol_form=enrol_form or _enrol_form(person, formdata=None),
        closed=accounts.is_closed(person),
    ), status


def _enrol_form(person: User, **kwargs: Any) -> EnrolForm:
    # The published courses the person is not enrolled in yet.
    session = get_session()
    enrolled = {e.course_id for e in courses.enrolments_for(session, person.id)}
    choices = [SelectChoice(c.slug, c.title) for c in courses.published_courses(session) if c.id not in enrolled]
    return EnrolForm(course_choices=choices, **kwargs)


@bp.route("/people/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def person_new() -> ResponseReturnValue:
    """Make an account for someone (an instructor, a learner whose employer enrols them): they are emailed a link
    to choose their password."""
    form = InviteForm()
    if form.validate_on_submit():
        role = Role(form.role.data)  # one of the choices: the form checked it
        try:
            made = ownership.invite(get_session(), form.email.data or "", form.full_name.data or "", role, user())
        except accounts.EmailTaken:
            form.email.errors = ["An account already uses this address: search for it in People."]
        except accounts.AccountError as exc:
            getattr(form, exc.field or "", form.full_name).errors = [str(exc)]
        else:
            flash(
                f"Account made for {made.full_name}; {made.email} has been sent a link to choose a password.", "success"
            )
            return redirect(url_for("admin.person", user_id=made.id))
    status = 422 if form.errors else 200
    return render_template("admin/person_new.html", form=form, has_errors=bool(form.errors)), status


@bp.route("/people/<int:user_id>")
@role_required(Role.ADMIN)
def person(user_id: int) -> ResponseReturnValue:
    """One person's full record: profile, courses, attempts, evaluation, attestation, certificates."""
    return _record_page(_person_or_404(user_id))


# How the person is told which of their details changed.
FIELD_WORDS = {
    "full_name": "name",
    "profession": "profession",
    "credential": "credential",
    "licence_number": "licence number",
    "jurisdiction": "licensing jurisdiction",
    "time_zone": "time zone",
}
CLOSED = "This account was closed at the person's request: its details cannot be changed and it cannot be enrolled."


def _staff_profile_form(person: User) -> ProfileForm:
    # The person's own form, worded for the administrator filling it in for them.
    form = ProfileForm(obj=person)
    form.full_name.label.text = "Full name, as it should appear on their certificates"
    form.full_name.description = "The name only: the credential (for example LCSW or MD) has its own field below."
    form.credential.description = "Printed after the name on certificates."
    _required(form.full_name, "Enter their full name.")
    _required(form.profession, "Choose their profession.")
    form.profession.choices = [SelectChoice("", "Choose their profession"), *form.profession.choices[1:]]
    form.submit.label.text = "Save their profile"
    return form


def _required(field: Field, message: str) -> None:
    # This form's own list (the class's is shared), with every other check kept: control characters, lengths.
    field.validators = [DataRequired(message=message) if isinstance(v, DataRequired) else v for v in field.validators]


@bp.route("/people/<int:user_id>/profile", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def person_profile(user_id: int) -> ResponseReturnValue:
    """Correct someone's profile (a misspelt name, a new licence): audited, and the person is told by email what
    changed. Certificates already issued keep their details until re-issued."""
    person = _person_or_404(user_id)
    if accounts.is_closed(person):
        fail(409, CLOSED)
    form = _staff_profile_form(person)
    if form.validate_on_submit():
        try:
            changed = accounts.update_profile(get_session(), person, profile_from(form), actor=user())
        except accounts.AccountError as exc:
            getattr(form, exc.field or "", form.full_name).errors = [str(exc)]
        else:
            if changed and person.id != user().id:
                mailer.profile_changed_by_staff(person, [FIELD_WORDS[name] for name in changed])
            shown = set(changed) - {"profession"}  # what certificates print, or the zone that dates them
            issued = shown and any(
                c.status == CertificateStatus.ACTIVE for c in certificates_for(get_session(), person.id)
            )
            note = " Certificates already issued keep the details they were issued with: re-issue one to correct it."
            flash(f"{person.full_name}'s profile was saved.{note if issued else ''}", "success")
            return redirect(url_for("admin.person", user_id=person.id))
    status = 422 if form.errors else 200
    return render_template("admin/person_profile.html", form=form, person=person), status


@bp.route("/people/<int:user_id>/enrol", methods=["POST"])
@role_required(Role.ADMIN)
def person_enrol(user_id: int) -> ResponseReturnValue:
    """Enrol someone in a course (an employer's or a team's place): audited, and the person is emailed a link."""
    person = _person_or_404(user_id)
    if accounts.is_closed(person):
        fail(409, CLOSED)
    form = _enrol_form(person)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            fail(400, EXPIRED)
        return _record_page(person, 422, enrol_form=form)
    session = get_session()
    course = courses.get_course(session, form.course.data or "")
    refusal = enrolments.refusal(session, person, course)
    if refusal is not None:
        form.course.errors = [refusal]
        return _record_page(person, 422, enrol_form=form)
    assert course is not None  # refusal() names a course that is not there
    enrolments.enrol_for(session, person, course, user())
    flash(f"{person.full_name} is enrolled in “{course.title}” and has been emailed a link to it.", "success")
    return redirect(url_for("admin.person", user_id=person.id))


@bp.route("/people/<int:user_id>/role", methods=["POST"])
@role_required(Role.ADMIN)
def person_role(user_id: int) -> ResponseReturnValue:
    """Change a person's role; the last active administrator cannot be demoted."""
    person = _person_or_404(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            fail(400, EXPIRED)
        return _record_page(person, 422, form)
    before = person.role.value
    try:
        changed = accounts.set_role(get_session(), person, form.role.data or "", user())
    except accounts.AccountError as exc:
        form.role.errors = [str(exc)]
        return _record_page(person, 422, form)
    # Told at an address the person proved, and only while they can log in to use the new role.
    if changed and person.id != user().id and person.is_active and person.is_email_confirmed:
        mailer.role_changed_by_staff(person, before)
    article = "an" if person.role.value[0] in "aeiou" else "a"
    now = (
        f"{person.full_name} is now {article} {person.role.value.title()}: their sessions ended, and the new role "
        "applies at their next login"
    )
    if person.must_use_two_factor and not person.has_two_factor:
        now += ", where they first set up two-factor sign-in"
    now += "."
    flash(now if changed else "The role was not changed.", "success")
    return redirect(url_for("admin.person", user_id=person.id))


def _status_change(
    user_id: int, change: Callable[[Session, User, User | None], None], done: str, *, checked: bool = False
) -> ResponseReturnValue:
    """Apply the change; `checked`: the caller validated its own form already."""
    person = _person_or_404(user_id)
    if not checked and not StatusForm().validate_on_submit():
        fail(400, EXPIRED)
    try:
        change(get_session(), person, user())
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return _record_page(person, 422)
    told = person.id != user().id and person.is_email_confirmed  # never to an address nobody proved
    if told:
        mailer.status_changed_by_staff(person)
    flash(f"{person.full_name}'s account is {done}{'; they were emailed' if told else ''}.", "success")
    return redirect(url_for("admin.person", user_id=person.id))


@bp.route("/people/<int:user_id>/deactivate", methods=["POST"])
@role_required(Role.ADMIN)
def person_deactivate(user_id: int) -> ResponseReturnValue:
    """Stop an account from logging in, once the box is ticked; their records stay."""
    form = DeactivateForm()
    if form.validate_on_submit():
        return _status_change(user_id, accounts.deactivate, "deactivated: they can no longer log in", checked=True)
    if "csrf_token" in form.errors:
        fail(400, EXPIRED)
    return _record_page(_person_or_404(user_id), 422, deactivate_form=form)


@bp.route("/people/<int:user_id>/reactivate", methods=["POST"])
@role_required(Role.ADMIN)
def person_reactivate(user_id: int) -> ResponseReturnValue:
    """Let a deactivated account log in again."""
    return _status_change(user_id, accounts.reactivate, "active again")


@bp.route("/people/<int:user_id>/close", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def person_close(user_id: int) -> ResponseReturnValue:
    """Confirm, then close an account at the person's request (deactivate and pseudonymise)."""
    person = _person_or_404(user_id)
    form = CloseAccountForm()
    error = None
    if form.validate_on_submit():
        try:
            accounts.close_account(get_session(), person, user())
        except accounts.AccountError as exc:
            error = str(exc)
        else:
            flash(f"The account is closed and now appears as “{person.full_name}”. Its CE records are kept.", "success")
            return redirect(url_for("admin.person", user_id=person.id))
    status = 422 if form.errors or error else 200
    return render_template("admin/learner_close.html", person=person, form=form, error=error), status


@bp.route("/people/<int:user_id>/send-confirmation", methods=["POST"])
@role_required(Role.ADMIN)
def person_send_confirmation(user_id: int) -> ResponseReturnValue:
    """Email the person a new link confirming their address (a help-desk action; the administrator never sees it)."""

    def send(person: User) -> str:
        if person.is_email_confirmed:
            raise accounts.AccountError(f"{person.full_name}'s email address is already confirmed.")
        ownership.send_confirmation(get_session(), person)
        audit.record(get_session(), "user.confirmation_sent", "user", person.id, actor_id=user().id)
        return f"A new confirmation link went to {person.email}; the links sent before it no longer work."

    return _person_action(user_id, send)


@bp.route("/people/<int:user_id>/send-reset", methods=["POST"])
@role_required(Role.ADMIN)
def person_send_reset(user_id: int) -> ResponseReturnValue:
    """Email the person a password-reset link (a help-desk action; the administrator never sees the link)."""

    def send(person: User) -> str:
        if not person.is_active:
            raise accounts.AccountError(
                "The account is deactivated: reactivate it before sending a password-reset link."
            )
        ownership.request_password_reset(get_session(), person.email)
        audit.record(get_session(), "user.password_reset_sent", "user", person.id, actor_id=user().id)
        return (
            f"A password-reset link went to {person.email}, unless one went in the last ten minutes (that one still "
            "works); the links sent before it no longer work."
        )

    return _person_action(user_id, send)


@bp.route("/people/<int:user_id>/two-factor/reset", methods=["POST"])
@role_required(Role.ADMIN)
def person_reset_two_factor(user_id: int) -> ResponseReturnValue:
    """Switch off a person's two-factor sign-in after a lost device (never one's own); audited."""

    def reset(person: User) -> str:
        twofactor.reset(get_session(), person, user())
        return (
            f"{person.full_name}'s two-factor sign-in is reset: their recovery codes no longer work, their sessions "
            "ended, and we emailed them."
        )

    return _person_action(user_id, reset)


def _person_action(user_id: int, act: Callable[[User], str]) -> ResponseReturnValue:
    """A button on a person's record: the action's message on success, its refusal in words on the record."""
    person = _person_or_404(user_id)
    if not StatusForm().validate_on_submit():
        fail(400, EXPIRED)
    try:
        message = act(person)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return _record_page(person, 422)
    flash(message, "success")
    return redirect(url_for("admin.person", user_id=person.id))
