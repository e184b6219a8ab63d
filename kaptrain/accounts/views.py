"""Account pages: register, log in (password, then a code when two-factor sign-in is on), log out, the account page."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.datastructures import ImmutableMultiDict

from kaptrain import audit
from kaptrain.accounts import browser_sessions, devices, mailer, ownership, services, twofactor
from kaptrain.accounts.forms import (
    CloseAccountForm,
    DataExportForm,
    EmailChangeForm,
    LoginCodeForm,
    LoginForm,
    LogoutForm,
    PasswordForm,
    ProfileForm,
    RegisterForm,
    ResendConfirmationForm,
    profile_from,
)
from kaptrain.accounts.models import User
from kaptrain.accounts.personal_data import personal_data
from kaptrain.auth import safe_next, user
from kaptrain.db import finish_request, get_session, utcnow
from kaptrain.errors import fail
from kaptrain.extensions import limiter
from kaptrain.forms import BaseForm
from kaptrain.web import http_error, wait_words

bp = Blueprint("accounts", __name__)

# Between the password and the code: who is logging in, their session version, and since when (epoch seconds).
PENDING_KEY = "two_factor_pending"
# The address a registration or reset form was sent for, named once on the page that follows (the cookie is the
# browser's own: it says nothing about whether the address has an account).
SENT_TO_KEY = "sent_to"
PENDING_SECONDS = 300


def _start_session(account: User) -> None:
    # A fresh cookie session at login: nothing planted before it (above all the CSRF secret) survives.
    cookie_session.clear()
    # The login lasts SESSION_HOURS from now however active it is (kaptrain.auth checks), and the cookie
    # ends with the browser: not permanent, which also keeps Flask-Login's "strong" protection deleting a
    # session whose address or browser changes (for permanent sessions it only marks them non-fresh).
    cookie_session["login_at"] = int(time.time())
    login_user(account)
    browser_sessions.start(cookie_session)  # this login's own id: logging out ends it alone
    devices.remember(account)
    if not account.is_email_confirmed:
        flash(
            f"Please confirm your email address: follow the link we sent to {account.email}. You can study now; "
            "your certificate is issued once the address is confirmed.",
            "info",
        )


def field_error(form: BaseForm, exc: services.AccountError) -> None:
    """Show a service's refusal on the field it names, or as a message at the top of the page."""
    field = getattr(form, exc.field or "", None)
    if field is not None:
        field.errors = [*field.errors, str(exc)]
    else:
        flash(str(exc), "error")


def mail_limit() -> str:
    """Emails asked for from a form (KAPTRAIN_ACCOUNT_MAIL_RATE_LIMIT)."""
    return str(current_app.config["ACCOUNT_MAIL_RATE_LIMIT"])


def was_accepted(response: Response) -> bool:
    """Limits on sending mail count only the requests that got as far as sending (a redirect)."""
    return response.status_code in (302, 303)


def _register_email_key() -> str:
    return "register:" + services.normalise_email(request.form.get("email", ""))


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
@limiter.limit(mail_limit, methods=["POST"], key_func=_register_email_key, deduct_when=was_accepted)
def register() -> ResponseReturnValue:
    """Create a learner account; the answer is the same whether or not the address already has one."""
    if current_user.is_authenticated:
        return redirect(url_for("courses.dashboard"))
    form = RegisterForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            ownership.register(session, form.email.data or "", form.password.data or "", profile_from(form))
        except services.AccountError as exc:
            field_error(form, exc)  # the error response rolls back anything the service flushed
        else:
            # Named on the next page, so a typo can be seen.
            cookie_session[SENT_TO_KEY] = ["register", (form.email.data or "").strip()]
            return redirect(url_for("accounts.registered", next=_came_from()))
    return render_template("accounts/register.html", form=form), 422 if form.errors else 200


def _came_from() -> str | None:
    """The page on this site a registration started from (a course's "Create an account to enrol"), to log in to."""
    return safe_next(request.args.get("next"), "") or None


