"""Known devices: the browser a person has logged in with keeps a rate-limit count of its own for that account.

Login attempts and reset-link requests are limited per account as well as per address, so that guessing cannot
be spread over many addresses (ASVS V2.2.1). Counted alone, that limit would let anyone keep an owner out: a few
wrong passwords a minute from anywhere, and the owner's right one is refused too. So a browser that has logged in
to an account carries a signed cookie naming it (by a digest of its email address: the cookie shows nobody the
address), and its attempts for that account are counted apart from everyone else's (OWASP's "device cookies").
The cookie gives no access by itself and is limited in its turn; a stolen one buys its thief one more
browser's count, no more. It is signed with the site's secret key, so it cannot be made for an account. It carries
a fingerprint of the account's password hash, so a password change or reset retires every device cookie made
before it: whoever once knew the password keeps no counts of their own (logging out does not retire it: that is
what a browser of one's own does every day). A browser logging in again keeps its name (its count), so logging in
repeatedly does not mint more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import Response, after_this_request, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from kaptrain.accounts.models import User
from kaptrain.db import get_session

COOKIE = "kaptrain_device"
LIFETIME = dt.timedelta(days=180)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="kaptrain.known-device")


def _digest(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def _stamp(password_hash: str) -> str:
    """A fingerprint of the password hash: it changes whenever the password does."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def remember(account: User) -> None:
    """After a successful login: give this browser a count of its own for the account (on this response), under
    the name it already had for it, if any."""
    data = _read(account.email)
    nonce = data.get("n") if data is not None else None
    token = _serializer().dumps(
        {"e": _digest(account.email), "p": _stamp(account.password_hash), "n": nonce or secrets.token_urlsafe(12)}
    )

    @after_this_request
    def _set(response: Response) -> Response:
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(LIFETIME.total_seconds()),
            httponly=True,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            samesite="Lax",
        )
        return response


def _read(email: str) -> dict[str, object] | None:
    """The browser's device cookie, when it is genuine, in date and for this address."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=int(LIFETIME.total_seconds()))
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("e") != _digest(email) or not isinstance(data.get("n"), str):
        return None
    return data


def known_device(email: str) -> str | None:
    """This browser's own name for the account, when it logged in to it since the password last changed: None for a
    browser like any other."""
    data = _read(email)
    if data is None:
        return None
    password_hash = get_session().scalar(select(User.password_hash).where(User.email == email))
    return str(data["n"]) if password_hash is not None and data.get("p") == _stamp(password_hash) else None


def rate_key(prefix: str, email: str) -> str:
    """The per-account rate-limit key: the account's shared count, or this known browser's own."""
    device = known_device(email)
    return f"{prefix}:{email}" + (f":device:{device}" if device else "")
