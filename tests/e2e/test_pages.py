"""Every page type: zero axe-core violations (WCAG 2.2 AA), no horizontal scrolling at 375 px, screenshots.

The list of pages is checked against the app's routes, so a new page without a check here fails."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from kaptrain.accounts import tokens
from kaptrain.accounts.models import TokenPurpose, User
from kaptrain.certificates.models import Certificate
from kaptrain.cli import DEMO_PASSWORD
from kaptrain.quizzes.models import Quiz
from kaptrain.quizzes.services import grant_accommodation
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import (
    PASSWORD,
    answer_key,
    attest,
    complete_requirements,
    confirm_email,
    enrol_and_acknowledge,
    log_in,
    register,
    submit_evaluation,
    totp_secret,
)

pytestmark = pytest.mark.e2e

AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}
}
PHONE = {"width": 375, "height": 812}

# Routes that are not pages a person looks at (actions, downloads, assets).
NOT_PAGES = {
    "static",
    "favicon",
    "courses.heartbeat",
    "quizzes.item_analysis_csv",
    "admin.completions_csv",
    "instructor.course_evaluations_csv",
    "instructor.learners_csv",
    "admin.audit_csv",
    "certificates.certificate_pdf",
    "certificates.certificate_json",
    "certificates.transcript_pdf",
    "certificates.api_certificate",
    "certificates.verify_credential",
    "certificates.status_list",
    "certificates.issuer_keys",
    "certificates.issuer_dids",
    "uploads.serve",
    "authoring.preview",  # the module editor's live preview: an HTML fragment its script fetches
    "quizzes.instructor_home",  # a redirect to the instructor's quiz list, which has its case
    "admin.home",  # a redirect to the people list, which has its case
    "admin.certificate_pdf",  # a PDF download
    "authoring.module_file",  # a module's file download (its upload answers with the editor, which has its case)
    "authoring.bank_file",  # a bank's file download
}


AUTHOR_BANK = "/author/courses/kap-foundations/quizzes/pharmacology-quiz"


@dataclass(frozen=True)
class PageCase:
    """A page type to check: who looks at it and how to reach it."""

    name: str
    endpoint: str
    who: str  # anonymous | learner | graduate | evaluated | certified | instructor | admin
    url: str = ""


CASES = [
    PageCase("home", "courses.home", "anonymous", "/"),
    PageCase("register", "accounts.register", "anonymous", "/register"),
    PageCase("login", "accounts.login", "anonymous", "/login"),
    PageCase("catalogue", "courses.catalogue", "anonymous", "/courses"),
    PageCase("records-policy", "courses.records_policy", "anonymous", "/records-and-privacy"),
    PageCase("course", "courses.course", "learner", "/courses/kap-foundations"),
    PageCase("disclosures", "courses.disclosures", "learner", "/courses/kap-foundations/disclosures"),
    PageCase("module", "courses.module", "learner", "/courses/kap-foundations/modules/pharmacology"),
    PageCase("module-locked", "courses.module", "learner", "/courses/kap-foundations/modules/dosing"),
    PageCase("dashboard", "courses.dashboard", "learner", "/dashboard"),
    PageCase("dashboard-certificate", "courses.dashboard", "certified", "/dashboard"),
    PageCase("evaluation-locked", "certificates.evaluation", "learner", "/courses/kap-foundations/evaluation"),
    PageCase("evaluation", "certificates.evaluation", "graduate", "/courses/kap-foundations/evaluation"),
    PageCase("evaluation-done", "certificates.evaluation", "certified", "/courses/kap-foundations/evaluation"),
    PageCase("attestation-locked", "certificates.attestation", "graduate", "/courses/kap-foundations/attestation"),
    PageCase("attestation", "certificates.attestation", "evaluated", "/courses/kap-foundations/attestation"),
    PageCase("transcript", "certificates.transcript", "certified", "/courses/kap-foundations/transcript"),
    PageCase("verify", "certificates.verify", "anonymous"),
    PageCase("check-file", "certificates.check", "anonymous", "/verify"),
    # a certificate number typed into the lookup: the page again, with the field's error
    PageCase("find-by-number", "certificates.find", "anonymous", "/verify/find?code=KAP-2026-000001"),
    # a number and surname that match no certificate: the verdict
    PageCase("find-not-found", "certificates.find", "anonymous", "/verify/find?code=KAP-2026-999999&surname=Nobody"),
    PageCase("account", "accounts.profile", "learner", "/account"),
    PageCase("quiz", "quizzes.quiz", "learner", "/courses/kap-foundations/quizzes/pharmacology-quiz"),
    PageCase("attempt", "quizzes.attempt", "learner"),
    PageCase("attempt-blanks", "quizzes.attempt", "learner"),  # refused for blank questions: summary and marks
    PageCase("result", "quizzes.result", "learner"),
    PageCase("not-found", "", "anonymous", "/no-such-page"),
    PageCase("instructor-quizzes", "quizzes.instructor_quizzes", "instructor", "/instructor/quizzes"),
    PageCase(
        "item-analysis",
        "quizzes.item_analysis",
        "instructor",
        "/instructor/courses/kap-foundations/quizzes/pharmacology-quiz/analysis",
    ),
    PageCase("accommodations", "admin.accommodations", "admin", "/admin/accommodations"),
    PageCase("accommodation", "admin.accommodation", "admin"),
    PageCase("audit-log", "admin.audit_log", "admin", "/admin/audit?action=certificate"),
    PageCase("audit-log-refused", "admin.audit_log", "admin", "/admin/audit?date_from=2026-02-01&date_to=2026-01-01"),
    PageCase("settings", "admin.site_settings", "admin", "/admin/settings"),
    PageCase("people", "admin.people", "admin", "/admin/people?q=Sam"),
    PageCase("person", "admin.person", "admin"),
    PageCase("person-new", "admin.person_new", "admin", "/admin/people/new"),
    PageCase("person-close", "admin.person_close", "admin"),
    PageCase("person-profile", "admin.person_profile", "admin"),
    PageCase("result-as-admin", "quizzes.result", "admin"),
    PageCase("certificates", "admin.certificates", "admin", "/admin/certificates"),
    PageCase("certificate", "admin.certificate", "admin"),
    PageCase("reports", "admin.reports", "admin", "/admin/reports?date_from=2000-01-01"),
    PageCase("learners", "instructor.learners", "instructor", "/instructor/courses/kap-foundations/learners"),
    PageCase("learner-record", "instructor.learner", "instructor"),
    PageCase(
        "evaluations", "instructor.course_evaluations", "instructor", "/instructor/courses/kap-foundations/evaluations"
    ),
    PageCase("uploads", "authoring.uploads_page", "instructor", "/author/uploads"),
    PageCase("authoring-workspace", "authoring.workspace", "instructor", "/author/"),
    PageCase(
        "module-editor", "authoring.module_edit", "instructor", "/author/courses/kap-foundations/modules/pharmacology"
    ),
    PageCase(
        "module-history",
        "authoring.module_history",
        "instructor",
        "/author/courses/kap-foundations/modules/pharmacology/revisions",
    ),
    PageCase(
        "retire-module",
        "authoring.module_retire",
        "instructor",
        "/author/courses/kap-foundations/modules/pharmacology/retire",
    ),
    # The question-bank editor (kaptrain/authoring/bank_views.py).
    PageCase("authoring-bank", "authoring.bank", "instructor", AUTHOR_BANK),
    PageCase("authoring-question", "authoring.question", "instructor", f"{AUTHOR_BANK}/questions/pharm-01"),
    PageCase(
        "authoring-question-final",
        "authoring.question",
        "instructor",
        "/author/courses/kap-foundations/quizzes/final-assessment/questions/final-pharm-01",
    ),
    PageCase(
        "authoring-question-history",
        "authoring.question_history",
        "instructor",
        f"{AUTHOR_BANK}/questions/pharm-01/revisions",
    ),
    PageCase(
        "authoring-question-preview",
        "authoring.question_preview",
        "instructor",
        f"{AUTHOR_BANK}/questions/pharm-06/preview?answer=a",
    ),
    PageCase("authoring-case", "authoring.case", "instructor", f"{AUTHOR_BANK}/cases/case-rosa"),
    PageCase(
        "authoring-case-history", "authoring.case_history", "instructor", f"{AUTHOR_BANK}/cases/case-rosa/revisions"
    ),
    PageCase("authoring-rules", "authoring.quiz_settings", "instructor", f"{AUTHOR_BANK}/settings"),
    PageCase("authoring-rules-history", "authoring.rules_history", "instructor", f"{AUTHOR_BANK}/settings/revisions"),
    PageCase("forgot-password", "accounts.forgot_password", "anonymous", "/password/forgot"),
    PageCase("reset-sent", "accounts.reset_sent", "anonymous", "/password/forgot/sent"),
    PageCase("registered", "accounts.registered", "anonymous", "/register/check-your-email"),
    PageCase("reset-password", "accounts.reset_password", "anonymous"),
    PageCase("reset-link-problem", "accounts.reset_password", "anonymous", "/password/reset/not-a-link-we-sent"),
    PageCase("confirm-email", "accounts.confirm_email", "learner"),
    PageCase("login-code", "accounts.login_code", "password-only", "/login/code"),
    PageCase("two-factor-setup", "accounts.two_factor", "learner", "/account/two-factor"),
    PageCase("close-account", "accounts.close_account", "learner", "/account/close"),
    PageCase("two-factor-on", "accounts.two_factor", "admin", "/account/two-factor"),
]
# Endpoints reached only by POST (or as a redirect) get no page of their own.
POST_ONLY = {
    "certificates.request_correction",  # answers with the dashboard, which has its case
    "admin.decline_correction",  # answers with the certificates console, or the certificate's page on a mistake
    "accounts.logout",
    "accounts.logout_everywhere",
    "accounts.download_data",
    "accounts.change_password",
    "accounts.change_email",
    "accounts.resend_confirmation",
    "accounts.recovery_codes",  # its page answers the POST; checked by test_two_factor_enrolment_in_the_browser
    "accounts.disable_two_factor",
    "admin.person_reset_two_factor",
    "admin.person_send_confirmation",  # its form is on the person's page
    "admin.person_send_reset",  # its form is on the person's page
    "admin.person_enrol",  # its form is on the person's page, checked there
    "courses.enrol",
    "courses.mark_read",
    "quizzes.start",
    "quizzes.submit",
    "quizzes.save",
    "quizzes.extend",
    "admin.withdraw_accommodation",
    "admin.person_role",
    "admin.person_deactivate",
    "admin.person_reactivate",
    "admin.approve_certificates",
    "admin.issue_certificate",
    "admin.revoke_certificate",
    "admin.reissue_certificate",
    "admin.approve_certificate",
    "admin.return_claim",
    "authoring.add_module",
    "authoring.module_move",
    "authoring.module_restore",
    "authoring.add_question",
    "authoring.move_question",
    "authoring.retire_question",
    "authoring.add_case",  # a refused case comes back as a page, checked by tests/e2e/test_authoring_bank.py
    "authoring.restore_question",
    "authoring.restore_case",
    "authoring.restore_rules",
}


def test_every_page_route_has_an_accessibility_case(live_app):
    covered = {c.endpoint for c in CASES} | NOT_PAGES | POST_ONLY
    routes = {rule.endpoint for rule in live_app.url_map.iter_rules()}
    missing = sorted(routes - covered)
    assert not missing, f"pages without an accessibility and mobile check in {__file__}: {missing}"


def _signed_in(browser, base_url, name):  # type: ignore[no-untyped-def]
    """A new learner registered, enrolled and past the disclosures in a browser context of their own."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    email = register(page, name)
    enrol_and_acknowledge(page)
    return context, email