@bp.route("/register/check-your-email")
def registered() -> ResponseReturnValue:
    """What a registration answers, for a new address and a known one alike."""
    address = sent_to("register")
    return render_template("accounts/check_email.html", purpose="register", address=address, next=_came_from())


def sent_to(purpose: str) -> str | None:
    """The address the form for this purpose ("register", "reset") was just sent for, once; None otherwise."""
    kept = cookie_session.pop(SENT_TO_KEY, None)
    if isinstance(kept, list) and len(kept) == 2 and kept[0] == purpose and isinstance(kept[1], str):
        return kept[1]
    return None


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _login_account_key() -> str:
    """Rate-limit key for the account being tried, so rotating addresses does not help (ASVS V2.2.1); a browser
    that logged in to it before counts apart, so that strangers' tries cannot lock its owner out (devices)."""
    return devices.rate_key("login", services.normalise_email(_submitted_email()))


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
    """Log in with email and password; with two-factor sign-in on, a code is asked for next."""
    if current_user.is_authenticated:
        return redirect(url_for("courses.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            found = services.authenticate(session, form.email.data or "", form.password.data or "")
        except services.AccountDeactivated as exc:
            form.form_errors.append(str(exc))  # about the account, not the password typed
        else:
            if found is None:
                form.password.errors = ["That email and password do not match an account."]
            elif found.has_two_factor:
                cookie_session.clear()
                pending = {"user": found.id, "version": found.session_version, "at": int(time.time())}
                cookie_session[PENDING_KEY] = pending
                return redirect(url_for("accounts.login_code", next=request.args.get("next")))
            else:
                _start_session(found)
                return redirect(safe_next(request.args.get("next"), url_for("courses.dashboard")))
    return render_template("accounts/login.html", form=form), 422 if form.errors else 200


@bp.errorhandler(RateLimitExceeded)
def rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
    """Too many logins: the login form again, saying how long to wait and where to reset the password, instead of
    a page with no way on; every other form of this blueprint gets the site's error page."""
    if request.endpoint != "accounts.login":
        return http_error(exc)
    finish_request(commit=False)
    form = LoginForm(formdata=None, email=request.form.get("email", "")[:254])
    form.form_errors.append(
        f"Too many attempts to log in. Please wait {wait_words(exc)}, then try again. If you have forgotten your "
        "password, reset it with the link below the form."
    )
    return render_template("accounts/login.html", form=form, limited=True), 429


def _pending_login() -> User | None:
    """The account whose password was just accepted and which now owes its code, if that was recent."""
    pending = cookie_session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    user_id, version, at = pending.get("user"), pending.get("version"), pending.get("at")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (user_id, version, at)):
        return None
    if not isinstance(at, int) or not 0 <= time.time() - at <= PENDING_SECONDS:
        return None
    found = services.load_session_user(get_session(), f"{user_id}:{version}")
    return found if found is not None and found.has_two_factor else None


def _two_factor_limit() -> str:
    return str(current_app.config["TWO_FACTOR_RATE_LIMIT"])


def _two_factor_account_key() -> str:
    """Codes tried for one account count together, from whichever address they come."""
    pending = cookie_session.get(PENDING_KEY)
    user_id = pending.get("user") if isinstance(pending, dict) else None
    return f"2fa:{user_id}" if isinstance(user_id, int) else f"2fa-none:{request.remote_addr}"


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_two_factor_limit, methods=["POST"])
@limiter.limit(_two_factor_limit, methods=["POST"], key_func=_two_factor_account_key)
def login_code() -> ResponseReturnValue:
    """The second step of logging in: a code from the authenticator app, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("courses.dashboard"))
    pending = _pending_login()
    if pending is None:
        flash("Log in with your email and password first (the code step lasts 5 minutes).", "info")
        return redirect(url_for("accounts.login", next=request.args.get("next")))
    form = LoginCodeForm()
    if form.validate_on_submit():
        try:
            result = twofactor.verify(get_session(), pending, form.code.data or "")
        except services.AccountError as exc:
            field_error(form, exc)  # a refused code changes nothing: the error response rolls back
        else:
            _start_session(pending)
            if result.used_recovery_code:
                flash(_recovery_code_used(result.recovery_codes_left), "info")
            return redirect(safe_next(request.args.get("next"), url_for("courses.dashboard")))
    return render_template("accounts/login_code.html", form=form), 422 if form.errors else 200


def _recovery_code_used(left: int) -> str:
    if left == 0:
        return (
            "You used your last recovery code. Make new ones now on your account page, under Two-factor sign-in, "
            "so you are not locked out if you lose your device."
        )
    return (
        f"You logged in with a recovery code; it cannot be used again. {left} recovery code"
        f"{' is' if left == 1 else 's are'} left."
    )


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    """Log this browser out: every copy of its session cookie stops working; the account's other sessions stay."""
    if LogoutForm().validate_on_submit():
        sid = browser_sessions.sid_of(cookie_session)
        if sid:
            browser_sessions.end(get_session(), sid, current_app.config["SESSION_HOURS"])
            said = "You have logged out of this browser. Other devices logged in to your account stay logged in."
        else:  # a cookie from before logins had ids: only moving the session version ends it
            services.end_sessions(get_session(), user())
            said = "You have logged out, here and on any other device or browser logged in to your account."
        _forget_this_browser()
        flash(said, "info")
    return redirect(url_for("courses.home"))


