"""Revisioned items, one way for all four kinds: modules, questions, cases (vignettes) and quiz rules.

Each item points at its published revision (what learners get) and at the revision its content file last
matched. Revisions are never edited: a change is a new revision with the next number. The importer and the
browser editor both change content only through `add_revision` and `publish`."""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kaptrain.authoring.models import Draft
from kaptrain.content.models import Module, ModuleRevision
from kaptrain.quizzes.models import Question, QuestionRevision, Quiz, QuizSettingsRevision, Vignette, VignetteRevision

Item = Module | Question | Vignette | Quiz
Revision = ModuleRevision | QuestionRevision | VignetteRevision | QuizSettingsRevision


@dataclass(frozen=True)
class Kind:
    """What one kind of revisioned item is made of."""

    name: str
    item: type[Item]
    revision: type[Revision]
    parent: str  # the revision's column naming its item
    fields: tuple[str, ...]  # what a revision says; equal fields mean the same content

    @property
    def plural(self) -> str:
        """The kind's name for several (in the import's summary)."""
        return "quizzes" if self.name == "quiz" else f"{self.name}s"


MODULE = Kind(
    "module",
    Module,
    ModuleRevision,
    "module_id",
    ("title", "summary", "estimated_minutes", "last_reviewed", "objectives", "references", "body"),
)
QUESTION = Kind(
    "question",
    Question,
    QuestionRevision,
    "question_id",
    ("type", "section", "module_id", "vignette_id", "stem", "options", "explanation"),
)
VIGNETTE = Kind("vignette", Vignette, VignetteRevision, "vignette_id", ("title", "text"))
QUIZ = Kind(
    "quiz",
    Quiz,
    QuizSettingsRevision,
    "quiz_id",
    (
        "title",
        "draw",
        "passing_score",
        "max_attempts",
        "cooldown_hours",
        "time_limit_minutes",
        "reveal_answers",
        "partial_credit",
        "allow_extension",
    ),
)
KINDS = {k.name: k for k in (MODULE, QUESTION, VIGNETTE, QUIZ)}


def kind_of(item: Item) -> Kind:
    """The kind an item belongs to."""
    return next(k for k in KINDS.values() if isinstance(item, k.item))


def plain(value: Any) -> Any:
    """A field value as JSON data (enums by value, dates as ISO text), so drafts and diffs compare alike."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def revision_data(kind: Kind, revision: Revision) -> dict[str, Any]:
    """What a revision says, as plain data."""
    return {f: plain(getattr(revision, f)) for f in kind.fields}


def published(session: Session, item: Item) -> Revision | None:
    """The item's published revision, or None before its first publish."""
    if item.published_revision_id is None:
        return None
    found = session.get(kind_of(item).revision, item.published_revision_id)
    return cast(Revision | None, found)


def add_revision(session: Session, item: Item, values: dict[str, Any], author_id: int | None) -> Revision:
    """Store a new revision of the item (the next number); it is not published until `publish`."""
    kind = kind_of(item)
    column = getattr(kind.revision, kind.parent)
    last = session.scalar(select(func.max(kind.revision.number)).where(column == item.id)) or 0
    revision = kind.revision(**{kind.parent: item.id}, number=last + 1, created_by_id=author_id, **values)
    session.add(revision)
    session.flush()
    return revision


def publish(item: Item, revision: Revision, from_files: bool = False) -> None:
    """Make the revision what learners get; from_files marks it as matching the content files too."""
    item.published_revision_id = revision.id
    if from_files:
        item.file_revision_id = revision.id


def history(session: Session, item: Item) -> list[Revision]:
    """Every revision of the item, newest first."""
    kind = kind_of(item)
    column = getattr(kind.revision, kind.parent)
    return list(session.scalars(select(kind.revision).where(column == item.id).order_by(kind.revision.number.desc())))


