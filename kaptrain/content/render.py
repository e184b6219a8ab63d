"""Markdown to safe HTML: markdown-it-py (js-default, no raw HTML) then nh3 with an allow-list."""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.container import container_plugin

CALLOUTS = ("vignette", "caution", "key-points", "note")

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "div",
    "sup",
    "sub",
    "s",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "h2": {"id"},
    "h3": {"id"},
    "ol": {"start"},
}


def _make_parser() -> MarkdownIt:
    md = MarkdownIt("js-default").enable("table")
    for name in CALLOUTS:
        md.use(container_plugin, name)
    # Section anchors let the page list a module's sections and quiz reviews link to them.
    md.use(anchors_plugin, min_level=2, max_level=3, permalink=False)
    return md


_md = _make_parser()


@lru_cache(maxsize=256)
def render_markdown(text: str) -> str:
    """Render trusted-format, untrusted-content Markdown into sanitized HTML."""
    html = _md.render(text)
    # The body's "#" title is the page's h1; demote any stray h1 to h2.
    html = html.replace("<h1", "<h2").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"https", "mailto"},
        allowed_classes={"div": set(CALLOUTS)},
        link_rel="noopener noreferrer",
    )


def section_headings(text: str) -> list[tuple[str, str]]:
    """The module's ## headings as (anchor id, title), in order, for its table of contents."""
    html = render_markdown(text)
    return [(m.group(1), re.sub(r"<[^>]+>", "", m.group(2))) for m in re.finditer(r'<h2 id="([^"]+)">(.*?)</h2>', html)]
