"""The people console: search, filters, paging, a learner's record, role and status changes, closure."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role, User
from kaptrain.audit import AuditEntry
from kaptrain.certificates.models import Evaluation
from kaptrain.certificates.pdf import format_date
from kaptrain.quizzes.models import Attempt
from tests.conftest import PASSWORD
from tests.factories import certified, enrolled, make_user, pass_quiz, quiz, start


@pytest.fixture
def admin(db, login):
    """A logged-in administrator (the only one)."""
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin", email="ada@example.org")
    db.commit()
    return login(user)


def user_entries(db, subject_id: int) -> list[AuditEntry]:
    return list(
        db.scalars(select(AuditEntry).where(AuditEntry.subject_type == "user", AuditEntry.subject_id == subject_id))
    )


def entries(db, action: str, subject_id: int) -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action, AuditEntry.subject_id == subject_id)))


def test_search_finds_by_name_or_email_and_shows_progress(client, db, admin):
    dana = make_user(db, full_name="Dana Search, LCSW", email="dana.s@example.org")
    enrolled(db, dana)
    pass_quiz(db, dana, "alpha-quiz")
    make_user(db, full_name="Someone Else", email="else@example.org")
    db.commit()
    by_name = client.get("/admin/people?q=dana+search").get_data(as_text=True)
    assert "Dana Search, LCSW" in by_name and "Someone Else" not in by_name
    assert "1 of 3 modules" in by_name
    by_email = client.get("/admin/people?q=DANA.S@").get_data(as_text=True)
    assert "Dana Search, LCSW" in by_email and "else@example.org" not in by_email


@pytest.mark.parametrize("text", ["' OR 1=1 --", "%", "_", "<script>alert(1)</script>", "\\"])
def test_sql_and_html_in_the_search_are_plain_text(client, db, admin, text):
    make_user(db, full_name="Plain Person")
    db.commit()
    response = client.get("/admin/people", query_string={"q": text})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Plain Person" not in page and "No one matches this search" in page
    assert "<script>alert(1)</script>" not in page


def test_filters_by_role_status_and_course(client, db, admin):
    enrolled(db, make_user(db, full_name="Enrolled Learner"))
    make_user(db, full_name="Idle Learner")
    make_user(db, role=Role.INSTRUCTOR, full_name="Ivy Instructor")
    gone = make_user(db, full_name="Gone Learner")
    accounts.deactivate(db, gone, None)
    db.commit()
    course_id = quiz(db, "alpha-quiz").course_id

    def names(**args: str) -> set[str]:
        page = client.get("/admin/people", query_string=args).get_data(as_text=True)
        return set(re.findall(r'/admin/people/\d+">([^<]+)</a>', page))

    assert names(role="instructor") == {"Ivy Instructor"}
    assert names(status="deactivated") == {"Gone Learner"}
    assert names(course=str(course_id)) == {"Enrolled Learner"}
    assert names(role="learner", status="active") == {"Enrolled Learner", "Idle Learner"}


@pytest.mark.parametrize("args", [{"role": "superuser"}, {"status": "deleted"}, {"course": "999999"}, {"page": "x"}])
def test_a_bad_filter_is_refused_in_words(client, admin, args):
    response = client.get("/admin/people", query_string=args)
    assert response.status_code == 400
    assert "Please correct the following" in response.get_data(as_text=True)


def test_people_are_paged_25_at_a_time(client, db, admin):
    for n in range(30):
        make_user(db, full_name=f"Paged {n:02d}")
    db.commit()
    first = client.get("/admin/people?q=Paged").get_data(as_text=True)
    assert "30 people" in first and "Page 1 of 2" in first
    assert "Paged 24" in first and "Paged 25" not in first
    assert "page=2" in first and "q=Paged" in first
    second = client.get("/admin/people?q=Paged&page=2").get_data(as_text=True)
    assert "Paged 25" in second and "Paged 29" in second and "Paged 00" not in second
    beyond = client.get("/admin/people?q=Paged&page=99").get_data(as_text=True)
    assert "Page 2 of 2" in beyond


def issued(app, db, user):  # type: ignore[no-untyped-def]
    """Take the user to a certificate and commit (issuing and its mail job need an app context)."""
    with app.app_context():
        certificate = certified(db, user)
        db.commit()
    return certificate


def test_record_shows_courses_attempts_certificates_and_links_reviews(app, client, db, admin):
    dana = make_user(db, full_name="Dana Record")
    enrolled(db, dana)
    certificate = issued(app, db, dana)
    page = client.get(f"/admin/people/{dana.id}").get_data(as_text=True)
    attempts = db.scalars(select(Attempt).where(Attempt.user_id == dana.id)).all()
    assert len(attempts) == 3
    for a in attempts:
        assert f"/attempts/{a.id}/result" in page
    assert "Relevance 4/5" in page and "Hours claimed" in page
    # The administrator, who may know who wrote an evaluation, sees the hours the learner said they spent.
    assert "<dt>Evidence-based and balanced</dt><dd>Yes</dd>" in page
    assert "<dt>Hours spent, as estimated</dt><dd>3.5</dd>" in page
    evaluation = db.scalar(select(Evaluation).where(Evaluation.user_id == dana.id))
    assert evaluation is not None
    evaluation.objectives_met = {"one": "met", "two": "partly", "three": "not_met"}
    db.commit()
    # "Partly" and "not met" were counted as met: the record said N of N whatever the learner answered.
    again = " ".join(client.get(f"/admin/people/{dana.id}").get_data(as_text=True).split())
    assert "<dt>Objectives met</dt><dd>1 of 3; partly met: 1; not met: 1</dd>" in again
    assert certificate.holder_name in page and "Print this record" in page
    result = client.get(f"/attempts/{attempts[0].id}/result")
    assert result.status_code == 200
    assert "Dana Record's result" in result.get_data(as_text=True)
    assert "Try again" not in result.get_data(as_text=True)


def test_staff_see_a_completion_on_the_day_the_learner_and_the_certificate_see(app, client, db, admin):
    """A walk-through: a learner in Denver finished on the 27th and their certificate says so; the People list
    said the 28th, the day in the administrator's time zone."""
    kiri = make_user(db, full_name="Kiri Faraway")
    kiri.time_zone = "Pacific/Kiritimati"
    enrolled(db, kiri)
    certificate = issued(app, db, kiri)
    day = f"{format_date(certificate.completion_day)} (Pacific/Kiritimati)"
    people = client.get("/admin/people", query_string={"q": "Kiri"}).text
    record = client.get(f"/admin/people/{kiri.id}").text
    assert f"completed {day}" in people and f"completed {day}" in record


