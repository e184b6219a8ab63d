"""A clinician's path in a real browser: register, enrol, read module 1, pass its quiz, open module 2."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import answer_key, enrol_and_acknowledge, register

pytestmark = pytest.mark.e2e


def test_register_enrol_and_open_module_one(page):
    register(page)
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()
    enrol_and_acknowledge(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Ketamine pharmacology")
    expect(page.get_by_role("heading", name="Learning objectives")).to_be_visible()
    expect(page.get_by_role("heading", name="References", exact=True)).to_be_visible()
    expect(page.get_by_text("Last reviewed")).to_be_visible()


def test_pass_module_one_quiz_and_see_module_two_open(page, live_app):
    email = register(page)
    enrol_and_acknowledge(page)
    page.get_by_role("button", name="I have finished reading: take the quiz").click()
    page.get_by_role("button", name="Start the quiz").click()
    expect(page.get_by_role("button", name="Submit answers")).to_be_visible()
    for item_id, positions in answer_key(live_app, email).items():
        for pos in positions:
            page.locator(f'input[name="q-{item_id}"][value="{pos}"]').check()
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name=re.compile(r"Passed: 100%"))).to_be_visible()
    page.get_by_role("link", name=re.compile("Continue to module 2")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dissociation and its therapeutic use")


def test_failed_attempts_lead_to_the_cooldown(page, live_app):
    email = register(page)
    enrol_and_acknowledge(page)
    page.goto("/courses/kap-foundations/quizzes/pharmacology-quiz")
    page.get_by_role("button", name="Start the quiz").click()
    for attempt in range(3):
        for item_id, positions in answer_key(live_app, email, right=False).items():
            for pos in positions:
                page.locator(f'input[name="q-{item_id}"][value="{pos}"]').check()
        page.get_by_role("button", name="Submit answers").click()
        expect(page.get_by_role("heading", name=re.compile("Not passed"))).to_be_visible()
        if attempt < 2:
            page.get_by_role("button", name="Try again").click()
    expect(page.get_by_text(re.compile("You have used all 3 attempts for now"))).to_be_visible()
    page.goto("/courses/kap-foundations/quizzes/pharmacology-quiz")
    expect(page.get_by_text(re.compile("You can try again after"))).to_be_visible()
    expect(page.get_by_role("button", name="Start the quiz")).to_have_count(0)


def test_quiz_completed_with_the_keyboard_alone(page, live_app):
    email = register(page)
    enrol_and_acknowledge(page)
    page.goto("/courses/kap-foundations/quizzes/pharmacology-quiz")
    page.get_by_role("button", name="Start the quiz").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Submit answers")).to_be_visible()
    key = answer_key(live_app, email)
    for item_id, positions in key.items():
        kind = page.locator(f'input[name="q-{item_id}"]').first.get_attribute("type")
        # Tab until focus is inside this question's options.
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.name") == f"q-{item_id}":
                break
        if kind == "radio":
            # Entering an unchecked radio group focuses its first option; arrows move and select.
            if positions[0] == 0:
                page.keyboard.press("Space")
            for _ in range(positions[0]):
                page.keyboard.press("ArrowDown")
        else:
            count = page.locator(f'input[name="q-{item_id}"]').count()
            for pos in range(count):
                if pos in positions:
                    page.keyboard.press("Space")
                if pos < count - 1:
                    page.keyboard.press("Tab")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Submit answers":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(r"Passed: 100%"))).to_be_visible()
