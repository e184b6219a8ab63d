"""An instructor edits module 2 in a real browser: the live preview follows the typing, publishing changes the
learner's page while a learner part-way through carries on, the history shows the difference and restores the
previous revision, a second instructor's stale save is refused, and Markdown payloads stay inert.

The test puts module 2 back as it was (restore, then publish), so the other browser tests see the shipped text."""

from __future__ import annotations

import itertools
import re

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import expect

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.db import utcnow
from kaptrain.quizzes import services as quizzes
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import COURSE, PASSWORD, log_in
from tests.e2e.test_pages import AXE_OPTIONS, PHONE
from tests.factories import correct_answers

pytestmark = pytest.mark.e2e

EDITOR = f"/author/courses/{COURSE}/modules/dissociation"
LEARNER = f"/courses/{COURSE}/modules/dissociation"
_seq = itertools.count(1)
ADDED = "Added in the browser: a sentence about integration after a dissociative session."


def learner_past_module_one(app: Flask, email: str) -> None:
    """A learner enrolled, past the disclosures, with module 1 read and its quiz passed (through the services)."""
    with app.app_context():
        session = app.extensions["kaptrain.db"].new_session()
        try:
            user = accounts.create_user(session, email, PASSWORD, accounts.Profile("Morgan Midway, LPC", "Counselor"))
            user.email_confirmed_at = utcnow()
            course = courses.get_course(session, COURSE)
            assert course is not None
            enrolment = courses.enrol(session, user.id, course)
            courses.acknowledge_disclosures(session, enrolment)
            first = completion.course_record(session, user.id, course, enrolment).modules[0]
            courses.open_module(session, user.id, first.module)
            assert first.quiz is not None
            gate = completion.quiz_gate(completion.course_record(session, user.id, course, enrolment), first.quiz)
            attempt = quizzes.start_attempt(session, user.id, first.quiz, gate)
            quizzes.submit_attempt(session, attempt, correct_answers(attempt))
            session.commit()
        finally:
            session.close()


def staff(app: Flask, name: str, role: Role = Role.INSTRUCTOR) -> tuple[str, str]:
    """A new instructor (or administrator) with two-factor sign-in set up: their email and authenticator secret."""
    email, secret = f"module-author{next(_seq)}@example.org", pyotp.random_base32()
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = accounts.create_user(session, email, PASSWORD, accounts.Profile(name, "Psychologist"), role)
        user.totp_secret, user.totp_enabled_at, user.email_confirmed_at = secret, utcnow(), utcnow()
        session.commit()
    finally:
        session.close()
    return email, secret


def signed_in(browser, base_url, email: str, secret: str):  # type: ignore[no-untyped-def]
    """A browser page of its own, logged in with the password and then the authenticator's code."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, email, PASSWORD)
    if "/login/code" in page.url:
        page.locator('input[name="code"]').fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login|/two-factor"))
    return page


def check_accessible(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """No axe violations, no sideways scrolling on a phone; screenshots of both widths."""
    results = Axe().run(page, options=AXE_OPTIONS)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"))
    page.set_viewport_size(size)
    assert results.violations_count == 0, results.generate_report()
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at 375px"


@pytest.fixture
def instructor_page(browser, base_url, live_app):  # type: ignore[no-untyped-def]
    """An instructor, logged in, in a browser context of their own."""
    page = signed_in(browser, base_url, *staff(live_app, "Ira Instructor, PhD"))
    yield page
    page.context.close()


@pytest.fixture
def learner_page(browser, base_url, live_app):  # type: ignore[no-untyped-def]
    """A learner past module 1, reading module 2, in a browser context of their own."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    email = f"midway{next(_seq)}@example.org"
    learner_past_module_one(live_app, email)
    log_in(page, email, PASSWORD)
    page.goto(LEARNER)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dissociation and its therapeutic use")
    yield page
    context.close()


def test_edit_preview_publish_compare_and_restore_module_two(instructor_page, learner_page):  # type: ignore[no-untyped-def]
    page = instructor_page
    page.goto("/author/")
    page.get_by_role("link", name="Edit Dissociation and its therapeutic use", exact=True).click()
    expect(page.get_by_role("heading", level=1).first).to_contain_text("Edit module 2")

    # The live preview follows the typing, and so does the word count; nothing is saved yet.
    body = page.get_by_label("Text (Markdown)")
    words_before = int(page.locator("#ed-word-count").get_attribute("data-words"))
    body.fill(body.input_value() + "\n\n" + ADDED)
    preview = page.locator("#ed-preview")
    expect(preview.locator(".prose")).to_contain_text(ADDED)
    count = page.locator("#ed-word-count .word-count-number")
    expect(count).to_have_text(f"{words_before + len(ADDED.split()):,}")
    check_accessible(page, "module-editor-live-preview")
    learner_page.reload()
    expect(learner_page.locator(".prose")).not_to_contain_text(ADDED)

    # Publish: the learner's next page has the change, and the learner part-way through carries on.
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Published as revision 2")
    learner_page.reload()
    expect(learner_page.locator(".prose")).to_contain_text(ADDED)
    beat = learner_page.evaluate(
        """() => { const a = document.querySelector('[data-heartbeat-url]');
             return fetch(a.dataset.heartbeatUrl, {method: 'POST', headers: {'X-CSRFToken': a.dataset.csrf}})
               .then(r => r.status); }"""
    )
    assert beat == 200
    learner_page.get_by_role("button", name=re.compile("I have finished reading")).click()
    expect(learner_page).to_have_url(re.compile(r"/quizzes/dissociation-quiz$"))

    # The history compares revision 1 with the published revision 2, then restores revision 1.
    page.get_by_role("link", name="Revision history").click()
    expect(page.get_by_role("heading", name="Revision 1 → revision 2")).to_be_visible()
    expect(page.locator(".diff-table").first).to_contain_text(ADDED)
    check_accessible(page, "module-history-diff")
    page.get_by_role("button", name="Restore as draft revision 1").click()
    expect(page.locator(".flash-success")).to_contain_text("Revision 1 is now the draft; publish it to make it live")
    expect(page.get_by_label("Text (Markdown)")).not_to_have_value(re.compile(re.escape(ADDED)))
    learner_page.goto(LEARNER)
    expect(learner_page.locator(".prose")).to_contain_text(ADDED)  # a restored draft changes nothing for learners
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Published as revision 3")
    learner_page.goto(LEARNER)
    expect(learner_page.locator(".prose")).not_to_contain_text(ADDED)


