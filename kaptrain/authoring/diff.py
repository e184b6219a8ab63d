"""Side-by-side differences between two versions of an item (revisions or a draft), field by field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

LABELS = {
    "title": "Title",
    "summary": "Summary",
    "estimated_minutes": "Estimated minutes",
    "last_reviewed": "Last reviewed",
    "objectives": "Learning objectives",
    "references": "References",
    "body": "Text",
    "type": "Question type",
    "section": "Section",
    "module_id": "Module",
    "vignette_id": "Case",
    "stem": "Question",
    "options": "Options",
    "explanation": "Explanation",
    "text": "Case text",
    "draw": "Questions drawn",
    "passing_score": "Pass mark (%)",
    "max_attempts": "Attempts",
    "cooldown_hours": "Cooldown (hours)",
    "time_limit_minutes": "Time limit (minutes)",
    "reveal_answers": "Show answers",
    "partial_credit": "Partial credit",
    "allow_extension": "Learners may ask for more time",
}


@dataclass(frozen=True)
class Row:
    """One line of a side-by-side diff: left and right text (None where the line is absent) and the change."""

    left: str | None
    right: str | None
    change: str  # "same", "changed", "removed" or "added"


@dataclass(frozen=True)
class FieldDiff:
    """How one field differs between the two versions."""

    name: str
    label: str
    rows: list[Row]


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines() or [""]
    if isinstance(value, list) and all(isinstance(v, dict) and "text" in v for v in value):
        return [("✓ " if v.get("correct") else "• ") + str(v["text"]) for v in value]  # options, the key marked
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [f"• {v}" for v in value]
    if isinstance(value, list) and all(isinstance(v, dict) and "authors" in v for v in value):
        return [_reference(v) for v in value]  # a module's references, as a reference list reads
    if isinstance(value, list):
        return [json.dumps(v, ensure_ascii=False, sort_keys=True) for v in value]
    return [str(value)]


def _reference(r: dict[str, Any]) -> str:
    """One reference on one line, as a reference list prints it, its key first (what the text's citations use)."""
    line = f"[{r.get('key', '')}] {r.get('authors', '')} ({r.get('year', '')}). {r.get('title', '')}."
    if r.get("source"):
        line += f" {r['source']}."
    if r.get("doi"):
        line += f" doi:{r['doi']}"
    if r.get("url"):
        line += f" {r['url']}"
    return line


def _rows(a: list[str], b: list[str]) -> list[Row]:
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [Row(x, x, "same") for x in a[i1:i2]]
        elif tag == "delete":
            rows += [Row(x, None, "removed") for x in a[i1:i2]]
        elif tag == "insert":
            rows += [Row(None, y, "added") for y in b[j1:j2]]
        else:
            left, right = a[i1:i2], b[j1:j2]
            for k in range(max(len(left), len(right))):
                rows.append(Row(left[k] if k < len(left) else None, right[k] if k < len(right) else None, "changed"))
    return rows


def diff(old: dict[str, Any], new: dict[str, Any], fields: tuple[str, ...], context: int = 2) -> list[FieldDiff]:
    """The fields that differ, each as side-by-side rows; long unchanged runs keep `context` lines each side."""
    out = []
    for name in fields:
        if old.get(name) == new.get(name):
            continue
        rows = _rows(_lines(old.get(name)), _lines(new.get(name)))
        out.append(FieldDiff(name, LABELS.get(name, name), _trim(rows, context)))
    return out


def _trim(rows: list[Row], context: int) -> list[Row]:
    """Keep changed rows and `context` rows around them; a run cut out becomes one "…" row."""
    keep = [False] * len(rows)
    for i, row in enumerate(rows):
        if row.change != "same":
            for j in range(max(0, i - context), min(len(rows), i + context + 1)):
                keep[j] = True
    out: list[Row] = []
    skipped = False
    for row, kept in zip(rows, keep, strict=True):
        if kept:
            out.append(row)
            skipped = False
        elif not skipped:
            out.append(Row("…", "…", "same"))
            skipped = True
    return out
