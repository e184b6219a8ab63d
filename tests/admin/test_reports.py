"""Reports: completions by date range (table and streamed CSV), the funnel, and the streamed item analysis."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tracemalloc
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select

from kaptrain.accounts.models import Role
from kaptrain.admin import reports
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus, RevocationReason
from tests.factories import certified, course, enrolled, make_user, pass_quiz

DAY = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def admin(db, login):
    """A logged-in administrator."""
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin")
    db.commit()
    return login(user)


def seed(db, n: int, start: dt.datetime = DAY, prefix: str = "T") -> None:
    """Insert n issued certificates in one statement, one a second from start (no PDFs: reports never read them).

    All are superseded: one holder may have one current certificate per course (uq_certificates_one_current), and
    the report lists superseded certificates like active ones."""
    owner = make_user(db, full_name="Bulk Holder")
    c = course(db)
    rows = [
        {
            "number": f"{prefix}-{i:06d}", "code": f"{prefix}{i:031d}", "user_id": owner.id, "course_id": c.id,
            "status": CertificateStatus.SUPERSEDED, "superseded_at": start + dt.timedelta(seconds=i + 1),
            "holder_name": f"Holder {i}", "licence_number": f"L{i}",
            "jurisdiction": "Oregon", "course_title": c.title, "hours": Decimal("3.5"), "max_hours": c.ce_hours,
            "designations": [{"credit_type": "APA", "hours": "3.5", "statement": "s"}], "delivery_format": "Online",
            "provider": "kaptrain", "accreditation_statement": "Approved.", "signatory_name": "S",
            "signatory_title": "T", "completed_at": start, "issued_at": start + dt.timedelta(seconds=i),
            "holder_credential": "", "issue_reason": "", "revocation_note": "",
        }
        for i in range(n)
    ]  # fmt: skip
    db.execute(insert(Certificate), rows)
    db.commit()


@pytest.mark.parametrize("role", [Role.LEARNER, Role.INSTRUCTOR])
def test_reports_refuse_non_admins(client, db, login, role):
    login(make_user(db, role=role))
    db.commit()
    assert client.get("/admin/reports").status_code == 403
    assert client.get("/admin/reports/completions.csv").status_code == 403


def test_an_inverted_range_is_refused_in_words(client, db, admin):
    response = client.get("/admin/reports?date_from=2025-03-10&date_to=2025-03-01")
    assert response.status_code == 400
    assert "The end date is before the start date" in response.get_data(as_text=True)
    csv_response = client.get("/admin/reports/completions.csv?date_from=2025-03-10&date_to=2025-03-01")
    assert csv_response.status_code == 400 and "before the start date" in csv_response.get_data(as_text=True)


def test_completions_table_and_csv_match_a_count_in_sql(client, db, admin):
    seed(db, 30, DAY, "A")
    seed(db, 5, DAY + dt.timedelta(days=3), "B")
    page = client.get("/admin/reports?date_from=2025-03-10&date_to=2025-03-10").get_data(as_text=True)
    # Seeded superseded: listed, but their hours are their re-issues' (not seeded), so none are in force.
    assert (
        "<strong>30</strong> certificates" in page
        and "<strong>0.0</strong> hours on the certificates that stand" in page
    )
    assert "Oregon" in page and "APA" in page
    response = client.get("/admin/reports/completions.csv?date_from=2025-03-10&date_to=2025-03-13")
    assert response.is_streamed and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    end = dt.datetime(2025, 3, 14, tzinfo=dt.UTC)
    expected = db.scalar(
        select(func.count()).where(
            Certificate.status != CertificateStatus.PENDING, Certificate.issued_at >= DAY.replace(hour=0),
            Certificate.issued_at < end,
        )
    )  # fmt: skip
    assert len(rows) == expected == 35
    assert rows[0]["licence_number"] == "L0" and rows[0]["jurisdiction"] == "Oregon"
    assert rows[0]["credit_types"] == "APA" and rows[0]["hours_certified"] == "3.50" and rows[0]["hours_claimed"] == ""


def test_the_csv_streams_in_constant_memory(client, db, admin, monkeypatch):
    monkeypatch.setattr(reports, "BATCH", 100)  # below both sizes, so memory is a batch, whatever the rows
    seed(db, 200, DAY, "S")
    seed(db, 2000, DAY + dt.timedelta(days=1), "L")

    def peak(url: str) -> tuple[int, int]:
        response = client.get(url)
        assert response.is_streamed
        lines = 0
        tracemalloc.start()
        for _chunk in response.response:  # the generator itself: nothing is joined in memory
            lines += 1
        _current, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        response.close()
        return lines, top

    small_lines, small = peak("/admin/reports/completions.csv?date_from=2025-03-10&date_to=2025-03-10")
    large_lines, large = peak("/admin/reports/completions.csv?date_from=2025-03-11&date_to=2025-03-11")
    assert (small_lines, large_lines) == (202, 2002)  # the byte-order mark, the header and the rows
    # Ten times the rows, not ten times the memory: rows are read in batches and let go.
    assert large < 1.5 * small + 500_000, (small, large)


def test_funnel_chart_and_table(client, db, admin):
    learner = make_user(db)
    enrolled(db, learner)
    pass_quiz(db, learner, "alpha-quiz")
    db.commit()
    page = client.get("/admin/reports").get_data(as_text=True)
    assert "<svg" in page and 'fill="#1f5f6b"' in page
    assert '<th scope="row">Module 1 completed</th><td>1</td>' in page


def test_the_funnel_counts_certificates_of_learners_who_went_through_and_names_hand_issued_ones(app, client, db, admin):
    through = make_user(db)
    enrolled(db, through)
    migrated = make_user(db)
    enrolled(db, migrated)
    with app.app_context():
        certified(db, through)
        services.issue_without_course(db, migrated, course(db), "Old system record", actor_label="test")
        db.commit()
    page = client.get("/admin/reports").get_data(as_text=True)
    assert '<th scope="row">Attested</th><td>1</td>' in page
    assert '<th scope="row">Certificate issued</th><td>1</td>' in page  # not 2: never more than attested
    assert "Not in the funnel: 1 learner with a certificate of this course issued by hand" in page


def test_item_analysis_csv_is_streamed_and_its_chart_is_svg(client, db, login):
    learner = make_user(db)
    enrolled(db, learner)
    pass_quiz(db, learner, "alpha-quiz")
    login(make_user(db, role=Role.INSTRUCTOR))
    db.commit()
    base = "/instructor/courses/demo-course/quizzes/alpha-quiz/analysis"
    page = client.get(base).get_data(as_text=True)
    assert "<progress" not in page and "<svg" in page and 'fill="#1f5f6b"' in page
    response = client.get(base + ".csv")
    assert response.is_streamed
    assert response.get_data(as_text=True).startswith("\ufeffquestion,revisions,times_drawn")


def test_hours_in_all_count_only_certificates_that_stand(app, client, db, admin):
    seed(db, 2, DAY, "S")  # superseded: 3.5 hours each, listed, not counted
    expired = DAY + dt.timedelta(days=365)  # an active certificate whose validity ended: its hours were earned
    for status, prefix, expires in [
        (CertificateStatus.ACTIVE, "A", None),
        (CertificateStatus.REVOKED, "R", None),
        (CertificateStatus.ACTIVE, "E", expired),
    ]:
        owner = make_user(db, full_name=f"{prefix} holder")
        c = course(db)
        db.add(Certificate(
            number=f"{prefix}-1", code=f"{prefix}{1:031d}", user_id=owner.id, course_id=c.id, status=status,
            holder_name="H", course_title=c.title, hours=Decimal("2.25"), max_hours=c.ce_hours, designations=[],
            delivery_format="Online", provider="p", signatory_name="S", signatory_title="T", completed_at=DAY,
            issued_at=DAY, revoked_at=DAY if status == CertificateStatus.REVOKED else None, expires_at=expires,
            revocation_reason=RevocationReason.OTHER if status == CertificateStatus.REVOKED else None,
        ))  # fmt: skip
    db.commit()
    page = client.get("/admin/reports?date_from=2025-03-10&date_to=2025-03-10").get_data(as_text=True)
    assert "<strong>5</strong> certificates" in page
    assert "<strong>4.5</strong> hours on the certificates that stand" in page
