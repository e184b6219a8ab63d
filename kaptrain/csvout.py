"""CSV for downloads and files: written one line at a time (an export of any size in constant memory), and every
cell safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula (OWASP,
"CSV injection"); names, licence numbers, evaluation comments, question stems and audit details are typed by
people, so such a cell is written with a leading apostrophe, which spreadsheets show as text; so is a formula
character after a semicolon or a line break inside a cell, where Excel in a semicolon locale starts a new cell. A
plain number (a negative discrimination index, say) is left as it is.

A download starts with a UTF-8 byte-order mark: Excel, which CE administrators open these in, otherwise reads
the file in the machine's legacy code page and shows "Díaz" as "DÃ­az". Python's csv module reads it with the
"utf-8-sig" encoding, and other spreadsheets ignore it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TextIO

from flask import Response, current_app, stream_with_context
from sqlalchemy.orm import Session

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


# Where a spreadsheet may start a new cell inside this one: after a semicolon (Excel in locales whose list
# separator is ";" splits a line there, and honours quotes only at the start of a cell, so quoting alone protects
# the first column only) or a line break.
_INNER_FORMULA = re.compile(r"([;\r\n][ \t]*)([=+\-@])")


def cell(value: object) -> str:
    """A value as a CSV cell that a spreadsheet will not run (None: empty): a formula character at its start, or
    after a semicolon or line break inside it, gets an apostrophe before it."""
    text = "" if value is None else str(value)
    if _NUMBER.fullmatch(text):
        return text
    text = _INNER_FORMULA.sub(r"\1'\2", text)
    return "'" + text if text.startswith(FORMULA_START) else text


# Quoted as RFC 4180 asks (a comma, a quote, a line break), and also a semicolon: Excel in the many locales whose
# list separator is ";" (German, French, Dutch ...) splits an unquoted cell there, and "Ruiz;=cmd|..." would then
# start a cell with a formula. A quoted cell is never split.
_NEEDS_QUOTES = re.compile(r'[,";\r\n]')


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def lines(header: Sequence[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The header and then each row as one line of CSV text (as Python's csv module writes it, with a semicolon
    quoted too), every cell through `cell`."""
    for row in itertools.chain([header], rows):
        yield ",".join(_quoted(cell(value)) for value in row) + "\r\n"


def write(stream: TextIO, header: Sequence[str], rows: Iterable[Iterable[object]]) -> None:
    """`lines` written to a file or standard output."""
    stream.writelines(lines(header, rows))


BYTE_ORDER_MARK = "\ufeff"


def download(text_lines: Iterator[str], filename: str) -> Response:
    """A CSV download, streamed line by line (in the request's context), led by the byte-order mark."""
    response = Response(stream_with_context(itertools.chain([BYTE_ORDER_MARK], text_lines)), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response


def read_apart(produce: Callable[[Session], Iterable[str]]) -> Iterator[str]:
    """The lines `produce` makes, read in a session of their own, closed when the last line is sent. The request's
    session is closed at teardown, before a streamed body is produced; a generator still reading through it would
    open a transaction nobody closes (on SQLite, holding the write lock of an audited request)."""
    session = current_app.extensions["kaptrain.db"].new_session(writer=False)
    try:
        yield from produce(session)
    finally:
        session.close()
