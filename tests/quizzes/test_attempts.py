"""Drawing, grading, rules, review and the bad inputs of the quiz engine."""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kaptrain.accounts.models import Role
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.courses import services as courses
from kaptrain.quizzes import services
from kaptrain.quizzes.models import Accommodation, Attempt, AttemptStatus, Question, QuestionRevision, QuestionType
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, sign_in
from tests.factories import correct_answers, enrolled, make_user, pass_quiz, quiz, record, set_rules


def start(client, slug: str = "alpha-quiz") -> int:
    client.get("/courses/demo-course/modules/alpha")  # a module's quiz needs the module opened first
    response = client.post(f"/courses/demo-course/quizzes/{slug}/start")
    assert response.status_code == 302, response.data
    return int(response.location.rsplit("/", 1)[1])


def start_final(client, db, user) -> int:  # type: ignore[no-untyped-def]
    """Take the learner through every module (the services), then start the final assessment in the browser."""
    pass_quiz(db, user, "alpha-quiz")
    pass_quiz(db, user, "beta-quiz")
    gamma = record(db, user).modules[2]
    gamma.progress = courses.open_module(db, user.id, gamma.module)
    courses.mark_read(db, gamma)
    db.commit()
    return start(client, "demo-final")


def attempt_form(db, attempt_id: int, right: bool = True) -> dict[str, list[str]]:
    db.expire_all()
    return correct_answers(db.get(Attempt, attempt_id), right)


def test_attempt_draws_the_configured_number_and_reads_the_same_on_reload(client, db, learner):
    attempt_id = start(client)
    first = client.get(f"/attempts/{attempt_id}").data
    second = client.get(f"/attempts/{attempt_id}").data
    assert first == second
    assert len(set(re.findall(rb'name="q-(\d+)"', first))) == 3  # draw: 3 of a bank of 6
    assert start(client) == attempt_id  # "start" again returns to the open attempt


def test_draw_and_shuffle_vary_between_attempts(db):
    q = quiz(db, "alpha-quiz")
    seen = set()
    for seed in range(8):
        user = make_user(db)
        enrolled(db, user)
        a = services.start_attempt(db, user.id, q, None, random.Random(seed))
        seen.add(tuple((i.question_revision_id, tuple(i.option_order)) for i in a.items))
    assert len(seen) > 1


def test_open_attempt_page_holds_no_answer_key(client, db, learner):
    attempt_id = start(client)
    page = client.get(f"/attempts/{attempt_id}").data.decode()
    attempt = db.get(Attempt, attempt_id)
    assert "correct" not in page.lower()
    assert "explanation" not in page.lower() and "Because right" not in page
    for item in attempt.items:
        values = re.findall(rf'name="q-{item.id}" value="([^"]+)"', page)
        assert values == [str(i) for i in range(len(item.option_order))]  # positions, not ids
    assert client.get(f"/attempts/{attempt_id}").headers["Cache-Control"] == "no-store"


def test_passing_completes_the_module_and_opens_the_next(client, db, learner):
    attempt_id = start(client)
    response = client.post(f"/attempts/{attempt_id}/submit", data=attempt_form(db, attempt_id))
    assert response.location.endswith(f"/attempts/{attempt_id}/result")
    page = client.get(response.location).data
    assert b"Passed: 100%" in page and b"Continue to module 2: Module Beta" in page
    assert b"Why:" in page  # explanations shown once passed
    assert client.get("/courses/demo-course/modules/beta").status_code == 200


def test_failed_attempt_shows_what_was_wrong_but_not_the_answers(client, db, learner):
    attempt_id = start(client)
    client.post(f"/attempts/{attempt_id}/submit", data=attempt_form(db, attempt_id, right=False))
    page = client.get(f"/attempts/{attempt_id}/result").data
    assert b"Not passed: 0%" in page
    assert b"incorrect" in page and b"Re-read:" in page
    assert b"(correct answer)" not in page and b"Why:" not in page
    assert b"You have 1 attempt left" in page


