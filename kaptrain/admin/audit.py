"""The audit log console: filter and page through entries, and export them as CSV (streamed)."""

from __future__ import annotations

from collections.abc import Iterator

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain import audit, csvout
from kaptrain.accounts.models import Role, User
from kaptrain.admin.forms import AuditFilterForm
from kaptrain.admin.views import bp
from kaptrain.auth import role_required
from kaptrain.certificates.models import Certificate
from kaptrain.db import get_session
from kaptrain.errors import fail

PER_PAGE = 50


def _filter(form: AuditFilterForm) -> audit.AuditFilter:
    """The form's values as a filter (call only once the form has validated)."""
    return audit.AuditFilter(
        action=form.action.data or None,
        actor=form.actor.data or None,
        subject_type=form.subject_type.data or None,
        subject_id=form.subject_id.data,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
    )


@bp.route("/audit")
@role_required(Role.ADMIN)
def audit_log() -> ResponseReturnValue:
    """The audit log, newest first, filtered and paginated."""
    session = get_session()
    form = AuditFilterForm(request.args)
    if not form.validate():
        return render_template("admin/audit.html", form=form, rows=[], total=0, page=1, pages=1, args={}), 422
    stmt = audit.search(_filter(form))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = request.args.get("page", 1, type=int) or 1
    if page < 1 or page > pages:
        fail(404, "There is no such page of the audit log.")
    rows = session.execute(stmt.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/audit.html",
        form=form,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        args=args,
        subjects=_subject_names(session, [entry for entry, *_ in rows]),
    )


def _subject_names(session: Session, entries: list[audit.AuditEntry]) -> dict[tuple[str, int], str]:
    """What the page's entries are about, in words: a person's name, a certificate's number (two statements at
    most, for the page's entries only)."""
    wanted: dict[str, set[int]] = {"user": set(), "certificate": set()}
    for entry in entries:
        if entry.subject_type in wanted and entry.subject_id is not None:
            wanted[entry.subject_type].add(entry.subject_id)
    names: dict[tuple[str, int], str] = {}
    if wanted["user"]:
        for user_id, name in session.execute(select(User.id, User.full_name).where(User.id.in_(wanted["user"]))):
            names["user", user_id] = name
    if wanted["certificate"]:
        numbers = select(Certificate.id, Certificate.number, Certificate.holder_name)
        for cert_id, number, holder in session.execute(numbers.where(Certificate.id.in_(wanted["certificate"]))):
            names["certificate", cert_id] = f"{number or 'Claim'} ({holder})"
    return names


def _export(flt: audit.AuditFilter) -> Iterator[str]:
    """The audit CSV, read apart from the request (csvout.read_apart)."""
    return csvout.read_apart(lambda session: audit.csv_lines(session, flt))


@bp.route("/audit.csv")
@role_required(Role.ADMIN)
def audit_csv() -> ResponseReturnValue:
    """The filtered audit log as CSV, streamed row by row."""
    form = AuditFilterForm(request.args)
    if not form.validate():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        fail(400, f"The export was not made: {problems}")
    return csvout.download(_export(_filter(form)), "audit-log.csv")
