"""An instructor edits a question of the pharmacology bank in a real browser and publishes it, with rules that draw
every question: a learner's attempt begun before keeps the old wording, and the learner's next attempt shows the new
one. The editor's pages pass axe and fit a phone on the way, including a refused save. The test puts the question
and the rules back as they were (restore, then publish), so the other browser tests see the shipped bank."""

from __future__ import annotations

import itertools
import re

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role, User
from kaptrain.courses import services as courses
from kaptrain.db import utcnow
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import COURSE, PASSWORD, answer_key, log_in
from tests.e2e.test_pages import AXE_OPTIONS, PHONE

pytestmark = pytest.mark.e2e

QUIZ = "pharmacology-quiz"
BANK = f"/author/courses/{COURSE}/quizzes/{QUIZ}"
_seq = itertools.count(1)


def _instructor(app: Flask) -> tuple[str, str]:
    """A new instructor with two-factor sign-in set up; their email and authenticator secret."""
    email, secret = f"bank-editor{next(_seq)}@example.org", pyotp.random_base32()
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = accounts.create_user(session, email, PASSWORD, accounts.Profile("Quinn Question, PhD", "Psychologist"),
                                    Role.INSTRUCTOR)  # fmt: skip
        user.totp_secret, user.totp_enabled_at, user.email_confirmed_at = secret, utcnow(), utcnow()
        session.commit()
    finally:
        session.close()
    return email, secret


def _learner(app: Flask) -> str:
    """A new learner (address confirmed) enrolled in the course with its disclosures acknowledged; their email."""
    email = f"bank-learner{next(_seq)}@example.org"
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = accounts.create_user(session, email, PASSWORD, accounts.Profile("Lee Learner, LCSW", "Social worker"))
        user.email_confirmed_at = utcnow()
        course = courses.get_course(session, COURSE)
        assert course is not None
        courses.acknowledge_disclosures(session, courses.enrol(session, user.id, course))
        session.commit()
    finally:
        session.close()
    return email


def _sign_in(page, email: str, secret: str) -> None:  # type: ignore[no-untyped-def]
    """Log in through the form, then give the authenticator's code when asked."""
    log_in(page, email, PASSWORD)
    if "/login/code" in page.url:
        page.locator('input[name="code"]').fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(r".*/login.*")


def _new_instructor_page(browser, base_url, app):  # type: ignore[no-untyped-def]
    """A new instructor, signed in, in a browser context of their own: (context, page)."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    _sign_in(page, *_instructor(app))
    return context, page


def _first_asked(app: Flask, email: str) -> tuple[str, str]:
    """The key and wording of the first question of the learner's open attempt."""
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = session.scalars(select(User).where(User.email == email)).one()
        attempt = session.scalars(
            select(Attempt).where(Attempt.user_id == user.id, Attempt.status == AttemptStatus.OPEN)
        ).one()
        revision = attempt.items[0].revision
        return revision.question.key, revision.stem
    finally:
        session.close()


def _checked(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """No axe violations and no sideways scrolling on a phone; screenshots of both widths."""
    results = Axe().run(page, options=AXE_OPTIONS)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"))
    page.set_viewport_size(size)
    assert results.violations_count == 0, results.generate_report()
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at 375px"


def _publish_restored(page, history: str, number: int) -> None:  # type: ignore[no-untyped-def]
    """Restore revision `number` from a history page as the draft, then publish it."""
    page.goto(history)
    page.get_by_role("button", name=f"Restore as draft (revision {number})").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Revision {number} is now the draft")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Published as revision")


