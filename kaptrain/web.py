"""Site-wide web behaviour: security headers, error pages, commit/rollback, template helpers."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_url
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map, PathConverter, UnicodeConverter

from kaptrain.auth import safe_next
from kaptrain.certificates.pdf import format_date
from kaptrain.db import SAFE_METHODS, as_utc, finish_request, zone_or_utc
from kaptrain.extensions import login_manager
from kaptrain.forms import LARGEST_NUMBER, has_control_characters
from kaptrain.sessions import RememberingSessionInterface

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)

# Two years, every subdomain (the site holds licence numbers; no subdomain should ever be served over HTTP).
HSTS = "max-age=63072000; includeSubDomains"

ERROR_TEXT = {
    400: (
        "The request could not be understood",
        "Something in what was sent was missing or malformed. Go back, reload the page and try again.",
    ),
    403: (
        "You do not have access to this page",
        "Your account's role does not allow this. If you think it should, contact an administrator.",
    ),
    404: ("Page not found", "We could not find that page. It may have moved, or the link may be mistyped."),
    405: ("That action is not allowed here", "This address does not accept that kind of request."),
    409: (
        "That cannot be done now",
        "The record has changed since the page was shown, or the action was already carried out (for example a "
        "quiz submitted twice). Reload the page to see where things stand.",
    ),
    413: ("That upload is too large", "The file or form was larger than the site accepts."),
    429: ("Too many attempts", "Please wait a minute before trying again."),
    500: (
        "Something went wrong on our side",
        "The error has been logged. Nothing you entered was half-saved; please try again in a moment.",
    ),
}

BAD_ADDRESS = (
    "The web address contains invisible control characters, which no page on this site uses. The link may "
    "have been damaged when it was copied: check it, or start again from the home page."
)

UNREADABLE_BODY = (
    "What was sent could not be read as the form's fields: a JSON body must be an object whose values are text. "
    "Go back, reload the page and send the form again."
)


class IdConverter(IntegerConverter):
    """<int:...> in every rule: a number no id column holds matches no page (404), instead of reaching the
    database, which refuses it (a 500)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", LARGEST_NUMBER)
        super().__init__(map, *args, **kwargs)


# Unicode control characters (category Cc), as a regular expression's character range.
_CONTROL_RANGE = r"\x00-\x1f\x7f-\x9f"


class TextConverter(UnicodeConverter):
    """<slug> and every other text part of an address: one holding a control character matches no rule, so no
    view, nor anything that runs before the views by endpoint, ever sees it (PostgreSQL refuses NUL outright);
    _refuse_control_characters answers such an address."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", f"[^/{_CONTROL_RANGE}]", 1)


class PathTextConverter(PathConverter):
    """<path:...>: as TextConverter, across slashes."""

    regex = f"[^/{_CONTROL_RANGE}][^{_CONTROL_RANGE}]*?"


URL_CONVERTERS = {"default": TextConverter, "string": TextConverter, "path": PathTextConverter, "int": IdConverter}


def init_web(app: Flask) -> None:
    """Register headers, error handlers and template globals."""
    app.session_interface = RememberingSessionInterface()
    app.before_request(_refuse_control_characters)
    app.before_request(_refuse_unreadable_json)
    app.before_request(_refuse_unnamed_fields)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    login_manager.unauthorized_handler(_to_login)
    app.register_error_handler(Exception, _unexpected_error)
    # Browsers and feed readers that ask for /favicon.ico without reading the page's <link rel="icon">.
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.svg"))
    app.jinja_env.globals["site_name"] = app.config["SITE_NAME"]
    app.jinja_env.globals["support_email"] = app.config["SUPPORT_EMAIL"]
    app.jinja_env.filters["reject_none"] = lambda d: {k: v for k, v in d.items() if v is not None}
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["long_date"] = format_date  # a plain day ("5 March 2026"), as everywhere
    app.jinja_env.globals["certificate_day"] = certificate_day
    app.jinja_env.globals["learner_day"] = learner_day
    app.jinja_env.filters["audit_value"] = audit_value
    app.jinja_env.filters["words"] = words


_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")


_CODE_WORD = re.compile(r"[a-z]+(?:_[a-z]+)+")


def words(items: list[str]) -> str:
    """A list as a sentence says it: "name", "name and licence number", "name, credential and licence number"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}" if items else ""