def test_once_passed_the_earlier_failed_attempts_show_their_answers_too(client, db, learner):
    failed = start(client)
    client.post(f"/attempts/{failed}/submit", data=attempt_form(db, failed, right=False))
    assert b"Why:" not in client.get(f"/attempts/{failed}/result").data
    passed = start(client)
    client.post(f"/attempts/{passed}/submit", data=attempt_form(db, passed))
    page = client.get(f"/attempts/{failed}/result").data
    assert b"Not passed: 0%" in page and b"Why:" in page and b"(correct answer)" in page
    assert b"shown once you pass" not in page


def test_double_submission_grades_once_and_shows_the_same_result(client, db, learner):
    attempt_id = start(client)
    right = attempt_form(db, attempt_id)
    wrong = attempt_form(db, attempt_id, right=False)
    first = client.post(f"/attempts/{attempt_id}/submit", data=right)
    double_click = client.post(f"/attempts/{attempt_id}/submit", data=right)
    assert first.location == double_click.location
    assert "already been submitted" not in client.get(first.location).get_data(as_text=True)  # nothing to tell
    other_tab = client.post(f"/attempts/{attempt_id}/submit", data=wrong)
    assert first.location == other_tab.location
    # Another tab's different answers: the learner is told they were not counted.
    told = client.get(other_tab.location).get_data(as_text=True)
    assert "already been submitted, in another window or tab" in told and "were not counted" in told
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    assert attempt.score == 100.0 and attempt.passed
    assert db.scalar(select(func.count()).select_from(Attempt)) == 1


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda form: {k: ["9"] for k in form}, b"not one of the options shown"),
        (lambda form: {**form, "q-999999": ["0"]}, b"do not belong to this attempt"),
        (
            lambda form: {k: ["0", "1"] if i == 0 else v for i, (k, v) in enumerate(form.items())},
            b"takes one answer only",
        ),
    ],
)
def test_bad_submissions_are_refused_and_change_nothing(client, db, learner, tamper, message):
    attempt_id = start(client)
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    singles = [i for i in attempt.items if i.revision.type.value != "multiple"]
    form = correct_answers(attempt)
    if message == b"takes one answer only":
        form = {f"q-{singles[0].id}": form[f"q-{singles[0].id}"], **form}
    response = client.post(f"/attempts/{attempt_id}/submit", data=tamper(form))
    assert response.status_code == 400 and message in response.data
    assert b"Your answers were not submitted" in response.data
    db.expire_all()
    assert db.get(Attempt, attempt_id).status == AttemptStatus.OPEN
    assert all(i.selected is None for i in db.get(Attempt, attempt_id).items)


def test_a_forged_score_field_is_ignored(client, db, learner):
    attempt_id = start(client)
    form = attempt_form(db, attempt_id, right=False)
    client.post(f"/attempts/{attempt_id}/submit", data={**form, "score": "100", "passed": "1"})
    db.expire_all()
    assert db.get(Attempt, attempt_id).passed is False


def test_someone_elses_attempt_is_not_found(app, client, db, learner):
    other = make_user(db)
    enrolled(db, other)
    theirs = services.start_attempt(db, other.id, quiz(db, "alpha-quiz"), None)
    db.commit()
    for method, url in (
        ("get", f"/attempts/{theirs.id}"),
        ("get", f"/attempts/{theirs.id}/result"),
        ("post", f"/attempts/{theirs.id}/submit"),
    ):
        response = getattr(client, method)(url, data={})
        assert response.status_code == 404
    db.expire_all()
    assert db.get(Attempt, theirs.id).status == AttemptStatus.OPEN


def test_quiz_of_a_locked_module_is_refused(client, db, learner):
    response = client.post("/courses/demo-course/quizzes/beta-quiz/start")
    assert response.status_code == 403
    assert b"Pass the quiz for module 1: Module Alpha" in response.data
    assert db.scalar(select(func.count()).select_from(Attempt)) == 0


