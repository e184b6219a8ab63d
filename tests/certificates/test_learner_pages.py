"""The learner's certificate path through the web: evaluation, attestation, dashboard, downloads, transcript."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from kaptrain.certificates import services
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation
from kaptrain.certificates.pdf import format_date
from kaptrain.content.models import Module
from tests.conftest import sign_in
from tests.factories import certified, complete_learning, course, enrolled, make_user

EVALUATION = "/courses/demo-course/evaluation"
ATTESTATION = "/courses/demo-course/attestation"
GOOD_EVALUATION = {
    "objective_1": "met",
    "relevance": "4",
    "quality": "5",
    "overall": "4",
    "free_of_bias": "yes",
    "evidence_balanced": "yes",
    "hours_spent": "6.5",
    "practice_change": "yes",
    "change_plan": "Ask about urinary symptoms at every review.",
    "comments": "Clear and practical.",
}


@pytest.fixture
def finished(db, learner):  # type: ignore[no-untyped-def]
    """The logged-in learner with every module quiz and the final assessment passed."""
    complete_learning(db, learner)
    db.commit()
    return learner


@pytest.fixture
def evaluated(client, db, finished):  # type: ignore[no-untyped-def]
    """The learner after submitting the evaluation through the page."""
    assert client.post(EVALUATION, data=GOOD_EVALUATION).status_code == 302
    return finished


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    return db.scalar(select(func.count()).select_from(model))


def test_evaluation_and_attestation_say_what_to_finish_first(client, db, learner):
    for url in (EVALUATION, ATTESTATION):
        response = client.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 403
        assert "is not open yet" in page and "pass every module quiz and the final assessment" in page
        assert "Your next step: <strong>Module 1: Module Alpha</strong>" in page
    assert client.post(EVALUATION, data=GOOD_EVALUATION).status_code == 403
    assert count(db, Evaluation) == 0


def test_pages_need_an_enrolment(client, db, login):
    login(make_user(db))
    for url in (EVALUATION, ATTESTATION, "/courses/demo-course/transcript", "/courses/demo-course/transcript.pdf"):
        response = client.get(url)
        assert response.status_code == 403 and b"Enrol in" in response.data
    assert client.get("/courses/no-such-course/evaluation").status_code == 404


def test_the_checklist_links_the_evaluation_then_the_attestation(client, finished):
    assert f'href="{EVALUATION}">Course evaluation</a>' in client.get("/dashboard").get_data(as_text=True)
    client.post(EVALUATION, data=GOOD_EVALUATION)
    assert f'href="{ATTESTATION}">Attestation and hours claimed</a>' in client.get("/dashboard").get_data(as_text=True)


def test_evaluation_form_shows_every_question(client, finished):
    page = client.get(EVALUATION).get_data(as_text=True)
    assert "<legend" in page and "The clinician can pass the tests." in page
    for text in ("Partly met", "Not met", "1 · Not relevant", "5 · Highly relevant", "free of commercial bias"):
        assert text in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective_1": None}, "Choose Met, Partly met or Not met."),
        ({"objective_1": "mostly"}, "Choose Met, Partly met or Not met."),
        ({"relevance": None}, "Choose a rating from 1 to 5."),
        ({"quality": "7"}, "Choose a rating from 1 to 5."),
        ({"free_of_bias": None}, "Answer yes or no."),
        ({"free_of_bias": "no"}, "Tell us where you saw commercial bias"),
        ({"free_of_bias": "no", "bias_comment": "   "}, "Tell us where you saw commercial bias"),
        ({"free_of_bias": "no", "overall": None}, "Tell us where you saw commercial bias"),  # said with the rest
        ({"evidence_balanced": None}, "Say whether the content was evidence-based and balanced: yes, partly or no."),
        ({"evidence_balanced": "mostly"}, "Say whether the content was evidence-based and balanced"),
        ({"evidence_balanced": "partly"}, "Tell us what was unbalanced or unclear about the evidence"),
        ({"evidence_balanced": "no", "evidence_comment": " \n "}, "Tell us what was unbalanced or unclear"),
        ({"hours_spent": "seven"}, "Enter the hours you spent as a number, e.g. 7.5, or leave it empty."),
        ({"hours_spent": "7,5"}, "Enter the hours you spent as a number"),
        ({"hours_spent": "0"}, "Enter more than 0 hours spent, or leave it empty."),
        ({"hours_spent": "-3"}, "Enter more than 0 hours spent"),
        ({"hours_spent": "NaN"}, "Enter more than 0 hours spent"),
        ({"hours_spent": "Infinity"}, "Enter more than 0 hours spent"),
        ({"hours_spent": "100.25"}, "Enter at most 100.0 hours spent on the course."),
        ({"hours_spent": "1e9"}, "Enter at most 100.0 hours spent on the course."),
        ({"hours_spent": "7.3"}, "Enter the hours you spent in quarter-hour steps (e.g. 6.25, 6.5, 6.75)."),
        ({"comments": "bad\x00byte"}, "Remove control characters"),
        ({"comments": "fine \u202eton\u202c"}, "text-direction overrides"),  # shows as "fine not"
    ],
)
def test_evaluation_errors_are_shown_on_the_form_and_nothing_is_saved(client, db, finished, changes, message):
    data = {k: v for k, v in {**GOOD_EVALUATION, **changes}.items() if v is not None}
    response = client.post(EVALUATION, data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and "Please correct the following" in page
    assert '<input checked id="relevance-3"' in page or "relevance" in changes  # answers given stay given
    assert count(db, Evaluation) == 0


def test_evaluation_is_saved_once_and_a_second_submission_says_so(client, db, finished):
    response = client.post(EVALUATION, data={**GOOD_EVALUATION, "free_of_bias": "no", "bias_comment": "Brand X"})
    assert response.status_code == 302 and response.location == ATTESTATION
    saved = db.scalar(select(Evaluation))
    assert saved.objectives_met == {"pass-tests": "met"}
    assert (saved.relevance, saved.quality, saved.overall) == (4, 5, 4)
    assert not saved.free_of_bias and saved.bias_comment == "Brand X" and saved.comments == "Clear and practical."
    page = client.get(EVALUATION).get_data(as_text=True)
    assert "You submitted your evaluation on" in page and f'href="{ATTESTATION}"' in page
    again = client.post(EVALUATION, data={**GOOD_EVALUATION, "overall": "1"}, follow_redirects=True)
    assert again.status_code == 200 and "already submitted your evaluation" in again.get_data(as_text=True)
    assert count(db, Evaluation) == 1 and db.scalar(select(Evaluation.overall)) == 4


def test_attestation_waits_for_the_evaluation(client, db, finished):
    response = client.get(ATTESTATION)
    assert response.status_code == 403 and b"submit the course evaluation" in response.data
    assert f'href="{EVALUATION}"'.encode() in response.data
    assert client.post(ATTESTATION, data={"hours": "2", "confirm": "y"}).status_code == 403
    assert count(db, Attestation) == 0


def test_attestation_page_shows_the_measured_time_and_the_statement(client, evaluated):
    page = client.get(ATTESTATION).get_data(as_text=True)
    assert "Your measured active time" in page and services.ATTESTATION_STATEMENT in page
    assert 'type="number"' in page and 'step="0.25"' in page and 'max="3.5"' in page
    assert "the time you actually spent" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hours": "3.1", "confirm": "y"}, "quarter-hour steps"),
        ({"hours": "99", "confirm": "y"}, "at most 3.5 hours"),
        ({"hours": "abc", "confirm": "y"}, "as a number"),
        ({"hours": "", "confirm": "y"}, "Enter the hours you claim"),
        ({"hours": "-1", "confirm": "y"}, "more than 0"),
        ({"hours": "3"}, "Tick the box"),
        # Both at once: the hours' problem is said with the missing tick, not on the next try (walk-through).
        ({"hours": "9"}, "Tick the box"),
        ({"hours": "9"}, "at most 3.5 hours"),
    ],
)
def test_attestation_errors_are_shown_on_the_form_and_nothing_is_saved(client, db, evaluated, data, message):
    response = client.post(ATTESTATION, data=data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert count(db, Attestation) == 0 and count(db, Certificate) == 0


def test_the_completion_day_is_the_certificates_after_a_move_to_another_time_zone(client, db, evaluated):
    """A walk-through moved a learner from Denver to Kiritimati after her certificate: the dashboard then said
    "completed on 28 November" above "Issued 27 November"."""
    evaluated.time_zone = "America/Denver"
    db.commit()
    client.post(ATTESTATION, data={"hours": "3.25", "confirm": "y"})
    certificate = db.scalar(select(Certificate))
    evaluated.time_zone = "Pacific/Kiritimati"
    db.commit()
    page = client.get("/dashboard").text
    assert f"Course completed on {format_date(certificate.completion_day)} (America/Denver)." in page


def test_attesting_issues_the_certificate_shown_on_the_dashboard(client, db, evaluated):
    response = client.post(ATTESTATION, data={"hours": "3.25", "confirm": "y"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == "/dashboard" and "Your certificate was issued" in page
    certificate = db.scalar(select(Certificate))
    assert certificate.status == CertificateStatus.ACTIVE and str(certificate.hours) == "3.25"
    assert certificate.number in page and "3.25" in page
    assert f'href="/certificates/{certificate.id}.pdf"' in page
    assert f'href="/certificates/{certificate.id}.json"' in page
    assert f'value="http://127.0.0.1:5000/verify/{certificate.code}"' in page and "readonly" in page
    assert 'href="/courses/demo-course/transcript"' in page and "Course completed on" in page
    assert "You made your attestation on" in client.get(ATTESTATION).get_data(as_text=True)


def test_a_double_submitted_attestation_makes_one_certificate(client, db, evaluated):
    assert client.post(ATTESTATION, data={"hours": "3", "confirm": "y"}).status_code == 302
    again = client.post(ATTESTATION, data={"hours": "2", "confirm": "y"}, follow_redirects=True)
    assert again.status_code == 200 and "already made your attestation" in again.get_data(as_text=True)
    assert count(db, Attestation) == 1 and count(db, Certificate) == 1
    assert db.scalar(select(Certificate.hours)) == 3


@pytest.mark.parametrize(
    ("url", "data", "lookup", "message"),
    [
        (EVALUATION, GOOD_EVALUATION, "get_evaluation", "already submitted the evaluation"),
        (ATTESTATION, {"hours": "3", "confirm": "y"}, "get_attestation", "already made your attestation"),
    ],
)
def test_a_racing_second_submission_gets_a_message_not_an_error(
    client, db, evaluated, monkeypatch, url, data, lookup, message
):
    if url == ATTESTATION:
        assert client.post(url, data=data).status_code == 302
    # The second request checked before the first committed: the unique constraint is what stops it.
    monkeypatch.setattr(services, lookup, lambda *args: None)
    response = client.post(url, data=data)
    assert response.status_code == 302
    assert message in client.get("/dashboard").get_data(as_text=True)
    assert count(db, Evaluation) == 1 and count(db, Attestation) == (1 if url == ATTESTATION else 0)
    assert count(db, Certificate) == (1 if url == ATTESTATION else 0)


def test_pdf_and_json_downloads(client, db, evaluated):
    client.post(ATTESTATION, data={"hours": "3.5", "confirm": "y"})
    certificate = db.scalar(select(Certificate))
    pdf = client.get(f"/certificates/{certificate.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data[:5] == b"%PDF-"
    assert pdf.headers["Content-Disposition"] == f"attachment; filename={certificate.number}.pdf"
    assert pdf.headers["Cache-Control"] == "no-store"
    data = client.get(f"/certificates/{certificate.id}.json")
    assert data.status_code == 200 and data.headers["Content-Disposition"].startswith("attachment")
    body = data.get_json()  # the signed credential, as embedded in the PDF
    assert body == certificate.credential and "OpenBadgeCredential" in body["type"]
    assert body["id"].endswith(f"/verify/{certificate.code}") and body["credentialSubject"]["creditsEarned"] == 3.5


def test_someone_elses_certificate_is_not_found(client, app, db, learner):
    other = make_user(db, full_name="Other Person")
    enrolled(db, other)
    with app.app_context():  # issuing renders the PDF, and the commit runs the email job
        theirs = certified(db, other)
        db.commit()
    for url in (f"/certificates/{theirs.id}.pdf", f"/certificates/{theirs.id}.json", "/certificates/999999.pdf"):
        response = client.get(url)
        assert response.status_code == 404 and b"Other Person" not in response.data


def test_downloads_need_a_login(client):
    assert client.get("/certificates/1.pdf").status_code == 302


def test_manual_approval_shows_the_certificate_as_pending(client, db, evaluated):
    course(db).certificate_approval = "manual"
    db.commit()
    response = client.post(ATTESTATION, data={"hours": "3", "confirm": "y"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "waiting for an administrator's approval" in page and "Download PDF" not in page
    certificate = db.scalar(select(Certificate))
    assert certificate.status == CertificateStatus.PENDING
    pdf = client.get(f"/certificates/{certificate.id}.pdf")
    assert pdf.status_code == 404 and b"waiting for an administrator" in pdf.data
    assert client.get(f"/certificates/{certificate.id}.json").get_json()["status"] == "pending"


def test_earlier_certificates_are_listed_with_their_status(client, app, db, learner):
    with app.app_context():
        first = certified(db, learner)
        second = services.reissue(db, first, actor_label="test")
        db.commit()
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Earlier certificates" in page and "Replaced by a re-issue" in page
    assert first.number in page and second.number in page
    assert f'href="/certificates/{second.id}.pdf"' in page and f'href="/certificates/{first.id}.pdf"' not in page
    old = client.get(f"/certificates/{first.id}.pdf")
    assert old.status_code == 404 and b"replaced by a re-issue" in old.data


def test_transcript_page_and_pdf(client, db, evaluated):
    client.post(ATTESTATION, data={"hours": "2.75", "confirm": "y"})
    certificate = db.scalar(select(Certificate))
    page = client.get("/courses/demo-course/transcript").get_data(as_text=True)
    for text in (
        "Dana Example",
        "1. Module Alpha",
        "100%",
        "No quiz (marked as read)",
        "Final assessment",
        "2.75 of 3.5",
        certificate.number,
        "Issued",
        "Total measured active time",
    ):
        assert text in page
    pdf = client.get("/courses/demo-course/transcript.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    assert pdf.headers["Content-Disposition"] == "attachment; filename=transcript-demo-course.pdf"


def test_the_transcript_keeps_a_completed_module_after_it_is_retired(client, db, evaluated):
    client.post(ATTESTATION, data={"hours": "2.75", "confirm": "y"})
    beta = db.scalars(select(Module).where(Module.slug == "beta")).one()
    beta.is_retired = True
    db.commit()
    page = client.get("/courses/demo-course/transcript").get_data(as_text=True)
    retired = page.index("Completed modules since retired")
    assert "Module Beta" in page[retired:] and "Module Beta" not in page[:retired]
    pdf = client.get("/courses/demo-course/transcript.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"


def test_a_learner_given_a_certificate_by_hand_is_told_instead_of_attesting_again(client, app, db, evaluated):
    with app.app_context():
        by_hand = services.issue_without_course(db, evaluated, course(db), "Record from the old system", "test")
        db.commit()
    for method, data in (("GET", None), ("POST", {"hours": "2", "confirm": "y"})):
        response = client.open(ATTESTATION, method=method, data=data)
        assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
        page = client.get("/dashboard").get_data(as_text=True)
        assert f"You already hold certificate {by_hand.number} for this course" in page
        assert "then ask for a corrected certificate here" in page
    assert count(db, Attestation) == 0 and count(db, Certificate) == 1


def _summary(page: str) -> str:
    return page[page.index('class="error-summary"') : page.index("</ul>", page.index('class="error-summary"'))]


def test_error_summaries_read_as_sentences(client, db, finished):
    """A label ending in "?" is not followed by ":", and a long statement to tick is not repeated in the summary."""
    evaluation = _summary(client.post(EVALUATION, data={**GOOD_EVALUATION, "free_of_bias": ""}).get_data(as_text=True))
    assert "free of commercial bias? " in evaluation and "?:" not in evaluation
    # The balance question is too long to repeat: its message names it.
    unanswered = {k: v for k, v in GOOD_EVALUATION.items() if k != "evidence_balanced"}
    balance = _summary(client.post(EVALUATION, data=unanswered).get_data(as_text=True))
    assert ">Say whether the content was evidence-based and balanced: yes, partly or no.</a>" in balance
    client.post(EVALUATION, data=GOOD_EVALUATION)
    attestation = _summary(client.post(ATTESTATION, data={"hours": "2"}).get_data(as_text=True))
    assert "Tick the box" in attestation and "I completed" not in attestation


def test_the_evaluation_asks_whether_the_learner_will_change_their_practice(client, db, finished):
    page = client.get(EVALUATION).get_data(as_text=True)
    assert "Will you change anything in your practice as a result of this course?" in page
    missing = {k: v for k, v in GOOD_EVALUATION.items() if k != "practice_change"}
    refused = client.post(EVALUATION, data=missing)
    assert refused.status_code == 422 and "Choose the answer closest to your plans." in refused.get_data(as_text=True)
    assert count(db, Evaluation) == 0
    assert client.post(EVALUATION, data=GOOD_EVALUATION).status_code == 302
    stored = db.scalars(select(Evaluation)).one()
    assert (stored.practice_change, stored.change_plan) == ("yes", "Ask about urinary symptoms at every review.")


def test_the_evaluation_asks_about_balance_and_evidence_after_commercial_bias(client, db, finished):
    page = client.get(EVALUATION).get_data(as_text=True)
    question = "Was the content evidence-based and balanced, and clear about what is established and what is not, "
    assert question + "including off-label use?</legend>" in page
    assert page.index("free of commercial bias") < page.index(question) < page.index("About how many hours")
    assert page.index("About how many hours") < page.index("Will you change anything in your practice")
    for label in ("Yes", "Partly", "No"):
        assert f'value="{label.lower()}"> <span>{label}</span>' in page
    assert 'inputmode="decimal"' in page and 'name="hours_spent"' in page


@pytest.mark.parametrize("answer", ["partly", "no"])
def test_a_partly_or_no_on_balance_needs_a_comment_and_keeps_what_was_typed(client, db, finished, answer):
    typed = {**GOOD_EVALUATION, "evidence_balanced": answer, "hours_spent": "12.25", "comments": "Dense but good."}
    response = client.post(EVALUATION, data=typed)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    message = "Tell us what was unbalanced or unclear about the evidence, so it can be corrected."
    # On the comment's field, tied to it for screen readers, and in the summary as a link to it.
    assert f'<p class="error-text" id="evidence_comment-error">{message}</p>' in page
    assert 'aria-describedby="evidence_comment-hint evidence_comment-error" aria-invalid="true"' in page
    assert f'<a href="#evidence_comment">If partly or not, what was unbalanced or unclear? {message}</a>' in page
    # Everything given stays given.
    assert f'<input checked id="evidence_balanced-{["yes", "partly", "no"].index(answer)}"' in page
    assert 'value="12.25"' in page and "Dense but good." in page and '<input checked id="relevance-3"' in page
    assert count(db, Evaluation) == 0
    typed["evidence_comment"] = "  The ketamine-for-pain section read as settled; it is off-label.  "
    assert client.post(EVALUATION, data=typed).status_code == 302
    saved = db.scalars(select(Evaluation)).one()
    assert saved.evidence_balanced == answer
    assert saved.evidence_comment == "The ketamine-for-pain section read as settled; it is off-label."


def test_a_bad_hours_figure_is_said_on_its_field_and_kept(client, db, finished):
    response = client.post(EVALUATION, data={**GOOD_EVALUATION, "hours_spent": "about ten"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    message = "Enter the hours you spent as a number, e.g. 7.5, or leave it empty."
    assert f'<p class="error-text" id="hours_spent-error">{message}</p>' in page
    assert 'aria-invalid="true"' in page and 'value="about ten"' in page
    # The question is too long to head its error in the summary: the message says what it is about.
    assert f'<li><a href="#hours_spent">{message}</a></li>' in page
    assert count(db, Evaluation) == 0


@pytest.mark.parametrize(("typed", "stored"), [("6.5", "6.50"), (" 12 ", "12.00"), ("100", "100.00"), ("", None)])
def test_the_hours_spent_are_kept_or_left_out(client, db, finished, typed, stored):
    assert client.post(EVALUATION, data={**GOOD_EVALUATION, "hours_spent": typed}).status_code == 302
    saved = db.scalars(select(Evaluation)).one()
    assert (saved.hours_spent is None and stored is None) or f"{saved.hours_spent:.2f}" == stored


def test_evaluation_refuses_a_form_without_its_csrf_token(client, db, finished, csrf_on):
    assert client.post(EVALUATION, data=GOOD_EVALUATION).status_code == 400
    assert count(db, Evaluation) == 0


def test_the_dashboard_gives_the_certificates_days_after_the_holder_moves_zone(client, app, db, learner):
    with app.app_context():
        made = certified(db, learner)
        # Issued at 05:30 UTC on 27 November, in Denver (the 26th there), as the PDF prints it; then the holder moved.
        made.time_zone, made.issued_at = "America/Denver", dt.datetime(2026, 11, 27, 5, 30, tzinfo=dt.UTC)
        learner.time_zone = "Europe/London"
        db.commit()
    page = client.get("/dashboard").get_data(as_text=True)
    assert "26 November 2026 (America/Denver)" in page and "Issued</dt><dd>27 November" not in page


def test_the_transcript_pdf_is_drawn_a_limited_number_of_times_per_account(app, db, extra_app):
    limited = extra_app(RATELIMIT_ENABLED=True, TRANSCRIPT_PDF_RATE_LIMIT="2 per minute")
    limited.extensions["kaptrain.db"].bind = app.extensions["kaptrain.db"].bind  # inside the test's transaction
    first, second = make_user(db, email="first@example.org"), make_user(db, email="second@example.org")
    for person in (first, second):
        enrolled(db, person)
    db.commit()
    browsers = [limited.test_client(), limited.test_client()]
    for browser, person in zip(browsers, (first, second), strict=True):
        sign_in(browser, db, person)
    url = "/courses/demo-course/transcript.pdf"
    assert [browsers[0].get(url).status_code for _ in range(3)] == [200, 200, 429]
    refused = browsers[0].get(url).get_data(as_text=True)
    assert "Please wait a minute before trying again." in refused
    assert browsers[0].get("/courses/demo-course/transcript").status_code == 200  # the page itself is not limited
    assert browsers[1].get(url).status_code == 200  # another learner is not held up
