"""A review that teaches (re-read links to the section, the learner's own choice marked, no landmark per question)
and cases tied to their questions on the attempt page."""

from __future__ import annotations

import re

from sqlalchemy import select

from kaptrain.quizzes import sections
from kaptrain.quizzes.models import Attempt, Question, QuestionRevision, Vignette, VignetteRevision
from tests.factories import correct_answers, pass_quiz
from tests.quizzes.test_attempts import start, start_final

BODY = """## Routes of administration

Text.

### Oral and sublingual

More.

## "Does dissociation predict response?"

## Dose–effect &amp; timing
"""


def _attempt(db, attempt_id: int) -> Attempt:
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    assert attempt is not None
    return attempt


def test_a_section_is_found_among_level_two_and_level_three_headings():
    assert sections.section_anchor(BODY, "Routes of administration") == "routes-of-administration"
    assert sections.section_anchor(BODY, "Oral and sublingual") == "oral-and-sublingual"
    assert sections.section_anchor(BODY, "  oral AND  sublingual ") == "oral-and-sublingual"


def test_quotes_and_entities_do_not_stop_a_section_being_found():
    assert sections.section_anchor(BODY, "Does dissociation predict response?") == "does-dissociation-predict-response"
    assert sections.section_anchor(BODY, "Dose–effect & timing") is not None


def test_a_section_the_module_does_not_have_gives_no_anchor():
    assert sections.section_anchor(BODY, "Pharmacokinetics") is None
    assert sections.section_anchor("No headings at all.", "Routes of administration") is None


def test_a_missed_question_links_to_its_section_in_the_module(client, db, learner):
    attempt_id = start(client)
    client.post(f"/attempts/{attempt_id}/submit", data=correct_answers(_attempt(db, attempt_id), right=False))
    page = client.get(f"/attempts/{attempt_id}/result").data.decode()
    links = re.findall(r'<p class="reread">Re-read: <a href="([^"]+)">([^<]+)</a>', page)
    assert len(links) == 3
    for href, title in links:
        anchor = {"Introduction to alpha": "introduction-to-alpha", "Details of alpha": "details-of-alpha"}[title]
        assert href == f"/courses/demo-course/modules/alpha#{anchor}"
    module = client.get("/courses/demo-course/modules/alpha").data.decode()
    assert all(f'id="{href.split("#")[1]}"' in module for href, _title in links)


def test_a_final_question_names_the_module_to_re_read(client, db, learner):
    attempt_id = start_final(client, db, learner)
    client.post(f"/attempts/{attempt_id}/submit", data=correct_answers(_attempt(db, attempt_id), right=False))
    page = client.get(f"/attempts/{attempt_id}/result").data.decode()
    assert re.search(
        r'Re-read: <a href="/courses/demo-course/modules/alpha#introduction-to-alpha">Introduction to alpha</a> '
        r"\(module 1: Module Alpha\)",
        page,
    )


def test_the_learners_own_choice_is_marked_in_words_on_every_question(client, db, learner):
    attempt = pass_quiz(db, learner, "alpha-quiz")
    db.commit()
    page = client.get(f"/attempts/{attempt.id}/result").data.decode()
    chosen = sum(len(i.selected or []) for i in attempt.items)
    assert page.count('<strong class="choice-tag">Your answer</strong>') == chosen
    assert page.count("option-chosen") == chosen
    assert "No answer was given" not in page


def test_a_question_left_blank_says_so_in_the_review(client, db, learner):
    attempt_id = start_final(client, db, learner)
    attempt = _attempt(db, attempt_id)
    form = correct_answers(attempt)
    first = next(iter(form))
    client.post(f"/attempts/{attempt_id}/save", data={first: form[first]})
    attempt.deadline_at = attempt.deadline_at.replace(year=attempt.deadline_at.year - 1)
    db.commit()
    page = client.get(client.get(f"/attempts/{attempt_id}").location).data.decode()
    assert page.count("<strong>No answer was given</strong> to this question.") == len(attempt.items) - 1


