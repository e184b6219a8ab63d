"""Where a reviewed question sends the learner to re-read: the module section its bank names, as a page anchor."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mdit_py_plugins.anchors.index import slugify

from kaptrain.content.render import render_markdown
from kaptrain.quizzes.models import AttemptItem

# The renderer gives ## and ### headings ids (anchors_plugin in kaptrain.content.render); a bank may name either.
_HEADING = re.compile(r'<h([23]) id="([^"]+)">(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


def _plain(text: str) -> str:
    """Heading or section text compared without markup, entities, quotes, case or spacing differences."""
    text = html.unescape(_TAG.sub("", text))
    return " ".join(text.replace("“", "").replace("”", "").replace('"', "").split()).casefold()


def section_anchor(body: str, section: str) -> str | None:
    """The id of the module heading whose text is this section, or None when the module has no such heading."""
    return anchor_in(render_markdown(body), section)


def anchor_in(html: str, section: str) -> str | None:
    """section_anchor for a module already rendered (learner pages take it from the content catalogue)."""
    wanted = _plain(section)
    headings: list[tuple[str, str]] = [(anchor, _plain(title)) for _level, anchor, title in _HEADING.findall(html)]
    for anchor, title in headings:
        if title == wanted:
            return anchor
    slug: str = slugify(section)
    return slug if any(anchor == slug for anchor, _title in headings) else None


@dataclass(frozen=True)
class Reread:
    """Where to re-read for one reviewed question: the module (by slug), the section's title and its anchor."""

    module_slug: str
    section: str
    anchor: str | None


def reread_targets(
    items: Iterable[AttemptItem], pages: Mapping[str, str], quiz_module: str | None
) -> dict[int, Reread]:
    """For each attempt item whose module is in the course, where its section is (by item id).

    `pages` maps each current module's slug to its rendered HTML (kaptrain.content.catalogue renders each published
    revision once); a module quiz's questions default to its own module."""
    out: dict[int, Reread] = {}
    for item in items:
        rev = item.revision
        slug = rev.module.slug if rev.module is not None else quiz_module  # a final's question names its module
        if slug is None or slug not in pages:
            continue
        out[item.id] = Reread(slug, rev.section, anchor_in(pages[slug], rev.section) if rev.section else None)
    return out