def test_a_second_instructors_stale_save_is_refused_with_both_versions_shown(browser, base_url, live_app):  # type: ignore[no-untyped-def]
    pages = []
    for name, role in (("Ira Instructor, PhD", Role.INSTRUCTOR), ("Ada Admin", Role.ADMIN)):
        page = signed_in(browser, base_url, *staff(live_app, name, role))
        page.goto(EDITOR)
        pages.append(page)
    first, second = pages
    first.get_by_role("textbox", name="Summary").fill("The first instructor's summary.")
    first.get_by_role("button", name="Save draft").click()
    expect(first.locator(".flash-success")).to_contain_text("Draft saved")

    second.get_by_role("textbox", name="Summary").fill("The second instructor's summary.")
    second.get_by_role("button", name="Save draft").click()
    problem = second.locator(".editor-problem")
    expect(problem).to_contain_text("Someone else saved this draft")
    expect(problem.locator(".diff-table")).to_contain_text("The first instructor's summary.")
    expect(second.get_by_role("textbox", name="Summary")).to_have_value("The second instructor's summary.")
    expect(second).to_have_title(re.compile("^Error: "))
    check_accessible(second, "module-editor-stale-save")

    # Clean up: the first instructor discards the draft, so module 2 reads as shipped for other tests.
    first.goto(EDITOR)
    first.get_by_role("button", name="Discard draft").click()
    expect(first.locator(".flash-success")).to_contain_text("Draft discarded")
    for page in pages:
        page.context.close()


def test_markdown_payloads_stay_inert_in_the_live_preview(instructor_page):  # type: ignore[no-untyped-def]
    page = instructor_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(EDITOR)
    body = page.get_by_label("Text (Markdown)")
    payloads = (
        "<script>alert('script')</script>\n\n<img src=x onerror=alert('onerror')>\n\n"
        "[link](javascript:alert('href'))\n\n<iframe src=\"https://example.com\"></iframe>\n\n"
        "<style>body{display:none}</style>\n\n[data](data:text/html,<script>alert(1)</script>)"
    )
    body.fill(body.input_value() + "\n\n" + payloads)
    prose = page.locator("#ed-preview .prose")
    expect(prose).to_contain_text("<script>alert('script')</script>")  # shown as text
    assert prose.locator("script, iframe, style, img[onerror]").count() == 0
    hrefs = prose.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href') || '')")
    assert not [h for h in hrefs if h.lower().startswith(("javascript:", "data:"))]
    page.wait_for_timeout(300)  # give any handler that slipped through the time to run
    assert dialogs == []


def test_a_module_downloaded_edited_offline_and_loaded_back(instructor_page, tmp_path):  # type: ignore[no-untyped-def]
    page = instructor_page
    page.goto(EDITOR)
    page.get_by_text("Work on this module as a file").click()
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download revision \\d+ as 02-dissociation.md")).click()
    assert download.value.suggested_filename == "02-dissociation.md"
    text = download.value.path().read_text("utf-8")
    edited = tmp_path / "02-dissociation.md"
    edited.write_text(text.rstrip("\n") + "\n\n" + ADDED + "\n", "utf-8")

    # Changes typed in the form and not saved: loading a file asks first, and "Cancel" keeps them.
    body = page.get_by_label("Text (Markdown)")
    body.fill(body.input_value() + "\n\nTyped, not saved.")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_label("Module file (.md)").set_input_files(str(edited))
    page.get_by_role("button", name="Load the file into the editor").click()
    assert asked and "not saved" in asked[0]
    expect(body).to_have_value(re.compile("Typed, not saved."))

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Load the file into the editor").click()
    expect(
        page.get_by_role("heading", name="02-dissociation.md is in the form below: nothing is saved yet")
    ).to_be_visible()
    expect(page.locator(".loaded-file .diff")).to_contain_text(ADDED)
    expect(page.get_by_label("Text (Markdown)")).to_have_value(re.compile(re.escape(ADDED)))
    expect(page.get_by_label("Text (Markdown)")).not_to_have_value(re.compile("Typed, not saved."))
    check_accessible(page, "module-editor-file-loaded")


PAGES = {
    "authoring-workspace-instructor": "/author/",
    "module-editor-instructor": f"/author/courses/{COURSE}/modules/pharmacology",
    "module-history-instructor": f"/author/courses/{COURSE}/modules/pharmacology/revisions",
}


@pytest.mark.parametrize("name", PAGES)
def test_the_module_pages_pass_axe_and_fit_a_phone(instructor_page, name):  # type: ignore[no-untyped-def]
    instructor_page.goto(PAGES[name])
    expect(instructor_page).to_have_url(re.compile(re.escape(PAGES[name]) + "$"))
    check_accessible(instructor_page, name)
