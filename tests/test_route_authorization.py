"""Authorisation proven route by route: every (endpoint, method) in the URL map, asked by each of five actors, gets
the answer TABLE records; a route added without an entry there fails test_every_route_has_an_entry.

The actors: nobody signed in; the learner who owns every object in the URLs (their attempts, certificate,
accommodation, emailed links); another enrolled learner, who owns none of them; an instructor; an administrator
(staff signed in with their second factor). Unsafe methods send an empty form (CSRF is off here, as in every test
but the one at the end), so the answer is what authorisation decides, then what the view makes of nothing.
Each request runs in a savepoint that is rolled back and with a copy of its actor's cookie: a logout, a revocation
or a deactivation changes nothing for the requests after it (tests/routes_support.py)."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.routes_support import (
    Actor,
    Redirect,
    Row,
    Visitor,
    World,
    build_url,
    build_world,
    each,
    endpoint_pairs,
    snapshot,
    table_problems,
)

LOGIN = Redirect("/login")  # Flask-Login's answer to anyone not signed in, for every method
DASHBOARD = Redirect("/dashboard")
FIRST_MODULE = Redirect("/courses/demo-course/modules/alpha")


def everyone(answer: int | Redirect) -> Row:
    """A public route: the same answer whoever asks."""
    return each(answer, answer, answer, answer, answer)


def guests(anonymous: int | Redirect) -> Row:
    """A page for people not signed in (log in, register): anyone signed in is sent to their dashboard."""
    return each(anonymous, DASHBOARD, DASHBOARD, DASHBOARD, DASHBOARD)


def signed_in(answer: int | Redirect) -> Row:
    """Anyone signed in, about their own account or a course's shared pages; anonymous to the login page."""
    return each(LOGIN, answer, answer, answer, answer)


def enrolled(learner: int | Redirect, other_learner: int | Redirect) -> Row:
    """A learner's page in a course, about their own record: staff are not enrolled in the fixture course, so
    they are refused (403) as any account without an enrolment is."""
    return each(LOGIN, learner, other_learner, 403, 403)


def owner_only(answer: int | Redirect, admin: int | Redirect = 404) -> Row:
    """The learner's own object by id: anyone else gets 404, which does not confirm that it exists."""
    return each(LOGIN, answer, 404, 404, admin)


def staff(answer: int | Redirect) -> Row:
    """Instructors and administrators only: learners get 403."""
    return each(LOGIN, 403, 403, answer, answer)


def admin_only(answer: int | Redirect) -> Row:
    """Administrators only: learners and instructors get 403."""
    return each(LOGIN, 403, 403, 403, answer)


