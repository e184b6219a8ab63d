"""Quiz pages: rules, attempts, submission, review; item analysis for instructors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from kaptrain import csvout, pagecache
from kaptrain.accounts.models import Role, User
from kaptrain.auth import require_owner, role_required, user
from kaptrain.content import catalogue
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.db import get_session, may_write, utcnow
from kaptrain.errors import fail
from kaptrain.quizzes import analysis, fast, sections, services, timing
from kaptrain.quizzes.grading import REGISTRY
from kaptrain.quizzes.models import Attempt, AttemptStatus, Quiz

bp = Blueprint("quizzes", __name__)


def _quiz_or_404(course_slug: str, slug: str) -> Quiz:
    session = get_session()
    course = courses.get_course(session, course_slug)
    quiz = services.get_quiz(session, course.id, slug) if course is not None else None
    if quiz is None:
        fail(404, "There is no quiz at this address. Open the course page to find its quizzes.")
    return quiz


def _published_quiz_or_404(course_slug: str, slug: str) -> Quiz:
    """A learner page's quiz, from the content catalogue (shared and read-only)."""
    published = catalogue.current(get_session()).by_slug(course_slug)
    quiz = published.quiz(slug) if published is not None and published.course.is_published else None
    if quiz is None:
        fail(404, "There is no quiz at this address. Open the course page to find its quizzes.")
    return quiz


def _own_attempt(attempt_id: int, admin_may_read: bool = False) -> Attempt:
    # Its questions in the same statement: every page of an attempt shows or grades them.
    attempt = get_session().get(Attempt, attempt_id, options=[joinedload(Attempt.items)])
    if attempt is None:
        fail(404, "There is no quiz attempt at this address.")
    # Admins may read anyone's result (the learner's record links to it), never open or submit it.
    if not (admin_may_read and user().role == Role.ADMIN):
        require_owner(attempt.user_id)
    return attempt


def _record(quiz: Quiz, user_id: int | None = None) -> completion.CourseRecord:
    user_id = user().id if user_id is None else user_id
    return completion.learner_record(get_session(), user_id, quiz.course)


def _module_slug(quiz: Quiz) -> str | None:
    return quiz.module.slug if quiz.module else None


def _standing(quiz: Quiz, user_id: int | None = None) -> tuple[completion.CourseRecord, services.QuizState]:
    """The learner's record in the course and their state on the quiz, from one read of their attempts."""
    session = get_session()
    user_id = user().id if user_id is None else user_id
    attempts = services.attempts_in_course(session, user_id, quiz.course_id)
    record = completion.learner_record(session, user_id, quiz.course, attempts)
    gate = completion.quiz_gate(record, quiz)
    own = [a for a in attempts if a.quiz_id == quiz.id]
    return record, services.quiz_state(session, user_id, quiz, gate, attempts=own)


@bp.route("/courses/<course_slug>/quizzes/<slug>")
@login_required
@may_write  # an expired attempt found open is closed at this first observation
def quiz(course_slug: str, slug: str) -> ResponseReturnValue:
    """The quiz's rules, the learner's limits and past attempts."""
    q = _published_quiz_or_404(course_slug, slug)
    record, state = _standing(q)
    pagecache.changes_at(state.changes_at)
    # Where "not open yet" sends the learner: the quiz's module when it is open to them, else the outline.
    status = next((m for m in record.modules if q.module is not None and m.module.id == q.module.id), None)
    module_open = status is not None and status.state != completion.State.LOCKED
    return render_template("quizzes/quiz.html", quiz=q, state=state, form=FlaskForm(), module_open=module_open)


@bp.route("/courses/<course_slug>/quizzes/<slug>/start", methods=["POST"])
@login_required
def start(course_slug: str, slug: str) -> ResponseReturnValue:
    """Start a new attempt (or return to the one already open)."""
    q = _published_quiz_or_404(course_slug, slug)
    if not FlaskForm().validate_on_submit():
        fail(400, "The form expired. Reload the page and try again.")
    try:
        attempt = services.start_attempt(get_session(), user().id, q, completion.quiz_gate(_record(q), q))
    except services.QuizError as exc:
        if exc.until is not None:
            when = current_app.jinja_env.filters["localtime"](exc.until)
            fail(exc.status, f"{exc} You can try again after {when}.")
        fail(exc.status, str(exc))
    return redirect(url_for("quizzes.attempt", attempt_id=attempt.id))


