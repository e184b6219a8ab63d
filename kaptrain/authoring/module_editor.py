"""The module editor's work above the authoring services: the workspace, saving and publishing what the editor
form says, what a refused save shows, previews and revision comparisons.

Two rules are added here to the services' own: a repeated submit of the same text counts as done (a double
click never reports a conflict with oneself), and a page opened before a newer revision was published cannot
save or publish over it unnoticed (the services can only check the draft version, and a page that opened no
draft has none)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.authoring import services
from kaptrain.authoring.diff import FieldDiff, diff
from kaptrain.authoring.models import Draft
from kaptrain.authoring.services import AuthoringError, ItemState, PublishConflict, StaleDraft
from kaptrain.certificates.pdf import format_date
from kaptrain.content import revisions
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.content.render import render_markdown
from kaptrain.content.revisions import MODULE, QUIZ
from kaptrain.content.schema import body_problems
from kaptrain.courses.lesson import scrollable_tables
from kaptrain.db import as_utc
from kaptrain.quizzes.models import Quiz

FILES = "the content files"  # who wrote a revision that came from an import


# ---------------------------------------------------------------- finding things


def find_course(session: Session, slug: str) -> Course:
    """A course by its address (404 when there is none)."""
    course = session.scalar(select(Course).where(Course.slug == slug))
    if course is None:
        raise AuthoringError("There is no course at this address.", 404)
    return course


def find_module(session: Session, course_slug: str, module_slug: str) -> tuple[Course, Module]:
    """A course's module by their addresses, retired ones included (404 when there is none)."""
    course = find_course(session, course_slug)
    module = session.scalar(select(Module).where(Module.course_id == course.id, Module.slug == module_slug))
    if module is None:
        raise AuthoringError(f"The course “{course.title}” has no module at this address.", 404)
    return course, module


def names(session: Session, ids: list[int | None]) -> dict[int | None, str]:
    """People's names by id; None (and anyone gone) reads as the content files."""
    wanted = {i for i in ids if i is not None}
    found = {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}
    return {i: found.get(i, FILES) if i is not None else FILES for i in [*ids, None]}


# ---------------------------------------------------------------- the workspace


@dataclass
class CourseDesk:
    """One course in the workspace: its modules (retired last) and its quizzes, each with its state."""

    course: Course
    modules: list[ItemState]
    quizzes: list[ItemState]

    @property
    def movable(self) -> list[int]:
        """The ids of the modules in the course's order (retired ones have no place to move in)."""
        return [s.item.id for s in self.modules if isinstance(s.item, Module) and not s.item.is_retired]


def workspace(session: Session) -> list[CourseDesk]:
    """Every course with its modules and quizzes, for the instructor workspace."""
    desks = []
    for course in session.scalars(select(Course).order_by(Course.title, Course.id)):
        modules = list(
            session.scalars(
                select(Module)
                .where(Module.course_id == course.id)
                .order_by(Module.is_retired, Module.position, Module.id)
            )
        )
        quizzes = sorted(
            session.scalars(select(Quiz).where(Quiz.course_id == course.id)),
            key=lambda q: (q.is_retired, q.module.position if q.module else 10**6, q.slug),
        )
        states = services.item_states(session, MODULE, modules), services.item_states(session, QUIZ, quizzes)
        desks.append(CourseDesk(course, *states))
    return desks


def add_module(session: Session, course: Course, slug: str, title: str, user: User) -> Module:
    """A new module as a draft at the end of the course; the same form sent twice (a double click) adds it once."""
    same = session.scalar(select(Module).where(Module.course_id == course.id, Module.slug == slug))
    if same is not None and same.published_revision_id is None:
        draft = revisions.draft_for(session, same)
        if draft is not None and draft.created_by_id == user.id and draft.data.get("title") == title:
            return same
    return services.add_module(session, course, slug, title, user)


# ---------------------------------------------------------------- the editor


@dataclass
class EditorState:
    """What the editor opens: the data shown, the draft (if any) and the published revision, with their authors."""

    data: dict[str, Any]
    draft: Draft | None
    published: ModuleRevision | None
    draft_by: str
    published_by: str

    @property
    def loaded(self) -> tuple[int | None, int | None]:
        """The draft version and published revision number the page is opened at."""
        return (self.draft.version if self.draft else None, self.published.number if self.published else None)


def editor_state(session: Session, module: Module) -> EditorState:
    """The module as the editor opens it: its draft if there is one, else its published revision."""
    data, draft = services.current_data(session, module)
    published = _published(session, module)
    who = names(session, [draft.updated_by_id if draft else None, published.created_by_id if published else None])
    return EditorState(
        data,
        draft,
        published,
        who[draft.updated_by_id] if draft else "",
        who[published.created_by_id] if published else "",
    )