@bp.route("/account/logout-everywhere", methods=["POST"])
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """End every session of the account, this browser's and any other device's (a lost phone, a shared computer)."""
    if not LogoutForm().validate_on_submit():
        fail(400, "The form expired. Reload the Account page and press the button again.")
    services.end_sessions(get_session(), user())
    _forget_this_browser()
    flash("You have logged out here and on every other device or browser logged in to your account.", "info")
    return redirect(url_for("courses.home"))


def _forget_this_browser() -> None:
    cookie_session.clear()  # a new CSRF secret too: tokens from the logged-in pages stop working
    logout_user()  # after clear(): it may mark a remember-me cookie for deletion


def account_page(
    status: int = 200,
    form: ProfileForm | None = None,
    password_form: PasswordForm | None = None,
    email_form: EmailChangeForm | None = None,
) -> ResponseReturnValue:
    """The account page with its forms (the one that was sent keeps what was typed and its errors)."""
    me = user()
    session = get_session()
    context = {
        "form": form or ProfileForm(obj=me, formdata=None),
        "password_form": password_form or PasswordForm(formdata=None, prefix="pw"),
        "email_form": email_form or EmailChangeForm(formdata=None, prefix="em"),
        "resend_form": ResendConfirmationForm(formdata=None, data={"next": url_for("accounts.profile")}),
        "export_form": DataExportForm(formdata=None),
        "pending_change": ownership.pending_email_change(session, me),
        "recovery_left": twofactor.recovery_codes_left(session, me) if me.has_two_factor else 0,
    }
    return render_template("accounts/profile.html", **context), status


@bp.route("/account", methods=["GET", "POST"])
@login_required
def profile() -> ResponseReturnValue:
    """Your account: profile, email address, password and two-factor sign-in."""
    me = user()
    form = ProfileForm(obj=me)
    if form.validate_on_submit():
        try:
            services.update_profile(get_session(), me, profile_from(form))
        except services.AccountError as exc:
            field_error(form, exc)  # the error response rolls back anything the service flushed
        else:
            flash("Your profile was saved.", "success")
            return redirect(url_for("accounts.profile"))
    return account_page(422 if form.errors else 200, form=form)


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password() -> ResponseReturnValue:
    """Change your password; other sessions are logged out and you are told by email."""
    me = user()
    form = PasswordForm(prefix="pw")  # prefixed: the profile form on the same page has its own field ids
    if form.validate_on_submit():
        try:
            services.change_password(get_session(), me, form.current_password.data or "", form.password.data or "")
        except services.AccountError as exc:
            field_error(form, exc)  # the error response rolls back anything the service flushed
        else:
            mailer.password_changed(me)
            login_user(me)  # re-issue this browser's session with the new version
            devices.remember(me)  # and its own login count, under the new version
            flash("Your password was changed. Other devices have been logged out.", "success")
            return redirect(url_for("accounts.profile"))
    return account_page(422, password_form=form)