def _further_learners(browser, base_url, live_app):  # type: ignore[no-untyped-def]
    """Learners at the certificate steps, moved on through the services: their sessions and the verify path."""
    sessions, verify = {}, ""
    for who in ("graduate", "evaluated", "certified"):
        context, email = _signed_in(browser, base_url, f"Alex {who.title()}, PsyD")
        complete_requirements(live_app, email)
        confirm_email(live_app, email)  # as the emailed link does; "learner" stays unconfirmed
        if who != "graduate":
            submit_evaluation(live_app, email)
        if who == "certified":
            verify = attest(live_app, email)
        sessions[who] = context.storage_state()
        context.close()
    return sessions, verify


@pytest.fixture(scope="module")
def learner_state(browser, base_url, live_app):  # type: ignore[no-untyped-def]
    """A learner with an enrolment, a submitted attempt (result page) and an open attempt; learners who met
    the requirements, submitted the evaluation, and hold a certificate (with its verification page)."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    email = register(page, "Sam Accessible, RN")
    enrol_and_acknowledge(page)
    page.goto("/courses/kap-foundations/quizzes/pharmacology-quiz")
    page.get_by_role("button", name="Start the quiz").click()
    for item_id, positions in answer_key(live_app, email, right=False).items():
        for pos in positions:
            page.locator(f'input[name="q-{item_id}"][value="{pos}"]').check()
    page.get_by_role("button", name="Submit answers").click()
    result_url = page.url.replace(base_url, "")
    page.get_by_role("button", name="Try again").click()
    attempt_url = page.url.replace(base_url, "")
    state = context.storage_state()
    context.close()
    sessions, verify = _further_learners(browser, base_url, live_app)
    # Staff log in once each (password and code): a code cannot be typed twice, so each page reuses the session.
    sessions |= {who: _staff_session(browser, base_url, live_app, who) for who in ("admin", "instructor")}
    person = f"/admin/people/{_user_id(live_app, email)}"
    links = {
        "reset-password": _emailed_link(live_app, email, TokenPurpose.RESET_PASSWORD),
        "confirm-email": _emailed_link(live_app, email, TokenPurpose.CONFIRM_EMAIL),
    }
    return {
        "sessions": {"learner": state, **sessions},
        "result": result_url,
        "attempt": attempt_url,
        **links,
        "attempt-blanks": f"{attempt_url}?check=1",
        "email": email,
        "verify": verify,
        "person": person,
        "person-close": f"{person}/close",
        "person-profile": f"{person}/profile",
        "learner-record": f"/instructor/courses/kap-foundations/learners/{_user_id(live_app, email)}",
        "result-as-admin": result_url,
        "accommodation": _accommodation(live_app, email),
        "certificate": _certificate_page(live_app, verify),
    }


def _staff_session(browser, base_url, app, who):  # type: ignore[no-untyped-def]
    """The demo instructor or admin logged in through the form, with the code from their authenticator."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    log_in(page, f"{who}@example.com", DEMO_PASSWORD, app)
    expect(page.get_by_role("link", name="Log in")).to_have_count(0)
    state = context.storage_state()
    context.close()
    return state


