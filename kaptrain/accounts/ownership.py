"""Who owns an address: registration that reveals nothing, confirmation links, changing the address, password reset.

Every function here flushes and never commits; the emails it asks for leave after the caller's commit
(kaptrain/accounts/mailer.py), so a refusal changes nothing and sends nothing. Links are single-use tokens
(kaptrain/accounts/tokens.py)."""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.accounts import mailer, tokens, twofactor
from kaptrain.accounts.models import AccountToken, Role, TokenPurpose, User
from kaptrain.accounts.services import (
    AccountError,
    EmailTaken,
    Profile,
    check_current_password,
    check_password_rules,
    create_user,
    find_user_by_email,
    hash_password,
    normalise_email,
    password_context,
    the_sites_team,
)
from kaptrain.db import as_utc, utcnow


def reset_lifetime() -> dt.timedelta:
    """How long a password-reset link works (KAPTRAIN_RESET_TOKEN_MINUTES)."""
    return dt.timedelta(minutes=int(current_app.config["RESET_TOKEN_MINUTES"]))


def confirm_lifetime() -> dt.timedelta:
    """How long a link confirming an address works (KAPTRAIN_CONFIRM_TOKEN_HOURS)."""
    return dt.timedelta(hours=int(current_app.config["CONFIRM_TOKEN_HOURS"]))


