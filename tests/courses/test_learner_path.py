"""Catalogue, enrolment, disclosures, sequencing, seat time and the dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from kaptrain.accounts.models import Role
from kaptrain.courses import services as courses
from kaptrain.courses.completion import State, StepKind
from kaptrain.courses.models import Enrolment, ModuleProgress
from tests.factories import course, enrolled, make_user, pass_quiz, record


def test_catalogue_and_course_page_show_outline_ce_hours_and_objectives(client):
    assert b"Demo Course for Tests" in client.get("/courses").data
    page = client.get("/courses/demo-course").data
    for text in (
        b"3.5",
        b"Module Alpha",
        b"Module Beta",
        b"Module Gamma",
        b"The clinician can pass the tests.",
        b"None of the planners has a relevant financial relationship.",
    ):
        assert text in page


def test_unknown_course_and_module_get_a_plain_404(client, db, login):
    response = client.get("/courses/no-such-course")
    assert response.status_code == 404 and b"There is no course at this address" in response.data
    login(make_user(db))
    response = client.get("/courses/demo-course/modules/no-such-module")
    assert response.status_code == 404 and b"has no module at this address" in response.data


def test_enrol_twice_keeps_one_enrolment(client, db, login):
    user = login(make_user(db))
    assert client.post("/courses/demo-course/enrol").status_code == 302
    assert client.post("/courses/demo-course/enrol").status_code == 302
    count = db.scalar(select(func.count()).select_from(Enrolment).where(Enrolment.user_id == user.id))
    assert count == 1


def test_module_one_opens_only_after_disclosures_are_acknowledged(client, db, login):
    login(make_user(db))
    client.post("/courses/demo-course/enrol")
    locked = client.get("/courses/demo-course/modules/alpha")
    assert locked.status_code == 403
    assert b"Read and acknowledge the course disclosures" in locked.data
    page = client.get("/courses/demo-course/disclosures")
    assert b"off-label" in page.data
    response = client.post("/courses/demo-course/disclosures")
    assert response.location.endswith("/courses/demo-course/modules/alpha")
    enrolment = db.scalar(select(Enrolment))
    assert enrolment.disclosures_acknowledged_at is not None


def test_the_course_page_and_disclosures_name_the_release_the_review_date_and_the_team(
    app, client, db, login, monkeypatch
):
    """A walk-through: no release or review date for this enduring material, no named planners, no contact."""
    demo = course(db)
    demo.released_on, demo.review_by = dt.date(2026, 11, 28), dt.date(2027, 11, 30)
    demo.team = [{"name": "Jo Park", "credentials": "PsyD", "role": "Planner and reviewer"}]
    db.commit()
    monkeypatch.setitem(app.config, "SUPPORT_EMAIL", "ce@provider.example")
    page = client.get("/courses/demo-course").text
    login(make_user(db))
    client.post("/courses/demo-course/enrol")
    disclosures = client.get("/courses/demo-course/disclosures").text
    for shown in (page, disclosures):
        assert "Released 28 November 2026; its content is due for review by 30 November 2027." in shown
        assert "Jo Park, PsyD (Planner and reviewer)." in shown
    assert 'href="mailto:ce@provider.example"' in page


def test_disclosures_say_how_to_earn_the_certificate_from_the_course_s_own_rules(app, client, db, login, monkeypatch):
    demo = course(db)
    demo.min_reading_percent, demo.certificate_approval = 50, "manual"
    db.commit()
    monkeypatch.setitem(app.config, "CLAIM_REVIEW_FACTOR", 3)
    monkeypatch.setitem(app.config, "SUPPORT_EMAIL", "ce@provider.example")
    login(make_user(db))
    client.post("/courses/demo-course/enrol")
    page = " ".join(client.get("/courses/demo-course/disclosures").text.split())
    assert "How to earn your certificate" in page
    assert "Work through the 3 modules in order" in page
    assert "at least 50% of the module's estimated reading time" in page
    assert "Confirm your email address with the link sent when you registered" in page
    assert "Pass the final assessment: 50% or more; 3 attempts, then a 24-hour pause before the next 3; 30" in page
    assert "up to 3.5 hours" in page and "more than 3 times that time is reviewed" in page
    assert "issued once the provider approves it" in page
    assert "if you need an accommodation" in page and 'href="/records-and-privacy"' in page


def test_the_records_page_says_what_is_kept_who_sees_it_and_whom_to_write_to(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "SUPPORT_EMAIL", "ce@provider.example")
    page = " ".join(client.get("/records-and-privacy").text.split())
    for heading in ("What is kept, and why", "Who can see it", "How long it is kept", "What you can do"):
        assert heading in page
    assert "Never the email address or the licence number" in page
    assert "at least six years" in page and 'href="mailto:ce@provider.example"' in page
    assert 'href="/records-and-privacy"' in client.get("/").text  # linked from every page's footer


def test_disclosures_need_enrolment(client, db, login):
    login(make_user(db))
    response = client.get("/courses/demo-course/disclosures")
    assert response.status_code == 403 and b"Enrol in this course first" in response.data


def test_module_page_renders_markdown_objectives_references_and_review_date(client, db, learner):
    page = client.get("/courses/demo-course/modules/alpha").data
    assert b'<h2 id="introduction-to-alpha">Introduction to alpha</h2>' in page
    assert b'<div class="vignette">' in page
    assert b"The clinician can describe alpha." in page
    # A citation: the title links to the paper (its DOI here, having no url) and the DOI is a doi.org link.
    assert (
        b'Smith J, Jones K (2020). <a href="https://doi.org/10.1000/test.alpha" rel="noopener noreferrer">'
        b"A study of alpha</a>. <em>Journal of Tests 1(1):1-2</em>." in page
    )
    assert b">https://doi.org/10.1000/test.alpha</a>" in page
    assert b'datetime="2026-11-01"' in page


def test_locked_module_by_url_says_what_to_finish_first(client, db, learner):
    response = client.get("/courses/demo-course/modules/beta")
    assert response.status_code == 403
    assert b"Pass the quiz for module 1: Module Alpha" in response.data
    assert b"editor's preview" not in response.data  # that is for instructors


def test_an_instructor_meeting_a_locked_module_is_shown_the_editors_preview(client, db, login):
    from kaptrain.accounts.models import Role  # noqa: PLC0415

    instructor = make_user(db, role=Role.INSTRUCTOR)
    enrolled(db, instructor)
    db.commit()
    login(instructor)
    response = client.get("/courses/demo-course/modules/beta")
    assert response.status_code == 403
    link = b'href="/author/courses/demo-course/modules/beta#ed-preview-h"'
    assert link in response.data
    assert client.get("/author/courses/demo-course/modules/beta").status_code == 200


def test_passing_the_quiz_opens_the_next_module_and_read_alone_does_not(client, db, learner):
    user = learner
    client.get("/courses/demo-course/modules/alpha")
    response = client.post("/courses/demo-course/modules/alpha/read")
    assert response.location.endswith("/courses/demo-course/quizzes/alpha-quiz")
    assert client.get("/courses/demo-course/modules/beta").status_code == 403
    pass_quiz(db, user, "alpha-quiz")
    db.commit()
    assert client.get("/courses/demo-course/modules/beta").status_code == 200


def test_a_module_without_a_quiz_completes_when_read(db):
    user = make_user(db)
    enrolled(db, user)
    pass_quiz(db, user, "alpha-quiz")
    pass_quiz(db, user, "beta-quiz")
    gamma = record(db, user).modules[2]
    assert gamma.state == State.OPEN and gamma.quiz is None
    gamma.progress = courses.open_module(db, user.id, gamma.module)
    courses.mark_read(db, gamma)
    now = record(db, user)
    assert [s.state for s in now.modules] == [State.COMPLETED] * 3
    assert not now.requirements_met and now.next_step.kind == StepKind.FINAL  # the final is still to pass
    pass_quiz(db, user, "demo-final")
    done = record(db, user)
    assert done.requirements_met and not done.completed  # the evaluation and attestation come next
    assert done.next_step.kind == StepKind.EVALUATION and done.completed_at is None


def test_seat_time_counts_active_heartbeats_but_not_idle_gaps(db):
    user = make_user(db)
    enrolled(db, user)
    module = course(db).modules[0]
    progress = courses.open_module(db, user.id, module)
    start = progress.last_heartbeat_at
    courses.record_heartbeat(db, progress, start + dt.timedelta(seconds=30))
    courses.record_heartbeat(db, progress, start + dt.timedelta(seconds=60))
    # The learner walked away for an hour; the next beat credits at most one interval.
    total = courses.record_heartbeat(db, progress, start + dt.timedelta(hours=1, seconds=60))
    assert total == 30 + 30 + courses.HEARTBEAT_SECONDS


def test_heartbeat_endpoint_records_time_and_refuses_locked_modules(client, db, learner):
    client.get("/courses/demo-course/modules/alpha")
    response = client.post("/courses/demo-course/modules/alpha/heartbeat")
    assert response.status_code == 200 and "seat_seconds" in response.get_json()
    assert db.scalar(select(func.count()).select_from(ModuleProgress)) == 1
    assert client.post("/courses/demo-course/modules/beta/heartbeat").status_code == 403


def test_dashboard_shows_progress_and_next_step(client, db, login):
    user = login(make_user(db))
    empty = client.get("/dashboard").data
    assert b"You are not enrolled in a course yet" in empty
    enrolled(db, user, acknowledged=False)
    db.commit()
    page = client.get("/dashboard").data.decode()
    assert 'href="/courses/demo-course/disclosures">Read and acknowledge the course disclosures</a>' in page
    enrolled(db, user)
    pass_quiz(db, user, "alpha-quiz")
    db.commit()
    page = client.get("/dashboard").data.decode()
    assert 'href="/courses/demo-course/modules/beta">Module 2: Module Beta</a>' in page  # the next step, linked
    assert '<a class="button" href="/courses/demo-course/modules/beta">Continue: Module 2: Module Beta</a>' in page
    assert "Quiz passed" in page and "Pass the final assessment" not in page
    # The bar counts every step, not only the modules: disclosures and one module of seven steps (three modules,
    # the final, the evaluation, email confirmation and the attestation).
    assert "2 of 7 steps" in page and 'value="29"' in page


def test_pages_that_need_login_redirect_to_login_with_next(client):
    response = client.get("/dashboard")
    assert response.status_code == 302 and response.location.startswith("/login?next=")


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR, Role.ADMIN])
def test_staff_land_on_a_dashboard_that_leads_to_their_work(client, db, login, role):
    login(make_user(db, role=role))
    db.commit()
    page = client.get("/dashboard").get_data(as_text=True)
    assert ("Your staff pages" in page) == (role != Role.LEARNER)
    assert ('href="/admin/certificates">Certificates</a>: none waiting' in page) == (role == Role.ADMIN)
