"""Markdown to safe HTML: markdown-it-py (js-default, no raw HTML) then nh3 with an allow-list.

Images are allowed only from the site's own uploads (`/uploads/<generated name>`, see kaptrain/authoring/uploads.py):
any other source is shown as its alt text, and nh3 drops any other `src` whatever produced it.

Rendering is not cached here: learner pages take a published revision's HTML from the content catalogue
(kaptrain.content.catalogue), which renders each revision once per content version; an editor's preview renders
what is typed, every time."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.anchors.index import slugify
from mdit_py_plugins.container import container_plugin

CALLOUTS = ("vignette", "caution", "key-points", "note")

# The name an upload is stored under: 32 hex digits and the extension of its sniffed type. Defined here, on the
# read side, so that the renderer needs nothing from authoring; kaptrain.authoring.uploads generates names by it.
UPLOAD_NAME_PATTERN = r"[0-9a-f]{32}\.(?:png|jpg|gif|webp)"
UPLOAD_SRC = re.compile(rf"/uploads/{UPLOAD_NAME_PATTERN}")

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
    "img",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "h2": {"id"},
    "h3": {"id"},
    "ol": {"start"},
    "img": {"src", "alt"},
}


def _only_site_images(tag: str, attribute: str, value: str) -> str | None:
    """nh3 attribute filter: an image keeps only its alt text and a src that is a site upload path (no other
    host, no data: or javascript: URL, no query or fragment); nh3's generic title and lang are dropped too."""
    if tag != "img":
        return value
    if attribute == "alt" or (attribute == "src" and UPLOAD_SRC.fullmatch(value)):
        return value
    return None


def _image(self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    # An image from anywhere but the site's uploads is shown as its alt text, so the reader still gets the words
    # (and no request leaves for another host); the sanitiser would drop its src anyway.
    token = tokens[idx]
    if UPLOAD_SRC.fullmatch(str(token.attrGet("src") or "")):
        return self.image(tokens, idx, options, env)
    return self.renderInline(token.children or [], options, env)


_rendering = threading.local()


def _numbered_slug(title: str) -> str:
    """The heading's slug, numbered from its second use within this render ("a", "a-1", "a-2", as the plugin would).

    The anchors plugin numbers a repeated slug by trying "a-1", "a-2", ... until one is free, so N identical headings
    cost N squared: minutes for a long module. Counting here hands it a free slug at once."""
    seen: dict[str, int] = getattr(_rendering, "slugs", None) or {}
    _rendering.slugs = seen
    slug = slugify(title)
    uses = seen.get(slug, 0)
    seen[slug] = uses + 1
    return f"{slug}-{uses}" if uses else slug


# How deep blocks and inline marks may nest (the CommonMark preset's limit; js-default allows 100). Each unmatched
# "[" or "![" makes the inline parser look ahead through up to this many levels, so text of 200,000 brackets took
# 10-14 s to preview at 100 and takes about 2 s at 20; no module text nests anywhere near 20 levels.
MAX_NESTING = 20


def _make_parser() -> MarkdownIt:
    md = MarkdownIt("js-default", {"maxNesting": MAX_NESTING}).enable("table")
    for name in CALLOUTS:
        md.use(container_plugin, name)
    # Section anchors let the page list a module's sections and quiz reviews link to them.
    md.use(anchors_plugin, min_level=2, max_level=3, permalink=False, slug_func=_numbered_slug)
    md.add_render_rule("image", _image)
    return md


_md = _make_parser()


def render_markdown(text: str) -> str:
    """Render trusted-format, untrusted-content Markdown into sanitized HTML."""
    _rendering.slugs = {}
    html = _md.render(text)
    # The body's "#" title is the page's h1; demote any stray h1 to h2.
    html = html.replace("<h1", "<h2").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_only_site_images,
        url_schemes={"https", "mailto"},
        allowed_classes={"div": set(CALLOUTS)},
        link_rel="noopener noreferrer",
    )


def section_headings(text: str) -> list[tuple[str, str]]:
    """The module's ## headings as (anchor id, title), in order, for its table of contents."""
    return headings_of(render_markdown(text))


def headings_of(html: str) -> list[tuple[str, str]]:
    """The ## headings of rendered HTML as (anchor id, title)."""
    return [(m.group(1), re.sub(r"<[^>]+>", "", m.group(2))) for m in re.finditer(r'<h2 id="([^"]+)">(.*?)</h2>', html)]


@dataclass(frozen=True)
class Rendered:
    """A module revision's text as sanitised HTML, with its ## headings for the table of contents."""

    html: str
    sections: tuple[tuple[str, str], ...]


def render_module(text: str) -> Rendered:
    """Render a module's text once for everything a page shows of it."""
    html = render_markdown(text)
    return Rendered(html, tuple(headings_of(html)))