def _emailed_link(app, email, purpose):  # type: ignore[no-untyped-def]
    """The path of a link as the email would carry it (the e2e app sends no mail), made by the real service."""
    session = app.extensions["kaptrain.db"].new_session()
    try:
        user = session.scalars(select(User).where(User.email == email)).one()
        secret = tokens.issue(session, user, purpose, user.email, dt.timedelta(hours=12))
        session.commit()
    finally:
        session.close()
    return ("/password/reset/" if purpose == TokenPurpose.RESET_PASSWORD else "/confirm/") + secret


def _certificate_page(app, verify):  # type: ignore[no-untyped-def]
    """The console page of the certified learner's certificate (found by the code in its verify path)."""
    session = app.extensions["kaptrain.db"].new_session()
    code = verify.rsplit("/", 1)[-1]
    try:
        return f"/admin/certificates/{session.scalar(select(Certificate.id).where(Certificate.code == code))}"
    finally:
        session.close()


def _user_id(app, email):  # type: ignore[no-untyped-def]
    """The id of the account with this email (for the admin record pages)."""
    session = app.extensions["kaptrain.db"].new_session()
    try:
        return session.scalar(select(User.id).where(User.email == email))
    finally:
        session.close()


def _accommodation(app, email):  # type: ignore[no-untyped-def]
    """Grant the learner extra time through the service; the path of the grant's page."""
    session = app.extensions["kaptrain.db"].new_session()
    try:
        learner = session.scalars(select(User).where(User.email == email)).one()
        quiz = session.scalars(select(Quiz).where(Quiz.slug == "pharmacology-quiz")).one()
        admin = session.scalars(select(User).where(User.email == "admin@example.com")).one()
        grant = grant_accommodation(session, learner.id, quiz, 15, 1, "Disability services letter", admin.id)
        session.commit()
        return f"/admin/accommodations/{grant.id}"
    finally:
        session.close()