def test_reviewed_questions_are_not_landmarks_and_cases_are_named_once(client, db, learner):
    attempt = pass_quiz(db, learner, "alpha-quiz")
    db.commit()
    page = client.get(f"/attempts/{attempt.id}/result").data.decode()
    assert '<section class="question"' not in page
    assert page.count('<div class="question review-item">') == len(attempt.items)
    assert "Case: Case:" not in page


def _two_questions_on_one_case(db, attempt_id: int) -> Attempt:
    """Make the attempt's first two items share the fixture's case (the bank has one case question)."""
    attempt = _attempt(db, attempt_id)
    q5 = db.scalars(select(Question).where(Question.key == "alpha-q5", Question.quiz_id == attempt.quiz_id)).one()
    revision = db.get(QuestionRevision, q5.published_revision_id)
    case = db.scalars(select(Vignette).where(Vignette.key == "case-a", Vignette.quiz_id == attempt.quiz_id)).one()
    case_revision = db.get(VignetteRevision, case.published_revision_id)
    first, second = attempt.items[0], attempt.items[1]
    if first.question_revision_id != revision.id and second.question_revision_id != revision.id:
        first.question_revision_id = revision.id
        first.option_order = [o["id"] for o in revision.options]
    first.vignette_revision_id = second.vignette_revision_id = case_revision.id
    db.commit()
    return _attempt(db, attempt_id)


def test_a_case_is_a_heading_and_describes_each_of_its_questions(client, db, learner):
    attempt_id = start(client)
    attempt = _two_questions_on_one_case(db, attempt_id)
    case_id = f"case-{attempt.items[0].vignette.vignette_id}"
    page = client.get(f"/attempts/{attempt_id}").data.decode()
    assert f'<div class="vignette-box" id="{case_id}"><h2 class="case-title" id="{case_id}-title">Case: A</h2>' in page
    assert f'<p id="{case_id}-text">A shared case.</p>' in page
    described = f'<fieldset aria-describedby="{case_id}-title {case_id}-text">'
    on_case = sum(1 for i in attempt.items if i.vignette_revision_id)  # 2, or 3 when the draw held its question
    assert page.count(described) == on_case  # the question under the case and the later ones that refer to it
    assert page.count(f'<p class="muted">Refers to: <a href="#{case_id}">Case: A</a> (above).</p>') == on_case - 1
    assert page.count("A shared case.") == 1


def test_the_instruction_is_not_repeated_when_the_stem_says_it(client, db, learner):
    attempt_id = start(client)
    attempt = _attempt(db, attempt_id)
    page = client.get(f"/attempts/{attempt_id}").data.decode()
    for item in attempt.items:
        legend = re.search(rf"Question {item.position + 1} of 3(.*?)</legend>", page, re.S).group(1)
        assert legend.lower().count("select all that apply") <= 1
        assert legend.lower().count("choose one answer") <= 1


def test_the_review_lists_the_missed_questions_first_and_marks_each_verdict(client, db, learner):
    attempt_id = start_final(client, db, learner)
    attempt = _attempt(db, attempt_id)
    form = correct_answers(attempt)
    wrong = correct_answers(attempt, right=False)
    assert len(attempt.items) >= 2
    missed = [len(attempt.items)]  # the last question, as the page numbers them
    for n, item in enumerate(sorted(attempt.items, key=lambda i: i.position), start=1):
        if n in missed:
            form[f"q-{item.id}"] = wrong[f"q-{item.id}"]
    page = client.get(client.post(f"/attempts/{attempt_id}/submit", data=form).location).data.decode()
    summary = re.search(r'<p class="review-missed">Missed: (.*?)\.</p>', page)
    assert summary is not None
    assert re.findall(r'href="#rq(\d+)"', summary.group(1)) == [str(n) for n in missed]
    assert page.count('class="answer-wrong"') == len(missed)
    assert page.count('class="answer-right"') == len(attempt.items) - len(missed)
