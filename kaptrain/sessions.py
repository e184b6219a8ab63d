"""Flask's signed-cookie sessions and Flask-WTF's CSRF tokens, each signature checked once per process.

Checking a session cookie (deriving the key, the HMAC, base64 and JSON) was a fifth of what serving a cached page
cost. A learner's cookie changes only when their session does, so a cookie that passed the check is remembered by
its exact text together with the time it was signed; each later use checks that age again against the session
lifetime, as itsdangerous would. Only cookies whose values are plain scalars are remembered (a session holding a
list, such as waiting flash messages, is decoded each time), so every request gets its own copy to change. At
most MAX_REMEMBERED cookies are kept per process; the store is emptied when it is full.

CSRF tokens are remembered the same way (RememberingCSRFProtect): a token whose signature passed is kept with the
session value it carries and the time it was signed, and each later POST with it compares that value with the
session's and the age with WTF_CSRF_TIME_LIMIT; the referrer rule is applied on every request. Checking a
token's signature was a fifth of what a heartbeat cost.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Flask, Request, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect, same_origin
from itsdangerous import BadData, BadSignature, URLSafeTimedSerializer

MAX_REMEMBERED = 20_000


def referred_from(referrer: str, origin: str) -> bool:
    """Whether the referrer is on `origin` (scheme, host and port), as Flask-WTF's same_origin decides; a referrer
    that is no URL at all (a port past 65535, an unclosed IPv6 bracket) is not, rather than an error."""
    try:
        return bool(same_origin(referrer, origin))
    except ValueError:
        return False


SCALARS = (str, int, float, bool, type(None))


class RememberingSessionInterface(SecureCookieSessionInterface):
    """SecureCookieSessionInterface that checks a given cookie's signature once (see the module's text)."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer] = {}
        self._checked: dict[str, tuple[dict[str, Any], float]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's serializer, built once per set of keys instead of on every request."""
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if serializer is None:
                return None
            self._serializers[keys] = serializer
        return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The session in the request's cookie; a cookie checked before is only checked for age."""
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        return self.session_class(self.check(serializer, value, app.permanent_session_lifetime.total_seconds()) or {})

    def check(self, serializer: URLSafeTimedSerializer, value: str, max_age: float) -> dict[str, Any] | None:
        """What a session cookie holds (a copy to change), if its signature is good and it is not older than
        max_age seconds; None otherwise. A cookie checked before is only checked for age."""
        if value in self._checked:
            return self.remembered(value, max_age)
        try:
            data, stamp = serializer.loads(value, max_age=int(max_age), return_timestamp=True)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        if all(isinstance(v, SCALARS) for v in data.values()):
            if len(self._checked) >= MAX_REMEMBERED:
                self._checked.clear()
            self._checked[value] = (dict(data), stamp.timestamp())
        return data

    def remembered(self, value: str, max_age: float) -> dict[str, Any] | None:
        """A copy of what a cookie checked before holds, if it is not older than max_age seconds (None: not
        remembered, or too old)."""
        known = self._checked.get(value)
        if known is None or time.time() - known[1] > max_age:
            return None
        return dict(known[0])


class RememberingCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRFProtect that checks a given token's signature once (see the module's text). Anything it
    does not remember, and every failure, goes through Flask-WTF's own check and its error."""

    def __init__(self, app: Flask | None = None) -> None:
        # (signing key, signed token) -> (the session value it carries, when it was signed)
        self._checked: dict[tuple[Any, str], tuple[str, float]] = {}
        super().__init__(app)

    def protect(self, apply_exemptions: bool = False) -> None:  # noqa: FBT001, FBT002 - Flask-WTF's signature
        """Validate CSRF on the current request, as Flask-WTF does."""
        config = current_app.config
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in config["WTF_CSRF_METHODS"]:
            return
        secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        # The token Flask-WTF would check: the form's field, else a header.
        if not self._remembered((secret, self._token())):
            super().protect()
            self._remember((secret, self._token()))  # the token Flask-WTF has just accepted
            return
        if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not referred_from(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True

    def _token(self) -> str:
        return str(self._get_csrf_token() or "")

    def _remembered(self, key: tuple[Any, str]) -> bool:
        expected = session.get(current_app.config["WTF_CSRF_FIELD_NAME"])
        limit = current_app.config["WTF_CSRF_TIME_LIMIT"]
        return isinstance(expected, str) and self.remembered(*key, expected, limit, time.time())

    def remembered(self, secret: Any, token: str, expected: str, limit: float | None, now: float) -> bool:
        """Whether `token` was accepted before for a session whose CSRF value is `expected`, and was signed no
        more than `limit` seconds before `now` (None: no limit)."""
        known = self._checked.get((secret, token))
        if known is None:
            return False
        carried, signed_at = known
        if limit is not None and now - signed_at > limit:
            return False
        return hmac.compare_digest(expected, carried)

    def check(self, secret: Any, token: str, expected: str, limit: float | None, now: float) -> bool:
        """Flask-WTF's validate_csrf outside a request: whether `token` is signed with `secret`, no more than `limit`
        seconds before `now`, and carries `expected` (the session's CSRF value). A token checked before is only
        checked for age and value; one that passes is remembered."""
        if self.remembered(secret, token, expected, limit, now):
            return True
        if (secret, token) in self._checked:  # known, and too old or for another session
            return False
        self._remember((secret, token))
        return self.remembered(secret, token, expected, limit, now)

    def _remember(self, key: tuple[Any, str]) -> None:
        # The token's signature is checked, and it is kept with the value it carries and its signing time.
        secret, token = key
        serializer = URLSafeTimedSerializer(secret, salt="wtf-csrf-token")
        try:
            carried, stamp = serializer.loads(token, return_timestamp=True)
        except BadData:
            return
        if not isinstance(carried, str):
            return
        if len(self._checked) >= MAX_REMEMBERED:
            self._checked.clear()
        self._checked[key] = (carried, stamp.timestamp())
