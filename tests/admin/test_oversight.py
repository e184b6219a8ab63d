"""Instructor oversight and the evaluation summary: access, a stuck learner, the figures, the CSV."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from kaptrain.accounts.models import Role
from kaptrain.certificates import services as certificates
from kaptrain.certificates.services import EvaluationAnswers
from kaptrain.courses import services as courses
from kaptrain.quizzes import services as quizzes
from tests.factories import complete_learning, correct_answers, course, enrolled, make_user, pass_quiz, quiz, start

PAGES = [
    "/instructor/courses/demo-course/learners",
    "/instructor/courses/demo-course/evaluations",
    "/instructor/courses/demo-course/evaluations.csv",
]


@pytest.fixture
def instructor(db, login):
    """A logged-in instructor."""
    user = make_user(db, role=Role.INSTRUCTOR, full_name="Ivy Instructor")
    db.commit()
    return login(user)


def test_learners_get_403_on_instructor_pages(client, db, login):
    login(make_user(db))
    db.commit()
    for url in PAGES:
        assert client.get(url).status_code == 403, url


def test_instructor_pages_refuse_an_unknown_course(client, instructor):
    assert client.get("/instructor/courses/nope/learners").status_code == 404


def fail_alpha(db, user, times: int) -> None:
    q = quiz(db, "alpha-quiz")
    courses.open_module(db, user.id, q.module)
    for _ in range(times):
        attempt = start(db, user, q)
        quizzes.submit_attempt(db, attempt, correct_answers(attempt, right=False))


def test_a_learner_who_failed_every_attempt_is_stuck(client, db, instructor):
    stuck = make_user(db, full_name="Stuck Learner", email="stuck@example.org")
    enrolled(db, stuck)
    fail_alpha(db, stuck, 2)  # alpha-quiz allows 2 attempts, then a 24-hour pause
    trying = make_user(db, full_name="Trying Learner", email="trying@example.org")
    enrolled(db, trying)
    fail_alpha(db, trying, 1)
    fresh = make_user(db, full_name="Fresh Learner")
    enrolled(db, fresh, acknowledged=False)
    db.commit()
    page = client.get("/instructor/courses/demo-course/learners").get_data(as_text=True)
    assert "stuck@example.org" in page and "trying@example.org" in page and "Fresh Learner" in page
    assert "2 of 2" in page and "1 of 2" in page and "Course disclosures" in page
    only = client.get("/instructor/courses/demo-course/learners?stuck=1").get_data(as_text=True)
    assert "mailto:stuck@example.org" in only and "Trying Learner" not in only and "Fresh Learner" not in only
    assert "may try again" in only
    by_step = client.get("/instructor/courses/demo-course/learners?step=disclosures").get_data(as_text=True)
    assert "Fresh Learner" in by_step and "Stuck Learner" not in by_step
    assert page.count('method="post"') == 1  # only "Log out": nothing to change here


def test_evaluations_stay_hidden_until_a_group_has_answered(client, db, instructor):
    ids = [o["id"] for o in course(db).objectives]
    for n in range(2):
        learner = make_user(db)
        enrolled(db, learner)
        answers = EvaluationAnswers(
            dict.fromkeys(ids, "met"),
            5,
            4,
            5,
            True,
            comments=f"Only learner {n} wrote this.",
            evidence_balanced="partly",
            evidence_comment=f"Learner {n} wanted the trial sizes.",
            hours_spent=Decimal(6 + n),
        )
        certificates.submit_evaluation(db, complete_learning(db, learner), answers)
    db.commit()
    page = client.get("/instructor/courses/demo-course/evaluations").get_data(as_text=True)
    assert "2 learners have evaluated the course so far" in page and "at least 3" in page
    assert "Only learner" not in page and "mean" not in page and "evaluations.csv" not in page
    assert "Reported commercial bias" not in page  # a count of one or two would say what those learners answered
    assert "Balance and evidence" not in page and "trial sizes" not in page
    assert "Median" not in page and "Time spent" not in page  # nor the new questions' answers
    refused = client.get("/instructor/courses/demo-course/evaluations.csv")
    assert refused.status_code == 409 and "at least 3 learners" in refused.get_data(as_text=True)
    assert "Only learner" not in refused.get_data(as_text=True)


def test_evaluation_summary_matches_the_evaluations(client, db, instructor):
    c = course(db)
    ids = [o["id"] for o in c.objectives]
    given = [
        EvaluationAnswers(
            dict.fromkeys(ids, "met"),
            5,
            4,
            5,
            True,
            comments="Very practical.",
            practice_change="yes",
            change_plan="Add a bladder-symptom question to every review.",
            evidence_balanced="yes",
            hours_spent=Decimal("9.5"),
        ),
        EvaluationAnswers(
            dict.fromkeys(ids, "partly"),
            3,
            4,
            4,
            False,
            "Drug brand named often.",
            "",
            "already",
            evidence_balanced="partly",
            evidence_comment="The esketamine section did not say which uses are off-label.",
        ),
        EvaluationAnswers(
            dict.fromkeys(ids, "not_met"),
            4,
            2,
            3,
            True,
            practice_change="yes",
            evidence_balanced="no",
            evidence_comment="A single open-label study was presented as settled.",
            hours_spent=Decimal(6),
        ),
    ]
    for answers in given:
        learner = make_user(db)
        enrolled(db, learner)
        certificates.submit_evaluation(db, complete_learning(db, learner), answers)
    db.commit()
    page = client.get("/instructor/courses/demo-course/evaluations").get_data(as_text=True)
    assert "Relevance to my practice: mean 4.00 of 5" in page
    assert "Quality of the material: mean 3.33 of 5" in page
    assert "Overall rating: mean 4.00 of 5" in page
    assert "Commercial bias reported (1)" in page and "Drug brand named often." in page
    assert "Very practical." in page and "<svg" in page and 'fill="#1f5f6b"' in page
    # Commitment to change: how many will change their practice, and what they plan.
    assert '<th scope="row">Yes, I plan to change something</th><td>2</td>' in page
    assert '<th scope="row">No change needed: I already practise this way</th><td>1</td>' in page
    assert "What learners plan to change (1)" in page and "Add a bladder-symptom question" in page
    # Balance and evidence: counted as the answers were given, with the comments of "partly" and "no", sorted.
    evidence = page[page.index('id="evidence-h"') : page.index('id="hours-h"')]
    for label in ("Yes", "Partly", "No"):
        assert f'<th scope="row">{label}</th><td>1</td>' in evidence
    assert "What learners found unbalanced or unclear (2)" in evidence
    assert evidence.index("A single open-label study") < evidence.index("The esketamine section")
    # The hours spent: the median of the two who answered (6 and 9.5), beside the hours the course is approved for.
    assert "Median <strong>7.75 hours</strong>" in page and "from the 2 of 3 learners who answered" in page
    assert "approved for 3.5 CE hours" in page
    response = client.get("/instructor/courses/demo-course/evaluations.csv")
    assert response.is_streamed
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert sorted(r["practice_change"] for r in rows) == ["already", "yes", "yes"]
    assert [r["change_plan"] for r in rows if r["change_plan"]] == ["Add a bladder-symptom question to every review."]
    assert len(rows) == 3
    assert sorted(r["relevance"] for r in rows) == ["3", "4", "5"]
    assert [r["free_of_bias"] for r in rows].count("no") == 1
    assert sorted(r["evidence_balanced"] for r in rows) == ["no", "partly", "yes"]
    assert {r["evidence_balanced"]: r["evidence_comment"] for r in rows}["no"].startswith("A single open-label")
    # No learner's hours: they could be matched to the hours claimed that the learner's record shows instructors.
    assert not any("hours" in column for column in rows[0]) and "9.5" not in response.get_data(as_text=True)


def test_a_new_evaluation_never_shows_alone_so_it_cannot_be_matched_to_its_learner(client, db, instructor):
    """The attack: note the summary and CSV, see one learner move past the evaluation step, look again. Results are
    released in whole groups (3 here), in an order that says nothing about who answered when."""
    ids = [o["id"] for o in course(db).objectives]

    def evaluate(comment: str, rating: int, balanced: str = "yes", why: str = "", hours: int = 5) -> None:
        learner = make_user(db)
        enrolled(db, learner)
        answers = EvaluationAnswers(
            dict.fromkeys(ids, "met"),
            rating,
            rating,
            rating,
            True,
            comments=comment,
            evidence_balanced=balanced,
            evidence_comment=why,
            hours_spent=Decimal(hours),
        )
        certificates.submit_evaluation(db, complete_learning(db, learner), answers)
        db.commit()

    for n, comment in enumerate(("Zebra-striped slides.", "Clear.", "Mostly useful.")):
        evaluate(comment, 4 + n % 2)
    before = client.get("/instructor/courses/demo-course/evaluations").get_data(as_text=True)
    before_csv = client.get("/instructor/courses/demo-course/evaluations.csv").get_data(as_text=True)
    # Comments in the order of what they say, not of who answered first.
    assert before.index("Clear.") < before.index("Mostly useful.") < before.index("Zebra-striped slides.")
    assert "Median <strong>5.0 hours</strong>" in before
    evaluate("The dosing module felt unsafe to me.", 1, "no", "Off-label doses given as routine.", hours=40)
    after = client.get("/instructor/courses/demo-course/evaluations").get_data(as_text=True)
    after_csv = client.get("/instructor/courses/demo-course/evaluations.csv").get_data(as_text=True)
    assert "felt unsafe" not in after and "felt unsafe" not in after_csv and after_csv == before_csv
    assert "Off-label doses" not in after and "Off-label doses" not in after_csv
    assert "Median <strong>5.0 hours</strong>" in after and "from the 3 of 3 learners" in after  # not moved by 40
    assert "4 (3 shown below)" in after and "1 more will show when the group is complete" in after
    evaluate("Good.", 5)
    evaluate("Fine.", 4)
    released = client.get("/instructor/courses/demo-course/evaluations").get_data(as_text=True)
    assert "felt unsafe" in released and "shown below" not in released
    evidence = released[released.index('id="evidence-h"') : released.index('id="hours-h"')]
    assert "Off-label doses given as routine." in evidence and '<th scope="row">No</th><td>1</td>' in evidence
    assert "from the 6 of 6 learners" in released
    body = client.get("/instructor/courses/demo-course/evaluations.csv").data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 6 and rows[0]["relevance"] == "1"  # sorted by the answers, not by when they came
    assert "submitted_in" not in rows[0] and not any(re.search(r"\d{4}-\d{2}", ",".join(r.values())) for r in rows)


def test_an_instructor_opens_a_learners_record_in_the_course(client, db, instructor):
    """The walk-through found the learners table a dead end: each name now opens that learner's record."""
    learner = make_user(db, full_name="Rae Record")
    enrolled(db, learner)
    alpha = quiz(db, "alpha-quiz")
    courses.open_module(db, learner.id, alpha.module)
    failed = start(db, learner, alpha)
    quizzes.submit_attempt(db, failed, correct_answers(failed, right=False))
    pass_quiz(db, learner, "alpha-quiz")
    stranger = make_user(db, full_name="Not Enrolled")
    evaluated = make_user(db, full_name="Eva Luated")
    enrolled(db, evaluated)
    ids = [o["id"] for o in course(db).objectives]
    certificates.submit_evaluation(
        db,
        complete_learning(db, evaluated),
        EvaluationAnswers(dict.fromkeys(ids, "met"), 4, 4, 4, True, evidence_balanced="yes"),
    )
    db.commit()
    table = client.get("/instructor/courses/demo-course/learners").get_data(as_text=True)
    record_url = f"/instructor/courses/demo-course/learners/{learner.id}"
    assert f'href="{record_url}">Rae Record</a>' in table
    page = client.get(record_url).get_data(as_text=True)
    assert "Rae Record" in page and "1. Module Alpha" in page and "100%" in page
    # Every attempt, the failed one too, oldest first: how the learner came to pass.
    history = page.split('id="attempts-h"')[1]
    assert history.index("Not passed (pass mark") < history.index("Passed</td>")
    assert history.count("<tr>") == 3  # the header and two attempts
    # Whether they evaluated, never when: a day (or a month) could tie them to one evaluation (the second attack).
    learner_record = client.get(f"/instructor/courses/demo-course/learners/{evaluated.id}").get_data(as_text=True)
    assert "Evaluation submitted</dt><dd>Yes</dd>" in learner_record
    assert page.count('method="post"') == 1  # only "Log out": the record is read-only
    missing = client.get(f"/instructor/courses/demo-course/learners/{stranger.id}")
    assert missing.status_code == 404 and "not enrolled in this course" in missing.get_data(as_text=True)