def open_as(browser, base_url, who, learner_state, viewport):  # type: ignore[no-untyped-def]
    if who in learner_state["sessions"]:
        storage = learner_state["sessions"][who]
        context = browser.new_context(base_url=base_url, viewport=viewport, storage_state=storage)
        return context, context.new_page()
    context = browser.new_context(base_url=base_url, viewport=viewport)
    page = context.new_page()
    if who in ("instructor", "admin"):
        log_in(page, f"{who}@example.com", DEMO_PASSWORD)
    if who == "password-only":  # the admin's password accepted, the code not yet typed
        log_in(page, "admin@example.com", DEMO_PASSWORD)
    return context, page


def url_for_case(case: PageCase, learner_state: dict) -> str:
    return case.url or learner_state[case.name]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_has_no_axe_violations(browser, base_url, learner_state, case):
    context, page = open_as(browser, base_url, case.who, learner_state, {"width": 1280, "height": 900})
    page.goto(url_for_case(case, learner_state))
    title = page.title()  # what the tab and a screen reader announce first: words, never markup
    assert title.strip() and "<" not in title, title
    results = Axe().run(page, options=AXE_OPTIONS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{case.name}-desktop.png"))
    context.close()
    assert results.violations_count == 0, results.generate_report()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_fits_a_phone_without_horizontal_scrolling(browser, base_url, learner_state, case):
    context, page = open_as(browser, base_url, case.who, learner_state, PHONE)
    page.goto(url_for_case(case, learner_state))
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    # The administration menu wraps on a phone instead of scrolling sideways: every tab, the current one marked, is
    # in view (a walk-through found the Audit log and Settings tabs off-screen).
    tabs = page.locator(".sub-nav a")
    tab_shown = tabs.count() == 0 or page.locator(".sub-nav").evaluate(
        "nav => { const l = nav.querySelector('ul'), b = l.getBoundingClientRect();"
        " return l.scrollWidth <= l.clientWidth && [...l.querySelectorAll('a')].every(a => {"
        " const r = a.getBoundingClientRect(); return r.left >= b.left - 1 && r.right <= b.right + 1; })"
        " && l.querySelectorAll('[aria-current]').length === 1; }"
    )
    page.screenshot(path=str(SCREENSHOTS / f"{case.name}-phone.png"))
    context.close()
    assert overflow <= 0, f"{case.name} scrolls sideways by {overflow}px at 375px"
    assert tab_shown, f"{case.name}: a tab of the menu is off-screen, or none is marked current, at 375px"


@pytest.mark.parametrize("changed", [False, True], ids=["valid", "tampered"])
def test_a_checked_file_shows_its_verdict_accessibly(browser, base_url, learner_state, changed):
    context, page = open_as(browser, base_url, "anonymous", learner_state, PHONE)
    credential = page.request.get(f"{learner_state['verify']}/credential.json").json()
    if changed:
        credential["credentialSubject"]["creditsEarned"] = 99
    page.goto("/verify")
    page.get_by_label("Certificate file (PDF or JSON)").set_input_files(
        {"name": "credential.json", "mimeType": "application/json", "buffer": json.dumps(credential).encode()}
    )
    page.get_by_role("button", name="Check the file").click()
    heading = "Changed after it was issued" if changed else "Valid credential"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    results = Axe().run(page, options=AXE_OPTIONS)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(SCREENSHOTS / f"check-file-{'tampered' if changed else 'valid'}-phone.png"))
    context.close()
    assert results.violations_count == 0, results.generate_report()
    assert overflow <= 0, f"the checked file's verdict scrolls sideways by {overflow}px at 375px"


