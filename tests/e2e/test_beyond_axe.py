"""Accessibility that axe cannot see, checked on the accessibility tree (aria snapshots, accessible names and
descriptions), focus, forced colours and the live announcements of a timed quiz."""

from __future__ import annotations

import io
import re

import pytest
from flask import Flask
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select, update

from kaptrain.cli import DEMO_PASSWORD
from kaptrain.quizzes.models import Attempt, AttemptStatus, QuizSettingsRevision, Vignette, VignetteRevision
from tests.e2e.helpers import COURSE, PASSWORD, answer_key, complete_requirements, enrol_and_acknowledge, log_in
from tests.e2e.test_walk import join, open_attempt_id, pass_modules, tick

pytestmark = pytest.mark.e2e

QUIZ = f"/courses/{COURSE}/quizzes/pharmacology-quiz"
FINAL = f"/courses/{COURSE}/quizzes/final-assessment"


def _db(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["kaptrain.db"].new_session()


def _share_a_case(app: Flask, attempt_id: int) -> None:
    """Make the attempt's first two questions refer to one of its bank's cases (the draw is random)."""
    session = _db(app)
    try:
        attempt = session.get(Attempt, attempt_id)
        case = session.scalars(
            select(Vignette).where(Vignette.quiz_id == attempt.quiz_id).order_by(Vignette.id)
        ).first()
        revision = session.get(VignetteRevision, case.published_revision_id)
        for item in attempt.items:
            item.vignette_revision_id = revision.id if item.position in (0, 1) else None
        session.commit()
    finally:
        session.close()


def test_a_case_is_a_heading_tied_to_each_of_its_questions(page, live_app):
    email = join(page, "Case Reader, LCSW")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    attempt_id = open_attempt_id(live_app, email)
    _share_a_case(live_app, attempt_id)
    page.reload()
    case = page.locator(".vignette-box").first
    title = case.get_by_role("heading", level=2)
    expect(title).to_have_text(re.compile("^Case: "))
    case_text = case.locator("p").inner_text()
    for n in (1, 2):
        group = page.get_by_role("group", name=re.compile(f"^Question {n} of 10"))
        expect(group).to_have_accessible_description(re.compile(re.escape(case_text[:60])))
    refers = page.locator("#question-2").get_by_role("link", name=title.inner_text())
    refers.click()
    assert page.evaluate("location.hash") == f"#{case.get_attribute('id')}"
    expect(case).to_be_in_viewport()


def test_a_refused_login_moves_focus_to_its_errors_and_says_so_in_the_title(page):
    page.goto("/login")
    page.get_by_label("Email").fill("nobody@example.org")
    page.get_by_label("Password").fill("wrong password entirely")
    page.get_by_role("button", name="Log in").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("That email and password do not match an account.")
    assert page.title() == "Error: Log in · kaptrain"
    page.get_by_label("Email").fill("learner@example.com")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert not page.title().startswith("Error")


def test_scrolling_tables_are_named_focusable_regions(page):
    join(page, "Table Reader, RN")
    enrol_and_acknowledge(page)
    regions = page.locator(".prose").get_by_role("region")
    expect(regions.first).to_have_accessible_name(re.compile(r"^Table 1: "))
    expect(regions.first).to_have_attribute("tabindex", "0")
    page.goto("/dashboard")
    table = page.get_by_role("region", name=re.compile("^Modules in "))
    table.focus()
    expect(table).to_be_focused()


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {image.getpixel((x, image.height // 2)) for x in range(2, image.width - 2)}


def test_progress_bars_stay_visible_in_forced_colours(page, live_app):
    email = join(page, "High Contrast, PsyD")
    enrol_and_acknowledge(page)
    pass_modules(live_app, email, 2)
    page.emulate_media(forced_colors="active")
    page.goto(f"/courses/{COURSE}")
    bar = page.get_by_role("progressbar", name=re.compile("^Course progress"))
    expect(bar).to_have_css("forced-color-adjust", "none")
    colours = _colours(bar.screenshot())
    assert len(colours) >= 2, "the filled part of the bar is not drawn in forced colours"


def test_progress_is_read_once(page, live_app):
    join(page, "Once Only, MD")
    enrol_and_acknowledge(page)
    page.goto(f"/courses/{COURSE}")
    tree = page.locator(".enrol-card .progress").aria_snapshot()
    assert tree.count("Course progress") == 1, tree
    assert tree.count(" steps") == 1, tree


def test_breadcrumb_separators_are_not_read(page):
    join(page, "Crumb Reader, LPC")
    enrol_and_acknowledge(page)
    tree = page.get_by_role("navigation", name="Breadcrumb").aria_snapshot()
    assert "›" not in tree, tree
    assert "My learning" in tree


def test_select_all_that_apply_is_read_once_per_question(page, live_app):
    join(page, "Instruction Reader, RN")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    for n in range(1, 11):
        name = page.get_by_role("group", name=re.compile(f"^Question {n} of 10")).evaluate(
            "el => el.querySelector('legend').textContent"
        )
        assert name.lower().count("select all that apply") <= 1, name
        assert name.lower().count("choose one answer") <= 1, name


def test_reviewed_questions_are_not_landmarks(page, live_app):
    email = join(page, "Landmark Counter, MSW")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    tick(page, answer_key(live_app, email, right=False))
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name=re.compile("Not passed"))).to_be_visible()
    expect(page.get_by_role("main").get_by_role("region")).to_have_count(1)  # the result banner only
    expect(page.get_by_role("heading", level=3)).to_have_count(10)


def test_item_analysis_is_a_table_not_progress_bars(page, live_app):
    log_in(page, "instructor@example.com", DEMO_PASSWORD, live_app)  # with the code staff must type
    page.goto(f"/instructor/courses/{COURSE}/quizzes/pharmacology-quiz/analysis")
    main = page.get_by_role("main")
    expect(main.get_by_role("progressbar")).to_have_count(0)
    expect(main.get_by_role("meter")).to_have_count(0)
    questions = main.get_by_role("table", name=re.compile("^Each question in the bank"))
    expect(questions).to_have_count(1)
    rows = questions.get_by_role("row")
    expect(questions.get_by_role("rowheader")).to_have_count(rows.count() - 1)
    expect(main.get_by_text(re.compile(r"\b1 attempts\b"))).to_have_count(0)


@pytest.fixture
def final_attempt(page, live_app):  # type: ignore[no-untyped-def]
    """A learner with every module passed, on an open attempt at the timed final assessment."""
    email = join(page, "Timed Learner, LPC")
    enrol_and_acknowledge(page)
    pass_modules(live_app, email, 6)
    page.clock.install()
    page.goto(FINAL)
    page.get_by_role("button", name="Start the quiz").click()
    # The attempt's page is loaded before the test acts on it: a reload while the start's redirect was still
    # arriving once failed in CI ("Not attached to an active page").
    expect(page).to_have_url(re.compile(r"/attempts/\d+$"))
    page.wait_for_load_state()
    return email, open_attempt_id(live_app, email)


def test_time_warnings_and_time_up_are_announced(page, live_app, final_attempt):
    _email, attempt_id = final_attempt
    session = _db(live_app)
    try:
        attempt = session.get(Attempt, attempt_id)
        attempt.deadline_at = (
            attempt.started_at.replace(microsecond=0) + (attempt.deadline_at - attempt.started_at) / 10
        )
        session.commit()  # 6 minutes from the start
    finally:
        session.close()
    page.reload()
    live = page.locator("#timer-alert")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_be_empty()
    # The bar with the time left also counts the questions answered, and stays in view while they scroll.
    questions = page.evaluate("new Set([...document.querySelectorAll('input[name^=\"q-\"]')].map(i => i.name)).size")
    expect(page.locator(".timer-bar .answered-count")).to_have_text(f" 0 of {questions} questions answered.")
    page.locator('input[name^="q-"]').first.check()
    expect(page.locator(".timer-bar .answered-count")).to_have_text(f" 1 of {questions} questions answered.")
    page.mouse.wheel(0, 3000)
    expect(page.locator("#timer")).to_be_in_viewport()
    page.clock.run_for(90_000)
    expect(live).to_have_text(re.compile("^Five minutes left to submit."))
    page.clock.run_for(4 * 60_000)
    expect(live).to_have_text(re.compile("^One minute left to submit."))
    page.clock.run_for(2 * 60_000)
    expect(live).to_have_text(re.compile("^Time is up."))
    expect(page.locator(".timer-left")).to_have_text("time is up")


def test_a_learner_asks_for_more_time_where_the_quiz_allows_it(page, live_app, final_attempt):
    _email, attempt_id = final_attempt
    expect(page.get_by_role("button", name=re.compile("I need more time"))).to_have_count(0)
    session = _db(live_app)
    try:
        settings_id = session.get(Attempt, attempt_id).settings_id
        session.execute(
            update(QuizSettingsRevision).where(QuizSettingsRevision.id == settings_id).values(allow_extension=True)
        )
        session.commit()
        before = session.get(Attempt, attempt_id).deadline_at
        session.commit()  # end the transaction: the app's requests need the write lock (SQLite)
        page.reload()
        expect(page.locator("#timer-help")).to_contain_text("If you need more time")
        page.get_by_role("button", name="I need more time (+10 minutes)").click()
        expect(page.get_by_role("status").filter(has_text="10 minutes were added")).to_be_visible()
        session.expire_all()
        after = session.get(Attempt, attempt_id)
        assert after.status == AttemptStatus.OPEN
        assert (after.deadline_at - before).total_seconds() == 600
        session.commit()
    finally:
        session.execute(
            update(QuizSettingsRevision).where(QuizSettingsRevision.id == settings_id).values(allow_extension=False)
        )
        session.commit()
        session.close()


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/Denver"])
def test_registration_preselects_the_browsers_zone_even_under_its_old_name(browser, base_url, zone):
    # Chromium reports Asia/Kolkata by its old name, Asia/Calcutta, which the list no longer offers.
    context = browser.new_context(base_url=base_url, timezone_id=zone)
    try:
        page = context.new_page()
        page.goto("/register")
        expect(page.locator("select[data-detect-time-zone]")).to_have_value(zone)
    finally:
        context.close()


def test_reading_time_counts_a_still_reader_but_not_a_page_left_open(page, live_app):
    """Heartbeats go out while the reader has shown a sign of life within the idle window (3 minutes: a dense
    paragraph needs no scroll), and stop once the page has been left alone longer than that."""
    join(page, "Still Reader")
    enrol_and_acknowledge(page)
    # Count the page's heartbeats as it sends them (answered at once, without the network).
    page.add_init_script(
        """window.__beats = 0; const send = window.fetch;
           window.fetch = (url, options) => String(url).endsWith('/heartbeat')
             ? (window.__beats += 1, Promise.resolve(new Response('{}'))) : send(url, options);"""
    )
    page.clock.install()
    page.goto(f"/courses/{COURSE}/modules/pharmacology")

    def beats() -> int:
        return int(page.evaluate("window.__beats"))

    page.clock.run_for(155_000)  # two and a half minutes from opening it, without moving: still reading
    assert beats() == 5
    page.clock.run_for(5 * 60_000)  # away from the desk: the beat at 180 s is at most the window's last
    away = beats()
    assert away <= 6
    page.clock.run_for(5 * 60_000)
    assert beats() == away  # nothing more is sent
    page.keyboard.press("PageDown")  # back at the desk
    page.clock.run_for(31_000)
    assert beats() == away + 1


def test_the_reading_time_shown_grows_with_each_heartbeat(page, live_app):
    """The walk-through: the time read was shown only as the page was loaded, so a reader could not see it count."""
    join(page, "Watching Reader")
    enrol_and_acknowledge(page)
    page.add_init_script(
        """const send = window.fetch;
           window.fetch = (url, options) => String(url).endsWith('/heartbeat')
             ? Promise.resolve(new Response('{"seat_seconds": 421}', {headers: {'Content-Type': 'application/json'}}))
             : send(url, options);"""
    )
    page.clock.install()
    page.goto(f"/courses/{COURSE}/modules/pharmacology")
    shown = page.locator("[data-seat-minutes]")
    expect(shown).to_have_text("0 min")
    page.clock.run_for(31_000)
    expect(shown).to_have_text("7 min")


def test_enter_on_an_answer_chooses_it_and_does_not_submit_the_attempt(page, live_app):
    join(page, "Enter Presser, RN")
    enrol_and_acknowledge(page)
    page.goto(QUIZ)
    page.get_by_role("button", name="Start the quiz").click()
    attempt_url = page.url
    first = page.locator('.question input[type="radio"]').first
    first.focus()
    page.keyboard.press("Enter")
    expect(first).to_be_checked()
    expect(page.locator("#save-status")).to_have_text("Your answers are saved as you choose them.")
    assert page.url == attempt_url
    expect(page.get_by_role("button", name="Submit answers")).to_be_visible()  # still answering, not graded
    box = page.locator('.question input[type="checkbox"]').first
    if box.count():
        box.focus()
        page.keyboard.press("Enter")
        expect(box).to_be_checked()
        page.keyboard.press("Enter")
        expect(box).not_to_be_checked()
        assert page.url == attempt_url


def test_an_evaluation_sent_after_the_login_ended_comes_back_as_it_was_left(page, live_app):
    """The walk-through: ratings and a typed comment were lost when the login had ended before the form was sent
    (quiz answers, saved as chosen, were kept)."""
    email = join(page, "Evaluating Later, LCSW")
    enrol_and_acknowledge(page)
    complete_requirements(live_app, email)
    page.goto(f"/courses/{COURSE}/evaluation")
    page.get_by_role("group", name="Quality of the material").get_by_label("4", exact=True).check()
    page.get_by_label("Other comments (optional)").fill("The dosing module was the most useful.")
    balance = page.get_by_role("group", name=re.compile(r"^Was the content evidence-based and balanced"))
    balance.get_by_label("Partly").check()
    page.get_by_label("If partly or not, what was unbalanced or unclear?").fill("Trial sizes were not given.")
    hours_spent = page.get_by_label(re.compile(r"^About how many hours did you spend on this course"))
    hours_spent.fill("9.75")
    page.context.clear_cookies()  # the login ends while the form is open
    page.get_by_role("button", name="Submit the evaluation").click()
    expect(page.get_by_text("You were logged out, so that form was not sent")).to_be_visible()
    page.get_by_label("Email").fill(email)  # the login page, which leads back to the form
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Course evaluation")
    expect(page.get_by_role("group", name="Quality of the material").get_by_label("4", exact=True)).to_be_checked()
    expect(page.get_by_label("Other comments (optional)")).to_have_value("The dosing module was the most useful.")
    expect(balance.get_by_label("Partly")).to_be_checked()
    expect(page.get_by_label("If partly or not, what was unbalanced or unclear?")).to_have_value(
        "Trial sizes were not given."
    )
    expect(hours_spent).to_have_value("9.75")
    expect(page.get_by_role("status").filter(has_text="Your answers from before were filled in again")).to_be_visible()

    # Logging out on purpose forgets the draft: nothing is left in the tab for the next person.
    page.get_by_label("Other comments (optional)").fill("A second thought.")
    page.get_by_role("button", name="Log out").click()
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('kaptrain-draft:')).length") == 0
