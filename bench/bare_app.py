"""The bare baseline of bench/scale.py: Flask + Jinja with no database, no session, no extensions.

Served by gunicorn with the same settings as the site, in the same run:
- GET /page/<bytes>: a page of about that many bytes rendered from a Jinja template (sections of escaped
  paragraphs, the shape of a learner page), the ceiling a learner page of that size is compared with;
- POST /post: reads the form and answers a small JSON body, the ceiling of heartbeat and quiz submission;
- GET /bytes/<bytes>: a stored-file-like response of that many bytes as a PDF attachment, the ceiling of a
  certificate download.

    .venv/bin/gunicorn --pythonpath bench bare_app:app
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue

app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
TEMPLATE = "bare_page.html"
SENTENCE = (
    "Ketamine's dissociative effects & their meaning for the client are explored in preparation, "
    "during the session and in integration; the therapist <em>listens</em> before interpreting. "
)
NAV = [("Courses", "/courses"), ("My learning", "/dashboard"), ("Account", "/account"), ("Log out", "/logout")]


@functools.cache
def _sections(size: int) -> list[dict[str, Any]]:
    """Sections whose rendered page is about `size` bytes (measured once per size, then cached)."""
    with app.test_request_context():
        overhead = len(render_template(TEMPLATE, **_context([])).encode())
        paragraph = SENTENCE * 3
        one = len(render_template(TEMPLATE, **_context([_section(1, [paragraph])])).encode()) - overhead
        count = max(0, (size - overhead) // max(1, one))
        sections = [_section(i, [paragraph]) for i in range(count)]
        short = size - len(render_template(TEMPLATE, **_context(sections)).encode())
        if short > 40:  # a last, shorter paragraph makes up the difference
            sections.append(_section(count, ["x" * (short - 40)]))
        return sections


def _section(number: int, paragraphs: list[str]) -> dict[str, Any]:
    return {"heading": f"Section {number + 1}", "paragraphs": paragraphs}


def _context(sections: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": "A page of the same size", "nav": NAV, "sections": sections, "footer": "bare Flask + Jinja"}


@app.get("/page/<int:size>")
def page(size: int) -> ResponseReturnValue:
    """A Jinja page of about `size` bytes."""
    return render_template(TEMPLATE, **_context(_sections(size)))


@app.post("/post")
def post() -> ResponseReturnValue:
    """A bare POST route: read the form, answer a little JSON."""
    return jsonify(ok=True, fields=len(request.form))


@functools.cache
def _blob(size: int) -> bytes:
    return b"%PDF-1.7\n" + b"0" * max(0, size - 9)


@app.get("/bytes/<int:size>")
def blob(size: int) -> ResponseReturnValue:
    """A bare response of `size` bytes, sent as a PDF attachment like a stored certificate."""
    response = Response(_blob(size), mimetype="application/pdf")
    response.headers.set("Content-Disposition", "attachment", filename="bare.pdf")
    return response
