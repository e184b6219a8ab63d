"""Item analysis matches a hand computation on seeded attempts; only instructors see it."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.quizzes import analysis, services
from kaptrain.quizzes.grading import grade
from kaptrain.quizzes.models import Attempt, Question, QuestionType
from tests.factories import enrolled, make_user, quiz, set_rules


def seed_attempts(db, patterns: list[list[bool]]) -> list[Attempt]:
    """One learner per pattern; each pattern says which drawn questions (in bank order) they get right."""
    q = quiz(db, "alpha-quiz")
    set_rules(db, q, draw=3)
    attempts = []
    for pattern in patterns:
        user = make_user(db)
        enrolled(db, user)
        a = services.start_attempt(db, user.id, q, None)
        form = {}
        for item, right in zip(sorted(a.items, key=lambda i: i.revision.question.position), pattern, strict=True):
            ids = [o["id"] for o in item.revision.options if bool(o["correct"]) == right]
            form[f"q-{item.id}"] = services.form_for(item, ids if right else ids[:1])
        attempts.append(services.submit_attempt(db, a, form))
    return attempts


def test_figures_match_a_hand_computation(db):
    q = quiz(db, "alpha-quiz")
    # Only three questions in the bank so every attempt draws the same ones.
    for question in db.scalars(select(Question).where(Question.quiz_id == q.id, Question.position >= 3)):
        question.is_retired = True
    db.flush()
    patterns = [[True, True, True], [True, True, False], [True, False, False], [False, False, True]]
    seed_attempts(db, patterns)
    stats = analysis.quiz_stats(db, q)
    assert stats.attempts == 4 and stats.passed == 1 and stats.pass_rate == 0.25
    assert dict(stats.histogram)["0–9%"] == 0 and dict(stats.histogram)["30–39%"] == 2
    first, second, third = stats.items[:3]
    assert (first.drawn, first.facility) == (4, 0.75)
    assert second.facility == 0.5 and third.facility == 0.5
    # Hand computation for question 1: item scores 1,1,1,0; rest-of-test fractions 1, .5, 0, .5.
    x, y = [1, 1, 1, 0], [1.0, 0.5, 0.0, 0.5]
    mx, my = sum(x) / 4, sum(y) / 4
    r = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / math.sqrt(
        sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y)
    )
    assert first.discrimination == pytest.approx(r)
    assert third.discrimination == pytest.approx(analysis.point_biserial([1, 0, 0, 1], [1.0, 1.0, 0.5, 0.0]))
    chosen = {oid: n for oid, _t, ok, n in first.option_counts}
    assert chosen["a"] == 3 and sum(chosen.values()) == 4
    assert all(not s.drawn for s in stats.items[3:])


def test_flags():
    assert analysis.point_biserial([1, 1], [0.5, 0.5]) is None
    assert analysis.point_biserial([1, 0, 1, 0], [0.0, 1.0, 0.0, 1.0]) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("discrimination", "flags"),
    [(-0.1, ["negative discrimination"]), (0.0, ["weak discrimination"]), (0.19, ["weak discrimination"]), (0.2, [])],
)
def test_a_question_that_barely_tells_learners_apart_is_flagged(discrimination, flags):
    """The walk-through: items at 0.00-0.06 over 30 answers carried no flag (only below 0 did)."""
    stats = analysis.ItemStats("q", "Stem", 1, drawn=30, facility=0.6, discrimination=discrimination)
    assert analysis._flags(stats, min_attempts=20) == flags


def test_grading_registry_exact_and_partial():
    opts = [{"id": "a", "correct": True}, {"id": "b", "correct": True}, {"id": "c", "correct": False}]
    assert grade(QuestionType.MULTIPLE, opts, frozenset({"a", "b"}), False) == 1.0
    assert grade(QuestionType.MULTIPLE, opts, frozenset({"a"}), False) == 0.0
    assert grade(QuestionType.MULTIPLE, opts, frozenset({"a"}), True) == 0.5
    assert grade(QuestionType.MULTIPLE, opts, frozenset({"a", "c"}), True) == 0.0
    assert grade(QuestionType.SINGLE, opts[:1] + opts[2:], frozenset({"a"}), True) == 1.0


@pytest.mark.parametrize("role", [Role.INSTRUCTOR, Role.ADMIN])
def test_staff_see_analysis_and_csv(client, db, login, role):
    login(make_user(db, role=role))
    page = client.get("/instructor/courses/demo-course/quizzes/alpha-quiz/analysis")
    assert page.status_code == 200 and b"Item analysis" in page.data
    # Each question leads to its editor, where a flagged one is fixed.
    assert b'href="/author/courses/demo-course/quizzes/alpha-quiz/questions/' in page.data
    csv = client.get("/instructor/courses/demo-course/quizzes/alpha-quiz/analysis.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.data.decode("utf-8-sig").splitlines()[0].startswith("question,revisions,times_drawn,facility")
    assert csv.data.startswith(b"\xef\xbb\xbf")  # the byte-order mark: Excel then reads the file as UTF-8


def test_the_instructor_pages_start_at_one_place_that_links_learners_and_evaluations(client, db, login):
    login(make_user(db, role=Role.INSTRUCTOR))
    home = client.get("/instructor/")
    assert home.status_code == 302 and home.location == "/instructor/quizzes"
    page = client.get(home.location).get_data(as_text=True)
    for link in ("/instructor/courses/demo-course/learners", "/instructor/courses/demo-course/evaluations"):
        assert f'href="{link}"' in page
        assert client.get(link).status_code == 200
    assert 'href="/instructor/courses/demo-course/quizzes/alpha-quiz/analysis"' in page
    # In the course's order: the module quizzes, then the final assessment (it was listed first).
    order = [page.index(f"/quizzes/{slug}/analysis") for slug in ("alpha-quiz", "beta-quiz", "demo-final")]
    assert order == sorted(order)


@pytest.mark.parametrize(
    "url",
    [
        "/instructor/",
        "/instructor/quizzes",
        "/instructor/courses/demo-course/quizzes/alpha-quiz/analysis",
        "/instructor/courses/demo-course/quizzes/alpha-quiz/analysis.csv",
        "/admin/accommodations",
    ],
)
def test_learners_get_403_on_staff_pages(client, db, login, url):
    login(make_user(db))
    response = client.get(url)
    assert response.status_code == 403
    assert b"You do not have access to this page" in response.data


def test_instructor_cannot_use_admin_pages(client, db, login):
    login(make_user(db, role=Role.INSTRUCTOR))
    assert client.get("/admin/accommodations").status_code == 403
    assert client.post("/admin/accommodations", data={"email": "x@example.org"}).status_code == 403


def test_a_revised_question_says_its_option_counts_are_the_new_revisions(client, db, login):
    from tests.quizzes.test_analysis_in_sql import revise  # noqa: PLC0415 - the same edit as the SQL test's

    seed_attempts(db, [[True, True, True], [False, True, True]])
    first = db.scalar(select(Question).where(Question.key == "alpha-q1"))
    revise(db, first, "alpha question 1, reworded")
    db.commit()
    login(make_user(db, role=Role.INSTRUCTOR))
    page = client.get("/instructor/courses/demo-course/quizzes/alpha-quiz/analysis").get_data(as_text=True)
    assert "On the current revision: not answered since it was published." in page