def test_a_locked_quiz_page_points_to_what_is_open(client, db, learner):
    """A quiz whose module is still locked sends the learner to the outline, never to the locked module; one whose
    module is open but not yet read sends them to the module."""
    locked = client.get("/courses/demo-course/quizzes/beta-quiz").get_data(as_text=True)
    assert "This quiz is not open to you yet" in locked
    assert "/courses/demo-course/modules/beta" not in locked and "See the course outline" in locked
    alpha = client.get("/courses/demo-course/quizzes/alpha-quiz").get_data(as_text=True)
    if "This quiz is not open to you yet" in alpha:  # the fixture's alpha quiz waits for its module to be read
        assert 'href="/courses/demo-course/modules/alpha"' in alpha


def test_cooldown_after_the_allowed_attempts(client, db, learner):
    for _ in range(2):  # max_attempts: 2 in the fixture
        attempt_id = start(client)
        client.post(f"/attempts/{attempt_id}/submit", data=attempt_form(db, attempt_id, right=False))
    response = client.post("/courses/demo-course/quizzes/alpha-quiz/start")
    assert response.status_code == 429 and b"You have used all 2 attempts" in response.data
    assert b"You can try again after" in client.get("/courses/demo-course/quizzes/alpha-quiz").data
    # After the cooldown a new block of attempts opens.
    db.expire_all()
    for a in db.scalars(select(Attempt)):
        a.submitted_at = a.submitted_at - dt.timedelta(hours=25)
    db.commit()
    assert client.post("/courses/demo-course/quizzes/alpha-quiz/start").status_code == 302


def test_late_submission_is_rejected_and_the_attempt_closes_as_not_passed(client, db, learner):
    attempt_id = start_final(client, db, learner)
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    assert attempt.deadline_at is not None
    form = correct_answers(attempt)
    attempt.deadline_at = attempt.deadline_at - dt.timedelta(minutes=31)
    db.commit()
    response = client.post(f"/attempts/{attempt_id}/submit", data=form)
    # Closed at this first observation of the deadline (not left open), and the learner is told why.
    assert response.status_code == 302 and response.location.endswith("/result")
    assert b"time limit ran out before these answers were sent" in client.get(response.location).data
    db.expire_all()
    assert db.get(Attempt, attempt_id).status == AttemptStatus.SUBMITTED
    reopened = client.get(f"/attempts/{attempt_id}")
    assert reopened.status_code == 302 and reopened.location.endswith("/result")
    assert b"The time limit ran out before this attempt was submitted" in client.get(reopened.location).data
    page = client.get("/courses/demo-course/quizzes/demo-final").data
    assert b"(time ran out)" in page
    db.expire_all()
    closed = db.get(Attempt, attempt_id)
    assert closed.status == AttemptStatus.SUBMITTED and closed.late and not closed.passed


def test_accommodation_adds_time_and_attempts_shown_to_the_learner(app, client, db, learner, login):
    admin = make_user(db, role=Role.ADMIN)
    db.commit()
    admin_client = app.test_client()
    sign_in(admin_client, db, admin)  # the password, then the two-factor code staff must give
    q = quiz(db, "alpha-quiz")
    response = admin_client.post(
        "/admin/accommodations",
        data={
            "email": learner.email,
            "quiz": str(q.id),
            "extra_minutes": "15",
            "extra_attempts": "2",
            "note": "DSS letter",
        },
    )
    assert response.status_code == 302
    # The fixture quiz has no time limit: the admin is told the minutes change nothing for now.
    assert "has no time limit, so the 15 extra minutes change nothing" in admin_client.get(response.location).text
    page = client.get("/courses/demo-course/quizzes/alpha-quiz").data
    assert b"Attempts: 4 (including 2 extra granted to you)" in page
    rules = services.rules_for(db, learner.id, q)
    assert rules.max_attempts == 4 and rules.extra_minutes == 15


