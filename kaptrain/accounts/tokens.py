"""Single-use links sent by email: password reset, confirming an address, changing an address.

The link carries 256 random bits; the database keeps only their SHA-256, so a copy of the database (or a
backup) holds no working link. A link works once, until it expires, and only while nothing it depended on
has changed:

- **use**: `used_at` is set when it is redeemed;
- **a later link of the same purpose** sets `revoked_at` on every earlier one still open;
- **a change of password** (by the person, a reset, an administrator, the CLI, account closure) voids every
  link sent before it, because each link records a fingerprint of the password hash it was sent under;
- **a change of address** voids reset and confirmation links sent to the old address (the link names it).

Lookups go by the hash of the presented secret through a unique index, so no secret is compared in Python.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from kaptrain.accounts.models import AccountToken, TokenPurpose, User
from kaptrain.accounts.services import AccountError
from kaptrain.db import utcnow

# The longest secret we would ever issue is 43 characters; anything much longer is not ours.
MAX_TOKEN_LENGTH = 100
# Expired and used links are kept a while (so a late click is told "expired", not "not valid"), then pruned.
KEEP_AFTER_EXPIRY = dt.timedelta(days=7)


class Problem(enum.StrEnum):
    """Why a link does not work."""

    UNKNOWN = "unknown"  # no such link: mistyped, cut short, or made up
    USED = "used"
    REPLACED = "replaced"  # a later link of the same kind was sent
    STALE = "stale"  # the password or the address changed since it was sent
    EXPIRED = "expired"


_WHAT = {
    TokenPurpose.RESET_PASSWORD: "password link",  # a reset's, or an invitation's (a first password)
    TokenPurpose.CONFIRM_EMAIL: "confirmation link",
    TokenPurpose.CHANGE_EMAIL: "confirmation link",
}
_AGAIN = {
    TokenPurpose.RESET_PASSWORD: "Ask for a new one on the “Forgot your password?” page.",
    TokenPurpose.CONFIRM_EMAIL: "Log in and send the link again from your account page.",
    TokenPurpose.CHANGE_EMAIL: "Log in and ask for the change again on your account page.",
}


class TokenError(AccountError):
    """A link that cannot be used; the message says why and what to do instead."""

    def __init__(self, problem: Problem, purpose: TokenPurpose | None) -> None:
        self.problem = problem
        self.purpose = purpose
        super().__init__(_message(problem, purpose))


def _message(problem: Problem, purpose: TokenPurpose | None) -> str:
    if purpose is None:
        return (
            "This link is not valid. Check that you opened the whole link from the email (some mail programs "
            "break long links across lines), or ask for a new one."
        )
    what, again = _WHAT[purpose], _AGAIN[purpose]
    if problem == Problem.USED:
        if purpose == TokenPurpose.CHANGE_EMAIL:  # used: the change it asked for was made
            return (
                f"This {what} has already been used, so the change it asked for was made: log in with the new "
                "address. Each link works only once."
            )
        if purpose == TokenPurpose.CONFIRM_EMAIL:  # used: the address it was sent to was confirmed then
            return (
                f"This {what} has already been used, so the address it was sent to is confirmed: there is nothing "
                "more to do. Each link works only once."
            )
        if purpose == TokenPurpose.RESET_PASSWORD:  # used: the password it chose is the one to log in with
            return (
                f"This {what} has already been used, so the password chosen with it is the one to log in with. "
                f"Each link works only once; if you have forgotten that password, ask for a new link on the "
                "“Forgot your password?” page."
            )
        return f"This {what} has already been used, and each link works only once. {again}"
    if problem == Problem.REPLACED:
        return f"A newer {what} was sent after this one, so this one no longer works. Use the most recent email."
    if problem == Problem.STALE:
        if purpose == TokenPurpose.RESET_PASSWORD:
            return f"Your password or email address changed after this {what} was sent, so it no longer works. {again}"
        if purpose == TokenPurpose.CHANGE_EMAIL:
            return (
                f"Your password changed after this {what} was sent, so it no longer works and your address "
                f"was not changed. {again}"
            )
        return f"Your account's email address changed after this {what} was sent, so it no longer works. {again}"
    if problem == Problem.EXPIRED:
        return f"This {what} has expired. {again}"
    return _message(Problem.UNKNOWN, None)


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) under which a link's secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def password_stamp(user: User) -> str:
    """A fingerprint of the user's password hash: it changes whenever the password does."""
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()