def _hours(lifetime: dt.timedelta) -> int:
    return int(lifetime.total_seconds() // 3600)


# ---------------------------------------------------------------- registration and confirmation


def register(session: Session, email: str, password: str, profile: Profile) -> User | None:
    """Register, answering the same way whether or not the address already has an account.

    A new address gets an account (which can log in and study at once) and a confirmation link. An address
    that has an account gets no new one: its owner is emailed instead, and None is returned. Bad input
    (weak password, no name) is refused the same way in both cases, before the address is looked at."""
    try:
        user = create_user(session, email, password, profile)
    except EmailTaken:
        hash_password(password)  # the work a new account costs, so the answer takes as long
        existing = find_user_by_email(session, email)
        if existing is not None and existing.is_active:
            mailer.registration_attempt(existing)
            # Written so the request commits (the email leaves after the commit), and so administrators can
            # see addresses being probed.
            audit.record(session, "user.register_existing", "user", existing.id, actor_label="anonymous")
        return None
    send_confirmation(session, user)
    return user


def send_confirmation(session: Session, user: User) -> None:
    """Email a (new) link confirming the account's address; earlier links stop working."""
    if user.is_email_confirmed:
        raise AccountError("Your email address is already confirmed.", "email")
    lifetime = confirm_lifetime()
    secret = tokens.issue(session, user, TokenPurpose.CONFIRM_EMAIL, user.email, lifetime)
    mailer.confirm_address(user, secret, _hours(lifetime))


def check_confirmation(session: Session, secret: str) -> tuple[AccountToken, User]:
    """The confirmation link (of the account's address or of a new one) and its account; TokenError otherwise."""
    return tokens.find(session, secret, (TokenPurpose.CONFIRM_EMAIL, TokenPurpose.CHANGE_EMAIL))


def confirm(session: Session, secret: str) -> tuple[User, str | None]:
    """Follow a confirmation link: confirm the address, or move the account to the new one.

    Returns the account and, for a change of address, the old address (None otherwise)."""
    token, user = check_confirmation(session, secret)
    if token.purpose == TokenPurpose.CHANGE_EMAIL:
        return user, _change_email(session, token, user)
    tokens.use(session, token)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        session.flush()
    return user, None


# ---------------------------------------------------------------- changing the address


def request_email_change(session: Session, user: User, current_password: str, new_email: str) -> None:
    """Ask to move the account to another address: a link goes to it, a notice to the current one.

    Nothing changes until the link is followed. When another account already uses the new address, the
    answer is the same and the new address is told instead (it proves nothing to whoever asked). The account page
    shows the change as waiting either way: a link is made in both cases, and only sent when the address is free
    (one never sent cannot be followed, and following one is refused if the address is taken by then)."""
    check_current_password(user, current_password)
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise AccountError("That is already your email address. Enter the new address you want to use.", "new_email")
    lifetime = confirm_lifetime()
    secret = tokens.issue(session, user, TokenPurpose.CHANGE_EMAIL, new_email, lifetime)
    if find_user_by_email(session, new_email) is not None:
        mailer.new_address_taken(user, new_email)
        audit.record(session, "user.email_change_request", "user", user.id, actor_id=user.id, taken=True)
    else:
        mailer.confirm_new_address(user, new_email, secret, _hours(lifetime))
        audit.record(session, "user.email_change_request", "user", user.id, actor_id=user.id, taken=False)
    mailer.address_change_notice(user, new_email)


def pending_email_change(session: Session, user: User) -> AccountToken | None:
    """The change of address waiting for its confirmation link to be followed, if any."""
    return tokens.pending(session, user, TokenPurpose.CHANGE_EMAIL)


def _change_email(session: Session, token: AccountToken, user: User) -> str:
    """Move the account to the token's address (now proven) and end its sessions; returns the old address."""
    new_email = token.email
    if find_user_by_email(session, new_email) is not None:
        raise AccountError(
            f"Another account started using {new_email} after you asked for the change, so your address was "
            f"not changed. It is still {user.email}.",
            "email",
        )
    tokens.use(session, token)
    old_email = user.email
    try:
        with session.begin_nested():  # a registration of the same address at the same moment: one wins
            user.email = new_email
            user.email_confirmed_at = utcnow()
    except IntegrityError:
        raise AccountError(
            f"Another account started using {new_email} a moment ago, so your address was not changed.", "email"
        ) from None
    # Links sent to the old address (reset, confirmation) name an address the account no longer has, so
    # tokens.check_still_valid refuses them from now on. The sign-in name changed: every session ends, as after a
    # password change (the view signs the browser that followed the link in again, if it was this account's).
    user.session_version += 1
    audit.record(
        session,
        "user.email_change",
        "user",
        user.id,
        actor_id=user.id,
        before={"email": old_email},
        after={"email": new_email},
    )
    mailer.address_changed(user, old_email)
    return old_email


# ---------------------------------------------------------------- password reset


# At most one reset email per account in this long, whoever asks: an inbox is not flooded, and (unlike a refusal,
# which strangers could provoke for the owner) the owner is never turned away; the link sent last still works.
RESET_RESEND_GAP = dt.timedelta(minutes=10)


def request_password_reset(session: Session, email: str) -> None:
    """Email a reset link when the address belongs to an active account; do nothing visible otherwise.

    The caller answers the same either way. A new request voids the links sent before it; one within
    RESET_RESEND_GAP of the last sends nothing (that link still works)."""
    user = find_user_by_email(session, email)
    if user is None:
        return
    latest = session.scalar(
        select(func.max(AccountToken.created_at)).where(
            AccountToken.user_id == user.id, AccountToken.purpose == TokenPurpose.RESET_PASSWORD
        )
    )
    if latest is not None and utcnow() - as_utc(latest) < RESET_RESEND_GAP:
        return
    if not user.is_active:
        # Recorded (administrators see who is trying to get back in) and mailed to the address's owner only, once
        # the record commits: the form answers as it always does.
        audit.record(session, "user.password_reset_refused", "user", user.id, reason="deactivated")
        mailer.reset_refused_deactivated(user)
        return
    lifetime = reset_lifetime()
    secret = tokens.issue(session, user, TokenPurpose.RESET_PASSWORD, user.email, lifetime)
    mailer.password_reset(user, secret, int(lifetime.total_seconds() // 60))


def check_reset(session: Session, secret: str) -> User:
    """The account a reset link is for, while the link works; TokenError saying why not otherwise."""
    _token, user = tokens.find(session, secret, (TokenPurpose.RESET_PASSWORD,))
    if not user.is_active:
        raise AccountError(f"This account is deactivated, so its password cannot be reset. Contact {the_sites_team()}.")
    return user


def reset_password(session: Session, secret: str, new_password: str) -> User:
    """Set a new password through a reset link: the link is used up and every session of the account ends.

    Following the link also proves the address, so an unconfirmed account becomes confirmed. Two-factor
    sign-in stays as it was (the next login still asks for the code), except on an account whose address this
    link proves for the first time: whoever set it up had not proven the address, and may not be its owner (one
    can register someone else's address, turn two-factor sign-in on and so lock the owner out), so it is
    switched off, with its recovery codes; the owner can turn it on again."""
    token, user = tokens.find(session, secret, (TokenPurpose.RESET_PASSWORD,))
    check_password_rules(new_password, password_context(user))
    if not user.is_active:
        raise AccountError(f"This account is deactivated, so its password cannot be reset. Contact {the_sites_team()}.")
    tokens.use(session, token)
    user.password_hash = hash_password(new_password)
    user.session_version += 1  # every session cookie issued before stops working
    first_proof = user.email_confirmed_at is None
    # An account never logged into, whose address this link proves for the first time (an administrator's
    # invitation, say), is choosing its first password: there is no earlier one to warn its owner about.
    first_password = first_proof and user.last_login_at is None
    if first_proof:
        user.email_confirmed_at = utcnow()
    session.flush()
    tokens.revoke(session, user, TokenPurpose.RESET_PASSWORD)
    action = "user.password_set" if first_password else "user.password_reset"
    audit.record(session, action, "user", user.id, actor_id=user.id)
    if first_proof and (user.has_two_factor or user.totp_secret):
        twofactor.clear_unproven(session, user)
    if not first_password:
        mailer.password_changed(user)
    return user


# ---------------------------------------------------------------- accounts an administrator makes


INVITE_LIFETIME = dt.timedelta(days=7)


def invite(session: Session, email: str, full_name: str, role: Role, actor: User) -> User:
    """Make an account for someone and email them a link to choose their password (valid 7 days; it also proves
    the address). EmailTaken when an account already uses the address. The account has no usable password until
    then; an instructor or administrator sets up two-factor sign-in at the first login, as always."""
    user = create_user(session, email, secrets.token_urlsafe(32), Profile(full_name=full_name, profession=""), role)
    session.flush()
    audit.record(
        session, "user.invite", "user", user.id, actor_id=actor.id, after={"email": user.email, "role": role.value}
    )
    secret = tokens.issue(session, user, TokenPurpose.RESET_PASSWORD, user.email, INVITE_LIFETIME)
    mailer.invitation(user, actor, secret, INVITE_LIFETIME.days)
    return user