def revision_values(kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    """Plain data (from a file or a draft) as column values: ISO dates become dates."""
    values = {f: data[f] for f in kind.fields}
    if kind is MODULE and isinstance(values["last_reviewed"], str):
        values["last_reviewed"] = dt.date.fromisoformat(values["last_reviewed"])
    return values


def published_modules(session: Session, course_id: int) -> list[tuple[Module, ModuleRevision]]:
    """The course's current modules in order, each with its published revision, in one query."""
    rows = session.execute(
        select(Module, ModuleRevision)
        .join(ModuleRevision, ModuleRevision.id == Module.published_revision_id)
        .where(Module.course_id == course_id, Module.is_retired.is_(False))
        .order_by(Module.position, Module.id)
    )
    return [(m, r) for m, r in rows]


def published_questions(session: Session, quiz_id: int) -> list[tuple[Question, QuestionRevision]]:
    """The bank's questions that new attempts draw from, each with its published revision, in one query."""
    rows = session.execute(
        select(Question, QuestionRevision)
        .join(QuestionRevision, QuestionRevision.id == Question.published_revision_id)
        .where(Question.quiz_id == quiz_id, Question.is_retired.is_(False))
        .order_by(Question.position, Question.id)
    )
    return [(q, r) for q, r in rows]


def draft_for(session: Session, item: Item, lock: bool = False) -> Draft | None:
    """The item's working draft, if someone has one open. `lock` holds its row until the transaction ends
    (PostgreSQL: FOR UPDATE, read again), so that two publishes of one draft sent at once are made one after the
    other: the second then finds no draft."""
    column = getattr(Draft, kind_of(item).parent)
    found = select(Draft).where(column == item.id)
    if lock:
        found = found.with_for_update().execution_options(populate_existing=True)
    return session.scalar(found)


@dataclass
class ImportReport:
    """What an import did, and what it would not do without --overwrite."""

    stats: Counter[str] = field(default_factory=Counter)
    conflicts: list[str] = field(default_factory=list)
    overwrite: bool = False


def made_in_browser(item: Item) -> bool:
    """The published revision is not the one the files last matched: someone published it in the browser."""
    return item.published_revision_id is not None and item.published_revision_id != item.file_revision_id


def sync_from_file(
    session: Session, item: Item, data: dict[str, Any], where: str, report: ImportReport, author_id: int | None
) -> None:
    """Bring one item in line with its file: a new published revision when the file says something else.

    Browser work is never replaced silently: an unpublished draft, or a revision published in the browser since
    the files were last imported or exported, is reported as a conflict unless the import was asked to overwrite
    (which then discards the draft, and says so)."""
    kind = kind_of(item)
    current = published(session, item)
    if current is not None and revision_data(kind, current) == data:
        item.file_revision_id = current.id  # the files have caught up with what is published
        report.stats[f"{kind.plural} unchanged"] += 1
        return
    draft = draft_for(session, item)
    if not report.overwrite:
        if draft is not None:
            report.conflicts.append(
                f"{where}: has an unpublished draft saved in the browser on {draft.updated_at:%Y-%m-%d %H:%M} UTC"
            )
            return
        if current is not None and made_in_browser(item):
            report.conflicts.append(
                f"{where}: revision {current.number} was published in the browser on "
                f"{current.created_at:%Y-%m-%d %H:%M} UTC, after the files were last imported or exported"
            )
            return
    if draft is not None:
        session.delete(draft)
        report.stats["browser drafts discarded"] += 1
    revision = add_revision(session, item, revision_values(kind, data), author_id)
    publish(item, revision, from_files=True)
    report.stats[f"{kind.name} revisions created"] += 1


def retire_from_file(session: Session, item: Module | Question | Quiz, where: str, report: ImportReport) -> bool:
    """Retire an item whose file entry is gone, unless it is browser work (published there, or a draft)."""
    if item.is_retired:
        return False
    if not report.overwrite and (made_in_browser(item) or draft_for(session, item) is not None):
        report.conflicts.append(f"{where}: is not in the files but was written in the browser; export it first")
        return False
    item.is_retired = True
    return True


def mark_files_current(session: Session, course_id: int) -> None:
    """After an export: the files now say what is published, for every item of the course."""
    for kind, course_filter in (
        (MODULE, Module.course_id == course_id),
        (QUIZ, Quiz.course_id == course_id),
        (QUESTION, Question.quiz_id.in_(select(Quiz.id).where(Quiz.course_id == course_id))),
        (VIGNETTE, Vignette.quiz_id.in_(select(Quiz.id).where(Quiz.course_id == course_id))),
    ):
        session.execute(update(kind.item).where(course_filter).values(file_revision_id=kind.item.published_revision_id))
