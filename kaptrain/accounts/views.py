"""Account pages: register, log in, log out, profile, password."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.datastructures import ImmutableMultiDict

from kaptrain.accounts import services
from kaptrain.accounts.forms import LoginForm, LogoutForm, PasswordForm, ProfileForm, RegisterForm
from kaptrain.accounts.models import User
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
        time_zone=form.time_zone.data or "",
    )


def _start_session(account: User) -> None:
    # A fresh cookie session at login: nothing planted before it (above all the CSRF secret) survives.
    cookie_session.clear()
    # The login lasts SESSION_HOURS from now however active it is (kaptrain.auth checks), and the cookie
    # ends with the browser: not permanent, which also keeps Flask-Login's "strong" protection deleting a
    # session whose address or browser changes (for permanent sessions it only marks them non-fresh).
    cookie_session["login_at"] = int(time.time())
    login_user(account)


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
            _field_error(form, exc)  # the error response rolls back anything the service flushed
        else:
            _start_session(new)
            flash("Welcome! Your account is ready. Choose a course to begin.", "success")
            return redirect(url_for("courses.catalogue"))
    return render_template("accounts/register.html", form=form), 422 if form.errors else 200


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _login_account_key() -> str:
    """Rate-limit key for the account being tried, so rotating addresses does not help (ASVS V2.2.1)."""
    return "login:" + services.normalise_email(_submitted_email())


def _submitted_email() -> str:
    """The email the login form will read: Flask-WTF takes form fields, else a JSON body."""
    if request.files or request.form:
        return request.form.get("email", "")
    if not request.is_json:
        return ""
    try:
        body = ImmutableMultiDict(request.get_json(silent=True) or {})
    except (TypeError, ValueError):  # JSON that is not an object: the form finds no email in it either
        return ""
    email = body.get("email", "")
    return email if isinstance(email, str) else str(email)


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
            _start_session(found)
            return redirect(safe_next(request.args.get("next"), url_for("courses.dashboard")))
    return render_template("accounts/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    """Log out and invalidate every copy of the session cookie."""
    if LogoutForm().validate_on_submit():
        session = get_session()
        services.end_sessions(session, user())
        cookie_session.clear()  # a new CSRF secret too: tokens from the logged-in pages stop working
        logout_user()  # after clear(): it may mark a remember-me cookie for deletion
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
            _field_error(form, exc)  # the error response rolls back anything the service flushed
        else:
            flash("Your profile was saved.", "success")
            return redirect(url_for("accounts.profile"))
    page = render_template("accounts/profile.html", form=form, password_form=PasswordForm(formdata=None, prefix="pw"))
    return page, 422 if form.errors else 200


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
            _field_error(form, exc)  # the error response rolls back anything the service flushed
        else:
            login_user(me)  # re-issue this browser's session with the new version
            flash("Your password was changed. Other devices have been logged out.", "success")
            return redirect(url_for("accounts.profile"))
    return render_template("accounts/profile.html", form=ProfileForm(obj=me, formdata=None), password_form=form), 422
