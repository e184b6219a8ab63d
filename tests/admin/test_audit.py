"""The audit log: address and before/after on entries, append-only, the console's filters and CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import delete, func, select, update

from kaptrain import audit
from kaptrain.accounts.models import Role
from kaptrain.audit import AuditEntry, AuditLogImmutable
from tests.factories import make_user


@pytest.fixture
def admin(db, login):  # type: ignore[no-untyped-def]
    """A logged-in administrator."""
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin")
    db.commit()
    return login(user)


def entry(db, action: str, at: dt.datetime, actor_label: str = "cli:ops", subject_id: int = 1) -> AuditEntry:  # type: ignore[no-untyped-def]
    """An entry written at a given moment (the console sorts and filters on it)."""
    row = AuditEntry(at=at, action=action, subject_type="thing", subject_id=subject_id, actor_label=actor_label)
    db.add(row)
    db.flush()
    return row


def test_an_entry_from_the_site_records_the_address_and_before_and_after(client, db, login):
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"  # for the login too: a session is tied to its address
    admin = make_user(db, role=Role.ADMIN)
    db.commit()
    login(admin)
    response = client.post("/admin/settings", data={"signatory_name": "Dr Jo Park", "certificate_page_size": ""})
    assert response.status_code == 302
    found = db.scalars(select(AuditEntry).where(AuditEntry.action == "settings.change")).one()
    assert found.ip == "203.0.113.9" and found.actor_id == admin.id
    assert found.details == {"key": "signatory_name", "before": None, "after": "Dr Jo Park"}


def test_an_entry_outside_a_request_has_no_address(app, db):
    with app.app_context():
        made = audit.record(db, "thing.test", "thing", 1, before=1, after=2)
    assert made.ip is None and made.actor_label.startswith("cli:") and made.details == {"before": 1, "after": 2}


@pytest.mark.parametrize(
    "change",
    [
        lambda db, e: setattr(e, "action", "forged"),
        lambda db, e: db.delete(e),
        lambda db, e: db.execute(update(AuditEntry).where(AuditEntry.id == e.id).values(action="forged")),
        lambda db, e: db.execute(delete(AuditEntry).where(AuditEntry.id == e.id)),
    ],
    ids=["edit", "delete", "bulk-update", "bulk-delete"],
)
def test_entries_cannot_be_changed_or_deleted(db, change):
    made = entry(db, "thing.test", dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    with pytest.raises(AuditLogImmutable), db.begin_nested():
        change(db, made)
        db.flush()
    db.expire_all()
    assert db.scalar(select(AuditEntry.action).where(AuditEntry.id == made.id)) == "thing.test"


def test_filters_by_action_actor_subject_and_dates(client, db, admin):
    day = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    entry(db, "alpha.revoke", day, "cli:alice", subject_id=7)
    entry(db, "alpha.issue", day + dt.timedelta(days=2), "cli:bob", subject_id=8)
    entry(db, "settings.change", day + dt.timedelta(days=30), "cli:alice", subject_id=9)
    db.commit()

    def actions(query: str) -> set[str]:
        page = client.get(f"/admin/audit?{query}")
        assert page.status_code == 200
        return {a for a in ("alpha.revoke", "alpha.issue", "settings.change") if a in page.text}

    assert actions("action=alpha") == {"alpha.revoke", "alpha.issue"}
    assert actions("actor=ALICE") == {"alpha.revoke", "settings.change"}
    assert actions("subject_type=thing&subject_id=8") == {"alpha.issue"}
    assert actions("date_from=2026-03-10&date_to=2026-03-12") == {"alpha.revoke", "alpha.issue"}
    assert actions("date_to=2026-03-10") == {"alpha.revoke"}
    assert actions("actor=%25") == set()  # a LIKE wildcard is matched as itself


def test_an_inverted_date_range_is_refused_in_words(client, db, admin):
    page = client.get("/admin/audit?date_from=2026-04-01&date_to=2026-03-01")
    assert page.status_code == 422 and "The end date is before the start date" in page.text
    export = client.get("/admin/audit.csv?date_from=2026-04-01&date_to=2026-03-01")
    assert export.status_code == 400 and "The end date is before the start date" in export.text


def test_pages_of_fifty(client, db, admin):
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    for i in range(60):
        entry(db, "paging.test", start + dt.timedelta(minutes=i), subject_id=i)
    db.commit()
    first = client.get("/admin/audit?action=paging.test")
    assert "60 entries" in first.text and "Page 1 of 2" in first.text
    assert client.get("/admin/audit?action=paging.test&page=2").status_code == 200
    assert client.get("/admin/audit?action=paging.test&page=3").status_code == 404


def test_the_csv_export_is_streamed_and_has_every_matching_row(client, db, admin):
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    for i in range(1203):
        db.add(AuditEntry(at=start, action="export.test", subject_type="thing", subject_id=i, actor_label="=cmd"))
    db.flush()
    db.commit()
    response = client.get("/admin/audit.csv?action=export.test")
    assert response.status_code == 200 and response.mimetype == "text/csv" and response.is_streamed
    chunks = list(response.response)  # one chunk per row: the body is never built as one string
    assert len(chunks) == 1205 and chunks[0] == "\ufeff".encode()  # the byte-order mark Excel needs, then rows
    rows = list(csv.reader(io.StringIO("".join(c.decode() if isinstance(c, bytes) else c for c in chunks[1:]))))
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert len(rows) - 1 == db.scalar(select(func.count()).where(AuditEntry.action == "export.test"))
    assert rows[1][1] == "'=cmd"  # no spreadsheet formula


def test_content_import_is_audited_with_its_counts(runner, db):
    result = runner.invoke(args=["content", "import"])
    assert result.exit_code == 0, result.output
    found = db.scalars(select(AuditEntry).where(AuditEntry.action == "content.import")).one()
    assert found.details["counts"]["courses unchanged"] == 1 and found.actor_label.startswith("cli:")


STAFF_URLS = [
    ("get", "/admin/audit"),
    ("get", "/admin/audit.csv"),
    ("get", "/admin/settings"),
    ("post", "/admin/settings"),
    ("get", "/admin/accommodations/1"),
    ("post", "/admin/accommodations/1"),
    ("post", "/admin/accommodations/1/withdraw"),
]


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR])
@pytest.mark.parametrize(("method", "url"), STAFF_URLS)
def test_learners_and_instructors_are_refused(client, db, login, role, method, url):
    login(make_user(db, role=role))
    before = db.scalar(select(func.count()).select_from(AuditEntry))
    response = getattr(client, method)(url, data={"reason": "x", "signatory_name": "X"})
    assert response.status_code == 403
    assert b"You do not have access to this page" in response.data
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_a_detail_left_empty_reads_none_not_python(client, db, admin):
    at = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    details = {"since": None, "until": "2026-03-10"}
    db.add(
        AuditEntry(
            at=at, action="certificate.export", subject_type="certificate", actor_label="cli:ops", details=details
        )
    )
    db.commit()
    page = client.get("/admin/audit?action=certificate.export").get_data(as_text=True)
    assert '<dt>since</dt><dd><span class="muted">none</span></dd>' in page and ">None<" not in page


def test_a_person_or_certificate_in_the_log_links_to_its_record(client, db, admin):
    at = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    db.add(AuditEntry(at=at, action="user.role_change", subject_type="user", subject_id=admin.id, actor_label="t"))
    db.add(AuditEntry(at=at, action="certificate.revoke", subject_type="certificate", subject_id=7, actor_label="t"))
    db.add(AuditEntry(at=at, action="content.import", subject_type="course", subject_id=1, actor_label="t"))
    db.commit()
    page = client.get("/admin/audit").get_data(as_text=True)
    # A person by name, with the record's kind and id; a certificate that is not there (any more) by its id.
    assert (
        f'<a href="/admin/people/{admin.id}">{admin.full_name}<span class="muted"> · user {admin.id}</span></a>' in page
    )
    assert '<a href="/admin/certificates/7">certificate 7</a>' in page
    assert "course 1" in page and 'href="/admin/courses' not in page  # no page of its own: plain text


def test_the_log_shows_details_in_words_not_as_data(client, db, admin):
    """A walk-through: details read as JSON and ISO timestamps ({"role": "instructor"}, 2026-11-28T01:49:35+00:00)."""
    details = {
        "expires_at": "2026-11-28T01:49:35.024152+00:00",
        "ids": [3, 5],
        "user_id": 7,
        "role": {"before": "learner", "after": "instructor"},
        "is_active": False,
        "reason": "",
        "category": "issued_in_error",
        "email": "first_last@example.org",
    }
    db.add(AuditEntry(action="thing.change", subject_type="thing", subject_id=4, actor_label="t", details=details))
    db.commit()
    page = client.get("/admin/audit", query_string={"action": "thing.change"}).text
    details = page[page.index('<dl class="audit-details">') :].split("</dl>")[0]
    assert "<dt>expires at</dt><dd>28 November 2026, 01:49 UTC</dd>" in details
    assert "<dt>ids</dt><dd>3, 5</dd>" in details and "<dt>user id</dt><dd>7</dd>" in details
    assert "<dt>role</dt><dd>after: instructor; before: learner</dd>" in details
    assert "{" not in details and "T01:49" not in details
    assert "<dt>is active</dt><dd>no</dd>" in details and "<dt>category</dt><dd>issued in error</dd>" in details
    assert "<dt>reason</dt>" not in details  # empty: not shown
    assert "<dd>first_last@example.org</dd>" in details  # not a code: as it is
