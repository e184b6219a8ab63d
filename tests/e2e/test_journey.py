"""A clinician's path in a real browser: register, enrol, read module 1, pass its quiz, open module 2; then
evaluate the course, attest, claim hours and download and verify the certificate."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from kaptrain.certificates.services import ATTESTATION_STATEMENT
from tests.e2e.helpers import answer_key, complete_requirements, confirm_email, enrol_and_acknowledge, register

pytestmark = pytest.mark.e2e


def test_register_enrol_and_open_module_one(page):
    register(page)  # registers, then logs in: an address is confirmed later, by the emailed link
    expect(page.get_by_text("Please confirm your email address")).to_be_visible()
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


def test_evaluate_attest_and_download_the_certificate(page, live_app):
    email = register(page, "Jordan Certified, LPC")
    enrol_and_acknowledge(page)
    complete_requirements(live_app, email)  # the quizzes are covered above; the services pass them quickly
    confirm_email(live_app, email)  # as the emailed link does (tests/accounts/test_email_ownership.py)

    page.goto("/dashboard")
    expect(page.get_by_text("You have met the course's learning requirements.")).to_be_visible()
    # The checklist links the next step, and the Continue button leads to it too.
    expect(page.get_by_role("link", name="Course evaluation", exact=True)).to_be_visible()
    page.get_by_role("link", name="Continue: Course evaluation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Course evaluation")
    objectives = page.get_by_role("group", name=re.compile(r"^Objective \d+ of 6"))
    expect(objectives).to_have_count(6)
    for i in range(6):
        objectives.nth(i).get_by_label("Met", exact=True).check()
    page.get_by_role("group", name="Relevance to your practice").get_by_label("5 · Highly relevant").check()
    page.get_by_role("group", name="Quality of the material").get_by_label("4", exact=True).check()
    page.get_by_role("group", name="Was the content free of commercial bias?").get_by_label("No").check()
    balance = page.get_by_role("group", name=re.compile(r"^Was the content evidence-based and balanced"))
    balance.get_by_label("Partly").check()
    hours_spent = page.get_by_label(re.compile(r"^About how many hours did you spend on this course"))
    hours_spent.fill("ten")
    page.get_by_role("button", name="Submit the evaluation").click()  # no overall rating, no bias or balance comment
    expect(page.get_by_role("alert")).to_contain_text("Choose a rating from 1 to 5.")
    expect(page.get_by_role("alert")).to_contain_text("Tell us where you saw commercial bias")
    expect(page.get_by_role("alert")).to_contain_text("Tell us what was unbalanced or unclear about the evidence")
    expect(page.get_by_role("alert")).to_contain_text("Enter the hours you spent as a number")
    expect(page.get_by_role("alert")).to_contain_text("Choose the answer closest to your plans.")
    expect(balance.get_by_label("Partly")).to_be_checked()  # what was given stays given
    expect(hours_spent).to_have_value("ten")
    expect(hours_spent).to_have_accessible_description(re.compile(r"Enter the hours you spent as a number"))
    page.get_by_label("If partly or not, what was unbalanced or unclear?").fill("Say which uses are off-label.")
    hours_spent.fill("10.5")
    page.get_by_role("group", name="Overall rating of the course").get_by_label("4", exact=True).check()
    change = page.get_by_role("group", name="Will you change anything in your practice as a result of this course?")
    change.get_by_label("Yes, I plan to change something").check()
    page.get_by_label("What will you change, or what would stop you? (optional)").fill("Screen for bladder symptoms.")
    page.get_by_role("group", name="Was the content free of commercial bias?").get_by_label("Yes").check()
    page.get_by_role("button", name="Submit the evaluation").click()

    expect(page.get_by_text("Thank you: your evaluation was submitted.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Attestation and hours claimed")
    expect(page.get_by_role("heading", name="Your measured active time")).to_be_visible()
    hours = page.get_by_label("Hours you claim")
    expect(hours).to_have_attribute("step", "0.25")
    expect(hours).to_have_attribute("max", "8")
    hours.fill("3.1")
    page.get_by_label(ATTESTATION_STATEMENT).check()
    page.get_by_role("button", name="Attest and request my certificate").click()
    expect(hours).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text("quarter-hour steps")
    hours.fill("7.5")
    page.get_by_label(ATTESTATION_STATEMENT).check()
    page.get_by_role("button", name="Attest and request my certificate").click()

    expect(page.get_by_text("Your certificate was issued.")).to_be_visible()
    number = page.locator(".certificate-facts dd").first.inner_text()
    assert re.fullmatch(r"KAP-\d{4}-\d{6}", number)
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("^Download PDF")).click()
    download = download_info.value
    assert download.suggested_filename == f"{number}.pdf"
    assert Path(download.path()).read_bytes()[:5] == b"%PDF-"

    verification = page.get_by_label("Verification link").input_value()
    assert "/verify/" in verification
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == verification
    page.get_by_role("link", name="Transcript").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Transcript")
    expect(page.get_by_text(f"{number} · Issued")).to_be_visible()
    # The printed address uses BASE_URL (the production site); its path is what this live server answers.
    page.goto(urlsplit(verification).path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Valid certificate")
    expect(page.get_by_text("Jordan Certified")).to_be_visible()