@bp.route("/account/data", methods=["POST"])
@login_required
def download_data() -> ResponseReturnValue:
    """Everything the site keeps about you, as a JSON file (kaptrain.accounts.personal_data); audited."""
    me = user()
    if not DataExportForm().validate_on_submit():
        return account_page(400)
    session = get_session()
    now = utcnow()
    document = personal_data(session, me, now)
    audit.record(session, "account.data_export", "user", me.id, actor_id=me.id, actor_label=me.email)
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    filename = f"my-data-{now:%Y-%m-%d}.json"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.route("/account/close", methods=["GET", "POST"])
@login_required
def close_account() -> ResponseReturnValue:
    """Close your own account (what an administrator does at a person's request): after the password and a tick,
    the account is deactivated and pseudonymised, its CE records kept, and this browser logged out."""
    me = user()
    form = CloseAccountForm()
    refused = False
    if form.validate_on_submit():
        try:
            services.check_current_password(me, form.current_password.data or "")
            services.close_account(get_session(), me, me)
        except services.AccountError as exc:
            field_error(form, exc)  # the last administrator's refusal has no field: it is shown at the top
            refused = True
        else:
            cookie_session.clear()
            logout_user()
            flash(
                "Your account is closed and you are logged out. Your continuing-education record is kept as the "
                "law requires, and your certificates can still be verified. We emailed your former address.",
                "info",
            )
            return redirect(url_for("courses.home"))
    page = render_template("accounts/close.html", form=form)
    return page, 422 if form.errors or refused else 200


def _account_mail_key() -> str:
    return f"account-mail:{user().id}" if current_user.is_authenticated else f"account-mail:{request.remote_addr}"


@bp.route("/account/email", methods=["POST"])
@limiter.limit(mail_limit, methods=["POST"], key_func=_account_mail_key, deduct_when=was_accepted)
@login_required
def change_email() -> ResponseReturnValue:
    """Ask to change your address: a link goes to the new one, a notice to the current one."""
    me = user()
    form = EmailChangeForm(prefix="em")
    if form.validate_on_submit():
        new_email = services.normalise_email(form.new_email.data or "")
        try:
            ownership.request_email_change(get_session(), me, form.current_password.data or "", new_email)
        except services.AccountError as exc:
            if exc.field == "new_email":
                form.new_email.errors = [*form.new_email.errors, str(exc)]
            else:
                field_error(form, exc)
        else:
            flash(
                f"We sent a link to {new_email}. Your address stays {me.email} until you follow it; "
                f"we have also told {me.email} about the change.",
                "success",
            )
            return redirect(url_for("accounts.profile"))
    return account_page(422, email_form=form)


@bp.route("/account/confirm/resend", methods=["POST"])
@limiter.limit(mail_limit, methods=["POST"], key_func=_account_mail_key, deduct_when=was_accepted)
@login_required
def resend_confirmation() -> ResponseReturnValue:
    """Send the link that confirms your address again (earlier links stop working)."""
    form = ResendConfirmationForm()
    back = safe_next(form.next.data, url_for("accounts.profile"))
    if not form.validate_on_submit():
        flash("The form expired. Reload the page and press the button again.", "error")
        return redirect(back)
    me = user()
    try:
        ownership.send_confirmation(get_session(), me)
    except services.AccountError as exc:
        flash(str(exc), "info")
    else:
        flash(f"We sent a new confirmation link to {me.email}. Earlier links no longer work.", "success")
    return redirect(back)