def test_an_instructor_publishes_a_question_and_a_learners_next_attempt_shows_it(browser, base_url, live_app):
    learner_context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    learner = learner_context.new_page()
    learner_email = _learner(live_app)
    log_in(learner, learner_email, PASSWORD)
    learner.goto(f"/courses/{COURSE}/modules/pharmacology")  # a module's quiz opens once the module is opened
    learner.goto(f"/courses/{COURSE}/quizzes/{QUIZ}")
    learner.get_by_role("button", name="Start the quiz").click()
    first_attempt = learner.url
    key, old_stem = _first_asked(live_app, learner_email)
    new_stem = f"Rewritten in the browser: {old_stem}"

    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, *_instructor(live_app))
    page.goto(BANK)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Question bank: ")
    _checked(page, "authoring-bank-in-use")
    page.get_by_role("link", name=f"Edit {key}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Question {key}")

    # A refused save keeps what was typed and says why, on the form.
    page.get_by_label("Question", exact=True).fill("")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".error-summary")).to_contain_text("Write the question.")
    _checked(page, "authoring-question-refused")

    page.get_by_label("Question", exact=True).fill(new_stem)
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Published as revision 2")
    expect(page.get_by_label("Question", exact=True)).to_have_value(new_stem)

    page.goto(f"{BANK}/settings")
    _checked(page, "authoring-rules")
    drawn = page.get_by_label("Questions drawn for each attempt")
    published = int(page.locator("#draw-hint").inner_text().split("The bank has ")[1].split(" ")[0])
    old_draw = drawn.input_value()
    drawn.fill(str(published))
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("attempts already started keep the rules")

    # The attempt begun before keeps the wording it was given; the next attempt draws the new one.
    learner.goto(first_attempt)
    expect(learner.locator("form[data-save-url]")).to_contain_text(old_stem)
    expect(learner.locator("form[data-save-url]")).not_to_contain_text("Rewritten in the browser")
    for item_id, positions in answer_key(live_app, learner_email, right=False).items():
        for pos in positions:
            learner.locator(f'input[name="q-{item_id}"][value="{pos}"]').check()
    learner.get_by_role("button", name="Submit answers").click()
    expect(learner.locator(".review-item").first).to_be_visible()
    expect(learner.get_by_text("Rewritten in the browser")).to_have_count(0)
    learner.get_by_role("button", name="Try again").click()
    expect(learner.get_by_text(new_stem)).to_have_count(1)
    learner_context.close()

    # The history shows both wordings side by side; put the bank back as it was.
    page.goto(f"{BANK}/questions/{key}/revisions")
    expect(page.locator(".diff-table").first).to_contain_text("Rewritten in the browser")
    _checked(page, "authoring-question-history-diff")
    _publish_restored(page, f"{BANK}/questions/{key}/revisions", 1)
    page.goto(f"{BANK}/settings/revisions")
    _checked(page, "authoring-rules-history")
    _publish_restored(page, f"{BANK}/settings/revisions", 1)
    expect(page.get_by_label("Questions drawn for each attempt")).to_have_value(old_draw)

    # The other editors: a case and its history, and a final-assessment question (its module chosen first).
    page.goto(BANK)
    page.get_by_role("link", name=re.compile(r"^Edit case ")).first.click()
    expect(page.get_by_role("heading", name="Questions that use this case")).to_be_visible()
    _checked(page, "authoring-case")
    page.get_by_role("link", name="Revision history").click()
    _checked(page, "authoring-case-history")
    page.goto(f"/author/courses/{COURSE}/quizzes/final-assessment")
    page.locator(".bank-item-title a").first.click()
    expect(page.get_by_label("Module this question tests")).to_be_visible()
    expect(page.get_by_role("button", name="Show this module's sections")).to_be_hidden()  # the script lists them
    _checked(page, "authoring-question-final")

    # A case refused at "Add a case" comes back on a page of its own.
    page.goto(BANK)
    page.get_by_text("Add a case").click()
    page.locator("#case-key").fill("Not A Key")
    page.get_by_role("button", name="Add the case").click()
    expect(page.locator(".error-summary")).to_contain_text("Use lower-case letters")
    _checked(page, "authoring-add-case-refused")
    context.close()


def test_adding_a_case_asks_first_when_the_question_has_unsaved_changes(browser, base_url, live_app):
    """The walk-through lost a reworded stem and a new option by adding a case from the question editor."""
    context, page = _new_instructor_page(browser, base_url, live_app)
    page.goto(f"{BANK}/questions/pharm-01")
    stem = page.locator("#stem")
    typed = stem.input_value() + " (reworded)"
    stem.fill(typed)
    page.locator("#case-key").fill("case-unsaved")
    page.locator("#case-title").fill("Case: Unsaved")
    page.locator("#case-text").fill("A case added while the question had changes.")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Add the case").click()
    assert asked and "not saved" in asked[0]
    expect(stem).to_have_value(typed)  # still there: nothing was sent
    assert "/cases" not in page.url
    context.close()


def test_the_question_editor_previews_the_form_unsaved(browser, base_url, live_app):
    """The walk-through had to save a draft to see a rewording as learners would."""
    context, page = _new_instructor_page(browser, base_url, live_app)
    page.goto(f"{BANK}/questions/pharm-02")
    stem = page.locator("#stem")
    typed = stem.input_value() + " (tried in the preview)"
    stem.fill(typed)
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator(".question-unsaved")
    expect(preview).to_contain_text("(tried in the preview)")
    expect(preview).to_contain_text("(correct answer)")
    expect(page.locator("#stem")).to_have_value(typed)  # still in the form, to save or change
    _checked(page, "question-editor-unsaved-preview")
    context.close()
