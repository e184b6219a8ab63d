"""Authoring pages: the instructor workspace and the module editor (drafts, preview, publish, revisions)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kaptrain.accounts.models import Role
from kaptrain.auth import role_required, user
from kaptrain.authoring import module_editor, module_files, services
from kaptrain.authoring.blueprint import bp
from kaptrain.authoring.forms import (
    AddModuleForm,
    CompareForm,
    ModuleFileForm,
    ModuleForm,
    MoveForm,
    RestoreForm,
    RetireForm,
)
from kaptrain.authoring.services import AuthoringError, InvalidDraft, PublishConflict, StaleDraft
from kaptrain.content import revisions
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.db import get_session
from kaptrain.errors import fail

__all__ = ["bp"]


@contextmanager
def _refusals() -> Iterator[None]:
    """An authoring service's refusal becomes an error page with its message (and the request rolls back)."""
    try:
        yield
    except AuthoringError as exc:
        fail(exc.status, str(exc))


def _module(course_slug: str, module_slug: str) -> tuple[Course, Module]:
    with _refusals():
        return module_editor.find_module(get_session(), course_slug, module_slug)


def _editor_url(module: Module, course: Course) -> str:
    return url_for("authoring.module_edit", course_slug=course.slug, module_slug=module.slug)


# ---------------------------------------------------------------- workspace


@bp.route("/")
@role_required(Role.INSTRUCTOR)
def workspace() -> ResponseReturnValue:
    """The instructor workspace: each course's modules and quizzes with their state and last editor."""
    return _workspace_page({}, 200)


def _workspace_page(add_forms: dict[int, AddModuleForm], status: int) -> ResponseReturnValue:
    desks = module_editor.workspace(get_session())
    forms = {d.course.id: add_forms.get(d.course.id) or AddModuleForm(None, prefix=d.course.slug) for d in desks}
    return render_template("authoring/workspace.html", desks=desks, add_forms=forms), status