def issue(session: Session, user: User, purpose: TokenPurpose, email: str, lifetime: dt.timedelta) -> str:
    """Store a new link for the user and return its secret (to put in the emailed URL, never stored).

    Every earlier link of the same purpose still open is revoked: only the newest email works."""
    now = utcnow()
    revoke(session, user, purpose, now)
    # Keep the table small: links long past their expiry are of no use even for a precise message.
    session.execute(
        delete(AccountToken).where(AccountToken.user_id == user.id, AccountToken.expires_at < now - KEEP_AFTER_EXPIRY)
    )
    secret = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_secret(secret),
            email=email,
            password_stamp=password_stamp(user),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return secret


def revoke(session: Session, user: User, purpose: TokenPurpose, now: dt.datetime | None = None) -> None:
    """Void every open link of this purpose for the user."""
    session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.revoked_at.is_(None),
        )
        .values(revoked_at=now or utcnow())
    )


def find(session: Session, secret: str, purposes: tuple[TokenPurpose, ...]) -> tuple[AccountToken, User]:
    """The open link with this secret and its account; TokenError saying why it does not work otherwise.

    The checks do not depend on the purpose's own rules (see `check_still_valid`) and change nothing."""
    if not secret or len(secret) > MAX_TOKEN_LENGTH:
        raise TokenError(Problem.UNKNOWN, None)
    token = session.scalar(select(AccountToken).where(AccountToken.token_hash == hash_secret(secret)))
    if token is None or token.purpose not in purposes:
        raise TokenError(Problem.UNKNOWN, None)
    user = session.get(User, token.user_id)
    if user is None:  # pragma: no cover - CASCADE removes a deleted account's links
        raise TokenError(Problem.UNKNOWN, None)
    check_still_valid(token, user)
    return token, user


def check_still_valid(token: AccountToken, user: User, now: dt.datetime | None = None) -> None:
    """Raise TokenError when the link was used, replaced, overtaken by a change, or expired."""
    now = now or utcnow()
    purpose = token.purpose
    if token.used_at is not None:
        raise TokenError(Problem.USED, purpose)
    if token.revoked_at is not None:
        raise TokenError(Problem.REPLACED, purpose)
    password_changed = token.password_stamp != password_stamp(user)
    address_changed = purpose != TokenPurpose.CHANGE_EMAIL and token.email != user.email
    if address_changed or (password_changed and purpose != TokenPurpose.CONFIRM_EMAIL):
        raise TokenError(Problem.STALE, purpose)
    if token.expires_at <= now:
        raise TokenError(Problem.EXPIRED, purpose)


def use(session: Session, token: AccountToken) -> None:
    """Mark the link used, so it can never work again; a second use racing this one finds it used.

    The UPDATE is conditional: of two requests redeeming the same link at once, only one changes the row
    (PostgreSQL waits for the first to commit; SQLite serialises writers), and the other is refused."""
    now = utcnow()
    result = session.execute(
        update(AccountToken)
        .where(AccountToken.id == token.id, AccountToken.used_at.is_(None), AccountToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenError(Problem.USED, token.purpose)
    set_committed_value(token, "used_at", now)  # what the UPDATE wrote; no second UPDATE at the next flush


def pending(session: Session, user: User, purpose: TokenPurpose) -> AccountToken | None:
    """The newest open, unexpired link of this purpose (e.g. an email change waiting for confirmation)."""
    now = utcnow()
    token = session.scalar(
        select(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.revoked_at.is_(None),
            AccountToken.expires_at > now,
        )
        .order_by(AccountToken.id.desc())
        .limit(1)
    )
    if token is None:
        return None
    try:
        check_still_valid(token, user, now)
    except TokenError:
        return None
    return token