AUTHOR = "/author/courses/demo-course/quizzes/alpha-quiz"
TABLE: dict[tuple[str, str], Row] = {
    # ---------------------------------------------------------------- accounts
    ("accounts.register", "GET"): guests(200),
    ("accounts.register", "POST"): guests(422),
    ("accounts.registered", "GET"): everyone(200),
    ("accounts.login", "GET"): guests(200),
    ("accounts.login", "POST"): guests(422),
    # No password accepted in this client's session: back to the first step (signed in: the dashboard).
    ("accounts.login_code", "GET"): guests(LOGIN),
    ("accounts.login_code", "POST"): guests(LOGIN),
    ("accounts.logout", "POST"): signed_in(Redirect("/")),
    ("accounts.logout_everywhere", "POST"): signed_in(Redirect("/")),
    ("accounts.profile", "GET"): signed_in(200),
    ("accounts.profile", "POST"): signed_in(Redirect("/account")),  # an empty form keeps the profile as it is
    ("accounts.change_password", "POST"): signed_in(422),
    ("accounts.change_email", "POST"): signed_in(422),
    ("accounts.resend_confirmation", "POST"): signed_in(Redirect("/account")),
    ("accounts.download_data", "POST"): signed_in(200),  # each person's own data, and only theirs
    ("accounts.close_account", "GET"): signed_in(200),
    ("accounts.close_account", "POST"): signed_in(422),  # no password, no tick: nothing closed
    ("accounts.two_factor", "GET"): signed_in(200),
    # Learners have not set it up, so the empty code is refused; staff have it on, so the page is shown.
    ("accounts.two_factor", "POST"): each(LOGIN, 422, 422, 200, 200),
    ("accounts.recovery_codes", "POST"): signed_in(422),
    ("accounts.disable_two_factor", "POST"): signed_in(422),
    ("accounts.forgot_password", "GET"): everyone(200),
    ("accounts.forgot_password", "POST"): everyone(422),
    ("accounts.reset_sent", "GET"): everyone(200),
    # The emailed links work for whoever holds them: possession of the secret is the proof.
    ("accounts.reset_password", "GET"): everyone(200),
    ("accounts.reset_password", "POST"): everyone(422),
    ("accounts.confirm_email", "GET"): everyone(200),
    ("accounts.confirm_email", "POST"): each(LOGIN, DASHBOARD, DASHBOARD, DASHBOARD, DASHBOARD),
    # ---------------------------------------------------------------- learner pages
    ("courses.home", "GET"): everyone(200),
    ("courses.catalogue", "GET"): everyone(200),
    ("courses.records_policy", "GET"): everyone(200),
    ("courses.course", "GET"): everyone(200),
    ("courses.dashboard", "GET"): signed_in(200),
    ("courses.enrol", "POST"): signed_in(Redirect("/courses/demo-course/disclosures")),
    ("courses.disclosures", "GET"): enrolled(200, 200),
    ("courses.disclosures", "POST"): enrolled(FIRST_MODULE, FIRST_MODULE),
    ("courses.module", "GET"): enrolled(200, 200),
    # The other learner never opened the module, so it has no clock to advance and nothing to mark (409).
    ("courses.mark_read", "POST"): enrolled(Redirect("/courses/demo-course/quizzes/alpha-quiz"), 409),
    ("courses.heartbeat", "POST"): enrolled(200, 409),
    ("quizzes.quiz", "GET"): signed_in(200),
    # The learner's open attempt is returned; the other learner has not opened the module yet.
    ("quizzes.start", "POST"): enrolled(Redirect("/attempts/{attempt_id}"), 403),
    ("quizzes.attempt", "GET"): owner_only(200),
    ("quizzes.save", "POST"): owner_only(Redirect("/attempts/{attempt_id}")),
    ("quizzes.extend", "POST"): owner_only(Redirect("/attempts/{attempt_id}")),  # no time limit: refused, kept
    ("quizzes.submit", "POST"): owner_only(Redirect("/attempts/{attempt_id}")),  # blanks: back to the questions
    ("quizzes.result", "GET"): owner_only(200, admin=200),  # administrators read any result (the learner record)
    # ---------------------------------------------------------------- certificates (learner side)
    # The other learner's own evaluation and attestation are locked (requirements not met): 403.
    ("certificates.evaluation", "GET"): enrolled(200, 403),
    ("certificates.evaluation", "POST"): enrolled(Redirect("/courses/demo-course/evaluation"), 403),
    ("certificates.attestation", "GET"): enrolled(200, 403),
    ("certificates.attestation", "POST"): enrolled(DASHBOARD, 403),  # already attested: to the certificate
    ("certificates.transcript", "GET"): enrolled(200, 200),
    ("certificates.transcript_pdf", "GET"): enrolled(200, 200),
    ("certificates.certificate_pdf", "GET"): owner_only(200),
    ("certificates.certificate_json", "GET"): owner_only(200),
    # The owner's profile prints what the certificate does: nothing to correct.
    ("certificates.request_correction", "POST"): owner_only(409),
    # ---------------------------------------------------------------- public verification and issuer documents
    ("certificates.verify", "GET"): everyone(200),
    ("certificates.verify_credential", "GET"): everyone(200),
    ("certificates.api_certificate", "GET"): everyone(200),
    ("certificates.check", "GET"): everyone(200),
    ("certificates.check", "POST"): everyone(422),  # no file chosen
    ("certificates.find", "GET"): everyone(422),  # no code typed
    ("certificates.status_list", "GET"): everyone(200),
    ("certificates.issuer_keys", "GET"): everyone(200),
    ("certificates.issuer_dids", "GET"): everyone(200),
    ("uploads.serve", "GET"): everyone(200),
    ("static", "GET"): everyone(200),
    ("favicon", "GET"): everyone(200),
    # ---------------------------------------------------------------- instructors
    ("instructor.learners", "GET"): staff(200),
    ("instructor.learner", "GET"): staff(200),
    ("instructor.learners_csv", "GET"): staff(200),
    ("instructor.course_evaluations", "GET"): staff(200),
    ("instructor.course_evaluations_csv", "GET"): staff(409),  # one evaluation: fewer than the group of 3
    ("quizzes.instructor_quizzes", "GET"): staff(200),
    ("quizzes.instructor_home", "GET"): staff(Redirect("/instructor/quizzes")),
    ("quizzes.item_analysis", "GET"): staff(200),
    ("quizzes.item_analysis_csv", "GET"): staff(200),
    # ---------------------------------------------------------------- authoring (instructors and admins)
    ("authoring.workspace", "GET"): staff(200),
    ("authoring.add_module", "POST"): staff(400),
    ("authoring.module_edit", "GET"): staff(200),
    ("authoring.module_edit", "POST"): staff(400),
    ("authoring.module_move", "POST"): staff(400),
    ("authoring.module_retire", "GET"): staff(200),
    ("authoring.module_retire", "POST"): staff(400),
    ("authoring.module_history", "GET"): staff(200),
    ("authoring.module_file", "GET"): staff(200),
    ("authoring.module_file", "POST"): staff(400),  # no file chosen
    ("authoring.bank_file", "GET"): staff(200),
    # The module has a draft this form did not load: restoring over it is refused.
    ("authoring.module_restore", "POST"): staff(409),
    ("authoring.preview", "POST"): staff(200),
    ("authoring.bank", "GET"): staff(200),
    ("authoring.add_question", "POST"): staff(400),
    ("authoring.question", "GET"): staff(200),
    ("authoring.question", "POST"): staff(400),
    ("authoring.move_question", "POST"): staff(400),
    ("authoring.retire_question", "POST"): staff(Redirect(AUTHOR)),  # no "retired" field: reinstated, as it was
    ("authoring.question_history", "GET"): staff(200),
    ("authoring.question_preview", "GET"): staff(200),
    ("authoring.restore_question", "POST"): staff(Redirect(f"{AUTHOR}/questions/alpha-q1")),
    ("authoring.add_case", "POST"): staff(400),
    ("authoring.case", "GET"): staff(200),
    ("authoring.case", "POST"): staff(400),
    ("authoring.case_history", "GET"): staff(200),
    ("authoring.restore_case", "POST"): staff(Redirect(f"{AUTHOR}/cases/case-a")),
    ("authoring.quiz_settings", "GET"): staff(200),
    ("authoring.quiz_settings", "POST"): staff(400),
    ("authoring.rules_history", "GET"): staff(200),
    ("authoring.restore_rules", "POST"): staff(Redirect(f"{AUTHOR}/settings")),
    ("authoring.uploads_page", "GET"): staff(200),
    ("authoring.uploads_page", "POST"): staff(400),  # no file chosen
    # ---------------------------------------------------------------- administration
    ("admin.people", "GET"): admin_only(200),
    ("admin.person", "GET"): admin_only(200),
    ("admin.person_new", "GET"): admin_only(200),
    ("admin.person_new", "POST"): admin_only(422),  # no name or address given
    ("admin.person_profile", "GET"): admin_only(200),
    ("admin.person_profile", "POST"): admin_only(Redirect("/admin/people/{user_id}")),  # the values kept, unchanged
    ("admin.person_enrol", "POST"): admin_only(422),  # no course chosen
    ("admin.person_role", "POST"): admin_only(422),  # no role chosen
    ("admin.person_deactivate", "POST"): admin_only(422),  # the box not ticked
    ("admin.person_reactivate", "POST"): admin_only(422),  # the account is active
    ("admin.person_close", "GET"): admin_only(200),
    ("admin.person_close", "POST"): admin_only(422),  # the confirmation was not typed
    ("admin.person_reset_two_factor", "POST"): admin_only(422),  # the learner has no two-factor sign-in
    ("admin.person_send_confirmation", "POST"): admin_only(422),  # the learner's address is confirmed already
    ("admin.person_send_reset", "POST"): admin_only(Redirect("/admin/people/{user_id}")),  # a link is mailed
    ("admin.accommodations", "GET"): admin_only(200),
    ("admin.accommodations", "POST"): admin_only(422),
    ("admin.accommodation", "GET"): admin_only(200),
    ("admin.accommodation", "POST"): admin_only(Redirect("/admin/accommodations/{acc_id}")),  # kept as it was
    ("admin.withdraw_accommodation", "POST"): admin_only(Redirect("/admin/accommodations/{acc_id}")),  # no reason
    ("admin.home", "GET"): admin_only(Redirect("/admin/people")),
    ("admin.certificates", "GET"): admin_only(200),
    ("admin.certificate", "GET"): admin_only(200),
    ("admin.certificate_pdf", "GET"): admin_only(200),
    ("admin.approve_certificates", "POST"): admin_only(Redirect("/admin/certificates")),  # none chosen
    ("admin.issue_certificate", "POST"): admin_only(422),
    ("admin.revoke_certificate", "POST"): admin_only(422),  # no reason given
    ("admin.reissue_certificate", "POST"): admin_only(422),  # no reason given
    ("admin.approve_certificate", "POST"): admin_only(409),  # certificate 1 is issued, not waiting
    ("admin.return_claim", "POST"): admin_only(409),  # certificate 1 is issued, not waiting
    ("admin.decline_correction", "POST"): admin_only(409),  # certificate 1's holder asked for no correction
    ("admin.reports", "GET"): admin_only(200),
    ("admin.completions_csv", "GET"): admin_only(200),
    ("admin.audit_log", "GET"): admin_only(200),
    ("admin.audit_csv", "GET"): admin_only(200),
    ("admin.site_settings", "GET"): admin_only(200),
    ("admin.site_settings", "POST"): admin_only(Redirect("/admin/settings")),  # the current values, unchanged
}

