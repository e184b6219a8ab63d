"""A form whose CSRF token fails, sent from one of the site's own pages (left open too long, or the session ended
meanwhile), takes the person back with a word of what happened, through the login when they were signed out; a
post from elsewhere, or with no referrer, still gets the 400 page and changes nothing."""

from __future__ import annotations

import re
from urllib.parse import unquote

from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy.orm import Session

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import User
from kaptrain.courses import services as courses
from kaptrain.quizzes import models as quizzes
from tests.conftest import PASSWORD
from tests.factories import correct_answers, enrolled, make_user, quiz, start

SITE = "http://localhost"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _open_attempt(db: Session) -> tuple[User, quizzes.Attempt]:
    """A learner who opened the alpha module and started its quiz (committed)."""
    learner = make_user(db)
    enrolled(db, learner)
    q = quiz(db, "alpha-quiz")
    assert q.module is not None
    courses.open_module(db, learner.id, q.module)
    attempt = start(db, learner, q)
    db.commit()
    return learner, attempt


def test_a_signed_out_quiz_submission_goes_through_the_login_back_to_the_attempt(
    app: Flask, db: Session, csrf_on: None
) -> None:
    _, attempt = _open_attempt(db)
    page = f"/attempts/{attempt.id}"
    signed_out = app.test_client()  # the session ended in another tab: no login, an old token
    signed_out.get("/login")  # the browser holds the site's (now anonymous) session cookie
    response = signed_out.post(
        f"{page}/submit", data={"csrf_token": "old"}, headers={"Referer": f"{SITE}{page}?check=1"}
    )
    assert response.status_code == 302 and response.location.startswith("/login?next=")
    assert "/attempts/" in response.location
    login_page = signed_out.get(response.location).get_data(as_text=True)
    assert "You were logged out, so that form was not sent" in login_page
    db.expire_all()
    assert db.get(quizzes.Attempt, attempt.id).status == quizzes.AttemptStatus.OPEN  # type: ignore[union-attr]


def test_a_quiz_submitted_after_the_browser_dropped_its_expired_cookie_goes_through_the_login(
    app: Flask, db: Session, csrf_on: None
) -> None:
    """A session that ran out is a cookie the browser has thrown away: the submission comes with no cookie at all,
    and is still taken to the login and back to the attempt, not to the 400 page."""
    _, attempt = _open_attempt(db)
    page = f"/attempts/{attempt.id}"
    no_cookie = app.test_client()
    response = no_cookie.post(f"{page}/submit", data={"csrf_token": "old"}, headers={"Referer": f"{SITE}{page}"})
    assert response.status_code == 302 and unquote(response.location) == f"/login?next=/attempts/{attempt.id}"


def test_a_stale_login_form_comes_back_with_a_word_instead_of_an_error(app: Flask, csrf_on: None) -> None:
    client = app.test_client()
    client.get("/login")  # the page the form was on: the session cookie comes with it
    response = client.post(
        "/login",
        data={"email": "a@example.org", "password": "x", "csrf_token": "old"},
        headers={"Referer": f"{SITE}/login"},
    )
    assert response.status_code == 302 and response.location == "/login"
    assert "open too long, so it was not sent" in client.get("/login").get_data(as_text=True)


def test_a_post_from_another_site_or_with_no_referrer_still_gets_the_400_page(app: Flask, csrf_on: None) -> None:
    client = app.test_client()
    for headers in ({"Referer": "https://evil.example/login"}, {"Referer": "//localhost/login"}, {}):
        response = client.post("/courses/demo-course/enrol", data={"csrf_token": "x"}, headers=headers)
        assert response.status_code == 400 and b"The form expired or was sent from another site" in response.data


def test_a_script_saving_answers_with_a_stale_token_still_gets_a_400_it_can_read(app: Flask, csrf_on: None) -> None:
    client = app.test_client()
    for headers in ({"Accept": "application/json"}, {"X-CSRFToken": "old"}):  # autosave; the authoring preview
        sent = {"Referer": f"{SITE}/attempts/1", **headers}
        response = client.post("/attempts/1/save", data={"a": "b"}, headers=sent)
        assert response.status_code == 400
    # The autosave asks for JSON, and shows its words beside the answers: signed out, or the page left too long.
    autosave = {"Referer": f"{SITE}/attempts/1", "Accept": "application/json", "X-CSRFToken": "old"}
    signed_out = client.post("/attempts/1/save", data={"a": "b"}, headers=autosave)
    assert signed_out.status_code == 400 and "You were logged out" in signed_out.get_json()["error"]


