"""Quiz pages: rules, attempts, submission, review; item analysis for instructors."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required
from flask_wtf import FlaskForm

from kaptrain.accounts.models import Role
from kaptrain.auth import require_owner, role_required, user
from kaptrain.courses import services as courses
from kaptrain.db import as_utc, get_session, utcnow
from kaptrain.errors import fail
from kaptrain.quizzes import analysis, services
from kaptrain.quizzes.grading import REGISTRY
from kaptrain.quizzes.models import Attempt, AttemptStatus, Quiz

bp = Blueprint("quizzes", __name__)


def _quiz_or_404(slug: str) -> Quiz:
    quiz = services.get_quiz(get_session(), slug)
    if quiz is None:
        fail(404, "There is no quiz at this address.")
    return quiz


def _own_attempt(attempt_id: int) -> Attempt:
    attempt = get_session().get(Attempt, attempt_id)
    if attempt is None:
        fail(404, "There is no quiz attempt at this address.")
    require_owner(attempt.user_id)
    return attempt


@bp.route("/quizzes/<slug>")
@login_required
def quiz(slug: str) -> ResponseReturnValue:
    """The quiz's rules, the learner's limits and past attempts."""
    session = get_session()
    q = _quiz_or_404(slug)
    state = services.quiz_state(session, user().id, q)
    session.commit()  # an expired attempt may just have been closed
    return render_template("quizzes/quiz.html", quiz=q, state=state, form=FlaskForm())


@bp.route("/quizzes/<slug>/start", methods=["POST"])
@login_required
def start(slug: str) -> ResponseReturnValue:
    """Start a new attempt (or return to the one already open)."""
    session = get_session()
    q = _quiz_or_404(slug)
    if not FlaskForm().validate_on_submit():
        fail(400, "The form expired. Reload the page and try again.")
    try:
        attempt = services.start_attempt(session, user().id, q)
    except services.QuizError as exc:
        session.rollback()
        fail(exc.status, str(exc))
    session.commit()
    return redirect(url_for("quizzes.attempt", attempt_id=attempt.id))


@bp.route("/attempts/<int:attempt_id>")
@login_required
def attempt(attempt_id: int) -> ResponseReturnValue:
    """An open attempt's questions, or its result once submitted."""
    a = _own_attempt(attempt_id)
    now = utcnow()
    if a.status == AttemptStatus.OPEN and services.is_expired(a, now):
        session = get_session()
        services.close_expired(session, a, now)
        session.commit()
    if a.status == AttemptStatus.SUBMITTED:
        return redirect(url_for("quizzes.result", attempt_id=a.id))
    return _attempt_page(a, {}, None)


def _attempt_page(
    a: Attempt, chosen: dict[str, list[str]], error: str | None, status: int = 200
) -> ResponseReturnValue:
    seconds_left = int((as_utc(a.deadline_at) - utcnow()).total_seconds()) if a.deadline_at else None
    return render_template(
        "quizzes/attempt.html",
        attempt=a,
        quiz=a.quiz,
        error=error,
        chosen=chosen,
        form=FlaskForm(),
        items=[(item, services.shown_options(item), REGISTRY[item.revision.type]) for item in a.items],
        seconds_left=seconds_left,
    ), status


@bp.route("/attempts/<int:attempt_id>/submit", methods=["POST"])
@login_required
def submit(attempt_id: int) -> ResponseReturnValue:
    """Grade the attempt once; a replayed or double submission shows the same result."""
    session = get_session()
    a = _own_attempt(attempt_id)
    if not FlaskForm().validate_on_submit():
        fail(400, "The form expired. Your answers were not lost: go back, reload and submit again.")
    form = {k: request.form.getlist(k) for k in request.form if k.startswith("q-")}
    try:
        services.submit_attempt(session, a, form)
    except services.QuizError as exc:
        session.rollback()
        if exc.status == 409:
            fail(409, str(exc))
        return _attempt_page(a, form, str(exc), exc.status)
    session.commit()
    return redirect(url_for("quizzes.result", attempt_id=a.id))


@bp.route("/attempts/<int:attempt_id>/result")
@login_required
def result(attempt_id: int) -> ResponseReturnValue:
    """Score, pass or fail, and the review the quiz's settings allow."""
    session = get_session()
    a = _own_attempt(attempt_id)
    if a.status != AttemptStatus.SUBMITTED:
        return redirect(url_for("quizzes.attempt", attempt_id=a.id))
    state = services.quiz_state(session, user().id, a.quiz)
    next_module = None
    if a.passed and a.quiz.module is not None:
        statuses = courses.module_statuses(
            session, user().id, a.quiz.course, courses.get_enrolment(session, user().id, a.quiz.course_id)
        )
        next_module = courses.next_step(statuses)
    return render_template(
        "quizzes/result.html",
        attempt=a,
        quiz=a.quiz,
        state=state,
        review=services.review(a),
        revealed=services.answers_revealed(a),
        next_module=next_module,
        form=FlaskForm(),
    )


@bp.route("/instructor/quizzes")
@role_required(Role.INSTRUCTOR)
def instructor_quizzes() -> ResponseReturnValue:
    """Every quiz, with links to its item analysis."""
    return render_template("quizzes/instructor_list.html", quizzes=services.all_quizzes(get_session()))


@bp.route("/instructor/quizzes/<slug>/analysis")
@role_required(Role.INSTRUCTOR)
def item_analysis(slug: str) -> ResponseReturnValue:
    """Facility, discrimination and option choices per question; attempts and scores per quiz."""
    q = _quiz_or_404(slug)
    stats = analysis.quiz_stats(get_session(), q)
    peak = max((n for _l, n in stats.histogram), default=0)
    return render_template(
        "quizzes/analysis.html", quiz=q, stats=stats, peak=peak, too_easy=analysis.TOO_EASY, too_hard=analysis.TOO_HARD
    )


@bp.route("/instructor/quizzes/<slug>/analysis.csv")
@role_required(Role.INSTRUCTOR)
def item_analysis_csv(slug: str) -> ResponseReturnValue:
    """The item analysis as a CSV download."""
    q = _quiz_or_404(slug)
    body = analysis.stats_csv(analysis.quiz_stats(get_session(), q))
    return Response(
        body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{q.slug}-item-analysis.csv"'}
    )
