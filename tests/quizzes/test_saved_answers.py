"""Answers kept on the server as the learner goes: saving with and without script, coming back, blank submissions,
and the saves that are refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest

from kaptrain.quizzes import services
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.factories import correct_answers, enrolled, make_user, quiz
from tests.quizzes.test_attempts import start, start_final

JSON = {"Accept": "application/json"}


def _attempt(db, attempt_id: int) -> Attempt:
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    assert attempt is not None
    return attempt


def _ticked(page: str, name: str) -> list[str]:
    """The values of the checked inputs named `name` on a page, sorted."""
    return sorted(re.findall(rf'<input type="\w+" name="{name}" value="(\d+)" checked>', page))


def test_save_answers_button_keeps_the_choices_and_the_page_ticks_them_again(client, db, learner):
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    first, *rest = form
    response = client.post(f"/attempts/{attempt_id}/save", data={first: form[first]})
    assert response.status_code == 302 and response.location.endswith(f"/attempts/{attempt_id}")
    page = client.get(response.location).data.decode()
    assert "Your answers are saved. You can leave this page and come back to them." in page
    assert _ticked(page, first) == sorted(form[first])
    assert all(_ticked(page, other) == [] for other in rest)
    attempt = _attempt(db, attempt_id)
    assert attempt.status == AttemptStatus.OPEN
    assert [i.selected for i in attempt.items if f"q-{i.id}" == first][0] is not None
    assert "Error:" not in page.split("</title>")[0]


def test_leaving_and_coming_back_restores_every_ticked_answer(client, db, learner):
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    assert client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON).status_code == 200
    client.get("/dashboard")  # away, and back by the quiz page's "Return to your open attempt"
    back = client.post("/courses/demo-course/quizzes/alpha-quiz/start")
    page = client.get(back.location).data.decode()
    for name, values in form.items():
        assert _ticked(page, name) == sorted(values)


def test_the_pages_script_saves_by_json_and_hears_which_questions_are_blank(client, db, learner):
    attempt_id = start(client)
    attempt = _attempt(db, attempt_id)
    form = correct_answers(attempt)
    last = attempt.items[-1]
    del form[f"q-{last.id}"]
    response = client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON)
    assert response.status_code == 200
    attempt = _attempt(db, attempt_id)
    saved_as = services.answers_fingerprint(attempt.items, services.saved_answers(attempt))
    assert response.get_json() == {"saved": True, "saved_as": saved_as, "unanswered": [last.position + 1]}
    assert services.unanswered(_attempt(db, attempt_id), services.saved_answers(_attempt(db, attempt_id))) == [3]


def _shown(page: str) -> str:
    """The fingerprint of the saved answers an attempt page carries (services.save_answers)."""
    found = re.search(r'name="saved_as" value="([0-9a-f]{16})"', page)
    assert found, "no saved_as field on the attempt page"
    return found.group(1)


def test_a_second_tab_s_save_does_not_put_back_what_the_first_changed(client, db, learner):
    """The walk-through: each tab's save sent its whole form, so a stale tab silently undid the other's answers."""
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    first, second, *_ = form
    loaded = _shown(client.get(f"/attempts/{attempt_id}").text)  # both tabs load the page
    in_b = client.post(f"/attempts/{attempt_id}/save", data={second: form[second], "saved_as": loaded}, headers=JSON)
    assert in_b.status_code == 200 and in_b.get_json()["saved_as"] != loaded
    in_a = client.post(f"/attempts/{attempt_id}/save", data={first: form[first], "saved_as": loaded}, headers=JSON)
    assert in_a.status_code == 409 and in_a.get_json()["changed_elsewhere"] is True
    assert "changed in another window or tab" in in_a.get_json()["error"]
    kept = services.saved_answers(_attempt(db, attempt_id))
    assert [f"q-{i}" for i in kept] == [second]  # tab B's answer stands
    # Tab B goes on from what it saved: its fingerprint moved with its save.
    b_again = {first: form[first], second: form[second], "saved_as": in_b.get_json()["saved_as"]}
    assert client.post(f"/attempts/{attempt_id}/save", data=b_again, headers=JSON).status_code == 200
    assert len(services.saved_answers(_attempt(db, attempt_id))) == 2


def test_without_script_a_stale_save_shows_what_the_other_tab_saved_and_goes_on_from_there(client, db, learner):
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    first, second, *_ = form
    loaded = _shown(client.get(f"/attempts/{attempt_id}").text)
    client.post(f"/attempts/{attempt_id}/save", data={second: form[second], "saved_as": loaded}, headers=JSON)
    stale = client.post(f"/attempts/{attempt_id}/save", data={first: form[first], "saved_as": loaded})
    page = stale.text
    assert stale.status_code == 409 and "changed in another window or tab" in page
    assert "Your answers were not saved" in page and "not submitted" not in page
    # The walk-through: the refusal showed the stale answers, and saving from it again erased the other tab's.
    assert _ticked(page, second) == sorted(form[second]) and _ticked(page, first) == []
    going_on = {second: form[second], first: form[first], "saved_as": _shown(page)}  # as the page now sends it
    assert client.post(f"/attempts/{attempt_id}/save", data=going_on).status_code == 302
    assert {f"q-{i}" for i in services.saved_answers(_attempt(db, attempt_id))} == {first, second}


def test_a_stale_tab_s_submission_grades_nothing_and_shows_what_was_saved(client, db, learner):
    """The second walk-through: submitting from the stale tab wiped the answers the other tab had saved."""
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    loaded = _shown(client.get(f"/attempts/{attempt_id}").text)
    saved = client.post(f"/attempts/{attempt_id}/save", data={**form, "saved_as": loaded}, headers=JSON)
    assert saved.status_code == 200  # tab B answered everything
    first = next(iter(form))
    stale = client.post(f"/attempts/{attempt_id}/submit", data={first: form[first], "saved_as": loaded})
    page = stale.text
    assert stale.status_code == 409 and "Your answers were not submitted" in page and "nothing was submitted" in page
    attempt = _attempt(db, attempt_id)
    assert attempt.status == AttemptStatus.OPEN and len(services.saved_answers(attempt)) == len(form)  # all kept
    for name, values in form.items():
        assert _ticked(page, name) == sorted(values)
    done = client.post(f"/attempts/{attempt_id}/submit", data={**form, "saved_as": _shown(page)})
    assert done.status_code == 302 and _attempt(db, attempt_id).status == AttemptStatus.SUBMITTED


def test_the_fingerprint_does_not_tell_which_option_of_the_file_was_chosen(client, db, learner):
    """Stored option ids follow the file's order, where a key habitually sits first: a digest of them, matched
    against the few candidates, gave each shown option's place in the file (second attack review)."""
    attempt_id = start(client)
    item = max(_attempt(db, attempt_id).items, key=lambda i: len(i.option_order))
    by_stored_id = {hashlib.sha256(f"{item.id}:{oid}".encode()).hexdigest()[:16] for oid in item.option_order}
    for shown in range(len(item.option_order)):
        sent = {f"q-{item.id}": str(shown)}
        saved_as = client.post(f"/attempts/{attempt_id}/save", data=sent, headers=JSON).get_json()["saved_as"]
        assert saved_as not in by_stored_id
        assert saved_as == hashlib.sha256(f"{item.id}:{shown}".encode()).hexdigest()[:16]  # what the page sent