# Which of the world's values fills a URL parameter whose name alone is ambiguous (routes_support.build_world).
QUIZ_SLUG = {"slug": "quiz_slug"}
QUESTION = {"key": "question_key"}
CASE = {"key": "case_key"}
PARAMETERS: dict[str, dict[str, str]] = {
    "quizzes.result": {"attempt_id": "graded_attempt_id"},
    "quizzes.quiz": QUIZ_SLUG,
    "quizzes.start": QUIZ_SLUG,
    "quizzes.item_analysis": QUIZ_SLUG,
    "quizzes.item_analysis_csv": QUIZ_SLUG,
    "certificates.status_list": {"number": "status_list"},
    "accounts.reset_password": {"token": "reset_token"},
    "accounts.confirm_email": {"token": "confirm_token"},
    "authoring.question": QUESTION,
    "authoring.question_history": QUESTION,
    "authoring.question_preview": QUESTION,
    "authoring.restore_question": QUESTION,
    "authoring.move_question": QUESTION,
    "authoring.retire_question": QUESTION,
    "authoring.case": CASE,
    "authoring.case_history": CASE,
    "authoring.restore_case": CASE,
}


@pytest.fixture
def world(app, db, tmp_path, monkeypatch) -> World:  # type: ignore[no-untyped-def]
    """The actors and the learner's objects (uploads in a temporary folder)."""
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    return build_world(app, db, tmp_path)