def test_the_course_page_offers_enrolment_near_its_top_on_a_phone(browser, base_url):
    """On a phone the enrol box comes after the description, far below the first screen (a walk-through measured
    1,450 px): a link by the heading leads to it. A wide screen shows the box beside the heading, and no link."""
    context = browser.new_context(base_url=base_url, viewport=PHONE)
    page = context.new_page()
    page.goto("/courses/kap-foundations")
    jump = page.get_by_role("link", name="Enrol", exact=True)
    expect(jump).to_be_in_viewport()
    expect(page.get_by_role("link", name="Create an account to enrol")).not_to_be_in_viewport()
    jump.click()
    expect(page.get_by_role("link", name="Create an account to enrol")).to_be_in_viewport()
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(jump).to_be_hidden()
    context.close()


def test_a_staff_header_on_a_phone_is_two_rows(browser, base_url, learner_state):
    """Seven menu entries took three rows (about 140 px) above every admin page on a phone; now the brand's mark and
    the menu share the rows, and the brand's name is still the home link's name."""
    context, page = open_as(browser, base_url, "admin", learner_state, PHONE)
    page.goto("/admin/people")
    height = page.locator(".site-header").evaluate("el => el.getBoundingClientRect().height")
    expect(page.get_by_role("link", name="kaptrain", exact=True)).to_be_visible()
    context.close()
    assert height <= 90, f"the staff header is {height}px high at 375px"