@bp.route("/attempts/<int:attempt_id>")
@login_required
@may_write  # an expired attempt is closed at this first observation
def attempt(attempt_id: int) -> ResponseReturnValue:
    """An open attempt's questions, or its result once submitted."""
    a = _own_attempt(attempt_id)
    now = utcnow()
    if a.status == AttemptStatus.OPEN and services.is_expired(a, now):
        services.close_expired(get_session(), a, now)
    if a.status == AttemptStatus.SUBMITTED:
        return redirect(url_for("quizzes.result", attempt_id=a.id))
    saved = services.saved_answers(a)
    # ?check=1: a submission was refused for blank questions (its answers were saved): name and mark them.
    blanks = services.unanswered(a, saved) if request.args.get("check") else []
    return _attempt_page(a, _form_values(a, saved), None, unanswered=blanks)


def _form_values(a: Attempt, answers: dict[int, frozenset[str]]) -> dict[str, list[str]]:
    """The answers as the page's form names them (q-<item id> -> shown positions), to tick them again."""
    return {f"q-{item.id}": services.form_for(item, sorted(answers.get(item.id, ()))) for item in a.items}


def _attempt_page(
    a: Attempt,
    chosen: dict[str, list[str]],
    error: str | None,
    status: int = 200,
    unanswered: list[int] | None = None,
    saved_as: str | None = None,
    error_heading: str | None = None,
) -> ResponseReturnValue:
    seconds_left = int((a.deadline_at - utcnow()).total_seconds()) if a.deadline_at else None
    return render_template(
        "quizzes/attempt.html",
        # The answers saved as this page shows them: its saves replace those only (services.save_answers).
        saved_as=saved_as or services.answers_fingerprint(a.items, services.saved_answers(a)),
        error_heading=error_heading,
        attempt=a,
        quiz=a.quiz,
        error=error,
        unanswered=unanswered or [],
        chosen=chosen,
        form=FlaskForm(),
        items=[(item, services.shown_options(item), REGISTRY[item.revision.type]) for item in a.items],
        seconds_left=seconds_left,
        extensions_left=timing.extensions_left(get_session(), a),
        extension_minutes=timing.EXTENSION_MINUTES,
    ), status


def _changed_elsewhere_page(a: Attempt, exc: services.ChangedElsewhere, heading: str) -> ResponseReturnValue:
    """The attempt as another tab saved it, instead of the stale page's answers: going on from here loses nothing."""
    return _attempt_page(
        a, _form_values(a, exc.saved), str(exc), exc.status, saved_as=exc.current, error_heading=heading
    )


def _closed_at_deadline(a: Attempt, now: dt.datetime) -> bool:
    """Close an open attempt found past its deadline (committed with this response) and say so."""
    if a.status != AttemptStatus.OPEN or not services.is_expired(a, now):
        return False
    services.close_expired(get_session(), a, now)
    flash(
        "The time limit ran out before these answers were sent, so they were not accepted. The attempt is "
        "closed and was graded on the answers saved before the time ran out.",
        "error",
    )
    return True


@bp.route("/attempts/<int:attempt_id>/submit", methods=["POST"])
@login_required
def submit(attempt_id: int) -> ResponseReturnValue:
    """Grade the attempt once; a replayed or double submission shows the same result."""
    a = _own_attempt(attempt_id)
    if not FlaskForm().validate_on_submit():
        fail(400, "The form expired. Your answers were not lost: go back, reload and submit again.")
    now = utcnow()
    if _closed_at_deadline(a, now):
        return redirect(url_for("quizzes.result", attempt_id=a.id))
    form = _answers_sent(request.form)
    if a.status == AttemptStatus.SUBMITTED:  # a double click, or the same attempt submitted from another tab
        if _differ_from_graded(a, form):
            flash(
                "This attempt had already been submitted, in another window or tab. The answers graded are the ones "
                "submitted there: the changes made in this window were not counted.",
                "info",
            )
        return redirect(url_for("quizzes.result", attempt_id=a.id))
    try:
        services.submit_attempt(get_session(), a, form, now, shown=request.form.get("saved_as") or None)
    except services.ChangedElsewhere as exc:
        return _changed_elsewhere_page(a, exc, "Your answers were not submitted")
    except services.Unanswered as exc:
        # Blanks refuse the submission, never the work: the answers sent are kept and the blanks named.
        services.save_answers(get_session(), a, exc.answers, now)
        return redirect(url_for("quizzes.attempt", attempt_id=a.id, check=1))
    except services.QuizError as exc:
        return _attempt_page(a, form, str(exc), exc.status)
    return redirect(url_for("quizzes.result", attempt_id=a.id))