def urls(app: Flask, world: World) -> dict[str, str]:
    """Each endpoint's URL, its parameters filled with the world's objects."""
    return {
        rule.endpoint: build_url(app, rule, world, PARAMETERS.get(rule.endpoint, {}))
        for rule in app.url_map.iter_rules()
    }


def test_every_route_has_an_entry(app):  # type: ignore[no-untyped-def]
    problems = table_problems(app, TABLE)
    assert not problems, "TABLE does not match the URL map:\n" + "\n".join(problems)
    assert len(TABLE) > 100  # the walk below covers the whole site, not a sample


def test_the_entry_check_names_a_new_route_and_a_stale_entry(extra_app):  # type: ignore[no-untyped-def]
    fresh = extra_app()
    table = {pair: everyone(200) for pair in endpoint_pairs(fresh)}  # complete for the app as built
    fresh.add_url_rule("/probe", "probe", lambda: "", methods=["GET", "POST"])
    table |= {("gone.page", "GET"): everyone(200), ("courses.home", "GET"): {Actor.ANONYMOUS: 200}}
    assert table_problems(fresh, table) == [
        "no entry for probe GET: add it to TABLE",
        "no entry for probe POST: add it to TABLE",
        "stale entry for gone.page GET: the app has no such route",
        "entry for courses.home GET lacks learner, other_learner, instructor, admin",
    ]
    assert ("probe", "HEAD") not in endpoint_pairs(fresh)  # Werkzeug answers HEAD and OPTIONS itself