def audit_value(value: object) -> str:
    """A value of an audit entry's details in words: a moment in the viewer's time zone, a list or a mapping as
    "a, b" or "key: value" (not as JSON), other values as they are."""
    if isinstance(value, str) and _ISO_MOMENT.fullmatch(value):
        try:
            return localtime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if isinstance(value, dict):
        return "; ".join(f"{str(k).replace('_', ' ')}: {audit_value(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return ", ".join(audit_value(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and _CODE_WORD.fullmatch(value):
        return value.replace("_", " ")  # a recorded code such as "issued_in_error"
    return str(value)


def localtime(value: dt.datetime | None, style: str = "datetime") -> str:
    """A moment in the viewer's time zone, zone named ("26 November 2026, 02:11 EST"); style "date": the day."""
    if value is None:
        return ""
    zone = _viewer_zone()
    local = as_utc(value).astimezone(zone)
    day = format_date(local.date())
    if style == "date":
        return day
    if style != "datetime":
        raise ValueError(f"localtime style must be 'datetime' or 'date', not {style!r}")
    name = local.tzname() or ""
    if not any(c.isalpha() for c in name):  # zones without an abbreviation give "+03": add the place
        name = f"{name} ({getattr(zone, 'key', 'UTC')})".lstrip()
    return f"{day}, {local:%H:%M} {name}"


def certificate_day(certificate: Any, moment: dt.datetime | None) -> str:
    """A day of a certificate's record as the certificate states it, in the holder's zone when it was made
    ("26 November 2026"), that zone named when it is not the viewer's: the PDF, the verification page and every
    page of the site then give the same day."""
    return learner_day(moment, certificate.time_zone or "UTC")


def learner_day(moment: dt.datetime | None, zone: str) -> str:
    """A day of a learner's record in the learner's own time zone (as their certificate will state it), the zone
    named when it is not the viewer's: staff see the completion day the learner and the certificate see."""
    if moment is None:
        return ""
    zone = zone or "UTC"
    text = format_date(as_utc(moment).astimezone(zone_or_utc(zone)).date())
    if zone != getattr(_viewer_zone(), "key", "UTC"):
        text += f" ({zone.replace('_', ' ')})"
    return text


def _viewer_zone() -> dt.tzinfo:
    key = ""
    if has_request_context() and current_user.is_authenticated:
        key = str(getattr(current_user, "time_zone", "") or "")
    return zone_or_utc(key)


def _refuse_control_characters() -> tuple[str, int] | None:
    # NUL and friends have no place in an address; PostgreSQL refuses NUL outright (a 500 otherwise).
    query = request.args.items(multi=True)
    if has_control_characters(request.path) or any(has_control_characters(k + v) for k, v in query):
        return error_page(400, BAD_ADDRESS)
    return None


def _is_text(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _refuse_unreadable_json() -> tuple[str, int] | None:
    # Flask-WTF reads a JSON body as the form (the login takes one): anything but an object of text values (a bare
    # list, a number, a nested object) would make every form, even a button's, fail with a 500.
    if request.method in SAFE_METHODS or not request.is_json:
        return None
    try:
        body = request.get_json()
    except BadRequest:
        return error_page(400, UNREADABLE_BODY)
    if isinstance(body, dict) and all(_is_text(v) for v in body.values()):
        return None
    return error_page(400, UNREADABLE_BODY)


def _refuse_unnamed_fields() -> tuple[str, int] | None:
    # A multipart part whose name Werkzeug cannot read (a bare carriage return, say) arrives under the key None,
    # on which every form with a list of fields fails with a 500: no page of this site sends one.
    if request.method in SAFE_METHODS or request.mimetype not in ("multipart/form-data", FORM_MIMETYPE):
        return None
    if None in request.form or None in request.files:
        return error_page(400, UNREADABLE_BODY)
    return None


FORM_MIMETYPE = "application/x-www-form-urlencoded"


SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
# Sent on every production response, not only when the request looks secure: behind a TLS proxy whose
# X-Forwarded-Proto is not trusted (TRUSTED_PROXIES unset) request.is_secure is False, and browsers ignore the
# header on plain HTTP anyway (RFC 6797 section 8.1).
PRODUCTION_HEADERS = (*SECURITY_HEADERS, ("Strict-Transport-Security", HSTS))


def wrap_wsgi(app: Flask) -> None:
    """The WSGI layers around Flask, outermost first: ProxyFix (when proxies are trusted), then the fast lane
    (when the page cache is on), then Flask."""
    from kaptrain.fastlane import FastLane  # noqa: PLC0415 - it imports the page cache, which imports the views' peers

    if app.extensions.get("kaptrain.pages") is not None:
        app.wsgi_app = FastLane(app, app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"], x_proto=1
        )


def _security_headers(response: Response) -> Response:
    # Each header only where the view did not set its own (one pass over the response's headers, not one each).
    present = {name.lower() for name in response.headers.keys()}  # noqa: SIM118 - Headers iterates as pairs
    endpoint = request.endpoint
    # Pages carry personal data and quiz state: never serve them from a shared cache.
    no_store = bool(endpoint and not endpoint.endswith("static"))
    production = current_app.config["ENV"] == "production"
    response.headers.extend(missing_security_headers(present, production=production, no_store=no_store))
    if "date" in present:  # Flask-Compress's conditional check adds one; the server adds its own to every answer
        del response.headers["Date"]
    return response


def missing_security_headers(present: set[str], *, production: bool, no_store: bool) -> list[tuple[str, str]]:
    """The site's security headers (and Cache-Control: no-store when asked) that an answer whose header names, in
    lower case, are `present` lacks: every Flask answer gets them, and kaptrain.fastlane's, which builds its
    headers itself."""
    wanted = PRODUCTION_HEADERS if production else SECURITY_HEADERS
    added = [(name, value) for name, value in wanted if name.lower() not in present]
    if no_store and "cache-control" not in present:
        added.append(("Cache-Control", "no-store"))
    return added


def error_page(code: int, detail: str | None = None) -> tuple[str, int]:
    """Render the friendly error page for a status code."""
    title, text = ERROR_TEXT.get(code, (f"Error {code}", "The request could not be completed."))
    return render_template("errors/error.html", code=code, title=title, text=detail or text), code


def http_error(exc: HTTPException) -> tuple[str, int] | HTTPException:
    """The error page for an HTTP error (a blueprint's own handler falls back to it)."""
    finish_request(commit=False)
    if exc.code is None or exc.code < 400:
        return exc
    detail = exc.description if getattr(exc, "kaptrain_detail", False) else None
    if isinstance(exc, RateLimitExceeded):
        detail = exc.description if exc.limit.error_message else f"Please wait {wait_words(exc)} before trying again."
    return error_page(exc.code, detail)


def wait_words(exc: RateLimitExceeded) -> str:
    """How long a refused client may have to wait, in words: the window of the limit it went over."""
    seconds = exc.limit.limit.get_expiry()
    if seconds <= 60:
        return "a minute"
    if seconds < 3600:
        return f"up to {-(-seconds // 60)} minutes"
    if seconds < 86400:
        hours = -(-seconds // 3600)
        return "up to an hour" if hours == 1 else f"up to {hours} hours"
    return "until tomorrow"


# Forms a person who is not signed in sends: a stale one goes back to its page, not to the login.
ANONYMOUS_FORMS = frozenset(
    {
        "accounts.login",
        "accounts.login_code",
        "accounts.register",
        "accounts.forgot_password",
        "accounts.reset_password",
        "accounts.confirm_email",
        "certificates.check",
    }
)


def _own_page(referrer: str | None) -> str | None:
    """The path (and query) of the page a form was sent from, when that page is on this site and can be opened
    again (a page drawn in answer to a POST, such as a refused form, may have an address only a POST reaches)."""
    if not referrer:
        return None
    try:
        parts = urlsplit(referrer)
    except ValueError:  # no URL at all (an unclosed IPv6 bracket): no page to go back to
        return None
    if parts.netloc != urlsplit(request.host_url).netloc or parts.scheme not in ("http", "https"):
        return None
    try:
        current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:  # no such page, or not one a GET opens (405): the 400 page instead
        return None
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(target, "") or None


def _to_login() -> ResponseReturnValue:
    """Flask-Login's answer to a signed-out request (its message, then the login page with where to go next), except
    that a form's own address is no page to come back to (a GET of /attempts/1/submit is a 405): after a POST the
    person goes back to the page on this site the form was sent from, or to the login's default."""
    flash(str(login_manager.login_message), login_manager.login_message_category)
    back = request.url if request.method in SAFE_METHODS else _own_page(request.referrer)
    if back is None:
        return redirect(url_for(str(login_manager.login_view)))
    return redirect(login_url(str(login_manager.login_view), next_url=back))


SIGNED_OUT_SCRIPT = (
    "You were logged out, so your last choice was not saved. Reload the page and log in to go on: the answers "
    "saved before are kept."
)
EXPIRED_SCRIPT = "This page had been open too long, so your last choice was not saved. Reload the page to go on."


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    """A form whose token failed. Sent from one of this site's pages (a form left open too long, or a session
    that ended meanwhile), the person is taken back with a word of what happened, and to the login first when
    they were signed out; anything else (a forged cross-site post, no referrer) gets the 400 page."""
    finish_request(commit=False)
    back = _own_page(request.referrer)
    form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    # The page's own scripts send the token in a header (and may ask for JSON): they read the 400 themselves.
    by_script = request.accept_mimetypes.best == "application/json" or any(
        name in request.headers for name in current_app.config["WTF_CSRF_HEADERS"]
    )
    # A browser that keeps no cookie for the site (cookies off) would only be sent back to fail again, with no word
    # shown: only a request that brings the session cookie is sent back.
    cookie = current_app.config["SESSION_COOKIE_NAME"] in request.cookies
    signed_out = not current_user.is_authenticated and request.endpoint not in ANONYMOUS_FORMS
    if by_script and request.accept_mimetypes.best == "application/json":
        # The quiz's autosave shows this text beside the answers.
        return jsonify(error=SIGNED_OUT_SCRIPT if signed_out else EXPIRED_SCRIPT), 400
    if back is not None and form and not by_script and request.method not in SAFE_METHODS:
        if signed_out:
            # Also when no cookie came at all: a session that ran out is a cookie the browser dropped. (A browser
            # that refuses cookies gets the login page, whose own form then says to accept them.)
            flash(
                "You were logged out, so that form was not sent. Log in to go back to it: anything saved before, "
                "such as quiz answers, is kept.",
                "info",
            )
            return redirect(url_for("accounts.login", next=back))
        if cookie:
            flash("That form had been open too long, so it was not sent. Please send it again.", "info")
            return redirect(back)
    return error_page(
        400,
        "The form expired or was sent from another site. Reload the page and submit it again; if this keeps "
        "happening, check that your browser accepts cookies from this site.",
    )


def _unexpected_error(exc: Exception) -> tuple[str, int]:
    # HTTP errors never reach here: Flask picks the more specific HTTPException handler.
    finish_request(commit=False)  # first: after a failed flush, rendering the page would query a broken session
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return error_page(500)