def test_focus_is_visible(page):
    page.goto("/login")
    page.keyboard.press("Tab")  # skip link
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()


def test_form_errors_are_tied_to_their_fields(page):
    page.goto("/register")
    page.get_by_role("button", name="Create account").click()
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    described = email.get_attribute("aria-describedby")
    assert described and "Enter your email address." in page.locator(f"#{described}").inner_text()


def test_module_prints_without_navigation(browser, base_url, learner_state):
    context, page = open_as(browser, base_url, "learner", learner_state, {"width": 1280, "height": 900})
    page.goto("/courses/kap-foundations/modules/pharmacology")
    page.emulate_media(media="print")
    assert page.locator(".site-header").is_hidden()
    assert page.locator(".module-aside").is_hidden()
    assert page.locator(".prose").is_visible()
    pdf = page.pdf(format="A4")
    context.close()
    assert pdf[:4] == b"%PDF" and len(pdf) > 20_000


def test_two_factor_enrolment_in_the_browser(browser, base_url, live_app):
    """A learner sets up two-factor sign-in: QR code and key, a code from the app, then the recovery codes."""
    context = browser.new_context(base_url=base_url, viewport=PHONE)
    page = context.new_page()
    email = register(page, "Robin Two-Factor, LPC")
    page.goto("/account/two-factor")  # the address is not proven yet: set up waits for it
    expect(page.get_by_text("Confirm your email address first")).to_be_visible()
    confirm_email(live_app, email)  # as the emailed link does
    page.goto("/account")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    qr = f"QR code that adds {live_app.config['SITE_NAME']} to an authenticator app"
    expect(page.get_by_role("img", name=qr)).to_be_visible()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(totp_secret(live_app, email)).now())
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    results = Axe().run(page, options=AXE_OPTIONS)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(SCREENSHOTS / "recovery-codes-phone.png"))
    context.close()
    assert results.violations_count == 0, results.generate_report()
    assert overflow <= 0, f"the recovery codes scroll sideways by {overflow}px at 375px"