def test_a_save_from_a_page_without_the_fingerprint_is_kept(client, db, learner):
    """A page loaded before the fingerprint existed still saves, as it did."""
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    assert client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON).status_code == 200
    assert len(services.saved_answers(_attempt(db, attempt_id))) == len(form)


def test_a_question_sent_without_an_answer_is_cleared(client, db, learner):
    attempt_id = start(client)
    form = correct_answers(_attempt(db, attempt_id))
    client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON)
    first = next(iter(form))
    client.post(f"/attempts/{attempt_id}/save", data={k: v for k, v in form.items() if k != first}, headers=JSON)
    attempt = _attempt(db, attempt_id)
    assert [f"q-{i.id}" for i in attempt.items if i.selected is None] == [first]


def test_submitting_with_blanks_keeps_every_answer_and_names_the_blanks_as_links(client, db, learner):
    attempt_id = start(client)
    attempt = _attempt(db, attempt_id)
    form = correct_answers(attempt)
    blank = attempt.items[1]
    del form[f"q-{blank.id}"]
    response = client.post(f"/attempts/{attempt_id}/submit", data=form)
    assert response.status_code == 302 and response.location.endswith(f"/attempts/{attempt_id}?check=1")
    page = client.get(response.location).data.decode()
    assert page.startswith("<!doctype html>") and "<title>Error: Quiz alpha: attempt 1" in page
    assert "Your answers were not submitted" in page and "Unanswered" not in page
    assert 'class="error-summary" role="alert" tabindex="-1" autofocus' in page
    assert '<li><a href="#question-2">Question 2</a></li>' in page
    assert 'href="#question-1"' not in page and 'href="#question-3"' not in page
    # The blank question is marked (in words and for assistive technology); the others are not.
    assert re.search(r'<fieldset aria-describedby="[^"]*question-2-error[^"]*" aria-invalid="true">', page)
    assert page.count('aria-invalid="true"') == 1
    assert re.search(r'<p class="error-text" id="question-2-error">Not answered yet: choose (an|every) answer', page)
    for name, values in form.items():
        assert _ticked(page, name) == sorted(values)  # every answer given is still ticked
    kept = _attempt(db, attempt_id)
    assert kept.status == AttemptStatus.OPEN
    assert sum(i.selected is not None for i in kept.items) == 2