def test_admin_cannot_submit_or_open_a_learners_attempt_and_learners_get_404_for_others(app, client, db, admin):
    dana = make_user(db)
    enrolled(db, dana)
    alpha = quiz(db, "alpha-quiz")
    from kaptrain.courses import services as courses  # noqa: PLC0415 - only this test opens a module directly

    courses.open_module(db, dana.id, alpha.module)
    open_attempt = start(db, dana, alpha)
    other = make_user(db)
    enrolled(db, other)
    done = pass_quiz(db, other, "alpha-quiz")
    db.commit()
    assert client.get(f"/attempts/{open_attempt.id}").status_code == 404
    assert client.post(f"/attempts/{open_attempt.id}/submit").status_code == 404
    assert client.get(f"/attempts/{open_attempt.id}/result").status_code == 404
    learner_client = app.test_client()
    learner_client.post("/login", data={"email": dana.email, "password": PASSWORD})
    assert learner_client.get(f"/attempts/{done.id}/result").status_code == 404


def test_role_change_is_audited_and_ends_sessions(client, db, admin):
    ivy = make_user(db)
    version = ivy.session_version
    db.commit()
    unticked = client.post(f"/admin/people/{ivy.id}/role", data={"role": "instructor"})
    assert unticked.status_code == 422
    page = unticked.get_data(as_text=True)
    assert "Tick the box to confirm the change of role" in page
    # Summarised at the top of the page, where the reloaded page opens, with a link down to the box.
    summary = page[page.index('class="error-summary"') : page.index("</div>", page.index('class="error-summary"'))]
    assert 'href="#confirm_role"' in summary and "Tick the box to confirm the change of role" in summary
    assert page.index('class="error-summary"') < page.index('id="profile-h"')
    db.refresh(ivy)
    assert ivy.role == Role.LEARNER and ivy.session_version == version  # nothing changed
    response = client.post(f"/admin/people/{ivy.id}/role", data={"role": "instructor", "confirm_role": "y"})
    assert response.status_code == 302
    db.refresh(ivy)
    assert ivy.role == Role.INSTRUCTOR and ivy.session_version == version + 1
    (entry,) = entries(db, "user.role", ivy.id)
    assert entry.actor_id == admin.id
    assert entry.details == {"before": {"role": "learner"}, "after": {"role": "instructor"}}
    told = client.get(response.location).get_data(as_text=True)
    assert "is now an Instructor: their sessions ended" in told and "first set up two-factor sign-in." in told


