"""The published course structure every learner page needs, loaded in four statements and cached per content version.

A `Catalogue` holds every course with its live modules (each with its published revision) and its quizzes (each
with its published rules). Learner pages take courses, modules and quizzes from it instead of querying them; each
process keeps one copy under the content version token (kaptrain.cache), checked once per request, so a publish,
an import or any other change to content is seen on the next request on every server.

Any flush that adds, changes or deletes a content row (courses, modules, quizzes, questions, cases and their
revisions), and any bulk UPDATE or DELETE of those tables through the ORM, writes a new version token in the same
transaction: nothing that changes content can forget to. A change made around the ORM (SQL typed into psql)
needs `flask --app kaptrain content refresh` or a restart.

The cached objects are detached ORM instances shared by every request of the process: read them, never change
them. Attaching one to a session (e.g. assigning it to a relationship) raises, so a test catches it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from kaptrain import cache
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.content.render import Rendered, render_module
from kaptrain.quizzes.models import (
    Question,
    QuestionRevision,
    Quiz,
    QuizKind,
    QuizSettingsRevision,
    Vignette,
    VignetteRevision,
)

# Tables whose rows are content: a change to any of them gives the content a new version.
CONTENT_CLASSES = (
    Course,
    Module,
    ModuleRevision,
    Quiz,
    QuizSettingsRevision,
    Question,
    QuestionRevision,
    Vignette,
    VignetteRevision,
)
_CACHED = "kaptrain.cached"  # InstanceState.info flag on the shared, read-only instances
T = TypeVar("T")


@dataclass(frozen=True)
class PublishedCourse:
    """One course as learners see it: its live modules in order with their published revisions, and its quizzes."""

    course: Course
    modules: tuple[tuple[Module, ModuleRevision], ...]
    quizzes: tuple[Quiz, ...]  # retired ones too: a pass on a retired quiz still completes its module
    _quizzes_by_slug: dict[str, Quiz] = field(default_factory=dict, repr=False)

    def quiz(self, slug: str) -> Quiz | None:
        """The course's quiz with this slug."""
        return self._quizzes_by_slug.get(slug)

    def module(self, slug: str) -> tuple[Module, ModuleRevision] | None:
        """The live module with this slug and its published revision."""
        return next(((m, r) for m, r in self.modules if m.slug == slug), None)

    @property
    def current_quizzes(self) -> dict[int, Quiz]:
        """Each module's current (not retired) quiz, by module id."""
        return {q.module_id: q for q in self.quizzes if q.kind == QuizKind.MODULE and not q.is_retired and q.module_id}

    @property
    def final(self) -> Quiz | None:
        """The course's current final assessment."""
        return next((q for q in self.quizzes if q.kind == QuizKind.FINAL and not q.is_retired), None)


@dataclass(frozen=True)
class Catalogue:
    """Every course's published structure, at one content version."""

    version: str | None
    courses: tuple[PublishedCourse, ...]  # by title
    _by_slug: dict[str, PublishedCourse] = field(default_factory=dict, repr=False)
    _by_id: dict[int, PublishedCourse] = field(default_factory=dict, repr=False)

    def by_slug(self, slug: str) -> PublishedCourse | None:
        """A course by slug (published or not: callers decide)."""
        return self._by_slug.get(slug)

    def by_id(self, course_id: int) -> PublishedCourse:
        """A course by id (its rows exist: ids come from enrolments, attempts and quizzes)."""
        return self._by_id[course_id]

    _derived: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    @property
    def published(self) -> list[Course]:
        """The courses in the catalogue, by title."""
        return [p.course for p in self.courses if p.course.is_published]

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A value worked out from this version's content (e.g. a page's HTML), computed once and kept with it.

        Keys name immutable things (a revision id); the value goes when the content version changes."""
        if key not in self._derived:
            self._derived[key] = compute()  # two threads may both compute it: the results are equal
        found: T = self._derived[key]
        return found

    def rendered(self, revision: ModuleRevision) -> Rendered:
        """A published module revision's text as sanitised HTML with its headings, rendered once per version."""
        return self.derived(("rendered", revision.id), lambda: render_module(revision.body))


def current(session: Session) -> Catalogue:
    """The catalogue at the content version this transaction sees: this process's copy, or loaded and kept."""
    version = cache.content_version(session)
    store = cache.process_cache()
    if store is None or cache.wrote_content(session):
        # Content changed in this transaction: what it sees is not committed, so it is neither shared nor taken
        # from the shared copy (which is older). Loaded in this session, as it was before there was a cache.
        return _load(session, version)
    return store.get("catalogue", version, lambda: _load_detached(session, version))


def _load_detached(session: Session, version: str | None) -> Catalogue:
    # A session of its own on the request's connection: the same transaction (so the content is what the version
    # just read names, or newer), and its own identity map, so the request's objects are not shared by accident.
    side = Session(bind=session.connection(), join_transaction_mode="rollback_only", expire_on_commit=False)
    try:
        catalogue = _load(side, version)
        for instance in list(side.identity_map.values()):
            inspect(instance).info[_CACHED] = True
    finally:
        side.close()
    return catalogue


def _load(session: Session, version: str | None) -> Catalogue:
    courses = list(session.scalars(select(Course).options(selectinload(Course.modules)).order_by(Course.title)))
    rows = session.execute(
        select(Module, ModuleRevision)
        .join(ModuleRevision, ModuleRevision.id == Module.published_revision_id)
        .where(Module.is_retired.is_(False))
        .order_by(Module.course_id, Module.position, Module.id)
    )
    modules: dict[int, list[tuple[Module, ModuleRevision]]] = {}
    for module, revision in rows:
        set_committed_value(revision, "module", module)
        modules.setdefault(module.course_id, []).append((module, revision))
    quizzes: dict[int, list[Quiz]] = {}
    for quiz in session.scalars(select(Quiz).order_by(Quiz.course_id, Quiz.id)):  # course, module, rules joined
        quizzes.setdefault(quiz.course_id, []).append(quiz)
    published = []
    for course in courses:
        for module in course.modules:
            set_committed_value(module, "course", course)
        own = quizzes.get(course.id, [])
        published.append(
            PublishedCourse(course, tuple(modules.get(course.id, [])), tuple(own), {q.slug: q for q in own})
        )
    return Catalogue(
        version, tuple(published), {p.course.slug: p for p in published}, {p.course.id: p for p in published}
    )


def is_cached(instance: object) -> bool:
    """Whether an object is one of the shared, read-only catalogue instances."""
    return bool(inspect(instance).info.get(_CACHED))


def _refuse_attach(_session: Session, instance: object) -> None:
    if is_cached(instance):
        raise RuntimeError(
            f"{instance!r} is a shared copy from the content cache and is read-only: load the row in the session to "
            "change it or to point at it from another object"
        )


def _is_content(instances: Iterable[object]) -> bool:
    return any(isinstance(i, CONTENT_CLASSES) for i in instances)


def _note_flush(session: Session, _flush: UOWTransaction) -> None:
    if _is_content(session.new) or _is_content(session.dirty) or _is_content(session.deleted):
        cache.bump_content_version(session)


def _note_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    mapper: Any = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, CONTENT_CLASSES):
        cache.bump_content_version(state.session)


event.listen(Session, "before_attach", _refuse_attach)
event.listen(Session, "after_flush", _note_flush)
event.listen(Session, "do_orm_execute", _note_bulk)
