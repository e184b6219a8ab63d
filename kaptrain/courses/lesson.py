"""How a module page presents its rendered text: each table in a labelled region that scrolls sideways on its own."""

from __future__ import annotations

import html
import re

from markupsafe import Markup, escape

_TABLE = re.compile(r"<table>.*?</table>", re.S)
_HEADER_CELL = re.compile(r"<th[^>]*>(.*?)</th>", re.S)
_TAG = re.compile(r"<[^>]+>")
LABEL_HEADERS = 3  # column names a region's label quotes before "…"


def table_label(number: int, table: str) -> str:
    """A table's accessible name: its number and its first column headings ("Table 2: Route, Onset, Duration")."""
    headers = [" ".join(html.unescape(_TAG.sub("", h)).split()) for h in _HEADER_CELL.findall(table)]
    headers = [h for h in headers if h]
    if not headers:
        return f"Table {number}"
    more = ", …" if len(headers) > LABEL_HEADERS else ""
    return f"Table {number}: {', '.join(headers[:LABEL_HEADERS])}{more}"


def scrollable_tables(body: str) -> Markup:
    """Wrap each table of sanitised module HTML in a focusable, named region, so keyboard users can scroll it."""
    count = 0

    def wrap(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        label = escape(table_label(count, match.group(0)))
        return f'<div class="table-scroll" role="region" tabindex="0" aria-label="{label}">{match.group(0)}</div>'

    # The body was sanitised by kaptrain.content.render (an allow-list without attributes on <table>); the only
    # markup added here is the wrapper, whose label is escaped.
    return Markup(_TABLE.sub(wrap, body))  # noqa: S704
