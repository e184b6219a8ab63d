"""The account emails: each is rendered from templates/accounts/email/ and sent by kaptrain.mail after the commit.

Sending goes through kaptrain.jobs, so a message leaves only once the request's transaction commits: a
refused or failed request sends nothing. Links are absolute, built on KAPTRAIN_BASE_URL."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, url_for

from kaptrain import jobs, mail
from kaptrain.accounts.models import User
from kaptrain.accounts.services import the_sites_team
from kaptrain.content.models import Course


def absolute_url(endpoint: str, **values: Any) -> str:
    """The public address of a page (KAPTRAIN_BASE_URL plus its path), for links in emails."""
    return str(current_app.config["BASE_URL"]).rstrip("/") + url_for(endpoint, **values)


def _send(to: str, subject: str, template: str, **context: Any) -> None:
    site = current_app.config["SITE_NAME"]
    text = render_template(f"accounts/email/{template}.txt", site=site, **context)
    jobs.enqueue(mail.send, to, f"{site}: {subject}", text)


def password_reset(user: User, secret: str, minutes: int) -> None:
    """The link that sets a new password."""
    link = absolute_url("accounts.reset_password", token=secret)
    _send(user.email, "reset your password", "reset", user=user, link=link, minutes=minutes)


def invitation(user: User, inviter: User, secret: str, days: int) -> None:
    """An administrator made the account: the link that sets its first password (and proves the address)."""
    link = absolute_url("accounts.reset_password", token=secret)
    _send(user.email, "your new account", "invite", user=user, inviter=inviter, link=link, days=days)


def account_closed(address: str) -> None:
    """The account at this address was closed: what that means, and whom to contact if it was not asked for."""
    _send(address, "your account was closed", "closed", team=the_sites_team())


def reset_refused_deactivated(user: User) -> None:
    """A reset was asked for a deactivated account: say why no link comes, and whom to ask."""
    _send(user.email, "your account is deactivated", "reset_deactivated", user=user, team=the_sites_team())


def password_changed(user: User) -> None:
    """Tell the person their password changed (if it was not them, they know at once)."""
    forgot = absolute_url("accounts.forgot_password")
    _send(user.email, "your password was changed", "password_changed", user=user, forgot=forgot)


def confirm_address(user: User, secret: str, hours: int) -> None:
    """The link that confirms the account's own address."""
    link = absolute_url("accounts.confirm_email", token=secret)
    _send(user.email, "confirm your email address", "confirm", user=user, link=link, hours=hours)


def registration_attempt(user: User) -> None:
    """Someone registered with an address that already has an account: tell its owner, not the form."""
    _send(
        user.email,
        "someone tried to register with your address",
        "register_existing",
        user=user,
        login=absolute_url("accounts.login"),
        forgot=absolute_url("accounts.forgot_password"),
    )


def confirm_new_address(user: User, new_email: str, secret: str, hours: int) -> None:
    """The link, sent to the new address, that moves the account to it."""
    link = absolute_url("accounts.confirm_email", token=secret)
    context = {"user": user, "new_email": new_email, "link": link, "hours": hours}
    _send(new_email, "confirm your new email address", "change_confirm", **context)


def new_address_taken(user: User, new_email: str) -> None:
    """Sent to the new address instead of a link when another account already uses it."""
    _send(new_email, "an email change was not made", "change_taken", user=user, new_email=new_email)


def address_change_notice(user: User, new_email: str) -> None:
    """Sent to the current address when a move to another address is asked for."""
    _send(
        user.email,
        "a change of your email address was requested",
        "change_notice",
        user=user,
        new_email=new_email,
        forgot=absolute_url("accounts.forgot_password"),
    )


def address_changed(user: User, old_email: str) -> None:
    """Sent to the old address once the change is made."""
    _send(old_email, "your email address was changed", "changed", user=user, old_email=old_email)


def enrolled_by_staff(user: User, course: Course) -> None:
    """Tell the person an administrator enrolled them, with the course's address."""
    link = absolute_url("courses.course", slug=course.slug)
    _send(user.email, f"you are enrolled in {course.title}", "enrolled", user=user, course=course, link=link)


def profile_changed_by_staff(user: User, fields: list[str]) -> None:
    """Tell the person an administrator changed details their certificates print."""
    link = absolute_url("accounts.profile")
    _send(user.email, "your profile was updated", "profile_changed", user=user, fields=fields, link=link)


def two_factor_reset(user: User) -> None:
    """Tell the person an administrator switched off their two-factor sign-in."""
    _send(user.email, "your two-factor sign-in was reset", "two_factor_reset", user=user)


def role_changed_by_staff(user: User, before: str) -> None:
    """Tell the person an administrator changed their role (and, for staff roles, that two factors come next)."""
    login = absolute_url("accounts.login")
    _send(user.email, "your role changed", "role_changed", user=user, before=before, login=login, team=the_sites_team())


def status_changed_by_staff(user: User) -> None:
    """Tell the person an administrator deactivated or reactivated their account, and whom to ask."""
    subject = "your account was reactivated" if user.is_active else "your account was deactivated"
    login = absolute_url("accounts.login")
    _send(user.email, subject, "status_changed", user=user, login=login, team=the_sites_team())