def _differ_from_graded(attempt: Attempt, form: dict[str, list[str]]) -> bool:
    """Whether a repeated submission chose other answers than the graded one (a double click chose the same)."""
    try:
        sent = {item: chosen for item, chosen in services.read_answers(attempt, form).items() if chosen}
    except services.QuizError:
        return True
    return sent != services.saved_answers(attempt)


def _answers_sent(form: MultiDict[str, str]) -> dict[str, list[str]]:
    # A multipart part whose name holds a line break is read by Werkzeug as a field without a name (None).
    return {k: form.getlist(k) for k in form if k and k.startswith("q-")}


@pagecache.fast_path("quizzes.submit", method="POST")
def _submit_fast(learner: pagecache.Learner, args: dict[str, Any], form: MultiDict[str, str]) -> BaseResponse | None:
    # Plain statements for the usual submission (kaptrain.quizzes.fast); anything else goes the normal way above.
    # Served in Flask's request or in the fast lane's (kaptrain.fastlane), which has no request: the form is given.
    if not fast.submit(learner, args["attempt_id"], _answers_sent(form), utcnow(), form.get("saved_as") or None):
        return None
    return redirect(pagecache.location("quizzes.result", attempt_id=args["attempt_id"]))


@bp.route("/attempts/<int:attempt_id>/save", methods=["POST"])
@login_required
def save(attempt_id: int) -> ResponseReturnValue:
    """Keep the answers chosen so far on the open attempt: the "Save answers" button, or the page's script (JSON)."""
    a = _own_attempt(attempt_id)
    as_json = request.accept_mimetypes.best == "application/json"
    if not FlaskForm().validate_on_submit():
        fail(400, "The form expired. Reload the page: the answers saved before are kept.")
    now = utcnow()
    if not as_json and _closed_at_deadline(a, now):
        return redirect(url_for("quizzes.result", attempt_id=a.id))
    sent = _answers_sent(request.form)
    try:
        saved_as = services.save_answers(
            get_session(), a, services.read_answers(a, sent), now, shown=request.form.get("saved_as") or None
        )
    except services.ChangedElsewhere as exc:
        if as_json:
            return jsonify(error=str(exc), changed_elsewhere=True), exc.status
        return _changed_elsewhere_page(a, exc, "Your answers were not saved")
    except services.QuizError as exc:
        if as_json:
            return jsonify(error=str(exc)), exc.status
        fail(exc.status, str(exc))
    if as_json:
        return jsonify(saved=True, saved_as=saved_as, unanswered=services.unanswered(a, services.saved_answers(a)))
    flash("Your answers are saved. You can leave this page and come back to them.", "success")
    return redirect(url_for("quizzes.attempt", attempt_id=a.id))


@bp.route("/attempts/<int:attempt_id>/extend", methods=["POST"])
@login_required
def extend(attempt_id: int) -> ResponseReturnValue:
    """ "I need more time": add time to the open attempt where its quiz allows, keeping the answers sent with it."""
    a = _own_attempt(attempt_id)
    if not FlaskForm().validate_on_submit():
        fail(400, "The form expired. Reload the page: the answers saved before are kept.")
    now = utcnow()
    if _closed_at_deadline(a, now):
        return redirect(url_for("quizzes.result", attempt_id=a.id))
    try:
        services.save_answers(get_session(), a, services.read_answers(a, _answers_sent(request.form)), now)
    except services.QuizError as exc:
        fail(exc.status, str(exc))
    try:
        deadline = timing.extend_attempt(get_session(), a, now)
    except services.QuizError as exc:
        flash(f"{exc} Your answers are saved.", "error")  # refused, but the answers sent with it are kept
    else:
        when = current_app.jinja_env.filters["localtime"](deadline)
        flash(f"{timing.EXTENSION_MINUTES} minutes were added: submit by {when}. Your answers are saved.", "success")
    return redirect(url_for("quizzes.attempt", attempt_id=a.id))


