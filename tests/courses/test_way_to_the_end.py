"""The way to the end is visible: the outline lists the final, the evaluation and the certificate step, and the pages
a learner finishes the modules on link to the final assessment. Also how a module page shows its text."""

from __future__ import annotations

import re

from kaptrain.courses import lesson
from kaptrain.courses import services as courses
from kaptrain.quizzes.models import Attempt
from tests.factories import enrolled, make_user, pass_quiz, record

FINAL = "/courses/demo-course/quizzes/demo-final"


def _outline(page: str) -> str:
    """The course outline's list on a course or module page."""
    match = re.search(r'<ol class="module-map">(.*?)</ol>', page, re.S)
    assert match, "no outline on the page"
    return match.group(1)


def _finish_modules(db, user) -> Attempt:
    """Pass both module quizzes and mark the last module read; returns the second module's passed attempt."""
    pass_quiz(db, user, "alpha-quiz")
    beta = pass_quiz(db, user, "beta-quiz")
    gamma = record(db, user).modules[2]
    gamma.progress = courses.open_module(db, user.id, gamma.module)
    courses.mark_read(db, gamma)
    db.commit()
    return beta


def test_the_outline_lists_the_final_evaluation_and_certificate_steps(client, db, login):
    page = client.get("/courses/demo-course").data.decode()  # anonymous: the steps are shown, none linked
    outline = _outline(page)
    for title in ("Demo final", "Course evaluation", "Attestation and hours claimed"):
        assert f"<span>{title}</span>" in outline
    assert "2 questions, pass mark 50%, 30 minutes" in outline and "then your certificate is issued" in outline
    assert outline.index("Module 3: Module Gamma") < outline.index("Demo final") < outline.index("Course evaluation")
    assert "Then the <strong>" not in page  # the old one-line mention below the outline is gone


def test_the_final_is_locked_in_the_outline_until_the_modules_are_done(client, db, learner):
    outline = _outline(client.get("/courses/demo-course").data.decode())
    assert f'href="{FINAL}"' not in outline
    assert re.search(r'state-locked">\s*<span class="module-num" aria-hidden="true">4</span>', outline)


def test_after_the_last_module_the_course_page_links_the_final(client, db, learner):
    _finish_modules(db, learner)
    page = client.get("/courses/demo-course").data.decode()
    assert f'<a href="{FINAL}">Demo final</a>' in _outline(page)


def test_after_the_last_module_its_page_points_to_the_final(client, db, learner):
    _finish_modules(db, learner)
    page = client.get("/courses/demo-course/modules/gamma").data.decode()
    assert "Next: the Demo final" in page
    assert f'<a href="{FINAL}">Go to the final assessment</a>' in page


def test_before_the_last_module_is_done_its_page_says_when_the_final_opens(client, db, learner):
    pass_quiz(db, learner, "alpha-quiz")
    pass_quiz(db, learner, "beta-quiz")
    db.commit()
    page = client.get("/courses/demo-course/modules/gamma").data.decode()
    assert "Next: the Demo final (opens when every module is complete)" in page


def test_after_the_last_module_a_quiz_result_continues_to_the_final(client, db, learner):
    beta = _finish_modules(db, learner)
    page = client.get(f"/attempts/{beta.id}/result").data.decode()
    assert f'<a class="button" href="{FINAL}">Continue to the Demo final</a>' in page


def test_the_module_page_puts_the_lesson_first_and_the_outline_in_a_disclosure(client, db, learner):
    page = client.get("/courses/demo-course/modules/alpha").data.decode()
    assert page.index('<article class="lesson"') < page.index('<aside class="module-aside"')
    assert page.index("<h1>Module Alpha</h1>") < page.index('<ol class="module-map">')
    # Collapsed (no "open" attribute) for narrow screens; the same outline shown as a column on wide ones.
    assert '<details class="outline-narrow"><summary>Course outline' in page
    assert page.count('<ol class="module-map">') == 2


def test_other_learners_cannot_see_the_steps_of_someone_else(client, db, login):
    other = make_user(db)
    enrolled(db, other)
    _finish_modules(db, other)
    login(make_user(db))
    outline = _outline(client.get("/courses/demo-course").data.decode())
    assert "badge-done" not in outline


def test_tables_in_a_module_become_named_focusable_regions():
    body = (
        "<p>Intro</p><table><thead><tr><th>Route</th><th>Onset</th><th>Peak</th><th>Notes</th></tr></thead>"
        "<tbody><tr><td>IV</td><td>1 min</td><td>5 min</td><td>-</td></tr></tbody></table>"
        "<table><tbody><tr><td>x</td></tr></tbody></table>"
    )
    html = str(lesson.scrollable_tables(body))
    assert html.count('role="region" tabindex="0"') == 2
    assert 'aria-label="Table 1: Route, Onset, Peak, …"><table>' in html
    assert 'aria-label="Table 2"><table>' in html
    assert html.startswith("<p>Intro</p>")


def test_a_table_label_is_escaped():
    body = "<table><thead><tr><th>A &amp; &quot;B&quot;</th></tr></thead></table>"
    assert 'aria-label="Table 1: A &amp; &#34;B&#34;"' in str(lesson.scrollable_tables(body))
