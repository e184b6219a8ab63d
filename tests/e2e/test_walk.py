"""A newcomer's walk through the course in a real browser: the way to the end, answers kept with and without
script, blank questions named, the module page on a phone, reviews that link back to the text, citations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.e2e.helpers import COURSE, PASSWORD, answer_key, enrol_and_acknowledge, log_in, register
from tests.factories import correct_answers

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 812}
QUIZ = f"/courses/{COURSE}/quizzes/pharmacology-quiz"


@contextmanager
def learner_session(app: Flask, email: str) -> Iterator[tuple[Session, User, completion.CourseRecord]]:
    """The live database as this learner, committed at the end."""
    with app.app_context():
        session = app.extensions["kaptrain.db"].new_session()
        try:
            user = session.scalars(select(User).where(User.email == email)).one()
            course = courses.get_course(session, COURSE)
            assert course is not None
            record = completion.course_record(
                session, user.id, course, courses.get_enrolment(session, user.id, course.id)
            )
            yield session, user, record
            session.commit()
        finally:
            session.close()


def join(page, name: str) -> str:  # type: ignore[no-untyped-def]
    """Register through the form and be logged in (registration may or may not log the new account in)."""
    email = register(page, name)
    if page.get_by_role("button", name="Log out").count() == 0:
        log_in(page, email, PASSWORD)
    return email


def pass_modules(app: Flask, email: str, count: int) -> None:
    """Open the first `count` modules and pass their quizzes through the services (the browser does the rest)."""
    with learner_session(app, email) as (session, user, record):
        for status in record.modules[:count]:
            status.progress = courses.open_module(session, user.id, status.module)
            assert status.quiz is not None
            gate = completion.quiz_gate(
                completion.course_record(session, user.id, record.course, record.enrolment), status.quiz
            )
            attempt = quizzes.start_attempt(session, user.id, status.quiz, gate)
            quizzes.submit_attempt(session, attempt, correct_answers(attempt))


def tick(page, key: dict[int, list[int]]) -> None:  # type: ignore[no-untyped-def]
    """Choose these shown positions for these items."""
    for item_id, positions in key.items():
        for pos in positions:
            page.locator(f'input[name="q-{item_id}"][value="{pos}"]').check()


def ticked(page) -> dict[int, list[int]]:  # type: ignore[no-untyped-def]
    """What the page shows as chosen: item id -> shown positions."""
    pairs = page.eval_on_selector_all(
        "input[name^='q-']:checked", "els => els.map(e => [parseInt(e.name.slice(2)), parseInt(e.value)])"
    )
    out: dict[int, list[int]] = {}
    for item_id, pos in pairs:
        out.setdefault(item_id, []).append(pos)
    return {k: sorted(v) for k, v in out.items()}


def open_attempt_id(app: Flask, email: str) -> int:
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = session.scalars(select(User).where(User.email == email)).one()
        return session.scalars(
            select(Attempt.id).where(Attempt.user_id == user.id, Attempt.status == AttemptStatus.OPEN)
        ).one()
    finally:
        session.close()


def test_the_way_to_the_end_is_visible_and_the_last_module_leads_to_the_final(page, live_app):
    email = join(page, "Walker Newcomer, LCSW")
    enrol_and_acknowledge(page)
    page.goto(f"/courses/{COURSE}")
    outline = page.get_by_role("region", name="Course outline").get_by_role("list").first
    for step in ("Final assessment: KAP Foundations for Clinicians", "Course evaluation", "Attestation and hours"):
        expect(outline.get_by_role("listitem").filter(has_text=step)).to_be_visible()
    expect(outline.get_by_role("link", name=re.compile("^Final assessment"))).to_have_count(0)  # locked for now

    pass_modules(live_app, email, 5)
    page.goto(f"/courses/{COURSE}/modules/screening-safety")
    expect(
        page.get_by_text(re.compile(r"Next: the Final assessment.*opens when every module is complete"))
    ).to_be_visible()
    page.get_by_role("button", name="I have finished reading: take the quiz").click()
    page.get_by_role("button", name="Start the quiz").click()
    tick(page, answer_key(live_app, email))
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name=re.compile(r"Passed: 100%"))).to_be_visible()
    page.get_by_role("link", name=re.compile("^Continue to the Final assessment")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Final assessment: KAP Foundations for Clinicians")

    page.goto(f"/courses/{COURSE}")
    outline = page.get_by_role("region", name="Course outline")
    outline.get_by_role("link", name=re.compile("^Final assessment")).click()
    expect(page.get_by_role("button", name="Start the quiz")).to_be_visible()


def test_a_second_submit_of_a_form_is_ignored_while_the_first_is_answered(page, live_app):
    """A walk-through double-clicked "Approve and issue": two requests, and the second's refusal shown as if the
    approval had failed. The page's script now lets a form go once, then ignores it for a few seconds (a form that
    stays on the page, a download, takes clicks again after that)."""
    join(page, "Double Clicker, PsyD")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    form = page.get_by_role("button", name="Start the quiz").evaluate_handle("button => button.form")
    # Submit events as a click fires them, without the navigation (a script's event submits nothing itself).
    prevented = form.evaluate(
        """form => [1, 2].map(() => {
            const event = new Event("submit", {bubbles: true, cancelable: true});
            form.dispatchEvent(event);
            return event.defaultPrevented;
        })"""
    )
    assert prevented == [False, True]
    form.evaluate("form => form.removeAttribute('data-sent-at')")  # as a page brought back by Back does
    page.get_by_role("button", name="Start the quiz").click()  # and a first click goes through
    expect(page.get_by_role("button", name="Submit answers")).to_be_visible()


def test_answers_are_saved_as_the_learner_goes_and_come_back(page, live_app):
    email = join(page, "Saving Clinician, RN")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    everything = answer_key(live_app, email)
    key = dict(list(everything.items())[:4])
    tick(page, key)
    expect(page.locator("#save-status")).to_have_text("Your answers are saved as you choose them.")
    # An untimed quiz counts what is answered above its buttons too (a walk-through missed it there).
    expect(page.locator("form .answered-count")).to_have_text(f" 4 of {len(everything)} questions answered.")
    page.wait_for_load_state("networkidle")
    page.goto("/dashboard")  # leave without submitting, and come back
    page.goto(QUIZ)
    page.get_by_role("button", name="Return to your open attempt").click()
    assert ticked(page) == {k: sorted(v) for k, v in key.items()}


def test_a_second_tab_on_the_same_attempt_is_told_instead_of_undoing_the_first(page, live_app):
    """The walk-through: the stale tab's save put back what the other tab had changed, and both said "saved"."""
    email = join(page, "Two Tabs, LPC")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    other = page.context.new_page()  # the same attempt in a second tab
    other.goto(page.url)
    key = list(answer_key(live_app, email).items())
    tick(other, dict(key[1:2]))
    expect(other.locator("#save-status")).to_have_text("Your answers are saved as you choose them.")
    tick(page, dict(key[:1]))
    expect(page.locator("#save-status")).to_contain_text("changed in another window or tab")
    tick(page, dict(key[2:3]))  # no more saves from the stale tab
    third = page.context.new_page()
    third.goto(page.url)
    assert ticked(third) == {key[1][0]: sorted(key[1][1])}  # the second tab's answer stands, alone
    for extra in (other, third):
        extra.close()


