"""The fast lane (kaptrain.fastlane): stored pages, the heartbeat, a quiz submission and the holder's PDF answered
before Flask, only for a session and token that pass Flask's own checks, with the same answer and headers Flask
gives; anything else goes to Flask, which answers as before."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

from kaptrain import pagecache
from kaptrain.accounts.models import Role, User
from kaptrain.courses import services as courses
from kaptrain.fastlane import MAX_FORM_BYTES, FastLane, client_identifier
from kaptrain.quizzes.models import Attempt, AttemptStatus
from tests.conftest import sign_in
from tests.factories import correct_answers, enrolled, forged, holders_pdf, make_user, quiz, start

MODULE = "/courses/demo-course/modules/alpha"
HEARTBEAT = f"{MODULE}/heartbeat"
VARYING = {"date", "content-length"}  # the heartbeat's body holds the seconds credited so far


@pytest.fixture
def lane(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request that reached the lane's test: whether the lane answered it (False: Flask did)."""
    answered: list[bool] = []
    real = FastLane.answer

    def spy(self: FastLane, environ: dict[str, object]) -> object:
        found = real(self, environ)
        answered.append(found is not None)
        return found

    monkeypatch.setattr(FastLane, "answer", spy)
    return answered


def _headers(response: TestResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VARYING}


def _token(client: FlaskClient) -> str:
    found = re.search(r'data-csrf="([^"]+)"', client.get(MODULE).get_data(as_text=True))
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    "environ",
    [
        {"REMOTE_ADDR": "10.0.0.7", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux) Firefox/130.0"},
        {"REMOTE_ADDR": "10.0.0.7", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.1", "HTTP_USER_AGENT": "Safari"},
        {"REMOTE_ADDR": "::1"},
        {"REMOTE_ADDR": "10.0.0.7", "HTTP_USER_AGENT": "Navigateur à accents"},
    ],
)
def test_the_lane_identifies_a_client_as_flask_login_does(app: Flask, environ: dict[str, str]) -> None:
    from kaptrain.extensions import login_manager  # noqa: PLC0415

    with app.test_request_context("/", environ_base=environ):
        assert client_identifier(request.environ) == login_manager._session_identifier_generator()  # noqa: SLF001
    forwarded = {**environ, "HTTP_X_FORWARDED_FOR": "198.51.100.1"}  # a header anyone can send changes nothing
    assert client_identifier(forwarded) == client_identifier(environ)


def test_a_stolen_cookie_with_a_forged_forwarded_address_ends_the_session(
    app: Flask, client: FlaskClient, learner: User, lane: list[bool]
) -> None:
    """Strong session protection ties a session to the address the app trusts: with no trusted proxy, a request
    from elsewhere that names the learner's address in X-Forwarded-For is still from elsewhere."""
    client.get(MODULE)
    assert client.post(HEARTBEAT).status_code == 200
    elsewhere = {"REMOTE_ADDR": "192.0.2.50"}
    forged = client.post(HEARTBEAT, environ_base=elsewhere, headers={"X-Forwarded-For": "127.0.0.1"})
    assert forged.status_code in (302, 401) and lane[-1] is False
    assert client.get("/dashboard").status_code == 302  # the session was ended, as Flask-Login ends it


