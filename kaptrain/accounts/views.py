"""Account pages: register, log in, log out, profile, password."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user

from kaptrain.accounts import services
from kaptrain.accounts.forms import LoginForm, LogoutForm, PasswordForm, ProfileForm, RegisterForm
from kaptrain.auth import safe_next, user
from kaptrain.db import get_session
from kaptrain.extensions import limiter

bp = Blueprint("accounts", __name__)


def _profile(form: ProfileForm | RegisterForm) -> services.Profile:
    return services.Profile(
        full_name=form.full_name.data or "",
        profession=form.profession.data or "",
        credential=form.credential.data or "",
        licence_number=form.licence_number.data or "",
        jurisdiction=form.jurisdiction.data or "",
    )


def _field_error(form: RegisterForm | PasswordForm | ProfileForm, exc: services.AccountError) -> None:
    field = getattr(form, exc.field or "", None)
    if field is not None:
        field.errors = [*field.errors, str(exc)]
    else:
        flash(str(exc), "error")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def register() -> ResponseReturnValue:
    """Create a learner account."""
    if current_user.is_authenticated:
        return redirect(url_for("courses.dashboard"))
    form = RegisterForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            new = services.create_user(session, form.email.data or "", form.password.data or "", _profile(form))
        except services.AccountError as exc:
            session.rollback()
            _field_error(form, exc)
        else:
            session.commit()
            login_user(new)
            flash("Welcome! Your account is ready. Choose a course to begin.", "success")
            return redirect(url_for("courses.catalogue"))
    return render_template("accounts/register.html", form=form), 422 if form.errors else 200


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _login_account_key() -> str:
    """Rate-limit key for the account being tried, so rotating addresses does not help (ASVS V2.2.1)."""
    return "login:" + services.normalise_email(request.form.get("email", ""))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_account_key)
def login() -> ResponseReturnValue:
    """Log in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("courses.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        session = get_session()
        found = services.authenticate(session, form.email.data or "", form.password.data or "")
        if found is None:
            form.password.errors = ["That email and password do not match an account."]
        else:
            session.commit()
            login_user(found)
            return redirect(safe_next(request.args.get("next"), url_for("courses.dashboard")))
    return render_template("accounts/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    """Log out and invalidate every copy of the session cookie."""
    if LogoutForm().validate_on_submit():
        session = get_session()
        services.end_sessions(session, user())
        session.commit()
        logout_user()
        flash("You have logged out.", "info")
    return redirect(url_for("courses.home"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def profile() -> ResponseReturnValue:
    """Edit your profile."""
    me = user()
    form = ProfileForm(obj=me)
    if form.validate_on_submit():
        session = get_session()
        try:
            services.update_profile(session, me, _profile(form))
        except services.AccountError as exc:
            session.rollback()
            _field_error(form, exc)
        else:
            session.commit()
            flash("Your profile was saved.", "success")
            return redirect(url_for("accounts.profile"))
    return render_template("accounts/profile.html", form=form, password_form=PasswordForm(formdata=None, prefix="pw"))


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password() -> ResponseReturnValue:
    """Change your password; other sessions are logged out."""
    me = user()
    form = PasswordForm(prefix="pw")  # prefixed: the profile form on the same page has its own field ids
    if form.validate_on_submit():
        session = get_session()
        try:
            services.change_password(session, me, form.current_password.data or "", form.password.data or "")
        except services.AccountError as exc:
            session.rollback()
            _field_error(form, exc)
        else:
            session.commit()
            login_user(me)  # re-issue this browser's session with the new version
            flash("Your password was changed. Other devices have been logged out.", "success")
            return redirect(url_for("accounts.profile"))
    return render_template("accounts/profile.html", form=ProfileForm(obj=me, formdata=None), password_form=form), 422