def test_save_answers_pressed_while_a_choice_is_being_saved_is_not_taken_for_another_tab(page, live_app):
    """The second walk-through: a choice's save still on its way, then "Save answers" at once, and the page said the
    answers had been changed in another tab: the button sent the fingerprint from before the first save returned."""
    email = join(page, "Quick Clicker")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    key = list(answer_key(live_app, email).items())
    released = []

    def slow_save(route):  # type: ignore[no-untyped-def]
        if route.request.headers.get("accept") == "application/json" and not released:
            answer = route.fetch()  # the script's save reaches the server and is saved ...
            page.wait_for_timeout(800)  # ... but its answer is slow to come back
            released.append(True)
            route.fulfill(response=answer)
        else:
            route.continue_()

    page.route("**/save", slow_save)
    tick(page, dict(key[:1]))
    page.get_by_role("button", name="Save answers").click()
    expect(page.get_by_text("Your answers are saved. You can leave this page and come back to them.")).to_be_visible()
    assert "changed in another window or tab" not in page.content()
    page.unroute("**/save")


def test_answers_are_saved_without_javascript_by_the_save_button(browser, base_url, live_app):
    context = browser.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        email = join(page, "No Script, PsyD")
        enrol_and_acknowledge(page)
        page.goto(QUIZ)
        page.get_by_role("button", name="Start the quiz").click()
        key = dict(list(answer_key(live_app, email).items())[:3])
        tick(page, key)
        page.get_by_role("button", name="Save answers").click()
        expect(
            page.get_by_text("Your answers are saved. You can leave this page and come back to them.")
        ).to_be_visible()
        page.goto("/dashboard")
        page.goto(f"/attempts/{open_attempt_id(live_app, email)}")
        assert ticked(page) == {k: sorted(v) for k, v in key.items()}
    finally:
        context.close()


def test_submitting_with_blanks_names_them_keeps_the_rest_and_takes_focus(page, live_app):
    email = join(page, "Blank Answers, LPC")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    key = answer_key(live_app, email)
    blanks = [3, 7]  # questions as numbered on the page
    items = list(key)
    given = {item: key[item] for n, item in enumerate(items, start=1) if n not in blanks}
    tick(page, given)
    page.get_by_role("button", name="Submit answers").click()

    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    assert page.title().startswith("Error: ")
    expect(summary.get_by_role("link")).to_have_text(["Question 3", "Question 7"])
    expect(summary).not_to_contain_text("Unanswered")
    for n in blanks:
        group = page.locator(f"#question-{n} fieldset")
        expect(group).to_have_attribute("aria-invalid", "true")
        expect(group).to_have_accessible_description(re.compile("Not answered yet"))
    expect(page.locator("#question-1 fieldset")).not_to_have_attribute("aria-invalid", "true")
    assert ticked(page) == {k: sorted(v) for k, v in given.items()}

    summary.get_by_role("link", name="Question 7").click()
    assert page.evaluate("location.hash") == "#question-7"
    tick(page, {item: key[item] for n, item in enumerate(items, start=1) if n in blanks})
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name=re.compile(r"Passed: 100%"))).to_be_visible()


