"""Drafts, publishing, restoring and structure changes for modules, questions, cases and quiz rules.

Every item has at most one working draft (a row in `drafts`, holding the same fields a revision has, as plain
data). Saving checks the draft with the same schemas as the content files; publishing turns it into a new
immutable revision and points the item at it. Saves carry the draft version the editor loaded, so a save over
someone else's newer draft is refused (optimistic locking), never silently lost."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from kaptrain import audit
from kaptrain.accounts.models import User
from kaptrain.authoring.models import Draft
from kaptrain.content import revisions
from kaptrain.content.models import Course, Module
from kaptrain.content.revisions import Item, Kind, Revision
from kaptrain.content.schema import ModuleFile, ModuleMeta, Option, QuestionFile, QuizSettings, Vignette
from kaptrain.db import utcnow
from kaptrain.quizzes.models import Question, QuestionRevision, Quiz, QuizKind
from kaptrain.quizzes.models import Vignette as VignetteRow

# A module body longer than this is refused: the longest shipped module is about a tenth of it.
MAX_BODY_CHARS = 200_000


class AuthoringError(Exception):
    """An authoring action that cannot be done; the message is shown to the instructor."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class InvalidDraft(AuthoringError):
    """The draft breaks a content rule; errors name each field (as the form names it) with what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("The draft was not saved: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), 400)
        self.errors = errors


class StaleDraft(AuthoringError):
    """Someone else saved, published or discarded this draft after the editor loaded it."""

    def __init__(self, current: Draft | None, message: str) -> None:
        super().__init__(message)
        self.current = current


class PublishConflict(AuthoringError):
    """A newer revision was published after this draft was started; publishing over it must be confirmed."""

    def __init__(self, published: Revision) -> None:
        super().__init__(
            f"Revision {published.number} was published after this draft was started. Compare it with your draft, "
            "then publish again to replace it."
        )
        self.published = published


# ---------------------------------------------------------------- reading


def current_data(session: Session, item: Item) -> tuple[dict[str, Any], Draft | None]:
    """What the editor shows: the draft if there is one, else the published revision (or a new item's blank)."""
    draft = revisions.draft_for(session, item)
    if draft is not None:
        return dict(draft.data), draft
    rev = revisions.published(session, item)
    if rev is None:
        raise AuthoringError("This item has neither a draft nor a published revision.", 404)
    return revisions.revision_data(revisions.kind_of(item), rev), None


@dataclass
class ItemState:
    """One item's place in the workspace: what is published, whether a draft is pending, who touched it last."""

    item: Item
    title: str
    published: Revision | None
    draft: Draft | None
    last_editor: str
    last_edited_at: dt.datetime | None

    @property
    def state(self) -> str:
        """ "published", "published, draft pending", "draft only" or "retired", in words."""
        if getattr(self.item, "is_retired", False):
            return "retired"
        if self.published is None:
            return "draft only (not yet published)"
        return "published, draft pending" if self.draft is not None else "published"


def item_states(session: Session, kind: Kind, items: list[Any]) -> list[ItemState]:
    """The workspace rows for items of one kind, with three queries whatever their number."""
    if not items:
        return []
    ids = [i.id for i in items]
    wanted = [i.published_revision_id for i in items if i.published_revision_id]
    found = cast(list[Revision], session.scalars(select(kind.revision).where(kind.revision.id.in_(wanted))).all())
    pub = {r.id: r for r in found}
    drafts = {
        getattr(d, kind.parent): d for d in session.scalars(select(Draft).where(getattr(Draft, kind.parent).in_(ids)))
    }
    people = _names(session, [d.updated_by_id for d in drafts.values()] + [r.created_by_id for r in pub.values()])
    out = []
    for item in items:
        rev = pub.get(item.published_revision_id)
        draft = drafts.get(item.id)
        if draft is not None:
            editor, when = people.get(draft.updated_by_id, "the content files"), draft.updated_at
        elif rev is not None:
            editor, when = people.get(rev.created_by_id, "the content files"), rev.created_at
        else:
            editor, when = "", None
        data = draft.data if draft is not None else (revisions.revision_data(kind, rev) if rev is not None else {})
        title = str(data.get("title") or data.get("stem") or getattr(item, "key", "") or getattr(item, "slug", ""))
        out.append(ItemState(item, title, rev, draft, editor, when))
    return out


def _names(session: Session, ids: list[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


# ---------------------------------------------------------------- checking


def _errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        if loc[: len(prefix)] == prefix:
            loc = loc[len(prefix) :]
        name = ".".join(loc) or "draft"
        out.setdefault(name, err["msg"].removeprefix("Value error, "))
    return out


def check(session: Session, item: Item, data: dict[str, Any]) -> dict[str, Any]:
    """Validate a draft with the content-file schemas; returns the plain data to store, or raises InvalidDraft."""
    kind = revisions.kind_of(item)
    missing = [f for f in kind.fields if f not in data]
    if missing:
        raise InvalidDraft({f: "required field is missing" for f in missing})
    data = {f: data[f] for f in kind.fields}
    try:
        if isinstance(item, Module):
            _check_module(item, data)
        elif isinstance(item, Question):
            _check_question(session, item, data)
        elif isinstance(item, VignetteRow):
            Vignette(key=item.key, **data)
        else:
            _check_quiz(session, item, data)
    except ValidationError as exc:
        raise InvalidDraft(_errors(exc, ("meta",))) from None
    return data


def _check_module(module: Module, data: dict[str, Any]) -> None:
    if len(data["body"] or "") > MAX_BODY_CHARS:
        raise InvalidDraft({"body": f"is longer than {MAX_BODY_CHARS:,} characters; split the module"})
    meta = {k: v for k, v in data.items() if k != "body"}
    ModuleFile(
        meta=ModuleMeta(slug=module.slug, order=module.position, previous_slugs=module.previous_slugs, **meta),
        body=data["body"],
    )


def _check_question(session: Session, question: Question, data: dict[str, Any]) -> None:
    quiz = session.get(Quiz, question.quiz_id)
    assert quiz is not None
    module = session.get(Module, data["module_id"]) if data["module_id"] else None
    case = session.get(VignetteRow, data["vignette_id"]) if data["vignette_id"] else None
    if data["vignette_id"] and (case is None or case.quiz_id != quiz.id):
        raise InvalidDraft({"vignette_id": "choose a case of this bank"})
    if data["module_id"] and (module is None or module.course_id != quiz.course_id):
        raise InvalidDraft({"module_id": "choose a module of this course"})
    if quiz.kind == QuizKind.FINAL and module is None:
        raise InvalidDraft({"module_id": "a final-assessment question names the module it tests"})
    options = data["options"]
    if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
        raise InvalidDraft({"options": "options must be a list"})
    QuestionFile(
        key=question.key,
        type=data["type"],
        section=data["section"],
        module=module.slug if module else None,
        vignette=case.key if case else None,
        stem=data["stem"],
        explanation=data["explanation"],
        options=[Option(text=str(o.get("text", "")), correct=bool(o.get("correct"))) for o in options],
    )
    # Options keep their ids across revisions so analysis can follow them; new ones get the next free letter.
    used = {o.get("id") for o in options if o.get("id")}
    letters = iter(c for c in "abcdefghijklmnopqrstuvwxyz" if c not in used)
    data["options"] = [
        {"id": o.get("id") or next(letters), "text": str(o["text"]).strip(), "correct": bool(o.get("correct"))}
        for o in options
    ]


def _check_quiz(session: Session, quiz: Quiz, data: dict[str, Any]) -> None:
    QuizSettings(slug=quiz.slug, kind=quiz.kind.value, module=quiz.module.slug if quiz.module else None, **data)
    in_bank = len(revisions.published_questions(session, quiz.id))
    if data["draw"] > in_bank:
        raise InvalidDraft({"draw": f"the bank has {in_bank} published questions; draw at most that many"})


# ---------------------------------------------------------------- drafts


def save_draft(session: Session, item: Item, data: dict[str, Any], user: User, loaded_version: int | None) -> Draft:
    """Save the item's draft. loaded_version is the draft version the editor opened (None: it opened no draft)."""
    data = check(session, item, data)
    kind = revisions.kind_of(item)
    draft = revisions.draft_for(session, item)
    now = utcnow()
    if draft is None:
        if loaded_version is not None:
            raise StaleDraft(None, "The draft you were editing was published or discarded by someone else meanwhile.")
        draft = Draft(
            course_id=_course_id(session, item),
            base_revision_id=item.published_revision_id,
            data=data,
            created_by_id=user.id,
            updated_by_id=user.id,
            created_at=now,
            updated_at=now,
            **{kind.parent: item.id},
        )
        try:
            with session.begin_nested():
                session.add(draft)
                session.flush()
        except IntegrityError:
            raise _stale(revisions.draft_for(session, item), user) from None
        return draft
    if loaded_version != draft.version:
        raise _stale(draft, user)
    try:
        with session.begin_nested():
            draft.data, draft.updated_by_id, draft.updated_at = data, user.id, now
            session.flush()  # the mapper's version check: the UPDATE matches no row if a save got in first
    except StaleDataError:
        raise _stale(revisions.draft_for(session, item), user) from None
    return draft


def _stale(current: Draft | None, user: User) -> StaleDraft:
    """The refusal of a save or publish that another save got ahead of, in words for who made that save."""
    when = f" at {current.updated_at:%H:%M} UTC" if current is not None else ""
    if current is not None and current.updated_by_id == user.id:
        message = (
            f"You saved this draft{when} in another tab or window after this page was opened, so what you typed "
            "here was not saved. That version is shown beside this one: copy what you need and save again."
        )
    else:
        message = (
            f"Someone else saved this draft{when} after you opened it, so your changes were not saved. Their "
            "version is shown beside yours: copy what you need into the current draft and save again."
        )
    return StaleDraft(current, message)


def _course_id(session: Session, item: Item) -> int:
    if isinstance(item, Module | Quiz):
        return item.course_id
    quiz = session.get(Quiz, item.quiz_id)
    assert quiz is not None
    return quiz.course_id


def _draft_at(session: Session, item: Item, user: User, loaded_version: int | None) -> Draft:
    draft = revisions.draft_for(session, item, lock=True)
    if draft is None:
        raise StaleDraft(None, "There is no draft any more: someone else published or discarded it.")
    if draft.version != loaded_version:
        raise _stale(draft, user)
    return draft


def publish_draft(
    session: Session,
    item: Item,
    user: User,
    loaded_version: int | None,
    replace_revision: int | None = None,
    note: str = "",
) -> Revision:
    """Make the draft the item's new published revision. A revision published since the draft began is only
    replaced when replace_revision gives its number (the instructor saw it and chose to). The note of what changed
    is kept in the publish's audit entry, which the revision history reads (publish_notes)."""
    draft = _draft_at(session, item, user, loaded_version)
    current = revisions.published(session, item)
    if current is not None and draft.base_revision_id != current.id and replace_revision != current.number:
        raise PublishConflict(current)
    data = check(session, item, draft.data)
    kind = revisions.kind_of(item)
    revision = revisions.add_revision(session, item, revisions.revision_values(kind, data), user.id)
    revisions.publish(item, revision)
    session.delete(draft)
    said = {"note": note} if note else {}
    audit.record(
        session, f"{kind.name}.publish", kind.name, item.id, actor_id=user.id, revision=revision.number, **said
    )
    session.flush()
    return revision


def publish_notes(session: Session, item: Item) -> dict[int, str]:
    """What changed in each revision of the item published with a note: revision number -> note."""
    kind = revisions.kind_of(item)
    entries = session.scalars(
        select(audit.AuditEntry.details).where(
            audit.AuditEntry.subject_type == kind.name,
            audit.AuditEntry.subject_id == item.id,
            audit.AuditEntry.action == f"{kind.name}.publish",
        )
    )
    return {d["revision"]: str(d["note"]) for d in entries if d.get("note") and isinstance(d.get("revision"), int)}


def discard_draft(session: Session, item: Item, user: User, loaded_version: int | None) -> None:
    """Throw the draft away (the published revision stays as it is)."""
    draft = _draft_at(session, item, user, loaded_version)
    if item.published_revision_id is None:
        raise AuthoringError("This item has never been published, so its draft is all there is: retire it instead.")
    session.delete(draft)
    kind = revisions.kind_of(item)
    audit.record(session, f"{kind.name}.discard_draft", kind.name, item.id, actor_id=user.id)
    session.flush()


def restore(session: Session, item: Item, number: int, user: User, loaded_version: int | None) -> Draft:
    """Make an old revision the item's draft again, to review and publish (nothing changes for learners yet)."""
    old = revision_by_number(session, item, number)
    kind = revisions.kind_of(item)
    draft = save_draft(session, item, revisions.revision_data(kind, old), user, loaded_version)
    audit.record(session, f"{kind.name}.restore", kind.name, item.id, actor_id=user.id, revision=number)
    return draft


def revision_by_number(session: Session, item: Item, number: int) -> Revision:
    """One revision of the item by its number (404 when there is none)."""
    kind = revisions.kind_of(item)
    found = session.scalar(
        select(kind.revision).where(getattr(kind.revision, kind.parent) == item.id, kind.revision.number == number)
    )
    if found is None:
        raise AuthoringError(f"There is no revision {number}.", 404)
    return cast(Revision, found)


# ---------------------------------------------------------------- structure


def add_module(session: Session, course: Course, slug: str, title: str, user: User) -> Module:
    """A new module at the end of the course, as a draft only: learners see it once it is published."""
    if session.scalar(select(Module.id).where(Module.course_id == course.id, Module.slug == slug)):
        raise InvalidDraft({"slug": "another module of this course already has this address"})
    last = session.scalar(select(func.max(Module.position)).where(Module.course_id == course.id)) or 0
    module = Module(course_id=course.id, slug=slug, position=last + 1)
    session.add(module)
    session.flush()
    today = utcnow().date().isoformat()
    blank = {
        "title": title,
        "summary": "",
        "estimated_minutes": 30,
        "last_reviewed": today,
        "objectives": ["The clinician can "],
        "references": [],
        "body": "",
    }
    _first_draft(session, module, course.id, blank, user)
    audit.record(session, "module.add", "module", module.id, actor_id=user.id, slug=slug)
    session.flush()
    return module


def _first_draft(session: Session, item: Module | Question, course_id: int, data: dict[str, Any], user: User) -> None:
    """The draft a new item starts as (it has no published revision yet)."""
    now = utcnow()
    parent = revisions.kind_of(item).parent
    session.add(
        Draft(
            course_id=course_id,
            data=data,
            created_by_id=user.id,
            updated_by_id=user.id,
            created_at=now,
            updated_at=now,
            **{parent: item.id},
        )
    )


def move(session: Session, item: Module | Question, offset: int, user: User) -> None:
    """Move a module in its course, or a question in its bank, one place up (-1) or down (+1)."""
    siblings: list[Any]  # modules of the course, or questions of the bank
    if isinstance(item, Module):
        siblings = list(
            session.scalars(
                select(Module)
                .where(Module.course_id == item.course_id, Module.is_retired.is_(False))
                .order_by(Module.position, Module.id)
            )
        )
    else:
        siblings = list(
            session.scalars(
                select(Question)
                .where(Question.quiz_id == item.quiz_id, Question.is_retired.is_(False))
                .order_by(Question.position, Question.id)
            )
        )
    index = siblings.index(item)
    other = index + offset
    if not 0 <= other < len(siblings):
        raise AuthoringError("It is already at that end of the list.", 400)
    siblings[index], siblings[other] = siblings[other], siblings[index]
    for position, sibling in enumerate(siblings, start=1 if isinstance(item, Module) else 0):
        sibling.position = position
    kind = revisions.kind_of(item).name
    audit.record(session, f"{kind}.move", kind, item.id, actor_id=user.id, offset=offset)
    session.flush()


def set_retired(session: Session, item: Module | Question, retired: bool, user: User) -> None:
    """Retire an item (new learners and new attempts no longer get it; records that point at it stay) or bring
    it back."""
    if item.is_retired == retired:
        return
    if not retired and item.published_revision_id is None:
        raise AuthoringError("Publish a draft of it first.", 400)
    item.is_retired = retired
    if isinstance(item, Module):
        _renumber_modules(session, item, at_end=not retired)
    kind = revisions.kind_of(item).name
    audit.record(session, f"{kind}.{'retire' if retired else 'reinstate'}", kind, item.id, actor_id=user.id)
    session.flush()


def _renumber_modules(session: Session, changed: Module, *, at_end: bool) -> None:
    # The course's modules in use numbered 1, 2, 3 ... in their order (a reinstated module last), as learners
    # count them: a module retired or brought back leaves no gap ("module 7 of 6").
    live = session.scalars(
        select(Module)
        .where(Module.course_id == changed.course_id, Module.is_retired.is_(False), Module.id != changed.id)
        .order_by(Module.position, Module.id)
    ).all()
    for position, module in enumerate([*live, changed] if at_end else live, start=1):
        module.position = position


def add_question(session: Session, quiz: Quiz, key: str, qtype: str, user: User) -> Question:
    """A new question at the end of the bank, as a draft only: attempts draw it once it is published."""
    if session.scalar(select(Question.id).where(Question.quiz_id == quiz.id, Question.key == key)):
        raise InvalidDraft({"key": "another question in this bank already has this key"})
    last = session.scalar(select(func.max(Question.position)).where(Question.quiz_id == quiz.id))
    question = Question(quiz_id=quiz.id, key=key, position=(last or 0) + 1)
    session.add(question)
    session.flush()
    options = (
        [{"id": "a", "text": "True", "correct": True}, {"id": "b", "text": "False", "correct": False}]
        if qtype == "true_false"
        else [{"id": c, "text": "", "correct": False} for c in "abcd"]
    )
    blank = {
        "type": qtype,
        "section": "",
        "module_id": quiz.module_id,
        "vignette_id": None,
        "stem": "",
        "options": options,
        "explanation": "",
    }
    _first_draft(session, question, quiz.course_id, blank, user)
    audit.record(session, "question.add", "question", question.id, actor_id=user.id, key=key)
    session.flush()
    return question


def add_vignette(session: Session, quiz: Quiz, key: str, title: str, text: str, user: User) -> VignetteRow:
    """A new case for the bank, published at once (nobody is asked it until a published question uses it)."""
    if session.scalar(select(VignetteRow.id).where(VignetteRow.quiz_id == quiz.id, VignetteRow.key == key)):
        raise InvalidDraft({"key": "another case in this bank already has this key"})
    try:
        Vignette(key=key, title=title, text=text)
    except ValidationError as exc:
        raise InvalidDraft(_errors(exc)) from None
    case = VignetteRow(quiz_id=quiz.id, key=key)
    session.add(case)
    session.flush()
    revisions.publish(case, revisions.add_revision(session, case, {"title": title, "text": text}, user.id))
    audit.record(session, "vignette.add", "vignette", case.id, actor_id=user.id, key=key)
    session.flush()
    return case


def questions_of(session: Session, quiz: Quiz) -> list[Question]:
    """The bank's questions in order, retired ones last."""
    return list(
        session.scalars(
            select(Question)
            .where(Question.quiz_id == quiz.id)
            .order_by(Question.is_retired, Question.position, Question.id)
        )
    )


def question_revision(session: Session, revision_id: int) -> QuestionRevision | None:
    """A question revision by id."""
    return session.get(QuestionRevision, revision_id)