def _published(session: Session, module: Module) -> ModuleRevision | None:
    found = revisions.published(session, module)
    return found if isinstance(found, ModuleRevision) else None


def save(
    session: Session, module: Module, data: dict[str, Any], user: User, loaded: tuple[int | None, int | None]
) -> str:
    """Save the editor's text as the module's draft; returns what to tell the instructor.

    Raises InvalidDraft (nothing saved) or StaleDraft (someone else's newer draft or revision is in the way)."""
    checked = services.check(session, module, data)
    draft = revisions.draft_for(session, module)
    current = _published(session, module)
    if draft is None and current is not None and revisions.revision_data(MODULE, current) == checked:
        return f"Nothing to save: this is the text learners already see (revision {current.number})."
    if draft is None or draft.data != checked:  # the same text again (a double click) is already saved
        _refuse_older_page(draft, current, loaded, publishing=False, replace=None)
        services.save_draft(session, module, checked, user, loaded[0])
    where = f"learners still see revision {current.number}" if current else "learners do not see this module yet"
    return f"Draft saved: {where} until you publish."


def publish(
    session: Session,
    module: Module,
    data: dict[str, Any],
    user: User,
    loaded: tuple[int | None, int | None],
    replace: int | None,
    note: str = "",
) -> str:
    """Save the editor's text as the draft, then publish it with the instructor's note of what changed; returns
    what to tell the instructor.

    replace is the revision number the instructor chose to replace after a PublishConflict."""
    checked = services.check(session, module, data)
    draft = revisions.draft_for(session, module)
    current = _published(session, module)
    if draft is None and current is not None and revisions.revision_data(MODULE, current) == checked:
        return f"Nothing to publish: learners already see this text (revision {current.number})."
    if draft is None or draft.data != checked:
        _refuse_older_page(draft, current, loaded, publishing=True, replace=replace)
        draft = services.save_draft(session, module, checked, user, loaded[0])
    revision = services.publish_draft(session, module, user, draft.version, replace_revision=replace, note=note)
    return f"Published as revision {revision.number}: learners see it from their next page."


def _refuse_older_page(
    draft: Draft | None,
    current: ModuleRevision | None,
    loaded: tuple[int | None, int | None],
    publishing: bool,
    replace: int | None,
) -> None:
    """A page that opened no draft, from before the revision now published, must not write over that revision."""
    loaded_version, loaded_revision = loaded
    if draft is not None or loaded_version is not None or current is None or loaded_revision == current.number:
        return  # with a draft, the services' version check decides
    if replace == current.number:
        return  # the instructor has seen that revision and chose to replace it
    if publishing:
        raise PublishConflict(current)
    raise StaleDraft(
        None,
        f"Revision {current.number} was published after you opened this page, so your changes were not saved. "
        "It is shown beside yours: copy what you need into the form and save again.",
    )


@dataclass
class Theirs:
    """The other person's version after a refused save: what it says, who wrote it, and where the page now is."""

    data: dict[str, Any]
    label: str
    loaded: tuple[int | None, int | None]


def theirs(session: Session, module: Module, current: Draft | None, viewer_id: int) -> Theirs:
    """The draft (or, with none left, the published revision) that a refused save ran into (the viewer's own, saved
    in another tab, is not called theirs)."""
    published = _published(session, module)
    number = published.number if published else None
    if current is not None:
        who = names(session, [current.updated_by_id])[current.updated_by_id]
        whose = "The draft" if current.updated_by_id == viewer_id else "Their draft"
        label = f"{whose} (saved by {who}, {_when(current.updated_at)})"
        return Theirs(dict(current.data), label, (current.version, number))
    if published is None:
        return Theirs({}, "Nothing (the draft is gone)", (None, None))
    who = names(session, [published.created_by_id])[published.created_by_id]
    label = f"Revision {published.number} (published by {who}, {_when(published.created_at)})"
    return Theirs(revisions.revision_data(MODULE, published), label, (None, number))


def _when(moment: dt.datetime) -> str:
    """A moment as the authoring pages write it in UTC ("27 November 2026, 15:18 UTC")."""
    moment = as_utc(moment)
    return f"{format_date(moment.date())}, {moment:%H:%M} UTC"


def against(old: dict[str, Any], new: dict[str, Any]) -> list[FieldDiff]:
    """Side-by-side differences between two versions of a module."""
    return diff(old, new, MODULE.fields)


def published_data(session: Session, module: Module) -> dict[str, Any]:
    """The published revision's data (empty before the first publish)."""
    current = _published(session, module)
    return revisions.revision_data(MODULE, current) if current else {}


# ---------------------------------------------------------------- preview


