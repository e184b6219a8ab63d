"""Static files under content-hashed URLs, cached by browsers for a year; text responses compressed.

`url_for('static', filename=...)` (every template's way to a stylesheet, script or icon) adds `?v=` and the first
12 hex digits of the file's SHA-256. A request carrying the file's current hash is answered with
`Cache-Control: public, max-age=31536000, immutable`: the URL can only ever mean these bytes, so a browser or a
proxy keeps it until it is evicted, and a changed file gets a new URL with the next page. The same path without
the hash, or with an old one, is cached for five minutes only (and revalidated with its ETag). The hash comes from
the bytes, not the modification time, so every server of a site gives a file the same URL.

Compression is Flask-Compress (zstd, Brotli or gzip, as the client accepts): HTML, CSS, JavaScript, JSON, CSV, SVG
and plain text of 1 KB or more; not HTML answering an address with a query string (Compression, below: BREACH).
A streamed response (the CSV exports) is compressed as it streams, chunk by chunk
(zstd, Brotli or deflate), never buffered, and loses its Content-Length. Static text files are read whole first.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from flask import Flask, Response, request
from flask_compress import Compress
from werkzeug.security import safe_join

HASH_DIGITS = 12
IMMUTABLE = "public, max-age=31536000, immutable"  # a year: RFC 8246 says immutable needs no revalidation
SHORT = "public, max-age=300"  # the unversioned URL: a changed file shows within five minutes

COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/csv",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
]


class Compression(Compress):
    """Flask-Compress, except for a page drawn for an address with a query string.

    A compressed page's size shows how much of it repeats itself. A page that echoes what its address asked for
    (a search term, a `next=` path) beside a secret that stays the same from one response to the next (the form
    token) lets someone who can make the victim's browser open many addresses, and can watch the sizes of the
    encrypted answers, guess the secret a character at a time (the BREACH attack). Every such echo on this site
    comes from the query string (a cross-site form post arrives without the session cookie, SameSite=Lax), so
    HTML answering one is sent as it is. Learner pages have no query string and stay compressed."""

    def after_request(self, response: Response | None) -> Response:
        if response is not None and request.query_string and response.mimetype == "text/html":
            return response
        return super().after_request(response)


compress = Compression()


class StaticHashes:
    """The content hash of each file in the static folder, worked out once and again only when the file changes."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._known: dict[str, tuple[int, int, str]] = {}  # filename -> (mtime_ns, size, digest)
        self._lock = threading.Lock()

    def digest(self, filename: str) -> str | None:
        """The first HASH_DIGITS hex digits of the file's SHA-256, or None when there is no such file."""
        path = safe_join(self.folder, filename)
        if path is None:
            return None
        try:
            stat = Path(path).stat()
        except OSError:
            return None
        known = self._known.get(filename)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:HASH_DIGITS]
        with self._lock:
            self._known[filename] = (stat.st_mtime_ns, stat.st_size, digest)
        return digest


def init_static_assets(app: Flask) -> None:
    """Version static URLs by content, set their cache lifetimes and compress text responses."""
    hashes = StaticHashes(app.static_folder or "")
    app.extensions["kaptrain.static_hashes"] = hashes

    @app.url_defaults
    def _versioned(endpoint: str, values: dict[str, object]) -> None:
        if endpoint == "static" and "v" not in values and isinstance(values.get("filename"), str):
            digest = hashes.digest(str(values["filename"]))
            if digest is not None:
                values["v"] = digest

    @app.after_request
    def _static_lifetime(response: Response) -> Response:
        if request.endpoint != "static" or response.status_code not in (200, 206, 304):
            return response
        filename = (request.view_args or {}).get("filename")
        current = hashes.digest(filename) if isinstance(filename, str) else None
        response.headers["Cache-Control"] = IMMUTABLE if current and request.args.get("v") == current else SHORT
        return response

    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    app.config.setdefault("COMPRESS_MIN_SIZE", 1024)
    compress.init_app(app)

    @app.after_request  # registered after Flask-Compress, so it runs before it
    def _whole_text_file(response: Response) -> Response:
        # A static file is sent as a stream of the open file: Flask-Compress would compress it as a stream and
        # never close the file. A stylesheet or script is small: read it into the response (the file is closed
        # with the response), so it is compressed whole, with any encoding the client accepts.
        if request.endpoint in ("static", "favicon") and response.direct_passthrough and response.status_code == 200:
            if response.mimetype in COMPRESSED_TYPES:
                response.direct_passthrough = False
                response.get_data()
        return response