@bp.route("/attempts/<int:attempt_id>/result")
@login_required
@may_write  # the learner's standing closes a later attempt found open past its deadline
def result(attempt_id: int) -> ResponseReturnValue:
    """Score, pass or fail, and the review the quiz's settings allow."""
    a = _own_attempt(attempt_id, admin_may_read=True)
    staff_view = a.user_id != user().id
    if a.status != AttemptStatus.SUBMITTED:
        if staff_view:
            fail(404, "This attempt has not been submitted, so it has no result yet.")
        return redirect(url_for("quizzes.attempt", attempt_id=a.id))
    record, state = _standing(a.quiz, a.user_id)
    revealed = services.answers_revealed(a, state.passed)
    return render_template(
        "quizzes/result.html",
        attempt=a,
        quiz=a.quiz,
        state=state,
        review=services.review(a, revealed),
        reread=sections.reread_targets(a.items, _module_pages(record), _module_slug(a.quiz)),
        revealed=revealed,
        next_step=record.next_step if a.passed else None,
        record=record,
        form=FlaskForm(),
        staff_view=staff_view,
        owner=get_session().get(User, a.user_id) if staff_view else None,
    )


def _module_pages(record: completion.CourseRecord) -> dict[str, str]:
    """Each module's rendered HTML by slug (rendered once per content version), for the review's re-read links."""
    shelf = catalogue.current(get_session())
    return {m.module.slug: shelf.rendered(m.revision).html for m in record.modules}


@bp.route("/instructor/")
@role_required(Role.INSTRUCTOR)
def instructor_home() -> ResponseReturnValue:
    """The instructor's pages start at the quiz list (which also links each course's learners and evaluations)."""
    return redirect(url_for("quizzes.instructor_quizzes"))


@bp.route("/instructor/quizzes")
@role_required(Role.INSTRUCTOR)
def instructor_quizzes() -> ResponseReturnValue:
    """Every course's learner overview and evaluation summary, and every quiz with a link to its item analysis."""
    return render_template("quizzes/instructor_list.html", quizzes=services.all_quizzes(get_session()))


@bp.route("/instructor/courses/<course_slug>/quizzes/<slug>/analysis")
@role_required(Role.INSTRUCTOR)
def item_analysis(course_slug: str, slug: str) -> ResponseReturnValue:
    """Facility, discrimination and option choices per question; attempts and scores per quiz."""
    q = _quiz_or_404(course_slug, slug)
    min_attempts = current_app.config["ITEM_ANALYSIS_MIN_ATTEMPTS"]
    stats = analysis.quiz_stats(get_session(), q, min_attempts)
    peak = max((n for _l, n in stats.histogram), default=0)
    return render_template(
        "quizzes/analysis.html",
        quiz=q,
        stats=stats,
        peak=peak,
        too_easy=analysis.TOO_EASY,
        too_hard=analysis.TOO_HARD,
        weak=analysis.WEAK_DISCRIMINATION,
        min_attempts=min_attempts,
    )


@bp.route("/instructor/courses/<course_slug>/quizzes/<slug>/analysis.csv")
@role_required(Role.INSTRUCTOR)
def item_analysis_csv(course_slug: str, slug: str) -> ResponseReturnValue:
    """The item analysis as a CSV download, streamed line by line."""
    q = _quiz_or_404(course_slug, slug)
    stats = analysis.quiz_stats(get_session(), q, current_app.config["ITEM_ANALYSIS_MIN_ATTEMPTS"])
    return csvout.download(analysis.stats_csv_lines(stats), f"{q.slug}-item-analysis.csv")
