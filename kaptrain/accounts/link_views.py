"""Pages reached from emailed links, and the request for one: forgot password, reset password, confirm an address."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user

from kaptrain.accounts import devices, ownership, services
from kaptrain.accounts.forms import ConfirmEmailForm, ForgotPasswordForm, ResetPasswordForm
from kaptrain.accounts.models import TokenPurpose
from kaptrain.accounts.tokens import Problem, TokenError
from kaptrain.accounts.views import SENT_TO_KEY, bp, field_error, mail_limit, sent_to
from kaptrain.db import get_session
from kaptrain.extensions import limiter


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(mail_limit, methods=["POST"])
def forgot_password() -> ResponseReturnValue:
    # Per client address only: per account, ownership.request_password_reset sends at most one email in ten
    # minutes and answers the same, so strangers can neither flood an inbox nor have the owner refused.
    """Ask for a password-reset link; the answer does not say whether the address has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        ownership.request_password_reset(get_session(), form.email.data or "")
        cookie_session[SENT_TO_KEY] = ["reset", (form.email.data or "").strip()]  # named next, so a typo shows
        return redirect(url_for("accounts.reset_sent"))
    return render_template("accounts/forgot.html", form=form), 422 if form.errors else 200


@bp.route("/password/forgot/sent")
def reset_sent() -> ResponseReturnValue:
    """What a reset request answers, whether or not the address has an account."""
    return render_template("accounts/check_email.html", purpose="reset", address=sent_to("reset"))


def _link_problem(exc: services.AccountError, kind: str) -> ResponseReturnValue:
    """The page for a link that does not work (kind "reset" or "confirm"): why, and what to do instead.

    404 for a link that never existed, 410 for one that did and no longer works; nothing was changed."""
    unknown = isinstance(exc, TokenError) and exc.problem == Problem.UNKNOWN
    status = 404 if unknown else 410
    if isinstance(exc, TokenError) and exc.problem == Problem.USED and exc.purpose == TokenPurpose.CONFIRM_EMAIL:
        # Opened again (from the email, or the browser's history): what it asked for is done, which is no problem.
        return render_template("accounts/link_problem.html", message=str(exc), kind=kind, done=True)
    used = isinstance(exc, TokenError) and exc.problem == Problem.USED
    return render_template("accounts/link_problem.html", message=str(exc), kind=kind, used=used), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    """Choose a new password through the emailed link; every session of the account ends."""
    session = get_session()
    try:
        account = ownership.check_reset(session, token)
    except services.AccountError as exc:
        return _link_problem(exc, "reset")
    form = ResetPasswordForm()
    # An account an administrator made, never used yet: the link is its invitation, and this its first password.
    first = account.last_login_at is None and not account.is_email_confirmed
    if form.validate_on_submit():
        try:
            ownership.reset_password(session, token, form.password.data or "")
        except TokenError as exc:
            return _link_problem(exc, "reset")
        except services.AccountError as exc:
            field_error(form, exc)
        else:
            if first:
                flash("Your password is set and your account is ready: log in with it now.", "success")
            else:
                flash(
                    "Your password was changed and every session of your account ended. Log in with it now.", "success"
                )
            return redirect(url_for("accounts.login"))
    page = render_template("accounts/reset.html", form=form, account=account, first=first)
    return page, 422 if form.errors else 200


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm_email(token: str) -> ResponseReturnValue:
    """Confirm an email address (the account's own, or a new one it is moving to) from the emailed link."""
    session = get_session()
    try:
        found, account = ownership.check_confirmation(session, token)
    except services.AccountError as exc:
        return _link_problem(exc, "confirm")
    form = ConfirmEmailForm()
    if form.validate_on_submit():
        try:
            account, old_email = ownership.confirm(session, token)
        except services.AccountError as exc:
            return _link_problem(exc, "confirm")
        if old_email is not None:
            if not current_user.is_authenticated:
                then = "Log in with it now."
            elif current_user.id == account.id:
                login_user(account)  # this browser stays signed in, under the new session version
                devices.remember(account)  # and its own login count, under the new version
                then = "Every other device was logged out."
            else:  # followed in a browser signed in to another account, which stays as it was
                then = f"That account's devices were logged out; you are still logged in as {current_user.email}."
            flash(f"The account's email address is now {account.email}. We have told {old_email}. {then}", "success")
        else:
            flash(f"Thank you: {account.email} is confirmed.", "success")
        return redirect(url_for("courses.dashboard" if current_user.is_authenticated else "accounts.login"))
    change = found.purpose == TokenPurpose.CHANGE_EMAIL
    return render_template("accounts/confirm.html", form=form, address=found.email, account=account, change=change)