def test_accommodation_form_errors(app, client, db):
    admin = make_user(db, role=Role.ADMIN)
    db.commit()
    sign_in(client, db, admin)
    response = client.post(
        "/admin/accommodations",
        data={"email": "ghost@example.org", "quiz": "0", "extra_minutes": "-5", "extra_attempts": "1"},
    )
    assert response.status_code == 422
    assert b"Choose a quiz." in response.data and b"Use 0 to 600 minutes." in response.data


def test_the_accommodation_form_says_every_mistake_at_once(client, db):
    """The walk-through met one error a submission: the reason, then the email, then "grant something"."""
    admin = make_user(db, role=Role.ADMIN)
    db.commit()
    sign_in(client, db, admin)
    final = quiz(db, "demo-final")
    response = client.post(
        "/admin/accommodations",
        data={"email": "nobody@example.org", "quiz": str(final.id), "extra_minutes": "0", "extra_attempts": "0"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for said in ("Give the reason for this accommodation.", "No account has this email.", "extra attempts or both"):
        assert said in page, said
    assert db.scalar(select(func.count()).select_from(Accommodation)) == 0
    # An address that fails its own checks is not looked up (PostgreSQL refuses a NUL byte: it was a 500).
    nul = client.post("/admin/accommodations", data={"email": "\x00", "quiz": "999999999999", "note": "x"})
    assert nul.status_code == 422 and "No account has this email." not in nul.get_data(as_text=True)


def test_review_shows_the_question_version_that_was_asked(client, db, learner):
    attempt_id = start(client)
    client.post(f"/attempts/{attempt_id}/submit", data=attempt_form(db, attempt_id))
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    stem = attempt.items[0].revision.stem
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        shutil.copytree(FIXTURE_MODULES, root / "modules")
        shutil.copytree(FIXTURE_QUIZZES, root / "quizzes")
        p = root / "quizzes/demo-course/01-alpha.yaml"
        p.write_text(p.read_text().replace(f"stem: {stem}", "stem: A rewritten question?"))
        import_content(db, read_content(root / "modules", root / "quizzes"))
        db.commit()
    page = client.get(f"/attempts/{attempt_id}/result").data.decode()
    assert stem in page


def test_true_or_false_always_shows_true_first(db):
    q = quiz(db, "alpha-quiz")
    set_rules(db, q, draw=6)
    question = db.scalar(select(Question).where(Question.quiz_id == q.id).order_by(Question.position))
    revision = db.get(QuestionRevision, question.published_revision_id)
    revision.type = QuestionType.TRUE_FALSE
    revision.options = [{"id": "f", "text": "False", "correct": True}, {"id": "t", "text": "True", "correct": False}]
    db.flush()
    orders = set()
    for seed in range(8):
        user = make_user(db)
        enrolled(db, user)
        a = services.start_attempt(db, user.id, q, None, random.Random(seed))
        orders |= {tuple(i.option_order) for i in a.items if i.question_revision_id == revision.id}
    assert orders == {("t", "f")}


def test_an_earlier_result_is_shown_while_a_later_attempt_has_run_out_of_time(client, db, learner):
    """Viewing attempt 1's result observes attempt 2's deadline and closes it: a GET that writes, so it must begin
    as a writer (on SQLite a reader's transaction cannot always take the write lock: a 500)."""
    first = start_final(client, db, learner)
    db.expire_all()
    assert client.post(f"/attempts/{first}/submit", data=correct_answers(db.get(Attempt, first), right=False))
    second = start(client, "demo-final")
    db.expire_all()
    late = db.get(Attempt, second)
    late.deadline_at = late.deadline_at - dt.timedelta(hours=2)
    db.commit()
    response = client.get(f"/attempts/{first}/result")
    assert response.status_code == 200 and b"Not passed" in response.data
    db.expire_all()
    assert db.get(Attempt, second).status == AttemptStatus.SUBMITTED  # closed at this first observation