@pytest.mark.parametrize("role", ["superuser", "", "ADMIN; DROP TABLE users"])
def test_an_unknown_role_is_refused_in_words_and_changes_nothing(client, db, admin, role):
    ivy = make_user(db)
    db.commit()
    response = client.post(f"/admin/people/{ivy.id}/role", data={"role": role, "confirm_role": "y"})
    assert response.status_code == 422
    assert "is not a role. Choose one of: learner, instructor, admin." in response.get_data(as_text=True)
    db.refresh(ivy)
    assert ivy.role == Role.LEARNER and not entries(db, "user.role", ivy.id)


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("role", {"role": "learner", "confirm_role": "y"}),
        ("deactivate", {"confirm_deactivate": "y"}),
        ("close", {"confirm": "y"}),
    ],
    ids=["demote", "deactivate", "close"],
)
def test_the_last_active_admin_is_kept(client, db, admin, url, data):
    response = client.post(f"/admin/people/{admin.id}/{url}", data=data)
    assert response.status_code == 422
    assert "only active administrator" in response.get_data(as_text=True)
    db.refresh(admin)
    assert admin.role == Role.ADMIN and admin.is_active and admin.email == "ada@example.org"
    assert not user_entries(db, admin.id)


def test_an_admin_may_be_demoted_when_another_remains(client, db, admin):
    other = make_user(db, role=Role.ADMIN)
    db.commit()
    demoted = client.post(f"/admin/people/{other.id}/role", data={"role": "learner", "confirm_role": "y"})
    assert demoted.status_code == 302
    db.refresh(other)
    assert other.role == Role.LEARNER


def test_a_deactivated_user_cannot_log_in_and_their_records_stay(app, client, db, admin):
    dana = make_user(db)
    enrolled(db, dana)
    attempt = pass_quiz(db, dana, "alpha-quiz")
    db.commit()
    dana_client = app.test_client()
    assert dana_client.post("/login", data={"email": dana.email, "password": PASSWORD}).status_code == 302
    unticked = client.post(f"/admin/people/{dana.id}/deactivate")
    assert unticked.status_code == 422 and "Tick the box to confirm deactivating" in unticked.get_data(as_text=True)
    assert dana_client.get("/dashboard").status_code == 200  # nothing happened
    assert client.post(f"/admin/people/{dana.id}/deactivate", data={"confirm_deactivate": "y"}).status_code == 302
    assert dana_client.get("/dashboard").status_code == 302  # the old session no longer works
    again = app.test_client().post("/login", data={"email": dana.email, "password": PASSWORD})
    assert again.status_code != 302
    assert db.get(Attempt, attempt.id) is not None
    page = client.get(f"/admin/people/{dana.id}").get_data(as_text=True)
    assert "Deactivated: cannot log in" in page and f"/attempts/{attempt.id}/result" in page
    (entry,) = entries(db, "user.deactivate", dana.id)
    assert entry.details == {"before": {"is_active": True}, "after": {"is_active": False}}
    assert client.post(f"/admin/people/{dana.id}/deactivate", data={"confirm_deactivate": "y"}).status_code == 422
    assert client.post(f"/admin/people/{dana.id}/reactivate").status_code == 302
    db.refresh(dana)
    assert dana.is_active and entries(db, "user.reactivate", dana.id)


def test_closing_an_account_needs_confirmation_then_pseudonymises(app, client, db, admin):
    dana = make_user(db, full_name="Dana Closing, LCSW", email="dana.closing@example.org")
    enrolled(db, dana)
    dana.time_zone, dana.licence_number = "America/New_York", "LIC-1"
    certificate = issued(app, db, dana)
    assert client.get(f"/admin/people/{dana.id}/close").status_code == 200
    unconfirmed = client.post(f"/admin/people/{dana.id}/close", data={})
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.get_data(as_text=True)
    db.refresh(dana)
    assert dana.is_active and dana.email == "dana.closing@example.org"
    assert client.post(f"/admin/people/{dana.id}/close", data={"confirm": "y"}).status_code == 302
    db.refresh(dana)
    db.refresh(certificate)
    assert dana.email == f"closed-{dana.id}@invalid.example" and dana.full_name == f"Closed account {dana.id}"
    assert (dana.time_zone, dana.licence_number, dana.is_active) == ("", "", False)
    assert certificate.holder_name == "Dana Closing, LCSW"  # the issued record is untouched
    assert db.scalars(select(Attempt).where(Attempt.user_id == dana.id)).all()
    (entry,) = entries(db, "user.close", dana.id)
    assert "dana.closing" not in str(entry.details) and entry.details["after"]["closed"] is True
    assert accounts.find_user_by_email(db, "dana.closing@example.org") is None
    assert client.post(f"/admin/people/{dana.id}/reactivate").status_code == 422
    assert client.post(f"/admin/people/{dana.id}/close", data={"confirm": "y"}).status_code == 422


