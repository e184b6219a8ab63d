"""A module as a file in the browser: download what the editor holds in the content-file format, and load such a
file back into the editor.

Loading saves nothing: the file's text fills the editor form beside what it replaces, and the instructor saves or
publishes it with the editor's own buttons, under the editor's own checks (draft versions, newer revisions)."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from sqlalchemy.orm import Session

from kaptrain.authoring import services
from kaptrain.authoring.forms import plain_message
from kaptrain.authoring.services import MAX_BODY_CHARS, AuthoringError
from kaptrain.content import files, loader
from kaptrain.content.models import Module

# What a file's reader (YAML, pydantic) says, as the instructor would say it.
_DATE = "must be a date written YYYY-MM-DD, for example 2026-11-27"
_PLAINER = (
    (re.compile(r"^Input should be a valid date.*"), _DATE),
    (re.compile(r"^the value '([^']*)' cannot be read: (month must be in|day is out of range).*"), r"“\1” " + _DATE),
)
# Zipped documents (Word .docx, OpenDocument .odt): a frequent "module file" that is not plain text.
_ZIPPED = b"PK\x03\x04"

# The longest body the editor accepts, with room for its front matter, in the widest UTF-8.
MAX_FILE_BYTES = 4 * MAX_BODY_CHARS + 64 * 1024


class FileRefused(AuthoringError):
    """The uploaded file cannot be loaded; each problem names the file, and where it can, the line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The file was not loaded: " + "; ".join(problems), 400)
        self.problems = problems


def file_name(module: Module) -> str:
    """The module's file name in the content folders' layout (01-pharmacology.md)."""
    return files.module_file_name(module.slug, module.position)


def file_text(module: Module, data: dict[str, Any]) -> str:
    """The module's draft or revision data as the text of its module file."""
    return files.module_text(loader.module_file(module, data))


def shown_name(filename: str | None) -> str:
    """The uploaded file's own name, without any folders the browser sent, as messages name it."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    return name[:120] or "the file"


def load(session: Session, module: Module, filename: str | None, raw: bytes) -> dict[str, Any]:
    """An uploaded module file as the editor's plain data, checked as a save would check it.

    Raises FileRefused (unreadable, not this module, or breaking a content rule), naming file, line and field."""
    name = shown_name(filename)
    if not raw.strip():
        raise FileRefused([f"{name} is empty: choose the module's .md file"])
    if len(raw) > MAX_FILE_BYTES:
        raise FileRefused([f"{name} is {len(raw):,} bytes; a module file may be at most {MAX_FILE_BYTES:,}"])
    if raw.startswith(_ZIPPED):
        raise FileRefused(
            [
                f"{name} is a word-processor document (such as Word's .docx), not a plain-text Markdown file: in a "
                "text editor, or with your word processor's Save As, save the module as plain text (UTF-8) with the "
                ".md extension, then load that"
            ]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRefused(
            [f"{name} is not UTF-8 text (byte {exc.start + 1}): save it as UTF-8 plain text and upload it again"]
        ) from None
    parsed, problems = files.parse_module(name, text)
    if parsed is None:
        raise FileRefused([_said_plainly(p, text) for p in problems])
    if parsed.meta.slug != module.slug:
        raise FileRefused(
            [
                f"{name}: slug: the file is for the module “{parsed.meta.slug}”, and this is “{module.slug}”: "
                "open that module's editor, or change the slug in the file"
            ]
        )
    try:
        return services.check(session, module, loader.module_data(parsed))
    except services.InvalidDraft as exc:
        raise FileRefused([f"{name}: {field}: {message}" for field, message in exc.errors.items()]) from None


def _said_plainly(problem: files.Problem, text: str) -> str:
    """A file problem in the editor's words, at the line of the first citation it names when it names some (the
    reader can only place a text problem at the start of the text)."""
    message = problem.message
    for pattern, plain in _PLAINER:
        message = pattern.sub(plain, message)
    message = plain_message(problem.field, message)
    line = problem.line
    cited = re.search(r"citation\(s\) in the text .*?: (.+?) \((\d{4})\)", message, re.IGNORECASE)
    if cited:
        name, year = cited.group(1).split()[0], cited.group(2)
        found = next((n for n, row in enumerate(text.splitlines(), 1) if name in row and year in row), None)
        line = found or line
    return str(files.Problem(problem.path, problem.field, message, line))