@bp.route("/courses/<course_slug>/modules", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def add_module(course_slug: str) -> ResponseReturnValue:
    """Add a module at the end of a course, as a draft only, and open it in the editor."""
    session = get_session()
    with _refusals():
        course = module_editor.find_course(session, course_slug)
    form = AddModuleForm(prefix=course.slug)
    if form.validate():
        try:
            module = module_editor.add_module(session, course, form.slug.data, form.title.data.strip(), user())
        except InvalidDraft as exc:
            form.slug.errors = [*form.slug.errors, exc.errors.get("slug", str(exc)).capitalize() + "."]
        else:
            flash("Module added as a draft: learners see it once you publish it.", "success")
            return redirect(_editor_url(module, course))
    return _workspace_page({course.id: form}, 400)


@bp.route("/courses/<course_slug>/modules/<module_slug>/move", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def module_move(course_slug: str, module_slug: str) -> ResponseReturnValue:
    """Move a module one place up or down in its course."""
    course, module = _module(course_slug, module_slug)
    form = MoveForm()
    if not form.validate():
        fail(400, "Choose whether to move the module up or down.")
    if form.from_position.data != str(module.position):  # a second click, or another instructor moved it first
        flash("The order changed since the page was opened, so nothing was moved: this is the order now.", "info")
        return redirect(url_for("authoring.workspace", _anchor=f"course-{course.slug}"))
    with _refusals():
        services.move(get_session(), module, -1 if form.direction.data == "up" else 1, user())
    flash(f"Module moved {form.direction.data}: it is now module {module.position}.", "success")
    return redirect(url_for("authoring.workspace", _anchor=f"course-{course.slug}"))


@bp.route("/courses/<course_slug>/modules/<module_slug>/retire", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def module_retire(course_slug: str, module_slug: str) -> ResponseReturnValue:
    """Retire a module (hidden from learners, its records kept) after a confirmation page, or reinstate one."""
    course, module = _module(course_slug, module_slug)
    if request.method == "GET":
        if module.is_retired:
            return redirect(url_for("authoring.workspace", _anchor=f"course-{course.slug}"))
        published = get_session().get(ModuleRevision, module.published_revision_id or 0)
        title = published.title if published else module.slug
        return render_template("authoring/retire_confirm.html", course=course, module=module, title=title)
    form = RetireForm()
    if not form.validate():
        fail(400, "Choose whether to retire the module or reinstate it.")
    retire = form.retire.data == "yes"
    if retire and not module.is_retired and form.confirmed.data != "yes":
        return redirect(url_for("authoring.module_retire", course_slug=course.slug, module_slug=module.slug))
    with _refusals():
        services.set_retired(get_session(), module, retire, user())
    flash(
        "Module retired: hidden from learners, its records kept."
        if retire
        else f"Module reinstated as module {module.position}, at the end of the course.",
        "success",
    )
    return redirect(url_for("authoring.workspace", _anchor=f"course-{course.slug}"))


# ---------------------------------------------------------------- editor


@bp.route("/courses/<course_slug>/modules/<module_slug>", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def module_edit(course_slug: str, module_slug: str) -> ResponseReturnValue:
    """The module editor: save a draft, preview it, publish it or discard it."""
    course, module = _module(course_slug, module_slug)
    if request.method == "POST":
        return _editor_post(course, module, ModuleForm())
    with _refusals():
        state = module_editor.editor_state(get_session(), module)
    return _editor_page(course, module, ModuleForm.from_data(state.data, *state.loaded), state.data)


def _editor_post(course: Course, module: Module, form: ModuleForm) -> ResponseReturnValue:
    """One press of an editor button; a refused save re-renders the form as typed, with nothing saved."""
    session = get_session()
    action = "publish" if form.replace_revision.data else request.form.get("action", "save")
    if action == "discard":
        return _discard(course, module, form)
    valid = form.validate()
    data = form.draft_data()
    if action == "preview" or not valid:
        return _editor_page(course, module, form, data, previewing=valid, status=200 if valid else 400)
    try:
        if action == "publish":
            note = (form.change_note.data or "").strip()
            message = module_editor.publish(
                session, module, data, user(), form.loaded(), form.replace_revision.data, note=note
            )
        else:
            message = module_editor.save(session, module, data, user(), form.loaded())
    except InvalidDraft as exc:
        form.add_errors(exc.errors)
        return _editor_page(course, module, form, data, status=400)
    except StaleDraft as exc:
        return _stale_page(course, module, form, data, exc)
    except PublishConflict as exc:
        return _conflict_page(course, module, form, data, exc)
    except AuthoringError as exc:
        return _editor_page(course, module, form, data, problem=str(exc), status=exc.status)
    flash(message, "success")
    return redirect(_editor_url(module, course))


def _stale_page(
    course: Course, module: Module, form: ModuleForm, data: dict[str, Any], exc: StaleDraft
) -> ResponseReturnValue:
    """Someone else's newer draft beside what was typed; the page now points at theirs, so saving again is a
    deliberate choice."""
    theirs = module_editor.theirs(get_session(), module, exc.current, user().id)
    form.set_loaded(*theirs.loaded)
    comparison = (theirs.label, "What you typed (not saved)", module_editor.against(theirs.data, data))
    return _editor_page(course, module, form, data, problem=str(exc), comparison=comparison, status=409)


def _conflict_page(
    course: Course, module: Module, form: ModuleForm, data: dict[str, Any], exc: PublishConflict
) -> ResponseReturnValue:
    """A revision published since this draft began, beside the draft; publishing over it needs a second press."""
    newer = exc.published
    old = revisions.revision_data(revisions.MODULE, newer)
    comparison = (f"Revision {newer.number} (published)", "Your draft", module_editor.against(old, data))
    return _editor_page(
        course, module, form, data, problem=str(exc), comparison=comparison, replace=newer.number, status=409
    )


def _discard(course: Course, module: Module, form: ModuleForm) -> ResponseReturnValue:
    """Throw the draft away; the editor then shows the published revision again."""
    try:
        services.discard_draft(get_session(), module, user(), form.loaded()[0])
    except AuthoringError as exc:
        return _editor_page(course, module, form, form.draft_data(), problem=str(exc), status=exc.status)
    flash("Draft discarded: the editor shows the published revision again.", "success")
    return redirect(_editor_url(module, course))


@bp.route("/courses/<course_slug>/modules/<module_slug>/file", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def module_file(course_slug: str, module_slug: str) -> ResponseReturnValue:
    """GET: the module as the editor opens it (its draft, else the published text) as its content file.
    POST: load such a file into the editor form, beside what it replaces; nothing is saved."""
    course, module = _module(course_slug, module_slug)
    with _refusals():
        state = module_editor.editor_state(get_session(), module)
    if request.method == "GET":
        response = Response(module_files.file_text(module, state.data), mimetype="text/markdown")
        response.headers.set("Content-Disposition", "attachment", filename=module_files.file_name(module))
        return response
    upload = ModuleFileForm()
    shown = ModuleForm.from_data(state.data, *state.loaded)
    if not upload.validate_on_submit():
        return _editor_page(course, module, shown, state.data, file_form=upload, status=400)
    chosen = upload.file.data
    try:
        data = module_files.load(get_session(), module, chosen.filename, chosen.read())
    except module_files.FileRefused as exc:
        upload.file.errors = list(exc.problems)
        return _editor_page(course, module, shown, state.data, file_form=upload, status=400)
    name = module_files.shown_name(chosen.filename)
    held = f"Revision {state.published.number} (published)" if state.published else "The module"
    if state.draft:
        held = f"The draft saved by {state.draft_by}"
    comparison = (held, f"{name} (loaded, not saved)", module_editor.against(state.data, data))
    form = ModuleForm.from_data(data, *upload.loaded())
    return _editor_page(course, module, form, data, loaded_file=name, comparison=comparison)


def _editor_page(
    course: Course,
    module: Module,
    form: ModuleForm,
    data: dict[str, Any],
    status: int = 200,
    file_form: ModuleFileForm | None = None,
    **extra: Any,
) -> ResponseReturnValue:
    form.ensure_blank_rows()
    with _refusals():
        state = module_editor.editor_state(get_session(), module)
    preview = module_editor.preview(data)
    page = render_template(
        "authoring/module_edit.html",
        course=course,
        module=module,
        form=form,
        state=state,
        preview=preview,
        file_form=file_form or ModuleFileForm(formdata=None),
        file_name=module_files.file_name(module),
        **extra,
    )
    return page, status


@bp.route("/preview", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def preview() -> ResponseReturnValue:
    """The live preview: the editor's fields rendered exactly as learners see them, as an HTML fragment."""
    form = ModuleForm()
    position = request.form.get("position", "")
    data = module_editor.preview(form.draft_data())
    return render_template("authoring/_preview.html", preview=data, position=position if position.isdigit() else "")


# ---------------------------------------------------------------- revisions


@bp.route("/courses/<course_slug>/modules/<module_slug>/revisions")
@role_required(Role.INSTRUCTOR)
def module_history(course_slug: str, module_slug: str) -> ResponseReturnValue:
    """Every revision of a module, two of them compared side by side, and a way to restore one."""
    session = get_session()
    course, module = _module(course_slug, module_slug)
    rows = module_editor.history(session, module)
    # Only the compare form's own fields ask for a comparison (and only with two revisions to choose from): any
    # other query string, such as a tracking parameter, shows the page as usual.
    asked = len(rows) > 1 and any(name in request.args for name in ("a", "b"))
    form = CompareForm(formdata=request.args if asked else None)
    form.a.choices = form.b.choices = [(r.number, f"Revision {r.number}") for r in rows]
    diffs, status = None, 200
    if rows and not asked:
        form.a.data, form.b.data = module_editor.default_pair(rows)
    if rows and (not asked or form.validate()):
        with _refusals():
            diffs = module_editor.compare(session, module, form.a.data, form.b.data)
    elif rows:
        status = 400
    draft = revisions.draft_for(session, module)
    page = render_template(
        "authoring/module_history.html", course=course, module=module, rows=rows, form=form, diffs=diffs, draft=draft
    )
    return page, status


@bp.route("/courses/<course_slug>/modules/<module_slug>/revisions/<int:number>/restore", methods=["POST"])
@role_required(Role.INSTRUCTOR)
def module_restore(course_slug: str, module_slug: str, number: int) -> ResponseReturnValue:
    """Make an old revision the module's draft again; learners see no change until it is published."""
    course, module = _module(course_slug, module_slug)
    form = RestoreForm()
    try:
        module_editor.restore(get_session(), module, number, user(), form.loaded())
    except StaleDraft:
        fail(409, "Someone saved the draft after you opened the history, so nothing was restored. Open it again.")
    except AuthoringError as exc:
        fail(exc.status, str(exc))
    flash(f"Revision {number} is now the draft; publish it to make it live.", "success")
    return redirect(_editor_url(module, course))
