"""The dashboard numbers its steps as the outline does; a module page lets keyboard users skip to its end."""

from __future__ import annotations

import re

MARK = re.compile(r'<span class="(?:checklist-mark|module-num)" aria-hidden="true">([^<]*)</span>')


def test_the_checklist_and_the_outline_number_the_steps_alike(client, learner):  # type: ignore[no-untyped-def]
    checklist = MARK.findall(client.get("/dashboard").get_data(as_text=True))
    outline = MARK.findall(client.get("/courses/demo-course").get_data(as_text=True))
    # Disclosures acknowledged (✓, no number); three modules, the final, the evaluation and the attestation.
    assert checklist == ["✓", "1", "2", "3", "4", "5", "6"]
    assert [m for m in outline if m != "✓"][-6:] == ["1", "2", "3", "4", "5", "6"]


def test_a_module_page_lets_keyboard_users_skip_to_its_end(client, learner):  # type: ignore[no-untyped-def]
    page = client.get("/courses/demo-course/modules/alpha").get_data(as_text=True)
    assert '<a href="#lesson-end">Skip to the end of the module</a>' in page
    end = page.index('id="lesson-end"')
    assert page.index("I have finished reading", end) > end  # the button is inside what the link leads to
