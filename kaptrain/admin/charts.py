"""Server-rendered SVG bar charts in the design system's colours (no script, no style attribute: CSP-safe).

Each chart is decorative for screen readers (aria-hidden): the page shows the same figures in a table."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

# The hex values of kaptrain.css's variables: presentation attributes cannot read CSS variables.
BRAND = "#1f5f6b"  # --brand
ACCENT = "#8a4b14"  # --accent
INK = "#1c2a33"  # --ink
INK_SOFT = "#46555f"  # --ink-soft
LINE = "#d9dedf"  # --line
TINT = "#e6f0f1"  # --brand-tint

LABEL_WIDTH = 150
BAR_WIDTH = 300
ROW = 26


def bar_chart(bars: Sequence[tuple[str, int]], colour: str = BRAND, label_width: int = LABEL_WIDTH) -> Markup:
    """Horizontal bars, one row per (label, value), scaled to the largest value; the value is printed after it."""
    peak = max((v for _, v in bars), default=0) or 1
    width = label_width + BAR_WIDTH + 60
    height = ROW * len(bars) + 8
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-hidden="true" focusable="false" font-family="system-ui, sans-serif" font-size="13">'
    ]
    for i, (label, value) in enumerate(bars):
        y = 4 + i * ROW
        length = round(BAR_WIDTH * value / peak)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" fill="{INK}">{escape(_short(label))}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{BAR_WIDTH}" height="{ROW - 8}" fill="{TINT}"/>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length}" height="{ROW - 8}" fill="{colour}"/>'
            f'<text x="{label_width + BAR_WIDTH + 8}" y="{y + 17}" fill="{INK_SOFT}">{value}</text>'
        )
    parts.append(f'<line x1="{label_width}" y1="2" x2="{label_width}" y2="{height - 2}" stroke="{LINE}"/></svg>')
    return Markup("".join(parts))  # noqa: S704 - every label is escaped above; numbers are ints


def _short(label: str, limit: int = 22) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
