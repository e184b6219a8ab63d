"""Administrator pages."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from kaptrain.accounts.models import Role, User
from kaptrain.accounts.services import find_user_by_email
from kaptrain.admin.forms import AccommodationEditForm, AccommodationForm, WithdrawForm
from kaptrain.auth import role_required, user
from kaptrain.certificates import services as certificate_services
from kaptrain.db import get_session
from kaptrain.errors import fail
from kaptrain.forms import BaseForm
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.accommodations import AccommodationError
from kaptrain.quizzes.models import Accommodation, Quiz

bp = Blueprint("admin", __name__, url_prefix="/admin")


def waiting_certificates() -> int:
    """How many certificates wait for an administrator, for approval or for a correction their holder asked for:
    the admin menu on every admin page says so."""
    return certificate_services.waiting_count(get_session())


@bp.context_processor
def _admin_menu() -> dict[str, Callable[[], int]]:
    # A function, called only where the menu is drawn (an email rendered after the commit draws none).
    return {"waiting_certificates": waiting_certificates}


@bp.route("/accommodations", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def accommodations() -> ResponseReturnValue:
    """Grant accommodations and list every grant, in force or withdrawn."""
    session = get_session()
    form = AccommodationForm()
    form.quiz.choices = [SelectChoice(0, "Choose a quiz")] + [
        SelectChoice(q.id, q.title) for q in quizzes.all_quizzes(session)
    ]
    valid = form.validate_on_submit()
    if form.is_submitted() and "csrf_token" not in form.errors:
        # Every mistake at once, not one a submission: the account, the quiz and "nothing granted" with the fields'.
        # Looked up only once the address itself passed its checks (one with a NUL byte never reaches PostgreSQL).
        email_ok = bool(form.email.data) and not form.email.errors
        learner = find_user_by_email(session, form.email.data or "") if email_ok else None
        if email_ok and learner is None:
            form.email.errors = ["No account has this email."]
        quiz = session.get(Quiz, form.quiz.data) if form.quiz.data and not form.quiz.errors else None
        if quiz is None and not form.quiz.errors:
            form.quiz.errors = ["Choose a quiz."]
        nothing = not (form.extra_minutes.data or form.extra_attempts.data)
        if nothing and not (form.extra_minutes.errors or form.extra_attempts.errors):
            form.extra_minutes.errors = [
                "Grant extra minutes, extra attempts or both (to remove a grant, withdraw it)."
            ]
        if valid and learner is not None and quiz is not None and not form.errors:
            who, on = learner, quiz
            if _saved(form, lambda: quizzes.grant_accommodation(
                session, who.id, on, form.extra_minutes.data or 0, form.extra_attempts.data or 0,
                form.note.data or "", user().id,
            )):  # fmt: skip
                flash(f"Accommodation saved for {who.full_name} on “{on.title}”.", "success")
                _untimed_warning(on, form.extra_minutes.data)
                return redirect(url_for("admin.accommodations"))
    rows = session.execute(
        select(Accommodation, User, Quiz)
        .join(User, User.id == Accommodation.user_id)
        .join(Quiz, Quiz.id == Accommodation.quiz_id)
        .order_by(Accommodation.withdrawn_at.is_not(None), Accommodation.granted_at.desc())
    ).all()
    return render_template("admin/accommodations.html", form=form, rows=rows), 422 if form.errors else 200


def _untimed_warning(quiz: Quiz, extra_minutes: int | None) -> None:
    """Extra minutes on a quiz with no time limit change nothing (until it gets one): say so, not just "saved"."""
    if extra_minutes and quiz.time_limit_minutes is None:
        flash(
            f"“{quiz.title}” has no time limit, so the {extra_minutes} extra minutes change nothing for now; they "
            "apply if the quiz is given a time limit. Extra attempts apply at once.",
            "info",
        )


def _saved(form: BaseForm, change: Callable[[], object]) -> bool:
    """Run a service call, turning its refusal into a form error (the field it names, else the form's)."""
    try:
        change()
    except AccommodationError as exc:
        target = getattr(form, exc.field, None) if exc.field else None
        if target is not None:
            target.errors = [str(exc)]
        else:
            form.form_errors.append(str(exc))
        return False
    return True


@bp.route("/accommodations/<int:acc_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def accommodation(acc_id: int) -> ResponseReturnValue:
    """One grant: edit its terms (or give it again once withdrawn), withdraw it, and its history."""
    session = get_session()
    acc = session.get(Accommodation, acc_id) or fail(404, "There is no such accommodation.")
    learner, quiz = session.get(User, acc.user_id), session.get(Quiz, acc.quiz_id)
    assert learner is not None and quiz is not None  # noqa: S101 - foreign keys
    form = AccommodationEditForm(obj=acc)
    if form.validate_on_submit() and _saved(form, lambda: quizzes.grant_accommodation(
        session, acc.user_id, quiz, form.extra_minutes.data or 0, form.extra_attempts.data or 0,
        form.note.data or "", user().id,
    )):  # fmt: skip
        flash(f"Accommodation for {learner.full_name} on “{quiz.title}” saved.", "success")
        _untimed_warning(quiz, form.extra_minutes.data)
        return redirect(url_for("admin.accommodation", acc_id=acc.id))
    return render_template(
        "admin/accommodation.html", acc=acc, learner=learner, quiz=quiz, form=form, withdraw=WithdrawForm(),
        people=_names(session, acc),
    ), 422 if form.errors else 200  # fmt: skip


@bp.route("/accommodations/<int:acc_id>/withdraw", methods=["POST"])
@role_required(Role.ADMIN)
def withdraw_accommodation(acc_id: int) -> ResponseReturnValue:
    """Withdraw a grant with a reason; it stops applying at once."""
    session = get_session()
    acc = session.get(Accommodation, acc_id) or fail(404, "There is no such accommodation.")
    form = WithdrawForm()
    if form.validate_on_submit() and _saved(
        form, lambda: quizzes.withdraw_accommodation(session, acc, form.reason.data or "", user().id)
    ):
        flash("Accommodation withdrawn; the learner's quiz limits are back to the quiz's own.", "success")
        return redirect(url_for("admin.accommodation", acc_id=acc.id))
    for message in [*form.reason.errors, *form.form_errors]:
        flash(str(message), "error")
    return redirect(url_for("admin.accommodation", acc_id=acc.id))


def _names(session: Session, acc: Accommodation) -> dict[int, str]:
    """Names of the people who changed a grant, by id."""
    ids = {c.changed_by_id for c in acc.changes if c.changed_by_id is not None}
    return {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


# Console pages in files of their own register their routes on this blueprint.
from kaptrain.admin import audit as _audit_views  # noqa: E402, F401
from kaptrain.admin import certificates as _certificate_views  # noqa: E402, F401
from kaptrain.admin import people as _people_views  # noqa: E402, F401
from kaptrain.admin import reports as _report_views  # noqa: E402, F401
from kaptrain.admin import settings_views as _settings_views  # noqa: E402, F401