def test_a_signed_in_learner_gets_the_lanes_heartbeat_with_flasks_headers(
    app: Flask, client: FlaskClient, learner: User, csrf_on: None, lane: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = {"X-CSRFToken": _token(client)}
    lane.clear()
    by_lane = client.post(HEARTBEAT, headers=sent)  # a token never sent before: the lane checks its signature
    assert lane == [True]
    monkeypatch.setattr(FastLane, "answer", lambda *_: None)
    by_flask = client.post(HEARTBEAT, headers=sent)
    assert by_lane.status_code == by_flask.status_code == 200
    assert set(by_lane.get_json()) == set(by_flask.get_json()) == {"seat_seconds"}
    assert _headers(by_lane) == _headers(by_flask)
    assert "no-store" in by_lane.headers["Cache-Control"] and "Cookie" in by_lane.headers["Vary"]


def test_a_session_and_token_new_to_this_process_are_checked_as_flask_checks_them(
    app: Flask, client: FlaskClient, learner: User, csrf_on: None, lane: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a second server: the cookie and token were signed by another process, which checked them; this one
    has never seen either. Good ones take the lane; an expired token or session goes to Flask, which refuses it."""
    from kaptrain.extensions import csrf  # noqa: PLC0415

    token = _token(client)
    forget = (app.session_interface._checked, csrf._checked)  # type: ignore[attr-defined]  # noqa: SLF001
    for remembered in forget:
        remembered.clear()
    lane.clear()
    assert client.post(HEARTBEAT, headers={"X-CSRFToken": token}).status_code == 200
    assert lane == [True]
    for remembered in forget:
        remembered.clear()
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", -1)  # every token has expired
    expired = client.post(HEARTBEAT, headers={"X-CSRFToken": token})
    assert expired.status_code == 400 and lane[-1] is False
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", 3600)
    monkeypatch.setattr(app, "permanent_session_lifetime", dt.timedelta(seconds=-1))  # every session has expired
    for remembered in forget:
        remembered.clear()
    assert client.post(HEARTBEAT, headers={"X-CSRFToken": token}).status_code != 200
    assert lane[-1] is False


PAGES = ["/dashboard", "/courses/demo-course", MODULE, "/courses/demo-course/quizzes/alpha-quiz"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("encoding", ["", "gzip", "br, gzip"])
def test_a_stored_page_comes_by_the_lane_as_flask_serves_it(
    app: Flask,
    client: FlaskClient,
    learner: User,
    path: str,
    encoding: str,
    lane: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = {"Accept-Encoding": encoding} if encoding else {}
    # Drawn and stored (the module page twice: its first view opens the module, a change), then from the store
    # by Flask, which signs the token the lane then uses.
    for _ in range(3):
        client.get(path, headers=headers)
    by_lane = client.get(path, headers=headers)
    assert lane[-1] is True
    monkeypatch.setattr(FastLane, "answer", lambda *_: None)
    by_flask = client.get(path, headers=headers)  # from the store again, by Flask (the same token for a minute)
    assert by_flask.status_code == by_lane.status_code == 200
    assert _headers(by_flask) == _headers(by_lane)
    assert by_lane.headers.get("Content-Encoding", "") == (encoding.split(",")[0] if encoding else "")
    assert by_flask.get_data() == by_lane.get_data()  # the test client decodes neither: the same bytes


def test_a_page_whose_learner_changed_is_drawn_again_by_flask(
    app: Flask, client: FlaskClient, learner: User, db: Session, lane: list[bool]
) -> None:
    for _ in range(3):
        client.get("/dashboard")
    assert lane[-1] is True
    db.execute(update(User).where(User.id == learner.id).values(full_name="Dana Renamed, LCSW"))
    db.commit()
    again = client.get("/dashboard")
    assert lane[-1] is False and "Dana Renamed" in again.get_data(as_text=True)


def test_the_lanes_pdf_is_the_stored_file_with_flasks_headers(
    app: Flask, client: FlaskClient, learner: User, db: Session, lane: list[bool]
) -> None:
    certificate, path = holders_pdf(app, db, learner)
    lane.clear()
    answers = [client.get(path) for _ in range(2)]
    assert lane == [True, True]
    flask_answer = client.get(f"{path}?from=flask")  # a query string always goes to Flask
    assert lane[-1] is False
    for answer in answers:
        assert answer.status_code == 200 and answer.data == flask_answer.data and answer.data.startswith(b"%PDF")
        assert _headers(answer) == _headers(flask_answer)
        assert f"{certificate.number}.pdf" in answer.headers["Content-Disposition"]


def test_production_headers_come_with_the_lanes_answer_too(
    app: Flask, client: FlaskClient, learner: User, monkeypatch: pytest.MonkeyPatch, lane: list[bool]
) -> None:
    monkeypatch.setitem(app.config, "ENV", "production")
    client.get(MODULE)
    by_lane = client.post(HEARTBEAT)
    assert lane[-1] is True
    monkeypatch.setattr(FastLane, "answer", lambda *_: None)
    by_flask = client.post(HEARTBEAT)
    assert "max-age" in by_lane.headers["Strict-Transport-Security"]
    assert _headers(by_lane) == _headers(by_flask)


def test_what_the_lane_does_not_know_goes_to_flask(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None, lane: list[bool]
) -> None:
    token = _token(client)
    assert client.post(HEARTBEAT, headers={"X-CSRFToken": token}).status_code == 200
    lane.clear()
    # No token, a forged token, a bad token in the form beside a good one in the header (Flask-WTF reads the form
    # first, a field whose name ends with the field's too), the token in a multipart body (the lane reads small
    # URL-encoded forms only), another address.
    assert client.post(HEARTBEAT).status_code == 400
    assert client.post(HEARTBEAT, headers={"X-CSRFToken": forged(token)}).status_code == 400
    for field in ("csrf_token", "answers-csrf_token"):
        assert client.post(HEARTBEAT, data={field: "bad"}, headers={"X-CSRFToken": token}).status_code == 400
    multipart = client.post(HEARTBEAT, data={"csrf_token": token}, content_type="multipart/form-data")
    assert multipart.status_code == 200
    moved = client.post(HEARTBEAT, headers={"X-CSRFToken": token}, environ_base={"REMOTE_ADDR": "192.0.2.50"})
    assert moved.status_code in (302, 401)  # session protection: the session is ended, as Flask-Login does
    assert lane == [False] * 6


def test_an_https_heartbeat_from_another_site_goes_to_flask_and_is_refused(
    app: Flask, client: FlaskClient, learner: User, csrf_on: None, lane: list[bool]
) -> None:
    base = "https://localhost"
    page = client.get(f"{base}{MODULE}").get_data(as_text=True)
    found = re.search(r'data-csrf="([^"]+)"', page)
    assert found is not None
    same = {"X-CSRFToken": found.group(1), "Referer": f"{base}{MODULE}"}
    assert client.post(f"{base}{HEARTBEAT}", headers=same).status_code == 200
    assert lane[-1] is True
    # Another site, none, and referrers that are no URL at all (refused in words, never an error).
    for referrer in ("https://elsewhere.example/", None, "https://localhost:99999/", "https://[::1/"):
        headers = {"X-CSRFToken": found.group(1), **({"Referer": referrer} if referrer else {})}
        refused = client.post(f"{base}{HEARTBEAT}", headers=headers)
        assert refused.status_code == 400 and "sent from another site" in refused.get_data(as_text=True)
        assert lane[-1] is False


def test_a_session_ended_elsewhere_or_staff_go_to_flask(
    app: Flask, client: FlaskClient, learner: User, db: Session, lane: list[bool]
) -> None:
    client.get(MODULE)
    assert [client.post(HEARTBEAT).status_code for _ in range(2)] == [200, 200]
    assert lane[-1] is True
    db.execute(update(User).where(User.id == learner.id).values(session_version=User.session_version + 1))
    db.commit()
    ended = client.post(HEARTBEAT)
    assert lane[-1] is False and ended.status_code in (302, 401)
    instructor = make_user(db, role=Role.INSTRUCTOR)
    staff = app.test_client()
    sign_in(staff, db, instructor)
    staff.get("/dashboard")
    assert staff.post(HEARTBEAT).status_code != 200  # not a module they opened: the normal way says so
    assert lane[-1] is False


def test_the_lane_sits_inside_proxy_fix(extra_app: Callable[..., Flask]) -> None:
    proxied = extra_app(TRUSTED_PROXIES=1).wsgi_app
    assert isinstance(proxied, ProxyFix) and isinstance(proxied.app, FastLane)
    assert isinstance(extra_app().wsgi_app, FastLane)
    assert not isinstance(extra_app(PAGE_CACHE_MB=0).wsgi_app, FastLane)  # no page cache, no lane


def test_behind_a_proxy_the_lane_sees_the_forwarded_scheme(
    app: Flask, client: FlaskClient, learner: User, csrf_on: None, monkeypatch: pytest.MonkeyPatch, lane: list[bool]
) -> None:
    monkeypatch.setattr(app, "wsgi_app", ProxyFix(app.wsgi_app, x_for=1, x_proto=1))  # as wrap_wsgi layers them
    forwarded = {"X-Forwarded-Proto": "https"}
    page = client.get(MODULE, headers=forwarded).get_data(as_text=True)
    found = re.search(r'data-csrf="([^"]+)"', page)
    assert found is not None
    good = {**forwarded, "X-CSRFToken": found.group(1), "Referer": f"https://localhost{MODULE}"}
    assert [client.post(HEARTBEAT, headers=good).status_code for _ in range(2)] == [200, 200]
    assert lane[-1] is True
    foreign = {**good, "Referer": "https://elsewhere.example/"}
    assert client.post(HEARTBEAT, headers=foreign).status_code == 400  # the lane saw https and left it to Flask
    assert lane[-1] is False


def test_a_failing_lane_leaves_the_answer_to_flask(
    app: Flask, client: FlaskClient, learner: User, monkeypatch: pytest.MonkeyPatch, lane: list[bool]
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug in a fast path")

    monkeypatch.setattr(pagecache, "fast_path_for", lambda *_: broken)  # the lane's handlers only
    client.get(MODULE)
    answers = [client.post(HEARTBEAT) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200] and lane[-2:] == [False, False]


# --- quiz submission ------------------------------------------------------------------------------------------------


def _open_attempt(db: Session, learner: User) -> Attempt:
    q = quiz(db, "alpha-quiz")
    assert q.module is not None
    courses.open_module(db, learner.id, q.module)
    attempt = start(db, learner, q)
    db.commit()
    return attempt


def test_a_quiz_submission_comes_by_the_lane_graded_and_answered_as_flask_does(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None, lane: list[bool]
) -> None:
    attempt = _open_attempt(db, learner)
    token = _token(client)
    assert client.post(HEARTBEAT, headers={"X-CSRFToken": token}).status_code == 200  # Flask accepts the token
    form = {**correct_answers(attempt), "csrf_token": token}
    lane.clear()
    by_lane = client.post(f"/attempts/{attempt.id}/submit", data=form)
    again = client.post(f"/attempts/{attempt.id}/submit", data=form)  # graded already: Flask's normal way
    assert lane == [True, False]
    assert by_lane.status_code == again.status_code == 302
    assert by_lane.location == again.location == f"/attempts/{attempt.id}/result"
    assert _headers(by_lane) == _headers(again)
    db.expire_all()
    graded = db.get(Attempt, attempt.id)
    assert graded is not None and graded.status == AttemptStatus.SUBMITTED and graded.score == 100 and graded.passed
    assert "Passed: 100%" in client.get(by_lane.location).get_data(as_text=True)


def test_a_submission_the_lane_reads_and_leaves_reaches_flask_whole(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None, lane: list[bool]
) -> None:
    """The lane reads a form to find its token and answers; when it then leaves the request to Flask (the fast path
    will not grade an answer left blank), Flask reads the same form."""
    attempt = _open_attempt(db, learner)
    token = _token(client)
    answers = correct_answers(attempt)
    _, *rest = answers
    blank = {**{k: answers[k] for k in rest}, "csrf_token": token}
    path = f"/attempts/{attempt.id}/submit"
    lane.clear()
    back = client.post(path, data=blank)  # Flask: the blank is named, the rest kept
    assert back.status_code == 302 and back.location.endswith("check=1")
    db.expire_all()
    kept = db.get(Attempt, attempt.id)
    assert kept is not None and kept.status == AttemptStatus.OPEN
    assert sum(bool(item.selected) for item in kept.items) == len(rest)
    graded = client.post(path, data={**answers, "csrf_token": token})
    assert graded.status_code == 302 and graded.location == f"/attempts/{attempt.id}/result"
    assert lane == [False, True]
    db.expire_all()
    assert db.get(Attempt, attempt.id).score == 100  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["no token", "a forged token", "multipart", "someone else's", "a form too large"])
def test_a_submission_the_lane_cannot_vouch_for_is_answered_by_flask(
    app: Flask, client: FlaskClient, learner: User, db: Session, csrf_on: None, lane: list[bool], how: str
) -> None:
    owner = learner
    if how == "someone else's":
        owner = make_user(db)
        enrolled(db, owner)
    attempt = _open_attempt(db, owner)
    token = _token(client)
    assert client.post(HEARTBEAT, headers={"X-CSRFToken": token}).status_code == 200
    form: dict[str, object] = {**correct_answers(attempt), "csrf_token": token}
    kw: dict[str, str] = {}
    expect = {"no token": 400, "a forged token": 400, "someone else's": 404}.get(how, 302)
    if how == "no token":
        form.pop("csrf_token")
    elif how == "a forged token":
        form["csrf_token"] = forged(token)
    elif how == "multipart":
        kw = {"content_type": "multipart/form-data"}
    elif how == "a form too large":
        form["padding"] = "x" * (MAX_FORM_BYTES + 1)
    lane.clear()
    answer = client.post(f"/attempts/{attempt.id}/submit", data=form, **kw)
    assert answer.status_code == expect
    assert lane == [False]
    db.expire_all()
    status = db.get(Attempt, attempt.id).status  # type: ignore[union-attr]
    assert status == (AttemptStatus.SUBMITTED if expect == 302 else AttemptStatus.OPEN)
