"""Authoring pages: question banks, their cases and their rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from kaptrain.accounts.models import Role
from kaptrain.auth import role_required, user
from kaptrain.authoring import bank as banks
from kaptrain.authoring import bank_editing as editing
from kaptrain.authoring import question_preview as previews
from kaptrain.authoring import services
from kaptrain.authoring.bank_editing import Outcome
from kaptrain.authoring.bank_forms import (
    ActionForm,
    AddCaseForm,
    AddQuestionForm,
    CaseForm,
    EditorForm,
    QuestionForm,
    RestoreForm,
    RulesForm,
    attach_errors,
    question_data,
    question_form_data,
    summary,
    type_names,
)
from kaptrain.authoring.blueprint import bp
from kaptrain.content import revisions
from kaptrain.content.models import Course
from kaptrain.content.revisions import Item
from kaptrain.db import get_session
from kaptrain.errors import fail
from kaptrain.forms import whole_number
from kaptrain.quizzes.models import Question, Quiz, QuizKind
from kaptrain.quizzes.models import Vignette as VignetteRow

T = TypeVar("T")
BANK = "/courses/<course_slug>/quizzes/<quiz_slug>"
ACTIONS = ("save", "publish", "discard")


def _found(finder: Callable[..., T], *args: Any) -> T:
    """Look something up with a bank finder; its AuthoringError becomes the error page."""
    try:
        return finder(get_session(), *args)
    except services.AuthoringError as exc:
        fail(exc.status, str(exc))


def _bank(course_slug: str, quiz_slug: str) -> tuple[Course, Quiz]:
    return _found(banks.find_bank, course_slug, quiz_slug)


def _at(quiz: Quiz, endpoint: str, **args: Any) -> str:
    return url_for(f"authoring.{endpoint}", course_slug=quiz.course.slug, quiz_slug=quiz.slug, **args)


# ---------------------------------------------------------------- the bank page


@bp.route(BANK)
@role_required(Role.INSTRUCTOR)
def bank(course_slug: str, quiz_slug: str) -> ResponseReturnValue:
    """A question bank: its rules, cases and questions in order, with their state and item-writing warnings."""
    _course, quiz = _bank(course_slug, quiz_slug)
    return _bank_page(quiz, AddQuestionForm(key=banks.next_key(get_session(), quiz)))


def _bank_page(quiz: Quiz, add_form: AddQuestionForm, status: int = 200) -> ResponseReturnValue:
    session = get_session()
    report = banks.course_report(session, quiz)
    cases = banks.cases_of(session, quiz)
    users = {c.id: [bq.question.key for bq in report.questions if bq.data.get("vignette_id") == c.id] for c in cases}
    questions = [bq.question for bq in report.questions]
    return render_template(
        "authoring/bank.html",
        quiz=quiz,
        rules=revisions.published(session, quiz),
        rules_state=services.item_states(session, revisions.QUIZ, [quiz])[0],
        cases=services.item_states(session, revisions.VIGNETTE, cases),
        case_users=users,
        report=report,
        states={s.item.id: s for s in services.item_states(session, revisions.QUESTION, questions)},
        in_use=[bq for bq in report.questions if not bq.question.is_retired],
        retired=[bq for bq in report.questions if bq.question.is_retired],
        published_count=banks.published_count(session, quiz),
        add_form=add_form,
        case_form=AddCaseForm(prefix="case"),
        type_labels=type_names(),
        problems=summary(add_form, []),
    ), status


@bp.route(f"{BANK}/file")
@role_required(Role.INSTRUCTOR)
def bank_file(course_slug: str, quiz_slug: str) -> ResponseReturnValue:
    """The published bank (rules, cases, questions in use) as its content file; drafts are not in it."""
    _course, quiz = _bank(course_slug, quiz_slug)
    try:
        text, name = banks.bank_file(get_session(), quiz)
    except ValidationError as exc:
        fail(
            409,
            "The published bank cannot be written as a file: " + exc.errors()[0]["msg"].removeprefix("Value error, "),
        )
    response = Response(text, mimetype="application/yaml")
    response.headers.set("Content-Disposition", "attachment", filename=name)
    return response


@bp.route(f"{BANK}/questions", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def add_question(course_slug: str, quiz_slug: str) -> ResponseReturnValue:
    """Add a question at the end of the bank (a draft until published) and open its editor."""
    _course, quiz = _bank(course_slug, quiz_slug)
    form = AddQuestionForm()
    if form.validate_on_submit():
        try:
            question = services.add_question(get_session(), quiz, form.key.data, form.type.data, user())
        except services.InvalidDraft as exc:
            attach_errors(form, exc.errors, [])
        else:
            flash("Question added as a draft: write it, then publish it to have attempts draw it.", "success")
            return redirect(_at(quiz, "question", key=question.key))
    return _bank_page(quiz, form, 400)


@bp.route(f"{BANK}/questions/<key>/move", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def move_question(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """Move a question one place up or down in the bank."""
    _course, quiz = _bank(course_slug, quiz_slug)
    question = _found(banks.find_question, quiz, key)
    offset = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if not ActionForm().validate_on_submit() or offset is None:
        fail(400, "The form expired or was incomplete. Reload the bank page and try again.")
    _structure(banks.move_question, question, offset)
    return redirect(_at(quiz, "bank", _anchor=f"q-{question.key}"))


@bp.route(f"{BANK}/questions/<key>/retire", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def retire_question(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """Retire a question (no longer drawn; past attempts keep it) or reinstate it."""
    _course, quiz = _bank(course_slug, quiz_slug)
    question = _found(banks.find_question, quiz, key)
    retire = request.form.get("retired") == "1"
    if not ActionForm().validate_on_submit():
        fail(400, "The form expired. Reload the bank page and try again.")
    _structure(banks.retire_question, quiz, question, retire)
    word = "retired: new attempts no longer draw it" if retire else "reinstated: new attempts may draw it again"
    flash(f"Question {question.key} {word}.", "success")
    return redirect(_at(quiz, "bank", _anchor=f"q-{question.key}"))


def _structure(change: Callable[..., None], *args: Any) -> None:
    try:
        change(get_session(), *args, user())
    except services.AuthoringError as exc:
        fail(exc.status, str(exc))


# ---------------------------------------------------------------- editing drafts (questions, cases, rules)


def _edit(
    item: Item,
    form: EditorForm,
    data_of: Callable[[], dict[str, Any]],
    page: Callable[[Outcome, dict[str, Any] | None], ResponseReturnValue],
    done: str,
) -> ResponseReturnValue:
    """Run the editor's button (save draft, publish, discard) and answer: back to `done`, or the page refused."""
    action = request.form.get("action", "save")
    if action not in ACTIONS:
        fail(400, "That button is not one of this editor's. Reload the page and try again.")
    if not (ActionForm().validate_on_submit() if action == "discard" else form.validate_on_submit()):
        return page(Outcome("The draft was not saved: correct what is marked below.", 400), None)
    try:
        data = None if action == "discard" else data_of()
    except services.InvalidDraft as exc:
        return page(Outcome("The draft was not saved: correct what is marked below.", 400, errors=exc.errors), None)
    outcome = editing.run_action(
        get_session(), item, action, data, user(), form.loaded(), form.replacing(), note=form.note()
    )
    if not outcome.ok:
        return page(outcome, data)
    flash(outcome.message, "success")
    return redirect(done)


