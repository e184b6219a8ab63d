"""Role and ownership checks shared by every blueprint, and the Flask-Login wiring."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, abort, request, session
from flask_login import current_user, login_required

from kaptrain.accounts import browser_sessions
from kaptrain.accounts.models import Role, User
from kaptrain.accounts.services import load_session_user
from kaptrain.db import get_session
from kaptrain.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


def init_auth(app: Flask) -> None:
    """Attach Flask-Login: sessions carry "id:version" so logout invalidates old cookies."""
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    # Flask-Login's own identifier takes the client's address from X-Forwarded-For whoever sent it, so a stolen
    # cookie passes with a forged header; this one takes the address the app trusts (TRUSTED_PROXIES).
    login_manager._session_identifier_generator = lambda: client_identifier(request.environ)  # noqa: SLF001

    @login_manager.user_loader
    def _load(token: str) -> User | None:
        if not login_is_current(session.get("login_at"), app.config["SESSION_HOURS"]):
            return None  # older than SESSION_HOURS: log in again (an absolute limit, ASVS V3.3.2)
        return load_session_user(get_session(), token, browser_sessions.sid_of(session))


def client_identifier(environ: Mapping[str, Any]) -> str:
    """What strong session protection ties a session to: the client's address as the app trusts it (REMOTE_ADDR,
    which ProxyFix sets from X-Forwarded-For only behind TRUSTED_PROXIES) and its browser, hashed. Computed from
    the WSGI environ, so kaptrain.fastlane, which has no request, computes the same."""
    base = f"{environ.get('REMOTE_ADDR') or ''}|{environ.get('HTTP_USER_AGENT') or ''}"
    return hashlib.sha512(base.encode("utf-8", "surrogateescape")).hexdigest()


def login_is_current(login_at: object, hours: int, now: float | None = None) -> bool:
    """Whether a login that began at `login_at` (epoch seconds, from the session) is still within its hours."""
    if not isinstance(login_at, int | float) or isinstance(login_at, bool):
        return False
    age = (time.time() if now is None else now) - login_at
    return 0 <= age <= hours * 3600


def user() -> User:
    """The logged-in user (call only behind login_required)."""
    return cast(User, current_user._get_current_object())  # noqa: SLF001 - werkzeug proxy


def role_required(*roles: Role) -> Callable[[F], F]:
    """Decorator: log in first, then 403 unless the user holds one of the roles (admins pass)."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not user().has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def require_owner(owner_id: int) -> None:
    """404 unless the logged-in user owns the record; staff see others' records via admin views."""
    if user().id != owner_id:
        # 404, not 403: do not confirm that someone else's record exists.
        abort(404)


def safe_next(target: str | None, default: str) -> str:
    """Return target only when it is a path on this site; otherwise the default (ASVS V5.1.5)."""
    if not target or any(c in target for c in "\\\r\n\t") or not target.startswith("/"):
        return default
    if target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
