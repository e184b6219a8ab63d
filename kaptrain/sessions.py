"""Flask's signed-cookie sessions, with each cookie's check done once per process.

Checking a session cookie (deriving the key, the HMAC, base64 and JSON) was a fifth of what serving a cached page
cost. A learner's cookie changes only when their session does, so a cookie that passed the check is remembered by
its exact text together with the time it was signed; each later use checks that age again against the session
lifetime, as itsdangerous would. Only cookies whose values are plain scalars are remembered (a session holding a
list, such as waiting flash messages, is decoded each time), so every request gets its own copy to change. At
most MAX_REMEMBERED cookies are kept per process; the store is emptied when it is full.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

MAX_REMEMBERED = 20_000
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
        max_age = app.permanent_session_lifetime.total_seconds()
        known = self._checked.get(value)
        if known is not None:
            data, signed_at = known
            if time.time() - signed_at > max_age:
                return self.session_class()
            return self.session_class(dict(data))
        try:
            data, stamp = serializer.loads(value, max_age=int(max_age), return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, SCALARS) for v in data.values()):
            if len(self._checked) >= MAX_REMEMBERED:
                self._checked.clear()
            self._checked[value] = (dict(data), stamp.timestamp())
        return self.session_class(data)
