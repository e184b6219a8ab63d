"""NUL and other control characters are refused with a form error, never saved, never a 500 (PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from wtforms import StringField, TextAreaField

from kaptrain.accounts.models import Role, User
from kaptrain.forms import BaseForm
from kaptrain.quizzes.models import Accommodation
from tests.accounts.test_accounts import GOOD, count_users
from tests.conftest import PASSWORD
from tests.factories import make_user, quiz

MESSAGE = b"Remove control characters"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "Avery\x00 Clinician"),
        ("full_name", "Avery\nClinician"),  # a single-line field: no line breaks either
        ("full_name", "Avery\x7f"),
        ("full_name", "Avery\u0085"),  # C1 "next line"
        ("email", "avery\x00@example.org"),
        ("credential", "LPC\x00"),
        ("licence_number", "LPC-1\t2345"),
        ("jurisdiction", "Colo\x00rado"),
        # Format characters that hide or reorder text: "Dana <RLO>ztiuR<PDF> Smith" shows as "Dana Ruitz Smith".
        ("full_name", "Dana \u202eztiuR\u202c Smith"),
        ("full_name", "Dana Smith\u200b"),  # zero-width space: a second "Dana Smith" that looks the same
        ("licence_number", "PSY\u2066-1234\u2069"),
        # A line separator broke the certificate's name onto a second line of the holder's choosing.
        ("full_name", "Dana Ruiz\u2028Board-certified in Psychiatry"),
        ("full_name", "Ru\u200diz"),  # a joiner inside a Latin name: "Ruiz" to the eye, not to a lookup
        ("full_name", "\u200d\u200d\u200d"),  # a name of joiners alone prints blank
        ("full_name", "\u3164\u3164"),  # the Hangul filler draws nothing
        ("full_name", "Dana\u2800Ruiz"),  # nor does the braille blank
        ("full_name", "Za\u0301\u0302\u0303\u0304lgo"),  # four marks on one letter draw over the next line
    ],
)
def test_register_refuses_control_characters(client, db, field, value):
    before = count_users(db)
    response = client.post("/register", data={**GOOD, field: value})
    assert response.status_code == 422
    assert MESSAGE in response.data and b'aria-invalid="true"' in response.data
    assert count_users(db) == before


def test_a_name_written_with_joiners_is_kept(client, db, login):
    """Persian and Indic names need the zero-width non-joiner and joiner between their letters, and Vietnamese stacks
    two marks on a letter: they are not refused with the rest."""
    user = make_user(db)
    db.commit()
    login(user)
    # Persian with a non-joiner, Vietnamese, Devanagari with a joiner.
    name = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 Nguy\u1ec5n \u0915\u094d\u200d\u0937"
    response = client.post("/account", data={"full_name": name, "profession": "Social worker"})
    assert response.status_code in (200, 302) and MESSAGE not in response.data
    db.expire_all()
    assert db.get(User, user.id).full_name == name


def test_profile_refuses_control_characters_and_keeps_the_old_name(client, db, login):
    user = make_user(db)
    db.commit()
    login(user)
    response = client.post("/account", data={"full_name": "Dana\x00 Example", "profession": "Social worker"})
    assert response.status_code == 422 and MESSAGE in response.data
    db.expire_all()
    assert db.get(User, user.id).full_name == "Dana Example"


def test_login_with_a_nul_in_the_email_gets_a_form_error(client, db):
    response = client.post("/login", data={"email": "a\x00@example.org", "password": PASSWORD})
    assert response.status_code == 422 and MESSAGE in response.data


def test_admin_accommodation_note_refuses_control_characters(client, db, login):
    learner = make_user(db)
    login(make_user(db, role=Role.ADMIN))
    db.commit()
    response = client.post(
        "/admin/accommodations",
        data={"email": learner.email, "quiz": quiz(db, "alpha-quiz").id, "extra_minutes": 10, "note": "dys\x00lexia"},
    )
    assert response.status_code == 422 and MESSAGE in response.data
    assert db.scalar(select(func.count()).select_from(Accommodation)) == 0


class _NoteForm(BaseForm):
    class Meta:
        csrf = False

    title = StringField("Title")
    body = TextAreaField("Body")


@pytest.mark.parametrize(
    ("title", "body", "valid"),
    [
        ("Plain", "Line one\r\nLine two\twith a tab", True),  # text areas keep line breaks and tabs
        ("Plain", "NUL\x00here", False),
        ("Plain", "escape\x1b[31m", False),
        ("Tab\there", "ok", False),
        ("Ünïcödé — fine", "ok", True),
    ],
)
def test_every_base_form_text_field_is_checked(app, title, body, valid):
    with app.test_request_context(method="POST", data={"title": title, "body": body}):
        form = _NoteForm()
        assert form.validate() is valid
        if not valid:
            assert any(e.startswith("Remove control characters") for errs in form.errors.values() for e in errs)
