"""The dashboard's checklist numbers modules and the steps after them as the course outline does."""

from __future__ import annotations

import re

MARK = re.compile(r'<span class="(?:checklist-mark|module-num)" aria-hidden="true">([^<]*)</span>')


def test_the_checklist_and_the_outline_number_the_steps_alike(client, learner):  # type: ignore[no-untyped-def]
    checklist = MARK.findall(client.get("/dashboard").get_data(as_text=True))
    outline = MARK.findall(client.get("/courses/demo-course").get_data(as_text=True))
    # Disclosures acknowledged (✓, no number); three modules, the final, the evaluation and the attestation.
    assert checklist == ["✓", "1", "2", "3", "4", "5", "6"]
    assert [m for m in outline if m != "✓"][-6:] == ["1", "2", "3", "4", "5", "6"]