def test_a_browser_keeping_no_cookie_is_told_about_cookies_not_sent_round_in_a_loop(app: Flask, csrf_on: None) -> None:
    client = app.test_client()  # no request before: no session cookie, as with cookies switched off
    form = {"email": "a@example.org", "password": "x", "csrf_token": "old"}
    response = client.post("/login", data=form, headers={"Referer": f"{SITE}/login"})
    assert response.status_code == 400 and b"accepts cookies from this site" in response.data


def test_a_page_drawn_at_a_post_only_address_is_not_sent_back_to_a_405(app: Flask, csrf_on: None) -> None:
    """A refused form is drawn at the address it was posted to; a stale post from that page cannot go back to an
    address only a POST reaches: it gets the 400 page, with its words."""
    client = app.test_client()
    client.get("/login")
    page = "/admin/certificates/1/reissue"  # POST only
    response = client.post(page, data={"reason": "x", "csrf_token": "old"}, headers={"Referer": f"{SITE}{page}"})
    assert response.status_code == 400 and b"The form expired" in response.data


def test_a_submission_after_the_session_ended_elsewhere_comes_back_to_the_attempt_after_login(
    app: Flask, db: Session
) -> None:
    """The form's token is still good (this browser keeps its cookie), but the login was ended elsewhere: the login
    page, then the attempt the form was on, not the form's own address (which a GET cannot open)."""
    learner, attempt = _open_attempt(db)
    client = app.test_client()
    assert client.post("/login", data={"email": learner.email, "password": PASSWORD}).status_code == 302
    page = f"/attempts/{attempt.id}"
    assert client.get(page).status_code == 200
    accounts.end_sessions(db, learner)  # "log out everywhere" from another device
    db.commit()
    sent = client.post(f"{page}/submit", data={}, headers={"Referer": f"{SITE}{page}"})
    assert sent.status_code == 302 and sent.location == f"/login?next=%2Fattempts%2F{attempt.id}"
    assert "Please log in to continue." in client.get(sent.location).get_data(as_text=True)
    back = client.post(sent.location, data={"email": learner.email, "password": PASSWORD})
    assert back.status_code == 302 and back.location == page
    assert client.get(back.location).status_code == 200
    # With no page of this site to go back to, the login alone (no next that a GET cannot open).
    accounts.end_sessions(db, learner)
    db.commit()
    bare = client.post(f"{page}/submit", data={})
    assert bare.status_code == 302 and bare.location == "/login"
    # A GET keeps its own address, as before.
    assert client.get(page).location == f"/login?next=%2Fattempts%2F{attempt.id}"


def test_an_untimed_quiz_left_open_for_hours_still_saves_and_submits(app: Flask, db: Session, csrf_on: None) -> None:
    """A form's token lives as long as the login (SESSION_HOURS), not Flask-WTF's default hour: answers chosen on
    a quiz page whose token was signed three hours ago are kept and graded."""
    learner, attempt = _open_attempt(db)
    client = app.test_client()
    login_token = TOKEN.search(client.get("/login").get_data(as_text=True))
    assert login_token is not None
    form = {"email": learner.email, "password": PASSWORD, "csrf_token": login_token.group(1)}
    assert client.post("/login", data=form).status_code == 302
    assert TOKEN.search(client.get(f"/attempts/{attempt.id}").get_data(as_text=True)) is not None
    with client.session_transaction() as cookie:
        raw = cookie["csrf_token"]  # the session's secret, which the page's token signs
    # The page's token as Flask-WTF signed it, three hours ago (only this signer's clock is moved).
    secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
    old = URLSafeTimedSerializer(secret, salt="wtf-csrf-token", signer=_ThreeHoursAgo).dumps(raw)
    answers = correct_answers(attempt)
    saved = client.post(f"/attempts/{attempt.id}/save", data={**answers, "csrf_token": old})
    assert saved.status_code == 302
    sent = client.post(f"/attempts/{attempt.id}/submit", data={**answers, "csrf_token": old})
    assert sent.status_code == 302 and sent.location == f"/attempts/{attempt.id}/result"
    db.expire_all()
    graded = db.get(quizzes.Attempt, attempt.id)
    assert graded is not None and graded.status == quizzes.AttemptStatus.SUBMITTED and graded.score == 100


class _ThreeHoursAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return super().get_timestamp() - 3 * 3600
