"""Reports: completions (issued certificates) by date range as a table and a streamed CSV, and the
enrolment and completion funnel of a course, module by module, as an SVG chart with its table."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from kaptrain import audit, csvout
from kaptrain.accounts.models import Role
from kaptrain.admin.charts import bar_chart
from kaptrain.admin.console_forms import DateRangeForm
from kaptrain.admin.views import bp
from kaptrain.auth import role_required, user
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation
from kaptrain.certificates.report import COLUMNS, ce_report
from kaptrain.content import revisions
from kaptrain.content.models import Course
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import get_session, may_write
from kaptrain.errors import fail
from kaptrain.quizzes.models import Attempt, Quiz, QuizKind

PER_PAGE = 50
BATCH = 500  # rows the CSV export reads at a time


@dataclass
class CompletionsPage:
    """One page of issued certificates in the range."""

    rows: list[Certificate]
    total: int
    hours: Decimal
    page: int
    pages: int


def _window(date_from: dt.date | None, date_to: dt.date | None) -> Select[Certificate]:
    stmt = select(Certificate).where(Certificate.status != CertificateStatus.PENDING)
    if date_from is not None:
        stmt = stmt.where(Certificate.issued_at >= dt.datetime.combine(date_from, dt.time(), dt.UTC))
    if date_to is not None:
        end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
        stmt = stmt.where(Certificate.issued_at < end)
    return stmt


def completions(db: Session, date_from: dt.date | None, date_to: dt.date | None, page: int = 1) -> CompletionsPage:
    """Issued certificates (active, superseded, revoked) in the inclusive date range, oldest first."""
    stmt = _window(date_from, date_to)
    sub = stmt.subquery()
    # Hours that stand: a superseded certificate's hours are its re-issue's, and a revoked one's count for nothing.
    # An expired certificate's still count (they were earned in the period; expiry is about its validity now), and
    # the figure is read from the covering index (issued_at, status, hours) alone, as before.
    in_force = case((sub.c.status == CertificateStatus.ACTIVE, sub.c.hours), else_=0)
    total, hours = db.execute(select(func.count(), func.coalesce(func.sum(in_force), 0))).one()
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(page, pages)
    ordered = stmt.order_by(Certificate.issued_at, Certificate.id)
    rows = db.scalars(ordered.limit(PER_PAGE).offset((page - 1) * PER_PAGE))
    in_force_hours = Decimal(str(hours or 0)).quantize(Decimal("0.01"))
    return CompletionsPage(list(rows), int(total), in_force_hours, page, pages)


@dataclass(frozen=True)
class FunnelStage:
    """How many enrolled learners reached one stage of the course."""

    label: str
    learners: int


def funnel(db: Session, course: Course) -> list[FunnelStage]:
    """Enrolled learners who reached each stage: disclosures, each module opened and completed, final, evaluation,
    certificate. A few grouped queries, whatever the number of learners."""
    enrolled = select(Enrolment.user_id).where(Enrolment.course_id == course.id)

    def count(stmt: Select[Any]) -> int:
        return int(db.scalar(select(func.count()).select_from(stmt.subquery())) or 0)

    stages = [
        FunnelStage("Enrolled", count(enrolled)),
        FunnelStage("Disclosures", count(enrolled.where(Enrolment.disclosures_acknowledged_at.is_not(None)))),
    ]
    published = revisions.published_modules(db, course.id)
    modules = [m for m, _ in published]
    ids = [m.id for m in modules]
    titles = {m.id: rev.title for m, rev in published}
    opened = dict(
        db.execute(
            select(ModuleProgress.module_id, func.count(func.distinct(ModuleProgress.user_id)))
            .where(ModuleProgress.module_id.in_(ids), ModuleProgress.user_id.in_(enrolled))
            .group_by(ModuleProgress.module_id)
        ).all()
    )
    read = dict(
        db.execute(
            select(ModuleProgress.module_id, func.count(func.distinct(ModuleProgress.user_id)))
            .where(ModuleProgress.module_id.in_(ids), ModuleProgress.read_at.is_not(None))
            .where(ModuleProgress.user_id.in_(enrolled))
            .group_by(ModuleProgress.module_id)
        ).all()
    )
    quizzes = list(db.scalars(select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False))))
    passed = dict(
        db.execute(
            select(Attempt.quiz_id, func.count(func.distinct(Attempt.user_id)))
            .where(Attempt.quiz_id.in_([q.id for q in quizzes]), Attempt.passed.is_(True))
            .where(Attempt.user_id.in_(enrolled))
            .group_by(Attempt.quiz_id)
        ).all()
    )
    by_module = {q.module_id: q for q in quizzes if q.kind == QuizKind.MODULE}
    for m in modules:
        name = f"Module {m.position}"
        quiz = by_module.get(m.id)
        done = passed.get(quiz.id, 0) if quiz else read.get(m.id, 0)
        stages.append(FunnelStage(f"{name} opened: {titles.get(m.id, m.slug)}", opened.get(m.id, 0)))
        stages.append(FunnelStage(f"{name} completed", done))
    final = next((q for q in quizzes if q.kind == QuizKind.FINAL), None)
    if final is not None:
        stages.append(FunnelStage("Final assessment passed", passed.get(final.id, 0)))
    for label, model in (("Evaluation submitted", Evaluation), ("Attested", Attestation)):
        stages.append(FunnelStage(label, count(select(model.user_id).where(model.course_id == course.id))))
    attested = select(Attestation.user_id).where(Attestation.course_id == course.id)
    stages.append(FunnelStage("Certificate issued", count(_issued(course).where(Certificate.user_id.in_(attested)))))
    return stages


def _issued(course: Course) -> Select[Any]:
    return select(func.distinct(Certificate.user_id)).where(
        Certificate.course_id == course.id, Certificate.status != CertificateStatus.PENDING
    )


def issued_by_hand(db: Session, course: Course) -> int:
    """Learners holding a certificate of the course issued outside it (no attestation here): not in the funnel,
    whose stages each count learners who went through the one before."""
    attested = select(Attestation.user_id).where(Attestation.course_id == course.id)
    outside = _issued(course).where(Certificate.user_id.not_in(attested))
    return int(db.scalar(select(func.count()).select_from(outside.subquery())) or 0)


def _export(since: dt.date | None, until: dt.date | None) -> Iterator[str]:
    """The completions CSV, read apart from the request (csvout.read_apart)."""
    return csvout.read_apart(lambda session: csvout.lines(COLUMNS, ce_report(session, since, until, BATCH)))


def _range() -> DateRangeForm:
    return DateRangeForm(formdata=request.args)


@bp.route("/reports")
@role_required(Role.ADMIN)
def reports() -> ResponseReturnValue:
    """Completions in a date range, and a course's enrolment and completion funnel."""
    db = get_session()
    form = _range()
    courses = list(db.scalars(select(Course).order_by(Course.title)))
    chosen = next((c for c in courses if str(c.id) == request.args.get("course")), courses[0] if courses else None)
    stages = funnel(db, chosen) if chosen else []
    valid = form.validate()
    result = completions(db, form.date_from.data, form.date_to.data, form.page.data or 1) if valid else None
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/reports.html",
        form=form,
        result=result,
        args=args,
        courses=courses,
        chosen=chosen,
        stages=stages,
        by_hand=issued_by_hand(db, chosen) if chosen else 0,
        chart=bar_chart([(s.label, s.learners) for s in stages], label_width=230),
    ), 200 if valid else 400


@bp.route("/reports/completions.csv")
@role_required(Role.ADMIN)
@may_write  # the export is audited: personal data leaves the system
def completions_csv() -> ResponseReturnValue:
    """The completions in the range as CSV, streamed row by row in constant memory."""
    form = _range()
    if not form.validate():
        # The site's error page, not a bare text body: the link is opened in a browser.
        fail(400, " ".join(form.date_to.errors or ["Enter the dates as YYYY-MM-DD."]))
    db = get_session()
    start, end = form.date_from.data, form.date_to.data
    audit.record(
        db, "certificate.export", "certificate", None, actor_id=user().id,
        since=start.isoformat() if start else None, until=end.isoformat() if end else None,
    )  # fmt: skip
    name = f"completions-{start or 'start'}-to-{end or 'now'}.csv"
    return csvout.download(_export(start, end), name)
