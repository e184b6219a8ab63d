"""The fast lane: a learner's cached pages, the heartbeat, a quiz submission and the holder's PDF download answered
before Flask builds a request.

They are what learners ask for most (the heartbeat every 30 seconds by every reading learner), and each needs only
a few plain statements (kaptrain.pagecache: its stored pages and fast paths). Building Flask's request
context, opening the session, running every before- and after-request function and saving the session cost more
than the statements themselves, so this WSGI middleware answers these requests itself, but only when everything
about the request checks out as Flask would check it:

- the session cookie's signature and age pass Flask's own serializer (through RememberingSessionInterface, which
  checks a cookie's signature once per process and its age every time), it holds a learner's id and session
  version, no waiting message, a login within SESSION_HOURS, and Flask-Login's session identifier matches this
  client's address and browser;
- for a POST (the heartbeat, a submission), its body is empty or a small URL-encoded form (read here and put back
  for Flask), and the CSRF token in its form field or header passes Flask-WTF's check (signed for this session,
  within WTF_CSRF_TIME_LIMIT: RememberingCSRFProtect.check, once per token per process), and, over HTTPS, the
  referrer is this site;
- for a page, a CSRF token signed for this session under a minute ago is at hand (kaptrain.pagecache reuses
  one for that long), and the page is stored under the versions the session check reads;
- the fast path's (or the page's) statement then checks the session against the database.

Anything else (a bad or old cookie or token, a query string, staff, a module not opened, a file upload, an
answer the fast path will not grade, a database error)
goes to Flask as before, which answers as it always did. The answer carries the
headers Flask would add (tests/test_fastlane.py compares the two). It is installed inside ProxyFix, so it sees the
client's address and scheme as Flask does.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from flask import Flask, g

# Flask-Compress's own choice of encoding and compressor, so a page from the lane is encoded exactly as Flask would
# encode it (tests/test_fastlane.py compares the two).
from flask_compress.flask_compress import _choose_algorithm, _compress_data
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.routing import MapAdapter
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_host

from kaptrain import pagecache
from kaptrain.auth import client_identifier, login_is_current
from kaptrain.sessions import RememberingSessionInterface, referred_from

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

Answer = tuple[str, list[tuple[str, str]], bytes]  # status, headers, body: what the lane hands to WSGI
LANE_SETS = frozenset({"content-length", "vary"})  # headers of an answer that the lane writes afresh

# (endpoint, method) of the fast paths that need no request context, and the ends of their paths (a cheap first
# test, so that every other request pays one string comparison).
LANE = frozenset({("courses.heartbeat", "POST"), ("quizzes.submit", "POST"), ("certificates.certificate_pdf", "GET")})
PATH_ENDS = ("/heartbeat", "/submit", ".pdf")
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024  # a quiz's answers are a few hundred bytes; anything larger Flask reads, with its limits
PAGE_STARTS = ("/courses/", "/dashboard")  # where every page of pagecache.CACHED_ENDPOINTS is


def read_form(environ: WSGIEnvironment) -> MultiDict[str, str] | None:
    """A POST's form as Flask would read it, when it is a small URL-encoded one (no body: an empty form), or None to
    leave the body to Flask. A body read here is put back, so Flask reads the same bytes when the lane hands over."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length == 0:
        return MultiDict()
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if mimetype != FORM_TYPE or not 0 < length <= MAX_FORM_BYTES:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:
        return None
    try:
        # As werkzeug's form parser reads it (the same error handler for escapes that are not UTF-8).
        return MultiDict(parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote"))
    except UnicodeDecodeError:
        return None


class FastLane:
    """WSGI middleware answering the LANE requests of a known-good learner session (see the module's text)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._adapter: MapAdapter | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer from the lane, or hand the request to Flask."""
        path = environ.get("PATH_INFO", "")
        answer = self.answer(environ) if path.endswith(PATH_ENDS) or path.startswith(PAGE_STARTS) else None
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        """The lane's answer, or None when Flask must answer."""
        app, method = self.app, environ.get("REQUEST_METHOD", "GET")
        if environ.get("QUERY_STRING") or app.extensions.get("kaptrain.pages") is None:
            return None
        try:
            endpoint, args = self._routes().match(environ.get("PATH_INFO", ""), method=method)
        except HTTPException:
            return None
        page = method == "GET" and endpoint in pagecache.CACHED_ENDPOINTS
        handler = pagecache.fast_path_for(str(endpoint), method)
        if not page and ((endpoint, method) not in LANE or handler is None):
            return None
        data = self._session(environ)
        learner = self._learner(environ, data) if data is not None else None
        if learner is None or data is None:
            return None
        form = pagecache.NO_FORM if method == "GET" else read_form(environ)
        if form is None or (method != "GET" and not self._csrf_ok(environ, data, form)):
            return None
        with app.app_context():
            g.script_root = environ.get("SCRIPT_NAME", "")  # for pagecache.location's redirects
            try:
                if page:
                    response = self._page(learner, data, environ["PATH_INFO"])
                else:
                    assert handler is not None
                    response = handler(learner, dict(args), form)
            except pagecache.driver_error() as exc:
                log.warning("Plain statements failed for %s %s (%s); Flask answers", method, environ["PATH_INFO"], exc)
                return None
            except Exception:
                # Anything else is a bug; its writes were rolled back, and Flask answers (with its error page if
                # the bug is on its way too) rather than the server's bare 500.
                log.exception("The fast lane failed for %s %s; Flask answers", method, environ["PATH_INFO"])
                return None
        if response is None:
            if not page:  # the fast path said no: Flask's before-request function need not ask it again
                environ[pagecache.DECLINED] = True
            return None
        return self._finish(response, environ)

    def _page(self, learner: pagecache.Learner, data: Mapping[str, Any], path: str) -> Response | None:
        pages = self.app.extensions["kaptrain.pages"]
        token = pages.fresh_token(data.get(self.app.config["WTF_CSRF_FIELD_NAME"]))
        key = pagecache.page_key(learner, path) if token is not None else None
        body = pagecache.hit(pages, key) if key is not None else None
        if body is None or token is None:
            return None
        return Response(body.replace(pagecache.PLACEHOLDER, token), mimetype="text/html")

    def _routes(self) -> MapAdapter:
        # The site's routes depend on neither host nor scheme: one adapter, bound once (to no server in particular).
        if self._adapter is None:
            self._adapter = self.app.url_map.bind("localhost")
        return self._adapter

    def _session(self, environ: WSGIEnvironment) -> Mapping[str, Any] | None:
        interface = self.app.session_interface
        value = parse_cookie(environ).get(self.app.config["SESSION_COOKIE_NAME"])
        if not isinstance(interface, RememberingSessionInterface) or not value:
            return None
        serializer = interface.get_signing_serializer(self.app)
        if serializer is None:
            return None
        return interface.check(serializer, value, self.app.permanent_session_lifetime.total_seconds())

    def _learner(self, environ: WSGIEnvironment, data: Mapping[str, Any]) -> pagecache.Learner | None:
        config = self.app.config
        if "_flashes" in data or not login_is_current(data.get("login_at"), config["SESSION_HOURS"]):
            return None
        if data.get("_id") != client_identifier(environ):
            return None
        return pagecache.session_learner(data.get("_user_id"), data.get("sid"))

    def _csrf_ok(self, environ: WSGIEnvironment, data: Mapping[str, Any], form: MultiDict[str, str]) -> bool:
        from kaptrain.extensions import csrf  # noqa: PLC0415 - extensions is imported after the app's modules

        config = self.app.config
        if not config["WTF_CSRF_ENABLED"]:
            return True
        # Where Flask-WTF looks (its _get_csrf_token), in its order: the form's field, a field whose name ends with
        # the field's name, then the headers.
        field = config["WTF_CSRF_FIELD_NAME"]
        prefixed = (form[key] for key in form if key.endswith(field))
        headers = (environ.get("HTTP_" + name.upper().replace("-", "_")) for name in config["WTF_CSRF_HEADERS"])
        token = form.get(field) or next(filter(None, prefixed), None) or next(filter(None, headers), None)
        secret = config.get("WTF_CSRF_SECRET_KEY") or self.app.secret_key
        expected = data.get(field)
        if not token or not isinstance(expected, str):
            return False
        if not csrf.check(secret, token, expected, config["WTF_CSRF_TIME_LIMIT"], time.time()):
            return False
        if environ.get("wsgi.url_scheme") == "https" and config["WTF_CSRF_SSL_STRICT"]:
            referrer: str = environ.get("HTTP_REFERER") or ""
            return bool(referrer) and referred_from(referrer, f"https://{get_host(environ)}/")
        return True

    def _finish(self, response: Response, environ: WSGIEnvironment) -> Answer:
        # What Flask's after-request functions add to these answers: the security headers, no-store, and Vary
        # (Flask-Compress names Accept-Encoding on every answer, the session Cookie); a page is compressed as
        # Flask-Compress would (a PDF is not a compressed type and the heartbeat's JSON is below its minimum). The
        # headers are built as the plain list WSGI takes: werkzeug's Headers checks each value it is given.
        from kaptrain.web import missing_security_headers  # noqa: PLC0415 - web imports the views

        body = response.get_data()
        headers = [(name, value) for name, value in response.headers.items() if name.lower() not in LANE_SETS]
        encoding = self._encoding(response.mimetype, len(body), environ.get("HTTP_ACCEPT_ENCODING", ""))
        if encoding is not None:
            body = _compress_data(self.app, body, encoding)
            headers.append(("Content-Encoding", encoding))
        headers.append(("Content-Length", str(len(body))))
        present = {name.lower() for name, _ in headers}
        production = self.app.config["ENV"] == "production"
        headers += missing_security_headers(present, production=production, no_store=True)
        vary = [*response.vary, *(name for name in ("Accept-Encoding", "Cookie") if name not in response.vary)]
        headers.append(("Vary", ", ".join(vary)))
        return response.status, headers, body

    def _encoding(self, mimetype: str | None, size: int, accepted: str) -> str | None:
        from kaptrain.static_assets import compress  # noqa: PLC0415 - static_assets imports the views' peers

        if mimetype not in compress.compress_mimetypes_set or size < self.app.config["COMPRESS_MIN_SIZE"]:
            return None
        return _choose_algorithm(compress.enabled_algorithms, accepted)