@pytest.mark.parametrize("actor", list(Actor))
def test_each_route_answers_the_actor_as_the_table_says(app, db, world, actor):  # type: ignore[no-untyped-def]
    visitor = Visitor(app, db, world, [actor])
    before = snapshot(db)
    addresses = urls(app, world)
    mismatches = []
    for (endpoint, method), row in sorted(TABLE.items()):
        url = addresses[endpoint]
        answer = visitor.request(actor, method, url)
        if not answer.matches(row[actor], world.values):
            expected = str(row[actor]).format(**world.values)
            mismatches.append(f"{endpoint} {method} as {actor}: {url} expected {expected}, got {answer}")
    assert not mismatches, f"{len(mismatches)} route(s) answered {actor} otherwise:\n" + "\n".join(mismatches)
    assert snapshot(db) == before, "a request left a change behind: the cases are not independent"


# A sample of unsafe requests that succeed without CSRF (TABLE says so): with it on, each is refused.
CSRF_SAMPLE = [
    (Actor.ANONYMOUS, "accounts.confirm_email"),
    (Actor.LEARNER, "accounts.logout"),
    (Actor.LEARNER, "accounts.logout_everywhere"),
    (Actor.LEARNER, "quizzes.save"),
    (Actor.OTHER_LEARNER, "courses.enrol"),
    (Actor.INSTRUCTOR, "authoring.restore_rules"),
    (Actor.ADMIN, "admin.approve_certificates"),
    (Actor.ADMIN, "admin.site_settings"),
]


def test_with_csrf_on_a_post_without_its_token_is_refused(app, db, world, request):  # type: ignore[no-untyped-def]
    visitor = Visitor(app, db, world)  # signed in before CSRF is on: the sign-in form sends no token either
    request.getfixturevalue("csrf_on")
    addresses = urls(app, world)
    before = snapshot(db)
    for actor, endpoint in CSRF_SAMPLE:
        assert isinstance(TABLE[endpoint, "POST"][actor], Redirect), f"{endpoint} is no success to refuse"
        response = visitor.response(actor, "POST", addresses[endpoint], keep=True)
        assert response.status_code == 400, f"{endpoint} as {actor}: {response.status_code}"
        assert "The form expired or was sent from another site" in response.get_data(as_text=True)
    assert snapshot(db) == before, "a refused request wrote something"
