"""Two-factor sign-in pages: set it up (QR code), recovery codes, turn it off; and the rule that staff must have it."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user

from kaptrain.accounts import devices, services, twofactor
from kaptrain.accounts.forms import CurrentPasswordForm, EnableTwoFactorForm
from kaptrain.accounts.views import bp, field_error
from kaptrain.auth import safe_next, user
from kaptrain.db import get_session, may_write, utcnow

# What an instructor or administrator without two-factor sign-in may still reach: its set-up, and the way out.
ALLOWED_BEFORE_ENROLMENT = frozenset({"accounts.two_factor", "accounts.logout", "static", "favicon"})


@bp.before_app_request
def require_two_factor_for_staff() -> ResponseReturnValue | None:
    """Send an instructor or administrator who has not set up two-factor sign-in to do so, before anything else."""
    if request.endpoint in ALLOWED_BEFORE_ENROLMENT or not current_user.is_authenticated:
        return None
    me = user()
    if not me.must_use_two_factor or me.has_two_factor:
        return None
    if request.method == "GET":
        flash(
            "Instructors and administrators log in with two factors. Set it up now to continue: it takes a minute "
            "with an authenticator app on your phone.",
            "info",
        )
        session[AFTER_SET_UP] = request.full_path.rstrip("?")  # this site's own path: where to go on afterwards
    return redirect(url_for("accounts.two_factor"))


AFTER_SET_UP = "after_two_factor"  # session key: the page a staff member asked for before setting it up


def _issuer() -> str:
    return str(current_app.config["SITE_NAME"])


def _page(
    status: int = 200,
    form: EnableTwoFactorForm | None = None,
    password_form: CurrentPasswordForm | None = None,
    disable_form: CurrentPasswordForm | None = None,
) -> ResponseReturnValue:
    me = user()
    session = get_session()
    context = {
        "enrolment": None
        if me.has_two_factor or not twofactor.may_enrol(me)
        else twofactor.start_enrolment(session, me, _issuer()),
        "unproven": not me.has_two_factor and not twofactor.may_enrol(me),
        "form": form or EnableTwoFactorForm(formdata=None),
        "password_form": password_form or CurrentPasswordForm(formdata=None, prefix="codes"),
        "disable_form": disable_form or CurrentPasswordForm(formdata=None, prefix="off"),
        "recovery_left": twofactor.recovery_codes_left(session, me) if me.has_two_factor else 0,
    }
    return render_template("accounts/two_factor.html", **context), status


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
@may_write  # the first visit makes the secret the QR code shows
def two_factor() -> ResponseReturnValue:
    """Set up two-factor sign-in (QR code and secret, then a code from the app), or see that it is on."""
    me = user()
    form = EnableTwoFactorForm()
    if not me.has_two_factor and form.validate_on_submit():
        try:
            codes = twofactor.enable(get_session(), me, form.code.data or "", form.current_password.data or "")
        except services.AccountError as exc:
            field_error(form, exc)
        else:
            login_user(me)  # this browser keeps its session under the new session version
            devices.remember(me)  # and its own login count, under the new version
            then = safe_next(session.pop(AFTER_SET_UP, None), url_for("accounts.profile"))
            return render_template("accounts/recovery_codes.html", codes=codes, first=True, then=then, made=utcnow())
    return _page(422 if form.errors else 200, form=form)


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
@login_required
def recovery_codes() -> ResponseReturnValue:
    """Make new recovery codes (the old ones stop working), after the password."""
    if not user().has_two_factor:  # the page shows no recovery-code form then: say so above it, not on a hidden field
        flash("Two-factor sign-in is off for your account, so it has no recovery codes. Set it up first.", "error")
        return _page(422)
    form = CurrentPasswordForm(prefix="codes")
    if form.validate_on_submit():
        try:
            codes = twofactor.regenerate_recovery_codes(get_session(), user(), form.current_password.data or "")
        except services.AccountError as exc:
            field_error(form, exc)
        else:
            return render_template("accounts/recovery_codes.html", codes=codes, first=False, made=utcnow())
    return _page(422, password_form=form)


@bp.route("/account/two-factor/disable", methods=["POST"])
@login_required
def disable_two_factor() -> ResponseReturnValue:
    """Turn two-factor sign-in off (learners only; instructors and administrators must keep it)."""
    if not user().has_two_factor:  # the page shows no form to turn it off then: say so above it, not on a hidden field
        flash("Two-factor sign-in is already off for your account.", "error")
        return _page(422)
    form = CurrentPasswordForm(prefix="off")
    if form.validate_on_submit():
        me = user()
        try:
            twofactor.disable(get_session(), me, form.current_password.data or "")
        except services.AccountError as exc:
            field_error(form, exc)
        else:
            login_user(me)  # this browser keeps its session; the account's other sessions end
            devices.remember(me)  # and its own login count, under the new version
            flash("Two-factor sign-in is off. Logging in now asks only for your password.", "success")
            return redirect(url_for("accounts.profile"))
    return _page(422, disable_form=form)