def test_the_review_links_each_missed_question_to_its_section(page, live_app):
    email = join(page, "Review Reader, MSW")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    tick(page, answer_key(live_app, email, right=False))
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name=re.compile("Not passed"))).to_be_visible()
    chosen = page.locator(".review-item .choice-tag")
    expect(chosen).to_have_count(page.locator(".review-item").count())
    expect(chosen.first).to_have_text("Your answer")
    expect(page.get_by_text("Case: Case:")).to_have_count(0)
    expect(page.locator(".review-item > h3").first).to_have_css("margin-top", "0px")  # no empty band on top
    link = page.locator(".reread a").first
    section = link.inner_text()
    link.click()
    anchor = page.evaluate("location.hash").lstrip("#")
    assert page.url.split("#")[0].endswith(f"/courses/{COURSE}/modules/pharmacology") and anchor
    heading = page.locator(f"[id='{anchor}']")
    expect(heading).to_have_text(section)
    expect(heading).to_be_in_viewport()


def test_a_module_on_a_phone_shows_the_text_first_and_the_outline_folded(browser, base_url):
    context = browser.new_context(base_url=base_url, viewport=PHONE)
    page = context.new_page()
    try:
        join(page, "Phone Reader, MD")
        enrol_and_acknowledge(page)
        page.goto(f"/courses/{COURSE}/modules/pharmacology")
        expect(page.get_by_role("heading", level=1)).to_be_in_viewport()
        expect(page.get_by_role("heading", name="Learning objectives")).to_be_in_viewport()
        outline = page.locator("details.outline-narrow")
        expect(outline).not_to_have_attribute("open", "")
        expect(outline.get_by_role("link", name=re.compile("^Module 1"))).to_be_hidden()
        expect(page.locator(".outline-wide")).to_be_hidden()
        outline.locator("summary").click()
        expect(outline.get_by_role("link", name=re.compile("^Module 1"))).to_be_visible()

        region = page.get_by_role("region", name=re.compile(r"^Table 1: "))
        region.focus()
        expect(region).to_be_focused()
        sizes = region.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert sizes[0] > sizes[1], "the table fits, so this check proves nothing"
        page.keyboard.press("ArrowRight")
        page.wait_for_function("el => el.scrollLeft > 0", arg=region.element_handle())
        assert "gradient" in region.evaluate("el => getComputedStyle(el).backgroundImage")  # the scroll cue
        cell = region.locator("td").first
        assert cell.evaluate("el => [getComputedStyle(el).overflowWrap, getComputedStyle(el).wordBreak]") == [
            "normal",
            "normal",
        ]
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0

        # The dashboard's short table of modules fits the phone: it needed a sideways scroll for its last column.
        page.goto("/dashboard")
        modules = page.get_by_role("region", name=re.compile("^Modules in "))
        assert modules.evaluate("el => el.scrollWidth - el.clientWidth") <= 0
    finally:
        context.close()


def test_references_are_citations_with_linked_titles_and_doi_links(page):
    join(page, "Citation Reader, PhD")
    enrol_and_acknowledge(page)
    references = page.get_by_role("region", name="References").get_by_role("listitem")
    first = references.first
    expect(first.get_by_role("link").first).not_to_have_text("Source")
    expect(first.get_by_role("link", name=re.compile(r"^https:\/\/doi\.org\/10\."))).to_have_count(1)
    expect(page.get_by_role("region", name="References").get_by_role("link", name="Source")).to_have_count(0)


def test_every_page_has_a_favicon_and_no_missing_files(page):
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto("/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(icon).ok
    assert page.request.get("/favicon.ico").ok
    page.wait_for_load_state("networkidle")
    assert missing == []


def test_navigation_links_share_one_style_and_the_create_account_button_has_padding(page):
    page.goto("/")
    button = page.locator(".site-nav").get_by_role("link", name="Create account")
    padding = button.evaluate("el => parseFloat(getComputedStyle(el).paddingLeft)")
    assert padding >= 8
    login = page.locator(".site-nav").get_by_role("link", name="Log in")
    courses_link = page.locator(".site-nav").get_by_role("link", name="Courses")
    style = "el => [getComputedStyle(el).textDecorationLine, getComputedStyle(el).fontWeight]"
    assert login.evaluate(style) == courses_link.evaluate(style)
    join(page, "Style Checker, RN")
    logout = page.locator(".site-nav").get_by_role("button", name="Log out")
    account = page.locator(".site-nav").get_by_role("link", name="Account")
    full = (
        "el => [getComputedStyle(el).textDecorationLine, getComputedStyle(el).fontWeight, getComputedStyle(el).color]"
    )
    assert logout.evaluate(full) == account.evaluate(full)