def test_after_answering_the_blank_the_submission_grades_everything(client, db, learner):
    attempt_id = start(client)
    attempt = _attempt(db, attempt_id)
    form = correct_answers(attempt)
    client.post(f"/attempts/{attempt_id}/submit", data={k: v for k, v in list(form.items())[:2]})
    response = client.post(f"/attempts/{attempt_id}/submit", data=form)
    assert response.location.endswith("/result")
    assert b"Passed: 100%" in client.get(response.location).data


def test_a_plain_reload_of_the_attempt_does_not_show_the_error(client, db, learner):
    attempt_id = start(client)
    page = client.get(f"/attempts/{attempt_id}").data.decode()
    assert "error-summary" not in page and "<title>Quiz alpha" in page


def test_saving_to_a_submitted_attempt_is_refused_and_changes_nothing(client, db, learner):
    attempt_id = start(client)
    right = correct_answers(_attempt(db, attempt_id))
    wrong = correct_answers(_attempt(db, attempt_id), right=False)
    client.post(f"/attempts/{attempt_id}/submit", data=right)
    for headers in ({}, JSON):
        response = client.post(f"/attempts/{attempt_id}/save", data=wrong, headers=headers)
        assert response.status_code == 409
        assert b"This attempt has been submitted, so its answers can no longer change." in response.data
    attempt = _attempt(db, attempt_id)
    assert attempt.score == 100.0 and all(i.credit == 1.0 for i in attempt.items)


def _expire(db, attempt_id: int) -> None:
    attempt = _attempt(db, attempt_id)
    assert attempt.deadline_at is not None
    attempt.deadline_at = attempt.deadline_at - dt.timedelta(minutes=31)
    db.commit()