_SECTION = re.compile(r'<h2 id="([^"]+)">(.*?)</h2>')  # as kaptrain.content.render.section_headings reads them


@dataclass
class Preview:
    """A module as the learner page shows it, made from what the editor holds (saved or not)."""

    title: str
    estimated_minutes: Any
    last_reviewed: dt.date | None
    objectives: list[str]
    references: list[dict[str, Any]]
    body: Markup
    sections: list[tuple[str, str]]
    words: int
    too_long: bool
    problems: list[str]  # what saving would refuse in the text itself (schema.body_problems)


def preview(data: dict[str, Any]) -> Preview:
    """Render the editor's data with the learners' renderer and sanitiser, and the same table wrapping."""
    text = str(data.get("body") or "")
    too_long = len(text) > services.MAX_BODY_CHARS
    # The learners' renderer itself (uncached: learner pages cache per published revision, not per text typed),
    # so the preview is exactly what learners get.
    html = "" if too_long else render_markdown(text)
    try:
        reviewed: dt.date | None = dt.date.fromisoformat(str(data.get("last_reviewed") or ""))
    except ValueError:
        reviewed = None
    return Preview(
        title=str(data.get("title") or ""),
        estimated_minutes=data.get("estimated_minutes"),
        last_reviewed=reviewed,
        objectives=list(data.get("objectives") or []),
        references=[_linkable(r) for r in data.get("references") or [] if isinstance(r, dict)],
        body=scrollable_tables(html),
        sections=[(m.group(1), re.sub(r"<[^>]+>", "", m.group(2))) for m in _SECTION.finditer(html)],
        words=word_count(text),
        too_long=too_long,
        problems=[] if too_long else body_problems(text, _cited_by(data.get("references"))),
    )


def _cited_by(references: Any) -> list[tuple[str, int]]:
    """(authors, year) of each reference the editor holds that has a year, saved or not."""
    out = []
    for r in references if isinstance(references, list) else []:
        year = str(r.get("year") or "").strip() if isinstance(r, dict) else ""
        if isinstance(r, dict) and re.fullmatch(r"[0-9]{1,4}", year):  # a year as the schema takes it, no more
            out.append((str(r.get("authors") or ""), int(year)))
    return out


def _linkable(reference: dict[str, Any]) -> dict[str, Any]:
    """A reference whose web address is linked only when it is one the schema accepts (unsaved text is unchecked)."""
    out = dict(reference)
    if not re.fullmatch(r"https://\S+", str(out.get("url") or "")):
        out.pop("url", None)
    return out


def word_count(text: str) -> int:
    """Words in the Markdown text: runs without spaces holding a letter or digit (so "##" and "-" are not words).

    authoring.js counts the same way as the instructor types."""
    return sum(1 for token in text.split() if any(c.isalnum() for c in token))


# ---------------------------------------------------------------- revisions


@dataclass
class RevisionRow:
    """One line of a module's history."""

    number: int
    author: str
    created_at: dt.datetime
    is_published: bool
    matches_files: bool
    note: str = ""  # what changed, as the instructor who published it said


def history(session: Session, module: Module) -> list[RevisionRow]:
    """Every revision of the module, newest first, with its author and whether learners or the files have it."""
    revs = [r for r in revisions.history(session, module) if isinstance(r, ModuleRevision)]
    who = names(session, [r.created_by_id for r in revs])
    notes = services.publish_notes(session, module)
    return [
        RevisionRow(
            r.number,
            who[r.created_by_id],
            r.created_at,
            r.id == module.published_revision_id,
            r.id == module.file_revision_id,
            notes.get(r.number, ""),
        )
        for r in revs
    ]


def default_pair(rows: list[RevisionRow]) -> tuple[int, int]:
    """What the history compares first: the revision before the published one, with the published one."""
    numbers = sorted(r.number for r in rows)
    published = next((r.number for r in rows if r.is_published), numbers[-1])
    earlier = [n for n in numbers if n < published]
    return (earlier[-1] if earlier else published, published)


def compare(session: Session, module: Module, a: int, b: int) -> list[FieldDiff]:
    """The differences from revision a to revision b (AuthoringError 404 when either is not a revision)."""
    old = services.revision_by_number(session, module, a)
    new = services.revision_by_number(session, module, b)
    return against(revisions.revision_data(MODULE, old), revisions.revision_data(MODULE, new))


def restore(session: Session, module: Module, number: int, user: User, loaded_version: int | None) -> None:
    """Make revision `number` the draft again; the same restore sent twice (a double click) is done once."""
    old = services.revision_by_number(session, module, number)
    draft = revisions.draft_for(session, module)
    if draft is not None and draft.data == revisions.revision_data(MODULE, old):
        return
    services.restore(session, module, number, user, loaded_version)
