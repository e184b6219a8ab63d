"""A certificate's dates are the days in the holder's time zone when it was made, the same on the dashboard, the
PDF, the email, the verification page, the API and the CE report; certificates from before keep UTC days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from kaptrain.certificates import report, services
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.certificates.services import attest, submit_evaluation
from tests.factories import certified, complete_learning, enrolled, evaluation_answers, make_user, record

# 22:16 on 26 November in Toronto is 03:16 on 27 November in UTC.
EVENING_IN_TORONTO = dt.datetime(2026, 11, 27, 3, 16, tzinfo=dt.UTC)


@pytest.mark.parametrize(("zone", "day"), [("America/Toronto", 26), ("UTC", 27), ("Asia/Tokyo", 27)])
def test_every_place_states_the_day_in_the_holders_zone(
    app: Flask, client: FlaskClient, db: Session, zone: str, day: int
) -> None:
    holder = make_user(db, full_name="Dana Evening, LCSW")
    holder.time_zone = zone
    enrolled(db, holder)
    with app.app_context():
        certificate = certified(db, holder, "3.5")
        certificate.completed_at = certificate.issued_at = EVENING_IN_TORONTO
        db.commit()
        assert certificate.time_zone == zone
        assert services.certificate_view(certificate).completed_on == dt.date(2026, 11, day)
        assert services.certificate_view(certificate).issued_on == dt.date(2026, 11, day)
        (row,) = [r for r in report.ce_report(db, None) if r[0] == certificate.number]
        assert row[2] == row[3] == f"2026-11-{day}"  # issued_on, completed_on
    page = client.get(f"/verify/{certificate.code}").get_data(as_text=True)
    assert f"{day} November 2026" in page and "holder's time zone" in page
    api = client.get(f"/api/v1/certificates/{certificate.code}").get_json()
    assert api["completed_on"] == api["issued_on"] == f"2026-11-{day}"


@pytest.mark.parametrize(
    ("zone", "moment", "year"),
    [
        # 23:30 on New Year's Eve in New York is 04:30 on 1 January in UTC.
        ("America/New_York", dt.datetime(2027, 1, 1, 4, 30, tzinfo=dt.UTC), 2026),
        # 09:00 on 1 January in Sydney is 22:00 on New Year's Eve in UTC.
        ("Australia/Sydney", dt.datetime(2026, 12, 31, 22, 0, tzinfo=dt.UTC), 2027),
    ],
)
def test_the_numbers_year_is_the_holders_year_at_issue(
    app: Flask, db: Session, zone: str, moment: dt.datetime, year: int
) -> None:
    holder = make_user(db)
    holder.time_zone = zone
    enrolled(db, holder)
    with app.app_context():
        done = complete_learning(db, holder)
        done.course.certificate_approval = "manual"  # pending, so that it is issued at the moment given
        submit_evaluation(db, done, evaluation_answers(done.course))
        certificate = attest(db, record(db, holder), holder, Decimal("2"))
        assert certificate.status == CertificateStatus.PENDING
        services.issue(db, certificate, actor_label="test", now=moment)
        assert certificate.number == f"KAP-{year}-{certificate.id:06d}"
        assert services.certificate_view(certificate).issued_on.year == year


def evening_certificate(db: Session) -> Certificate:
    """A certificate of a holder in Toronto who completed the course there on the evening of 26 November (in an app
    context)."""
    holder = make_user(db)
    holder.time_zone = "America/Toronto"
    enrolled(db, holder)
    certificate = certified(db, holder)
    certificate.completed_at = EVENING_IN_TORONTO
    return certificate


def test_a_reissue_keeps_the_days_of_the_certificate_it_replaces(app: Flask, db: Session) -> None:
    with app.app_context():
        old = evening_certificate(db)
        old.time_zone = "UTC"  # made before migration 0013
        db.flush()
        new = services.reissue(db, old, actor_label="test", reason="Name corrected")
        assert new.time_zone == "UTC" and new.completion_day == old.completion_day == dt.date(2026, 11, 27)


def test_a_certificate_from_before_keeps_the_utc_day_it_was_printed_with(app: Flask, db: Session) -> None:
    with app.app_context():
        certificate = evening_certificate(db)
        db.flush()
        db.execute(text("UPDATE certificates SET time_zone = NULL WHERE id = :id"), {"id": certificate.id})
        db.expire(certificate)
        assert certificate.time_zone is None and certificate.completion_day == dt.date(2026, 11, 27)


def test_the_check_page_states_a_files_days_as_the_sites_record_does() -> None:
    from kaptrain.certificates import checking  # noqa: PLC0415

    record = Certificate(time_zone="America/Toronto")
    assert checking._day("2026-11-27T03:16:00Z", record) == "26 November 2026"  # noqa: SLF001
    assert checking._day("2026-11-27T03:16:00Z") == "27 November 2026 (UTC)"  # noqa: SLF001 - no record: said so