def _opened(item: Item) -> tuple[dict[str, Any], tuple[int | None, int | None]]:
    """The item's data as the editor opens it, and the draft version and published revision it is opened at."""
    session = get_session()
    data, draft = _found(services.current_data, item)
    current = revisions.published(session, item)
    return data, (draft.version if draft else None, current.number if current else None)


def _refused(form: EditorForm, outcome: Outcome | None, group: list[str]) -> None:
    """Show a refusal on the form: errors on their fields, the page moved to the version now current."""
    if outcome is None:
        return
    attach_errors(form, outcome.errors, group)
    if outcome.loaded is not None:
        form.load(outcome.loaded)
    form.replace_revision.data = str(outcome.replace) if outcome.replace is not None else ""


def _editor_context(item: Item, outcome: Outcome | None, mine: dict[str, Any] | None) -> dict[str, Any]:
    session = get_session()
    kind = revisions.kind_of(item)
    theirs = outcome.theirs if outcome is not None else None
    return {
        "state": services.item_states(session, kind, [item])[0],
        "outcome": outcome,
        "diffs": editing.compare(session, kind, theirs, mine) if theirs is not None and mine is not None else [],
    }


@bp.route(f"{BANK}/questions/<key>", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def question(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """Edit a question's draft: type, section, case, stem, options and explanation; publish or discard it."""
    _course, quiz = _bank(course_slug, quiz_slug)
    q = _found(banks.find_question, quiz, key)
    if request.method == "GET":
        data, loaded = _opened(q)
        # ?case=<id>: a case just added from this editor is chosen in the form, unsaved, ready to save.
        added = _found(banks.find_case, quiz, request.args["case"]) if request.args.get("case") else None
        if added is not None:
            data = {**data, "vignette_id": added.id}
        form = QuestionForm(data=question_form_data(data))
        form.load(loaded)
        return _question_page(quiz, q, form)
    form = QuestionForm()
    if request.form.get("action") == "refresh":  # the module changed without JavaScript: list its sections
        return _question_page(quiz, q, form)
    module_id = form.module_id.data if quiz.kind == QuizKind.FINAL else _found(services.current_data, q)[0]["module_id"]
    if request.form.get("action") == "preview":  # the form as a learner would get it; nothing saved
        return _preview_typed(quiz, q, form, module_id)
    return _edit(
        q,
        form,
        lambda: banks.with_option_ids(get_session(), q, question_data(form, module_id)),
        lambda outcome, mine: _question_page(quiz, q, form, outcome, mine),
        _at(quiz, "question", key=q.key),
    )


def _preview_typed(quiz: Quiz, q: Question, form: QuestionForm, module_id: Any) -> ResponseReturnValue:
    """The editor with what its form says laid out as a learner would get it, or its problems; nothing saved."""
    refused = "Nothing to preview yet, and nothing was saved: correct what is marked below."
    if not form.validate_on_submit():
        return _question_page(quiz, q, form, Outcome(refused, 400))
    try:
        typed = banks.with_option_ids(get_session(), q, question_data(form, module_id))
        services.check(get_session(), q, typed)  # what saving would refuse, previewing refuses too
    except services.InvalidDraft as exc:
        return _question_page(quiz, q, form, Outcome(refused, 400, errors=exc.errors))
    return _question_page(quiz, q, form, unsaved=previews.unsaved(get_session(), quiz, q, typed))


def _question_page(
    quiz: Quiz,
    q: Question,
    form: QuestionForm,
    outcome: Outcome | None = None,
    mine: dict[str, Any] | None = None,
    unsaved: previews.QuestionPreview | None = None,
) -> ResponseReturnValue:
    session = get_session()
    group: list[str] = []
    _refused(form, outcome, group)
    modules = banks.course_modules(session, quiz.course_id)
    module_id = quiz.module_id if quiz.kind == QuizKind.MODULE else form.module_id.data
    chosen = modules.get(module_id) if isinstance(module_id, int) else None
    cases = banks.cases_of(session, quiz)
    titles = [s.title for s in services.item_states(session, revisions.VIGNETTE, cases)]
    form.offer(
        list(modules.values()), chosen, [(str(c.id), f"{c.key}: {t}") for c, t in zip(cases, titles, strict=True)]
    )
    report = banks.question_report(session, quiz, q)
    return render_template(
        "authoring/question_edit.html",
        quiz=quiz,
        question=q,
        form=form,
        group_errors=group,
        problems=summary(form, group),
        findings=report.findings if report else [],
        module=chosen,
        case_form=AddCaseForm(prefix="case", question=q.key),
        unsaved=unsaved,
        **_editor_context(q, outcome, mine),
    ), outcome.status if outcome else 200


@bp.route(f"{BANK}/questions/<key>/preview")
@role_required(Role.INSTRUCTOR)
def question_preview(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """The question as a learner gets it, to try an answer on: nothing is stored (a GET form, no attempt)."""
    _course, quiz = _bank(course_slug, quiz_slug)
    q = _found(banks.find_question, quiz, key)
    version = "published" if request.args.get("version") == "published" else "draft"
    shown = _found(previews.preview, quiz, q, version, request.args.getlist("answer"))
    checked = request.args.get("check") == "1"
    return render_template("authoring/question_preview.html", quiz=quiz, question=q, preview=shown, checked=checked)


@bp.route(f"{BANK}/cases", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def add_case(course_slug: str, quiz_slug: str) -> ResponseReturnValue:
    """Add a case to the bank, then go back to the question it was added from (or the bank)."""
    _course, quiz = _bank(course_slug, quiz_slug)
    form = AddCaseForm(prefix="case")
    if form.validate_on_submit():
        try:
            case = services.add_vignette(get_session(), quiz, form.key.data, form.title.data, form.text.data, user())
        except services.InvalidDraft as exc:
            attach_errors(form, exc.errors, [])
        else:
            back = banks.question_by_key(get_session(), quiz, form.question.data or "")
            if back is None:
                flash(f"Case {case.key} added. Choose it in a question's “Case” list to use it.", "success")
                return redirect(_at(quiz, "bank", _anchor="cases"))
            flash(
                f"Case {case.key} added and chosen in this question's “Case” list below: save the question to use it.",
                "success",
            )
            return redirect(_at(quiz, "question", key=back.key, case=case.key))
    return render_template("authoring/vignette_edit.html", quiz=quiz, case=None, add_form=form,
                           problems=summary(form, [])), 400  # fmt: skip


@bp.route(f"{BANK}/cases/<key>", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def case(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """Edit a case's draft (title and text) and publish it; the questions that use it are listed."""
    _course, quiz = _bank(course_slug, quiz_slug)
    vignette = _found(banks.find_case, quiz, key)
    if request.method == "GET":
        data, loaded = _opened(vignette)
        form = CaseForm(data=data)
        form.load(loaded)
        return _case_page(quiz, vignette, form)
    form = CaseForm()
    return _edit(
        vignette,
        form,
        form.data_for_draft,
        lambda outcome, mine: _case_page(quiz, vignette, form, outcome, mine),
        _at(quiz, "case", key=vignette.key),
    )


def _case_page(
    quiz: Quiz,
    vignette: VignetteRow,
    form: CaseForm,
    outcome: Outcome | None = None,
    mine: dict[str, Any] | None = None,
) -> ResponseReturnValue:
    _refused(form, outcome, [])
    return render_template(
        "authoring/vignette_edit.html",
        quiz=quiz,
        case=vignette,
        form=form,
        problems=summary(form, []),
        users=banks.case_users(get_session(), quiz, vignette),
        **_editor_context(vignette, outcome, mine),
    ), outcome.status if outcome else 200


@bp.route(f"{BANK}/settings", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def quiz_settings(course_slug: str, quiz_slug: str) -> ResponseReturnValue:
    """Edit the bank's rules as a draft and publish them; attempts already started keep the rules they began under."""
    _course, quiz = _bank(course_slug, quiz_slug)
    if request.method == "GET":
        data, loaded = _opened(quiz)
        form = RulesForm(data=data)
        form.load(loaded)
        return _rules_page(quiz, form)
    form = RulesForm()
    return _edit(
        quiz,
        form,
        form.data_for_draft,
        lambda outcome, mine: _rules_page(quiz, form, outcome, mine),
        _at(quiz, "quiz_settings"),
    )


def _rules_page(
    quiz: Quiz, form: RulesForm, outcome: Outcome | None = None, mine: dict[str, Any] | None = None
) -> ResponseReturnValue:
    _refused(form, outcome, [])
    return render_template(
        "authoring/quiz_settings.html",
        quiz=quiz,
        form=form,
        problems=summary(form, []),
        published_count=banks.published_count(get_session(), quiz),
        **_editor_context(quiz, outcome, mine),
    ), outcome.status if outcome else 200


# ---------------------------------------------------------------- revisions


def _history_page(
    item: Item, quiz: Quiz, what: str, editor: str, restore: Callable[[int], str], outcome: Outcome | None = None
) -> ResponseReturnValue:
    """An item's revisions with who made each, two of them compared side by side, and restore buttons."""
    session = get_session()
    history = _found(editing.history, item, request.args.get("a"), request.args.get("b"))
    kind = revisions.kind_of(item)
    return render_template(
        "authoring/question_history.html",
        quiz=quiz,
        what=what,
        editor=editor,
        restore_urls={r.number: restore(r.number) for r in history.rows},
        history=history,
        diffs=editing.compare(session, kind, history.left, history.right) if history.pair else [],
        form=RestoreForm(loaded_version="" if history.draft is None else str(history.draft.version)),
        outcome=outcome,
    ), outcome.status if outcome else 200


def _restore(
    item: Item, number: int, quiz: Quiz, what: str, editor: str, restore: Callable[[int], str]
) -> ResponseReturnValue:
    """Make revision `number` the item's draft and open the editor on it (refused: the history page says why)."""
    form = RestoreForm()
    if not form.validate_on_submit():
        fail(400, "The form expired. Reload the page and try again.")
    loaded = whole_number(form.loaded_version.data)
    outcome = editing.run_restore(get_session(), item, number, user(), loaded)
    if not outcome.ok:
        return _history_page(item, quiz, what, editor, restore, outcome)
    flash(outcome.message, "success")
    return redirect(editor)


def _question_history(quiz: Quiz, key: str) -> tuple[Question, str, str, Callable[[int], str]]:
    q = _found(banks.find_question, quiz, key)
    return q, f"Question {q.key}", _at(quiz, "question", key=key), lambda n: _at(quiz, "restore_question", key=key,
                                                                                number=n)  # fmt: skip


@bp.route(f"{BANK}/questions/<key>/revisions")
@role_required(Role.INSTRUCTOR)
def question_history(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """A question's revisions: compare two side by side, restore one as the draft."""
    _course, quiz = _bank(course_slug, quiz_slug)
    q, what, editor, restore = _question_history(quiz, key)
    return _history_page(q, quiz, what, editor, restore)


@bp.route(f"{BANK}/questions/<key>/revisions/<int:number>/restore", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def restore_question(course_slug: str, quiz_slug: str, key: str, number: int) -> ResponseReturnValue:
    """Make an old revision of the question its draft."""
    _course, quiz = _bank(course_slug, quiz_slug)
    q, what, editor, restore = _question_history(quiz, key)
    return _restore(q, number, quiz, what, editor, restore)


@bp.route(f"{BANK}/cases/<key>/revisions")
@role_required(Role.INSTRUCTOR)
def case_history(course_slug: str, quiz_slug: str, key: str) -> ResponseReturnValue:
    """A case's revisions: compare two side by side, restore one as the draft."""
    _course, quiz = _bank(course_slug, quiz_slug)
    vignette = _found(banks.find_case, quiz, key)
    restore = lambda n: _at(quiz, "restore_case", key=key, number=n)  # noqa: E731
    return _history_page(vignette, quiz, f"Case {vignette.key}", _at(quiz, "case", key=key), restore)


@bp.route(f"{BANK}/cases/<key>/revisions/<int:number>/restore", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def restore_case(course_slug: str, quiz_slug: str, key: str, number: int) -> ResponseReturnValue:
    """Make an old revision of the case its draft."""
    _course, quiz = _bank(course_slug, quiz_slug)
    vignette = _found(banks.find_case, quiz, key)
    restore = lambda n: _at(quiz, "restore_case", key=key, number=n)  # noqa: E731
    return _restore(vignette, number, quiz, f"Case {vignette.key}", _at(quiz, "case", key=key), restore)


@bp.route(f"{BANK}/settings/revisions")
@role_required(Role.INSTRUCTOR)
def rules_history(course_slug: str, quiz_slug: str) -> ResponseReturnValue:
    """The rules' revisions: compare two side by side, restore one as the draft."""
    _course, quiz = _bank(course_slug, quiz_slug)
    return _history_page(quiz, quiz, "The rules", _at(quiz, "quiz_settings"), _rules_restore(quiz))


@bp.route(f"{BANK}/settings/revisions/<int:number>/restore", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def restore_rules(course_slug: str, quiz_slug: str, number: int) -> ResponseReturnValue:
    """Make an old revision of the rules their draft."""
    _course, quiz = _bank(course_slug, quiz_slug)
    return _restore(quiz, number, quiz, "The rules", _at(quiz, "quiz_settings"), _rules_restore(quiz))


def _rules_restore(quiz: Quiz) -> Callable[[int], str]:
    return lambda n: _at(quiz, "restore_rules", number=n)