def test_closed_status_filter(app, client, db, admin):
    gone = make_user(db, full_name="Soon Closed")
    with app.app_context():  # closing emails the person, which needs the app's settings
        accounts.close_account(db, gone, None)
        db.commit()
    page = client.get("/admin/people?status=closed").get_data(as_text=True)
    assert f"Closed account {gone.id}" in page and "Ada Admin" not in page


def test_action_forms_need_a_csrf_token(client, db, admin, csrf_on):
    ivy = make_user(db)
    db.commit()
    for url, data in (("role", {"role": "admin"}), ("deactivate", {}), ("reactivate", {})):
        response = client.post(f"/admin/people/{ivy.id}/{url}", data=data)
        assert response.status_code == 400
    db.refresh(ivy)
    assert ivy.role == Role.LEARNER and ivy.is_active


def test_unknown_person_is_404(client, admin):
    assert client.get("/admin/people/999999").status_code == 404


PEOPLE_URLS = [
    ("get", "/admin/people"),
    ("get", "/admin/people/{id}"),
    ("post", "/admin/people/{id}/role"),
    ("post", "/admin/people/{id}/deactivate"),
    ("post", "/admin/people/{id}/reactivate"),
    ("get", "/admin/people/{id}/close"),
    ("post", "/admin/people/{id}/close"),
]


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR])
@pytest.mark.parametrize(("method", "url"), PEOPLE_URLS)
def test_every_people_url_refuses_learners_and_instructors(client, db, login, role, method, url):
    target = make_user(db)
    login(make_user(db, role=role))
    db.commit()
    response = getattr(client, method)(url.format(id=target.id), data={"role": "admin", "confirm": "y"})
    assert response.status_code == 403
    db.refresh(target)
    assert target.role == Role.LEARNER and target.is_active


def test_people_urls_send_anonymous_visitors_to_log_in(client, db):
    assert client.get("/admin/people").status_code == 302


def test_cli_set_role_uses_the_service_and_keeps_the_last_admin(runner, db):
    make_user(db, role=Role.ADMIN, email="only-admin@example.org")
    db.commit()
    refused = runner.invoke(args=["users", "set-role", "only-admin@example.org", "learner"])
    assert refused.exit_code == 1 and "only active administrator" in refused.output
    user = db.scalar(select(User).where(User.email == "only-admin@example.org"))
    assert user is not None and user.role == Role.ADMIN
    assert runner.invoke(args=["users", "deactivate", "only-admin@example.org"]).exit_code == 1
    learner = make_user(db, email="cli-learner@example.org")
    db.commit()
    assert runner.invoke(args=["users", "set-role", "cli-learner@example.org", "instructor"]).exit_code == 0
    (entry,) = entries(db, "user.role", learner.id)
    assert entry.actor_id is None and entry.actor_label.startswith("cli:")
    assert runner.invoke(args=["users", "deactivate", "cli-learner@example.org"]).exit_code == 0
    assert runner.invoke(args=["users", "reactivate", "cli-learner@example.org"]).exit_code == 0
    closed = runner.invoke(args=["users", "close", "cli-learner@example.org"])
    assert closed.exit_code == 0 and "records kept" in closed.output
    db.refresh(learner)
    assert accounts.is_closed(learner) and not learner.is_active
    assert [e.action for e in user_entries(db, learner.id)] == [
        "user.role",
        "user.deactivate",
        "user.reactivate",
        "user.close",
    ]


def test_an_administrator_sends_links_without_seeing_them(client, db, admin, inbox):
    """The help desk: a new confirmation link for an address never confirmed, a reset link for a locked-out person."""
    unconfirmed = make_user(db, email="waiting@example.org", confirmed=False)
    db.commit()
    page = client.get(f"/admin/people/{unconfirmed.id}").get_data(as_text=True)
    assert "Send a new confirmation link" in page and "Send a password-reset link" in page
    sent = client.post(f"/admin/people/{unconfirmed.id}/send-confirmation")
    assert sent.status_code == 302
    told = client.get(sent.location).get_data(as_text=True)
    assert "A new confirmation link went to waiting@example.org" in told and "/confirm/" not in told
    reset = client.post(f"/admin/people/{unconfirmed.id}/send-reset")
    assert reset.status_code == 302 and "/password/reset/" not in client.get(reset.location).get_data(as_text=True)
    mailed = [m for _from, to, m in inbox.messages if "waiting@example.org" in to]
    assert len(mailed) == 2  # the links themselves went only to the person
    actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.subject_id == unconfirmed.id))]
    assert {"user.confirmation_sent", "user.password_reset_sent"} <= set(actions)
    # An address already confirmed needs no link, and says so in words.
    confirmed = make_user(db, email="done@example.org")
    db.commit()
    again = client.post(f"/admin/people/{confirmed.id}/send-confirmation")
    assert again.status_code == 422 and "email address is already confirmed" in again.get_data(as_text=True)
