"""Files to database and back: import creates revisions where content changed; export writes files."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.content import revisions
from kaptrain.content.files import CourseContent
from kaptrain.content.identity import find_by_slug
from kaptrain.content.models import Course, Module
from kaptrain.content.revisions import ImportReport
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
    "released_on",
    "review_by",
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


def module_data(m: ModuleFile) -> dict[str, Any]:
    """A module file as the plain data of a module revision."""
    return {
        "title": m.meta.title,
        "summary": m.meta.summary,
        "estimated_minutes": m.meta.estimated_minutes,
        "last_reviewed": m.meta.last_reviewed.isoformat(),
        "objectives": list(m.meta.objectives),
        "references": [r.model_dump(mode="json", exclude_none=True) for r in m.meta.references],
        "body": m.body,
    }


def module_file(module: Module, data: dict[str, Any]) -> ModuleFile:
    """A module revision's or draft's plain data as its module file (the inverse of module_data), not checked
    again: what was published was checked then, and a new module's first draft, still incomplete, must still
    download."""
    meta = {k: v for k, v in data.items() if k != "body"}
    meta["references"] = [Reference.model_construct(**r) for r in meta["references"]]
    try:
        meta["last_reviewed"] = dt.date.fromisoformat(meta["last_reviewed"])
    except (TypeError, ValueError):
        pass  # written as it is, and refused with its line when the file is read back
    return ModuleFile.model_construct(
        meta=ModuleMeta.model_construct(
            slug=module.slug, previous_slugs=list(module.previous_slugs), order=module.position, **meta
        ),
        body=data["body"],
    )


class ImportConflict(Exception):
    """The files would replace browser work; nothing was imported."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.conflicts)} item(s) have browser work the files would replace")
        self.report = report


def import_content(
    session: Session,
    courses: Iterable[CourseContent],
    progress: Progress = _noop,
    author_id: int | None = None,
    overwrite: bool = False,
) -> Counter[str]:
    """Load validated content; flushes only, so the caller's single commit makes it all or nothing.

    Raises ImportConflict (after looking at everything, so the report is complete) when the files meet a browser
    draft or a revision published in the browser, unless overwrite is set."""
    report = ImportReport(overwrite=overwrite)
    for content in courses:
        course = _sync_course(session, content.course, report.stats)
        modules = {}
        file_slugs = {m.meta.slug for m in content.modules}
        for m in content.modules:
            modules[m.meta.slug] = _sync_module(session, course, m, report, author_id)
            progress(f"module {m.meta.slug}")
        for module in session.scalars(select(Module).where(Module.course_id == course.id)):
            where = f"modules/{course.slug}/{module.slug}"
            if module.slug not in file_slugs and revisions.retire_from_file(session, module, where, report):
                report.stats["modules retired"] += 1
        synced = set()
        for q in content.quizzes:
            synced.add(bank.sync_quiz(session, course, q, modules, report, author_id).id)
            progress(f"quiz {q.quiz.slug}")
        bank.retire_quizzes(session, course, synced, report)
    session.flush()
    if report.conflicts:
        raise ImportConflict(report)
    return +report.stats


def course_values(data: CourseFile) -> dict[str, Any]:
    """The course file as column values of a Course row."""
    values = {k: getattr(data, k) for k in COURSE_FIELDS}
    values["objectives"] = [o.model_dump() for o in data.objectives]
    values["credit_designations"] = [d.model_dump(mode="json") for d in data.credit_designations]
    values["team"] = [t.model_dump() for t in data.team]
    values.update({column: getattr(data.certificate, key) for key, column in CERTIFICATE_FIELDS.items()})
    return values


def course_file(course: Course) -> CourseFile:
    """A Course row as its course file."""
    return CourseFile.model_validate(
        {
            "slug": course.slug,
            "objectives": course.objectives,
            "credit_designations": course.credit_designations,
            "team": course.team,
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


def _sync_module(
    session: Session, course: Course, m: ModuleFile, report: ImportReport, author_id: int | None
) -> Module:
    module = find_by_slug(session, Module, course.id, m.meta.slug, m.meta.previous_slugs)
    if module is None:
        module = Module(course_id=course.id, slug=m.meta.slug, position=m.meta.order)
        session.add(module)
        session.flush()
    elif module.slug != m.meta.slug:
        module.slug = m.meta.slug  # a declared rename: same module, so learners' progress stays attached
        report.stats["modules renamed"] += 1
    module.position = m.meta.order
    module.previous_slugs = list(m.meta.previous_slugs)
    module.is_retired = False
    # Never edit a revision in place: learners' records point at exactly what they read.
    revisions.sync_from_file(session, module, module_data(m), f"modules/{course.slug}/{m.meta.slug}", report, author_id)
    return module


def export_content(session: Session, mark_exported: bool = False) -> list[CourseContent]:
    """The database's published content as file models, ready for files.write_content.

    mark_exported records that the files now match what is published, so that the next import of these files
    treats browser-published revisions as theirs (see content.revisions.sync_from_file)."""
    out = []
    for course in session.scalars(select(Course).order_by(Course.slug)):
        content = CourseContent(course_file(course))
        for module, rev in revisions.published_modules(session, course.id):
            content.modules.append(module_file(module, revisions.revision_data(revisions.MODULE, rev)))
        content.quizzes = bank.export_quizzes(session, course)
        if mark_exported:
            revisions.mark_files_current(session, course.id)
        out.append(content)
    return out
