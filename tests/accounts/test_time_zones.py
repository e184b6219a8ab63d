"""Each person's time zone: chosen at registration or on the profile, and used for every date and time shown."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import url_for
from sqlalchemy import select, text

from kaptrain.accounts import services
from kaptrain.accounts.models import User
from kaptrain.db import make_engine
from kaptrain.migrate import downgrade, upgrade
from kaptrain.web import localtime
from tests.accounts.test_accounts import GOOD, count_users
from tests.factories import enrolled, make_user, pass_quiz

INVALID = b"Choose a time zone from the list."


def test_register_saves_the_chosen_time_zone(client, db):
    assert client.post("/register", data={**GOOD, "time_zone": "America/New_York"}).status_code == 302
    assert db.scalar(select(User.time_zone).where(User.email == "avery@example.org")) == "America/New_York"


def test_register_without_a_time_zone_falls_back_to_utc(client, db):
    assert client.post("/register", data=GOOD).status_code == 302
    assert db.scalar(select(User.time_zone).where(User.email == "avery@example.org")) == ""


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "america/new_york", "../../etc/passwd", "EST5EDT\x00"])
def test_register_refuses_an_unknown_time_zone(client, db, zone):
    before = count_users(db)
    response = client.post("/register", data={**GOOD, "time_zone": zone})
    assert response.status_code == 422 and INVALID in response.data
    assert count_users(db) == before


def test_profile_changes_the_time_zone_and_refuses_an_unknown_one(client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    profile = {"full_name": user.full_name, "profession": user.profession}
    bad = client.post("/account", data={**profile, "time_zone": "Atlantis/Capital"})
    assert bad.status_code == 422 and INVALID in bad.data
    assert client.post("/account", data={**profile, "time_zone": "Europe/Paris"}).status_code == 302
    db.expire_all()
    assert db.get(User, user.id).time_zone == "Europe/Paris"


def test_the_service_refuses_an_unknown_time_zone(db):
    profile = services.Profile(full_name="Sam Cli", profession="Psychologist", time_zone="Nowhere/Else")
    with pytest.raises(services.AccountError, match="Choose a time zone"):
        services.create_user(db, "sam@example.org", "a long enough passphrase", profile)


def test_only_the_register_form_asks_the_browser_for_its_zone(client, db, login):
    register = client.get("/register").data.decode()
    assert "data-detect-time-zone" in register
    assert '<option value="America/New_York">' in register and '<option value="UTC">' in register
    login(make_user(db))
    assert "data-detect-time-zone" not in client.get("/account").data.decode()


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("America/New_York", "25 November 2026, 21:11 EST"),
        ("Asia/Dubai", "26 November 2026, 06:11 +04 (Asia/Dubai)"),  # no abbreviation: the place is named
        ("", "26 November 2026, 02:11 UTC"),
    ],
)
def test_disclosure_acknowledgement_is_shown_in_the_learners_zone(client, db, login, zone, shown):
    user = make_user(db)
    user.time_zone = zone
    enrolment = enrolled(db, user)
    enrolment.disclosures_acknowledged_at = dt.datetime(2026, 11, 26, 2, 11, tzinfo=dt.UTC)
    db.commit()
    login(user)
    page = client.get("/courses/demo-course/disclosures").data.decode()
    assert f"You acknowledged these on {shown}." in page


def test_quiz_attempt_times_are_shown_in_the_learners_zone(app, client, db, login):
    user = make_user(db)
    user.time_zone = "America/New_York"
    enrolled(db, user)
    attempt = pass_quiz(db, user, "alpha-quiz")
    attempt.submitted_at = dt.datetime(2026, 7, 1, 16, 30, tzinfo=dt.UTC)
    db.commit()
    login(user)
    with app.test_request_context():
        url = url_for("quizzes.quiz", course_slug="demo-course", slug="alpha-quiz")
    page = client.get(url).data.decode()
    assert "1 July 2026, 12:30 EDT" in page and "16:30" not in page


def test_localtime_for_visitors_is_utc_and_reads_naive_times_as_utc(app):
    with app.test_request_context():
        assert localtime(dt.datetime(2026, 11, 26, 2, 11)) == "26 November 2026, 02:11 UTC"
        assert localtime(dt.datetime(2026, 3, 5, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "date") == (
            "6 March 2026"
        )
        assert localtime(None) == ""


def test_the_time_zone_migration_gives_existing_accounts_utc(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'migrate.sqlite3'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, full_name, profession, credential, licence_number, jurisdiction, "
                "password_hash, role, is_active, session_version, created_at) VALUES ('old@example.org', "
                "'Old Account', 'Psychologist', '', '', '', 'x', 'learner', 1, 1, '2026-01-01 00:00:00')"
            )
        )
    upgrade(engine, "0002_user_time_zone")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT time_zone FROM users")).scalar_one() == ""
    downgrade(engine, "0001")
    with engine.connect() as conn:
        assert "time_zone" not in {row[1] for row in conn.execute(text("PRAGMA table_info(users)"))}
    engine.dispose()


def test_the_list_offers_places_not_the_tz_databases_technical_entries(client, db, login):
    zones = services.time_zones()
    assert "America/Toronto" in zones and "UTC" in zones
    for technical in ("Factory", "localtime", "EST5EDT", "Etc/GMT+5", "posixrules"):
        assert technical not in zones
    # Places under their current names, once each: no old aliases.
    assert "Asia/Kolkata" in zones and "America/Denver" in zones and "Australia/Sydney" in zones
    for alias in ("Asia/Calcutta", "Asia/Saigon", "US/Pacific", "Australia/ACT"):
        assert alias not in zones and services.is_time_zone(alias)  # still accepted from an older form
    user = make_user(db)
    db.execute(text("UPDATE users SET time_zone = 'EST5EDT' WHERE id = :id"), {"id": user.id})  # chosen before
    db.commit()
    login(user)
    page = client.get("/account").get_data(as_text=True)
    assert '<option selected value="EST5EDT">' in page or 'value="EST5EDT" selected' in page  # still shown as chosen
    assert 'value="Factory"' not in page
    assert services.is_time_zone("EST5EDT")  # still a good value: saving the form keeps it


def test_the_zones_are_grouped_by_region_and_named_as_people_say_them(client):
    page = client.get("/register").get_data(as_text=True)
    america = page[page.index('<optgroup label="America">') : page.index("</optgroup>", page.index('"America"'))]
    # With its country (where the name does not say it) and its offset from UTC today (a walk-through found bare
    # places such as "Christmas" or "Kralendijk" hard to place).
    new_york = re.search(r'<option value="America/New_York">New York, United States, UTC-0[45]:00</option>', america)
    assert new_york, "New York, its country and its offset"
    assert '<option value="America/Argentina/Rio_Gallegos">Rio Gallegos, Argentina, UTC-03:00</option>' in america
    assert '<option value="Indian/Christmas">Christmas, Christmas Island, UTC+07:00</option>' in page
    assert '<option value="Europe/London">London</option>' not in america and 'value="Europe/London"' in page
