"""Files to database and back: import creates revisions where content changed; export writes files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.content.files import CourseContent
from kaptrain.content.identity import find_by_slug
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.content.schema import CourseFile, ModuleFile, ModuleMeta, Reference
from kaptrain.quizzes import bank

COURSE_FIELDS = (
    "title",
    "description",
    "audience",
    "ce_hours",
    "passing_score",
    "provider",
    "financial_disclosure",
    "off_label_statement",
    "disclaimer",
    "min_reading_percent",
    "delivery_format",
)
# The certificate: block of course.yaml, stored as columns of the course.
CERTIFICATE_FIELDS = {
    "approval": "certificate_approval",
    "validity_months": "certificate_validity_months",
    "signatory_name": "signatory_name",
    "signatory_title": "signatory_title",
}

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def latest_revision(session: Session, module: Module) -> ModuleRevision | None:
    """The module's current (highest-numbered) revision."""
    return session.scalar(
        select(ModuleRevision)
        .where(ModuleRevision.module_id == module.id)
        .order_by(ModuleRevision.number.desc())
        .limit(1)
    )


def _module_data(m: ModuleFile) -> dict[str, Any]:
    return {
        "title": m.meta.title,
        "estimated_minutes": m.meta.estimated_minutes,
        "last_reviewed": m.meta.last_reviewed,
        "objectives": list(m.meta.objectives),
        "references": [r.model_dump(mode="json", exclude_none=True) for r in m.meta.references],
        "body": m.body,
    }


def _revision_data(rev: ModuleRevision) -> dict[str, Any]:
    return {
        k: getattr(rev, k) for k in ("title", "estimated_minutes", "last_reviewed", "objectives", "references", "body")
    }


def import_content(
    session: Session,
    courses: Iterable[CourseContent],
    progress: Progress = _noop,
    author_id: int | None = None,
) -> Counter[str]:
    """Load validated content; flushes only, so the caller's single commit makes it all or nothing."""
    stats: Counter[str] = Counter()
    for content in courses:
        course = _sync_course(session, content.course, stats)
        modules = {}
        file_slugs = {m.meta.slug for m in content.modules}
        for m in content.modules:
            modules[m.meta.slug] = _sync_module(session, course, m, stats, author_id)
            progress(f"module {m.meta.slug}")
        for module in session.scalars(select(Module).where(Module.course_id == course.id)):
            if module.slug not in file_slugs and not module.is_retired:
                module.is_retired = True
                stats["modules retired"] += 1
        synced = set()
        for q in content.quizzes:
            synced.add(bank.sync_quiz(session, course, q, modules, stats, author_id).id)
            progress(f"quiz {q.quiz.slug}")
        stats["quizzes retired"] += bank.retire_quizzes(session, course, keep=synced)
    session.flush()
    return +stats


def course_values(data: CourseFile) -> dict[str, Any]:
    """The course file as column values of a Course row."""
    values = {k: getattr(data, k) for k in COURSE_FIELDS}
    values["objectives"] = [o.model_dump() for o in data.objectives]
    values["credit_designations"] = [d.model_dump(mode="json") for d in data.credit_designations]
    values.update({column: getattr(data.certificate, key) for key, column in CERTIFICATE_FIELDS.items()})
    return values


def course_file(course: Course) -> CourseFile:
    """A Course row as its course file."""
    return CourseFile.model_validate(
        {
            "slug": course.slug,
            "objectives": course.objectives,
            "credit_designations": course.credit_designations,
            "certificate": {key: getattr(course, column) for key, column in CERTIFICATE_FIELDS.items()},
            **{k: getattr(course, k) for k in COURSE_FIELDS},
        }
    )


def _sync_course(session: Session, data: CourseFile, stats: Counter[str]) -> Course:
    course = session.scalar(select(Course).where(Course.slug == data.slug))
    values = course_values(data)
    if course is None:
        course = Course(slug=data.slug, **values)
        session.add(course)
        session.flush()
        stats["courses created"] += 1
        return course
    changed = {k: v for k, v in values.items() if getattr(course, k) != v}
    for k, v in changed.items():
        setattr(course, k, v)
    stats["courses updated" if changed else "courses unchanged"] += 1
    return course


def _sync_module(session: Session, course: Course, m: ModuleFile, stats: Counter[str], author_id: int | None) -> Module:
    module = find_by_slug(session, Module, course.id, m.meta.slug, m.meta.previous_slugs)
    if module is None:
        module = Module(course_id=course.id, slug=m.meta.slug, position=m.meta.order)
        session.add(module)
        session.flush()
    elif module.slug != m.meta.slug:
        module.slug = m.meta.slug  # a declared rename: same module, so learners' progress stays attached
        stats["modules renamed"] += 1
    module.position = m.meta.order
    module.previous_slugs = list(m.meta.previous_slugs)
    module.is_retired = False
    data = _module_data(m)
    current = latest_revision(session, module)
    if current is not None and _revision_data(current) == data:
        stats["modules unchanged"] += 1
        return module
    # Never edit a revision in place: learners' records point at exactly what they read.
    number = 1 if current is None else current.number + 1
    session.add(ModuleRevision(module_id=module.id, number=number, created_by_id=author_id, **data))
    session.flush()
    stats["module revisions created"] += 1
    return module


def export_content(session: Session) -> list[CourseContent]:
    """The database's current content as file models, ready for files.write_content."""
    out = []
    for course in session.scalars(select(Course).order_by(Course.slug)):
        cf = course_file(course)
        content = CourseContent(cf)
        for module in course.modules:
            if module.is_retired:
                continue
            rev = latest_revision(session, module)
            if rev is None:
                continue
            meta = ModuleMeta(
                slug=module.slug,
                previous_slugs=module.previous_slugs,
                title=rev.title,
                order=module.position,
                estimated_minutes=rev.estimated_minutes,
                last_reviewed=rev.last_reviewed,
                objectives=rev.objectives,
                references=[Reference.model_validate(r) for r in rev.references],
            )
            content.modules.append(ModuleFile(meta=meta, body=rev.body))
        content.quizzes = bank.export_quizzes(session, course)
        out.append(content)
    return out