def test_saving_after_the_time_limit_is_refused(client, db, learner):
    attempt_id = start_final(client, db, learner)
    form = correct_answers(_attempt(db, attempt_id))
    _expire(db, attempt_id)
    response = client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON)
    assert response.status_code == 409
    assert "time limit for this attempt has run out" in response.get_json()["error"]
    assert all(i.selected is None for i in _attempt(db, attempt_id).items)
    # Without script the attempt is closed at this first observation and the learner sent to the result.
    response = client.post(f"/attempts/{attempt_id}/save", data=form)
    assert response.status_code == 302 and response.location.endswith("/result")
    assert b"graded on the answers saved before the time ran out" in client.get(response.location).data
    closed = _attempt(db, attempt_id)
    assert closed.status == AttemptStatus.SUBMITTED and closed.late and not closed.passed


def test_answers_saved_in_time_are_graded_when_the_time_runs_out(client, db, learner):
    attempt_id = start_final(client, db, learner)
    form = correct_answers(_attempt(db, attempt_id))
    assert client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON).status_code == 200
    _expire(db, attempt_id)
    response = client.get(f"/attempts/{attempt_id}")
    assert response.status_code == 302 and response.location.endswith("/result")
    closed = _attempt(db, attempt_id)
    assert closed.status == AttemptStatus.SUBMITTED and closed.late
    assert closed.score == 100.0 and closed.passed
    assert all(i.selected for i in closed.items)


def test_nobody_saves_into_someone_elses_attempt(client, db, learner):
    other = make_user(db)
    enrolled(db, other)
    theirs = services.start_attempt(db, other.id, quiz(db, "alpha-quiz"), None)
    db.commit()
    form = correct_answers(theirs)
    for headers in ({}, JSON):
        assert client.post(f"/attempts/{theirs.id}/save", data=form, headers=headers).status_code == 404
    assert all(i.selected is None for i in _attempt(db, theirs.id).items)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda form: {k: ["9"] for k in form}, "not one of the options shown"),
        (lambda form: {**form, "q-999999": ["0"]}, "do not belong to this attempt"),
    ],
)
def test_a_save_with_answers_the_page_never_offered_is_refused(client, db, learner, tamper, message):
    attempt_id = start(client)
    form = tamper(correct_answers(_attempt(db, attempt_id)))
    response = client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON)
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert all(i.selected is None for i in _attempt(db, attempt_id).items)


def test_a_save_without_the_form_token_is_refused(client, db, learner, csrf_on):
    attempt_id = start_with_token(client)
    form = correct_answers(_attempt(db, attempt_id))
    response = client.post(f"/attempts/{attempt_id}/save", data=form, headers=JSON)
    assert response.status_code == 400
    assert all(i.selected is None for i in _attempt(db, attempt_id).items)


def start_with_token(client) -> int:
    """Start the alpha quiz with CSRF protection on, sending the token the quiz page carries."""
    client.get("/courses/demo-course/modules/alpha")
    page = client.get("/courses/demo-course/quizzes/alpha-quiz").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/courses/demo-course/quizzes/alpha-quiz/start", data={"csrf_token": token})
    assert response.status_code == 302, response.data
    return int(response.location.rsplit("/", 1)[1])


def test_the_page_offers_saving_with_and_without_script(client, db, learner):
    attempt_id = start(client)
    page = client.get(f"/attempts/{attempt_id}").data.decode()
    assert f'data-save-url="/attempts/{attempt_id}/save"' in page
    assert f'formaction="/attempts/{attempt_id}/save">Save answers</button>' in page
    assert page.index(">Submit answers</button>") < page.index(">Save answers</button>")  # Enter submits


@pytest.mark.parametrize("action", ["submit", "save"])
def test_a_multipart_part_whose_name_holds_a_line_break_is_ignored_not_a_server_error(client, db, learner, action):
    """Werkzeug reads such a part as a field named None; the answers' reading stopped on it with a 500 (fuzzing,
    attack2 review)."""
    attempt_id = start(client)
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="a\rb"; filename="x.png"\r\n\r\n\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="saved_as"\r\n\r\n\r\n--XyZ--\r\n'
    )
    response = client.post(
        f"/attempts/{attempt_id}/{action}", data=body, content_type="multipart/form-data; boundary=XyZ"
    )
    assert response.status_code < 500
