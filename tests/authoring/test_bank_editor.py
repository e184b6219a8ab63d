"""The question-bank editor: the bank page, questions, cases and rules as drafts published to learners, their
history, the item-writing warnings beside each question, and the unhappy paths (learners, no correct option,
stale saves, double submits, script in the text)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.authoring.models import Draft
from kaptrain.content import revisions
from kaptrain.db import utcnow
from kaptrain.quizzes.models import Attempt, Question, QuestionRevision, Vignette
from tests.conftest import PASSWORD
from tests.factories import correct_answers, enrolled, make_user, quiz

BANK = "/author/courses/demo-course/quizzes/alpha-quiz"
FINAL = "/author/courses/demo-course/quizzes/demo-final"


class _Form(HTMLParser):
    """The fields a browser would send from one form of a page (the form whose action ends with `action`)."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action, self.inside, self.values = action, False, {}
        self.select: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = dict(attrs)
        if tag == "form":
            self.inside = (a.get("action") or "").endswith(self.action) and a.get("method") == "post"
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[name] = a.get("value") or "y"
            else:
                self.values[name] = a.get("value") or ""
        elif tag == "select" and name:
            self.select, self.first_option = name, None
        elif tag == "option" and self.select:
            value = a.get("value") or ""
            if self.first_option is None:
                self.first_option = value
                self.values.setdefault(self.select, value)
            if "selected" in a:
                self.values[self.select] = value
        elif tag == "textarea" and name:
            self.textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self.textarea:
            # As a browser reads it: CR LF is one line break, and a line break just after <textarea> is dropped.
            data = data.replace("\r\n", "\n")
            self.values[self.textarea] += data.removeprefix("\n") if not self.values[self.textarea] else data


def form_of(client: FlaskClient, url: str, action: str | None = None) -> dict[str, str]:
    """What the form at `action` (default: the page itself) of the page at `url` would send as it is."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    parser = _Form(action or url)
    parser.feed(page.text)
    assert parser.values, f"no form posting to {action or url} on {url}"
    return parser.values


def options(values: dict[str, str]) -> list[tuple[str, str, bool]]:
    """The option rows of an editor form: (id, text, correct)."""
    rows = sorted({int(m.group(1)) for k in values if (m := re.match(r"options-(\d+)-text", k))})
    return [
        (values.get(f"options-{i}-option_id", ""), values[f"options-{i}-text"], f"options-{i}-correct" in values)
        for i in rows
    ]


def with_options(values: dict[str, str], rows: list[tuple[str, str, bool]]) -> dict[str, str]:
    """The form with its option rows replaced."""
    out = {k: v for k, v in values.items() if not k.startswith("options-")}
    for i, (oid, text, correct) in enumerate(rows):
        out[f"options-{i}-option_id"] = oid
        out[f"options-{i}-text"] = text
        if correct:
            out[f"options-{i}-correct"] = "y"
    return out


def staff(db, name: str, role: Role = Role.INSTRUCTOR):  # type: ignore[no-untyped-def]
    """An instructor with two-factor sign-in set up (staff must have it)."""
    user = make_user(db, role=role, full_name=name)
    user.totp_secret, user.totp_enabled_at = pyotp.random_base32(), utcnow()
    db.commit()
    return user


def sign_in(client: FlaskClient, user) -> FlaskClient:  # type: ignore[no-untyped-def]
    """Log in through the login page, with the code from the authenticator app when it asks for one."""
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    if response.status_code == 302 and response.location.startswith("/login/code"):
        response = client.post("/login/code", data={"code": pyotp.TOTP(user.totp_secret).now()})
    assert response.status_code == 302 and "/login" not in response.location, response.text
    return client


@pytest.fixture
def instructor(client, db):  # type: ignore[no-untyped-def]
    """A logged-in instructor (on `client`)."""
    user = staff(db, "Ira Instructor")
    sign_in(client, user)
    return user


@pytest.fixture
def second(app, db):  # type: ignore[no-untyped-def]
    """A second instructor, logged in on a browser of their own."""
    return sign_in(app.test_client(), staff(db, "Sol Second"))


def question_of(db, key: str) -> Question:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalars(select(Question).where(Question.key == key)).one()


def draft_of(db, key: str) -> Draft | None:  # type: ignore[no-untyped-def]
    return revisions.draft_for(db, question_of(db, key))


# ---------------------------------------------------------------- who may


GETS = [
    BANK,
    f"{BANK}/questions/alpha-q1",
    f"{BANK}/questions/alpha-q1/revisions",
    f"{BANK}/questions/alpha-q1/preview",
    f"{BANK}/cases/case-a",
    f"{BANK}/cases/case-a/revisions",
    f"{BANK}/settings",
    f"{BANK}/settings/revisions",
]
POSTS = [
    f"{BANK}/questions",
    f"{BANK}/questions/alpha-q1",
    f"{BANK}/questions/alpha-q1/move",
    f"{BANK}/questions/alpha-q1/retire",
    f"{BANK}/questions/alpha-q1/revisions/1/restore",
    f"{BANK}/cases",
    f"{BANK}/cases/case-a",
    f"{BANK}/cases/case-a/revisions/1/restore",
    f"{BANK}/settings",
    f"{BANK}/settings/revisions/1/restore",
]


@pytest.mark.parametrize("url", GETS + POSTS)
def test_learners_get_403_and_change_nothing(client, db, learner, url):
    response = client.post(url, data={"action": "publish", "stem": "x"}) if url in POSTS else client.get(url)
    assert response.status_code == 403
    assert db.scalar(select(Draft.id)) is None


@pytest.mark.parametrize("url", [GETS[0], POSTS[0]])
def test_anonymous_visitors_are_sent_to_log_in(client, db, url):
    response = client.post(url) if url in POSTS else client.get(url)
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(
    "url",
    [
        f"{BANK}/questions/no",
        f"{BANK}/questions/no/preview",
        f"{BANK}/cases/no",
        "/author/courses/demo-course/quizzes/x",
    ],
)
def test_unknown_items_are_404(client, instructor, url):
    assert client.get(url).status_code == 404


# ---------------------------------------------------------------- the bank page


def test_bank_page_shows_rules_cases_questions_state_and_warnings(client, instructor):
    page = client.get(BANK).text
    assert "Question bank: Quiz alpha" in page
    assert all(f'id="q-alpha-q{n}"' in page for n in range(1, 7))
    assert "Pass mark</dt><dd>80%" in page and "3 of 6 published" in page
    assert "case-a" in page and "alpha-q5" in page.split('id="cases-h"')[1]  # the case and who uses it
    assert "Published" in page
    # Near-duplicate stems ("alpha question 1?" and "alpha question 2?") are flagged beside both questions.
    first = page.split('id="q-alpha-q1"')[1].split("</li>\n")[0]
    assert "the same as alpha-quiz.alpha-q" in first


def test_moving_a_question_changes_the_order_and_the_ends_are_refused(client, db, instructor):
    assert client.post(f"{BANK}/questions/alpha-q2/move", data={"direction": "up"}).status_code == 302
    db.expire_all()
    order = db.scalars(select(Question.key).where(Question.quiz_id == quiz(db, "alpha-quiz").id)
                       .order_by(Question.position)).all()  # fmt: skip
    assert order[:2] == ["alpha-q2", "alpha-q1"]
    assert client.post(f"{BANK}/questions/alpha-q2/move", data={"direction": "up"}).status_code == 400
    assert client.post(f"{BANK}/questions/alpha-q2/move", data={"direction": "sideways"}).status_code == 400


@pytest.mark.parametrize(
    ("key", "message"),
    [("alpha-q1", "Another question in this bank already has this key"), ("Bad Key", "Use lower-case letters"),
     ("", "Give the question a key.")],
)  # fmt: skip
def test_adding_a_question_with_a_bad_key_is_refused(client, db, instructor, key, message):
    response = client.post(f"{BANK}/questions", data={"key": key, "type": "single"})
    assert response.status_code == 400 and message in response.text
    assert db.scalar(select(Question.id).where(Question.key == key, Question.quiz_id == quiz(db, "alpha-quiz").id)) \
        in (None, question_of(db, "alpha-q1").id)  # fmt: skip


# ---------------------------------------------------------------- the question editor


def _new_question(client, key: str = "alpha-q7", qtype: str = "single") -> str:  # type: ignore[no-untyped-def]
    response = client.post(f"{BANK}/questions", data={"key": key, "type": qtype})
    assert response.status_code == 302
    assert response.location.endswith(f"{BANK}/questions/{key}")
    return response.location


def _written(values: dict[str, str], rows: list[tuple[str, str, bool]], **fields: str) -> dict[str, str]:
    base = {"stem": "Which describes alpha?", "explanation": "Because the module says so.",
            "section": "Introduction to alpha"}  # fmt: skip
    return with_options({**values, **base, **fields}, rows)


def test_a_question_with_no_correct_option_is_refused_on_the_form_and_nothing_is_saved(client, db, instructor):
    url = _new_question(client)
    values = form_of(client, url)
    assert [text for _id, text, _c in options(values)] == ["", "", "", "", "", ""][: len(options(values))]
    rows = [("", "Alpha binds here", False), ("", "Alpha binds there", False), ("", "Alpha never binds", False)]
    response = client.post(url, data=_written(values, rows, action="save"))
    assert response.status_code == 400
    assert "A question with no correct answer cannot be saved" in response.text
    assert 'href="#options"' in response.text  # the error summary links to the options
    assert "Alpha binds there" in response.text  # what was typed is kept
    assert draft_of(db, "alpha-q7").data["stem"] == ""  # nothing saved
    # The content-file schema's own rules are the service's: two keys on a single-answer question.
    rows[0], rows[1] = ("", "Alpha binds here", True), ("", "Alpha binds there", True)
    response = client.post(url, data=_written(values, rows, action="save"))
    assert response.status_code == 400 and "exactly one correct" in response.text
    assert draft_of(db, "alpha-q7").data["stem"] == ""


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"stem": ""}, "Write the question."), ({"stem": "x" * 5001}, "Field cannot be longer than 5000 characters"),
     ({"explanation": " "}, "Explain why the correct answer is right."),
     ({"section": ""}, "Choose the section of the module that teaches this."),
     ({"stem": "bad\x00char"}, "control characters"), ({"type": "essay"}, "Not a valid choice")],
)  # fmt: skip
def test_bad_question_fields_are_refused_with_a_message(client, db, instructor, fields, message):
    url = f"{BANK}/questions/alpha-q1"
    values = form_of(client, url)
    response = client.post(url, data={**values, **fields, "action": "publish"})
    assert response.status_code == 400 and message in response.text
    assert draft_of(db, "alpha-q1") is None and question_of(db, "alpha-q1").published_revision_id is not None
    assert len(revisions.history(db, question_of(db, "alpha-q1"))) == 1


def test_writing_and_publishing_a_new_question(client, db, instructor):
    url = _new_question(client)
    values = form_of(client, url)
    rows = [("", "Alpha binds here", True), ("", "Beta binds there", False), ("", "Gamma binds elsewhere", False)]
    response = client.post(url, data=_written(values, rows, action="save"))
    assert response.status_code == 302
    draft = draft_of(db, "alpha-q7")
    assert [o["id"] for o in draft.data["options"]] == ["a", "b", "c"]
    assert "Draft saved" in client.get(url).text
    assert question_of(db, "alpha-q7").published_revision_id is None  # learners see nothing yet
    response = client.post(url, data={**form_of(client, url), "action": "publish"})
    assert response.status_code == 302
    q = question_of(db, "alpha-q7")
    rev = db.get(QuestionRevision, q.published_revision_id)
    assert rev.number == 1 and rev.stem == "Which describes alpha?" and rev.section == "Introduction to alpha"
    assert draft_of(db, "alpha-q7") is None
    assert "Published as revision 1" in client.get(url).text
    assert any(q.key == "alpha-q7" for q, _r in revisions.published_questions(db, quiz(db, "alpha-quiz").id))


def test_option_ids_follow_reworded_options_and_a_removed_id_is_never_reused(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    values = form_of(client, url)
    rows = options(values)
    assert [r[0] for r in rows[:3]] == ["a", "b", "c"] and rows[3][1] == ""  # blank rows to add options
    new_rows = [rows[0], ("b", "Wrong A 1, reworded", False), ("c", "", False), ("", "A new distractor", False)]
    assert client.post(url, data={**with_options(values, new_rows), "action": "publish"}).status_code == 302
    q = question_of(db, "alpha-q1")
    published = db.get(QuestionRevision, q.published_revision_id).options
    assert [(o["id"], o["text"]) for o in published] == [
        ("a", "Right 1"), ("b", "Wrong A 1, reworded"), ("d", "A new distractor")
    ]  # fmt: skip


def test_the_type_list_offers_every_type_the_quiz_engine_grades(client, instructor):
    from kaptrain.quizzes.grading import REGISTRY  # noqa: PLC0415

    page = client.get(f"{BANK}/questions/alpha-q1").text
    select_ = page.split('id="type"')[1].split("</select>")[0]
    assert all(f'value="{t.value}"' in select_ for t in REGISTRY)


def test_a_question_can_become_true_or_false(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    values = form_of(client, url)
    rows = [("a", "True", True), ("b", "False", False), ("c", "", False)]
    data = {**with_options(values, rows), "type": "true_false", "stem": "Alpha is true.", "action": "save"}
    assert client.post(url, data=data).status_code == 302
    assert draft_of(db, "alpha-q1").data["type"] == "true_false"


def test_item_writing_warnings_appear_beside_the_question(client, db, instructor):
    url = _new_question(client)
    rows = [("", "A long and carefully qualified correct answer", True), ("", "Short", False), ("", "Brief", False)]
    values = _written(form_of(client, url), rows, stem="Which is not a feature of alpha?", action="save")
    assert client.post(url, data=values).status_code == 302
    aside = client.get(url).text.split('id="checks-h"')[1].split("</aside>")[0]
    assert "the correct option is the longest" in aside
    assert "the question says &#34;not&#34; without emphasis" in aside
    on_bank = client.get(BANK).text.split('id="q-alpha-q7"')[1].split("</li>\n")[0]
    assert "the correct option is the longest" in on_bank and "without emphasis" in on_bank
    # A section that is no heading of the module is flagged too (the draft keeps it: a warning, not an error).
    values = {**form_of(client, url), "section": "Nowhere in the module", "action": "save"}
    assert client.post(url, data=values).status_code == 302
    assert "is not a heading of the module" in client.get(url).text


def test_the_section_list_is_the_module_headings(client, instructor):
    page = client.get(f"{BANK}/questions/alpha-q1").text
    select_ = page.split('id="section"')[1].split("</select>")[0]
    assert re.findall(r'<option[^>]*value="([^"]*)"', select_) == ["Introduction to alpha", "Details of alpha",
                                                                  "Key points"]  # fmt: skip
    assert "Introduction to beta" not in select_


def test_a_final_question_chooses_its_module_then_a_section_of_it(client, db, instructor):
    url = f"{FINAL}/questions/final-1"
    values = form_of(client, url)
    beta = next(m for m in quiz(db, "alpha-quiz").course.modules if m.slug == "beta")
    page = client.get(url).text
    assert "data-sections=" in page and "Show this module" in page
    # Without JavaScript, "Show this module's sections" lists the chosen module's headings; nothing is saved.
    response = client.post(url, data={**values, "module_id": str(beta.id), "action": "refresh"})
    assert response.status_code == 200
    select_ = response.text.split('id="section"')[1].split("</select>")[0]
    assert "Details of beta" in select_ and "Details of alpha" not in select_
    assert draft_of(db, "final-1") is None
    data = {**values, "module_id": str(beta.id), "section": "Details of beta", "action": "save"}
    assert client.post(url, data=data).status_code == 302
    assert draft_of(db, "final-1").data["module_id"] == beta.id
    response = client.post(url, data={**values, "module_id": "", "action": "save"})
    assert response.status_code == 400 and "names the module it tests" in response.text


def test_discarding_a_draft_keeps_the_published_version(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    assert client.post(url, data={**form_of(client, url), "stem": "Draft wording?"}).status_code == 302
    values = form_of(client, url)
    assert "Discard draft" in client.get(url).text
    assert client.post(url, data={**values, "action": "discard"}).status_code == 302
    assert draft_of(db, "alpha-q1") is None
    assert db.get(QuestionRevision, question_of(db, "alpha-q1").published_revision_id).stem == "alpha question 1?"
    # Twice (a double click): the second finds no draft and says so, changing nothing.
    response = client.post(url, data={**values, "action": "discard"})
    assert response.status_code == 302


def test_a_never_published_question_has_no_draft_to_discard(client, db, instructor):
    url = _new_question(client)
    response = client.post(url, data={**form_of(client, url), "action": "discard"})
    assert response.status_code == 409 and "retire it instead" in response.text
    assert draft_of(db, "alpha-q7") is not None


# ---------------------------------------------------------------- two instructors, double submits


def test_a_stale_save_is_refused_with_the_other_persons_text_shown_and_nothing_lost(client, db, instructor, second):
    url = f"{BANK}/questions/alpha-q1"
    mine, theirs = form_of(client, url), form_of(second, url)
    assert second.post(url, data={**theirs, "stem": "Their wording of question one?"}).status_code == 302
    response = client.post(url, data={**mine, "stem": "My wording of question one?"})
    assert response.status_code == 409
    assert "Someone else saved this draft" in response.text
    assert "Their wording of question one?" in response.text  # their version, beside...
    assert "My wording of question one?</textarea>" in response.text  # ...mine, kept in the form
    assert "Sol Second" in response.text
    assert draft_of(db, "alpha-q1").data["stem"] == "Their wording of question one?"  # theirs is not lost
    # Having seen theirs, saving the re-shown form again is a choice: it saves mine over theirs.
    parser = _Form(url)
    parser.feed(response.text)
    assert client.post(url, data=parser.values).status_code == 302
    assert draft_of(db, "alpha-q1").data["stem"] == "My wording of question one?"


def test_a_save_from_a_page_opened_before_a_publish_is_refused(client, db, instructor, second):
    url = f"{BANK}/questions/alpha-q1"
    mine = form_of(client, url)
    assert second.post(url, data={**form_of(second, url), "stem": "Published by the other?", "action": "publish"}) \
        .status_code == 302  # fmt: skip
    response = client.post(url, data={**mine, "stem": "Mine, from an older page?"})
    assert response.status_code == 409
    assert "Revision 2 was published after you opened this page" in response.text
    assert "Published by the other?" in response.text
    assert draft_of(db, "alpha-q1") is None


def test_a_publish_over_a_newer_revision_asks_first_then_publishes_anyway(client, db, instructor, second):
    url = f"{BANK}/questions/alpha-q1"
    mine = form_of(client, url)
    assert second.post(url, data={**form_of(second, url), "stem": "Theirs, published?", "action": "publish"}) \
        .status_code == 302  # fmt: skip
    response = client.post(url, data={**mine, "stem": "Mine, published anyway?", "action": "publish"})
    assert response.status_code == 409
    assert "Revision 2 was published after this draft was started" in response.text
    assert "Publish anyway, replacing revision 2" in response.text and "Theirs, published?" in response.text
    assert len(revisions.history(db, question_of(db, "alpha-q1"))) == 2
    parser = _Form(url)
    parser.feed(response.text)
    assert parser.values["replace_revision"] == "2"
    assert client.post(url, data={**parser.values, "action": "publish"}).status_code == 302
    q = question_of(db, "alpha-q1")
    assert db.get(QuestionRevision, q.published_revision_id).stem == "Mine, published anyway?"


def test_a_double_submit_saves_and_publishes_once(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    values = {**form_of(client, url), "stem": "Sent twice?"}
    assert client.post(url, data=values).status_code == 302
    assert client.post(url, data=values).status_code == 302  # the same form again: already saved
    assert draft_of(db, "alpha-q1").version == 1
    values = {**form_of(client, url), "action": "publish"}
    assert client.post(url, data=values).status_code == 302
    assert client.post(url, data=values).status_code == 302  # already published
    assert [r.number for r in revisions.history(db, question_of(db, "alpha-q1"))] == [2, 1]


# ---------------------------------------------------------------- learners are not broken by a publish


def _learner_client(app, db):  # type: ignore[no-untyped-def]
    learner = make_user(db)
    enrolled(db, learner)
    db.commit()
    return learner, sign_in(app.test_client(), learner)


def _start(learner_client, slug: str = "alpha-quiz") -> int:  # type: ignore[no-untyped-def]
    learner_client.get("/courses/demo-course/modules/alpha")
    response = learner_client.post(f"/courses/demo-course/quizzes/{slug}/start")
    assert response.status_code == 302, response.text
    return int(response.location.rsplit("/", 1)[1])


def test_an_attempt_started_before_a_publish_keeps_its_question_and_rules(app, client, db, instructor):
    _learner, learner = _learner_client(app, db)
    attempt_id = _start(learner)
    db.expire_all()
    asked = db.get(Attempt, attempt_id).items[0].revision
    old_stem, key = asked.stem, asked.question.key
    url = f"{BANK}/questions/{key}"
    new_stem = f"Rewritten {key} after the attempt began?"
    assert client.post(url, data={**form_of(client, url), "stem": new_stem, "action": "publish"}).status_code == 302
    rules = f"{BANK}/settings"
    data = {**form_of(client, rules), "passing_score": "50", "draw": "6", "action": "publish"}
    assert client.post(rules, data=data).status_code == 302

    page = learner.get(f"/attempts/{attempt_id}").text
    assert old_stem in page and new_stem not in page
    db.expire_all()
    response = learner.post(f"/attempts/{attempt_id}/submit", data=correct_answers(db.get(Attempt, attempt_id), False))
    assert response.status_code == 302
    result = learner.get(f"/attempts/{attempt_id}/result").text
    assert "The pass mark is 80%." in result and old_stem in result and new_stem not in result

    second_attempt = _start(learner)
    assert new_stem in learner.get(f"/attempts/{second_attempt}").text  # draw 6 of 6: every question
    db.expire_all()
    assert db.get(Attempt, second_attempt).passing_score == 50


def test_a_retired_question_is_no_longer_drawn_but_past_attempts_still_show_it(app, client, db, instructor):
    learner_user, learner = _learner_client(app, db)
    data = {**form_of(client, f"{BANK}/settings"), "draw": "6", "action": "publish"}
    assert client.post(f"{BANK}/settings", data=data).status_code == 302
    first = _start(learner)
    db.expire_all()
    assert learner.post(f"/attempts/{first}/submit", data=correct_answers(db.get(Attempt, first), False)) \
        .status_code == 302  # fmt: skip
    # The bank may not drop below the number drawn.
    response = client.post(f"{BANK}/questions/alpha-q1/retire", data={"retired": "1"})
    assert response.status_code == 400 and "lower the number drawn first" in response.text
    data = {**form_of(client, f"{BANK}/settings"), "draw": "5", "action": "publish"}
    assert client.post(f"{BANK}/settings", data=data).status_code == 302
    assert client.post(f"{BANK}/questions/alpha-q1/retire", data={"retired": "1"}).status_code == 302
    assert "Retired questions (1)" in client.get(BANK).text
    assert "alpha question 1?" in learner.get(f"/attempts/{first}/result").text  # past attempt unchanged
    second_attempt = _start(learner)
    db.expire_all()
    drawn = [item.revision.question.key for item in db.get(Attempt, second_attempt).items]
    assert len(drawn) == 5 and "alpha-q1" not in drawn
    assert client.post(f"{BANK}/questions/alpha-q1/retire", data={"retired": "0"}).status_code == 302
    assert len(revisions.published_questions(db, quiz(db, "alpha-quiz").id)) == 6


def test_a_case_edit_shows_in_new_attempts_while_past_ones_keep_the_text_read(app, client, db, instructor):
    page = client.get(f"{BANK}/cases/case-a").text
    assert "alpha-q5" in page.split('id="users-h"')[1].split("</section>")[0]
    _learner, learner = _learner_client(app, db)
    data = {**form_of(client, f"{BANK}/settings"), "draw": "6", "action": "publish"}
    assert client.post(f"{BANK}/settings", data=data).status_code == 302
    first = _start(learner)
    url = f"{BANK}/cases/case-a"
    assert client.post(url, data={**form_of(client, url), "text": "A rewritten case.", "action": "publish"}) \
        .status_code == 302  # fmt: skip
    page = learner.get(f"/attempts/{first}").text
    assert "A shared case." in page and "A rewritten case." not in page
    db.expire_all()
    assert learner.post(f"/attempts/{first}/submit", data=correct_answers(db.get(Attempt, first), False)) \
        .status_code == 302  # fmt: skip
    assert "A rewritten case." in learner.get(f"/attempts/{_start(learner)}").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"title": ""}, "Give the case a title."), ({"text": " "}, "Write the case.")],
)
def test_a_case_without_title_or_text_is_refused(client, db, instructor, fields, message):
    url = f"{BANK}/cases/case-a"
    response = client.post(url, data={**form_of(client, url), **fields})
    assert response.status_code == 400 and message in response.text
    case = db.scalars(select(Vignette).where(Vignette.key == "case-a", Vignette.quiz_id == quiz(db, "alpha-quiz").id))
    assert revisions.draft_for(db, case.one()) is None


def test_adding_a_case_from_the_question_editor(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    add = form_of(client, url, f"{BANK}/cases")
    assert add["case-question"] == "alpha-q1"
    response = client.post(f"{BANK}/cases", data={**add, "case-key": "case-a", "case-title": "T", "case-text": "X"})
    assert response.status_code == 400 and "Another case in this bank already has this key" in response.text
    response = client.post(f"{BANK}/cases", data={**add, "case-key": "Case B", "case-title": "T", "case-text": "X"})
    assert response.status_code == 400 and "Use lower-case letters" in response.text
    data = {**add, "case-key": "case-b", "case-title": "Case: B", "case-text": "A second case."}
    response = client.post(f"{BANK}/cases", data=data)
    assert response.status_code == 302 and response.location.endswith(f"{url}?case=case-b")
    page = client.get(response.location).text
    assert "case-b: Case: B" in page  # now in the question's case list
    assert "chosen in this question" in page and re.search(r'<option selected value="\d+">case-b: Case: B', page)
    assert draft_of(db, "alpha-q1") is None  # chosen in the form only: saving makes it the question's case
    assert re.search(r"<option selected value=\"\d+\">case-b", client.get(url).text) is None
    assert client.get(f"{url}?case=no-such-case").status_code == 404


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"title": ""}, "Give the quiz a title."), ({"draw": "7"}, "The bank has 6 published questions"),
     ({"passing_score": "0"}, "Use 1 to 100."), ({"passing_score": "x"}, "Not a valid integer value"),
     ({"time_limit_minutes": "0"}, "Use 1 to 1440 minutes"), ({"reveal_answers": "sometimes"}, "Not a valid choice")],
)  # fmt: skip
def test_bad_rules_are_refused_and_nothing_is_saved(client, db, instructor, fields, message):
    url = f"{BANK}/settings"
    response = client.post(url, data={**form_of(client, url), **fields, "action": "publish"})
    assert response.status_code == 400 and message in response.text
    q = quiz(db, "alpha-quiz")
    assert revisions.draft_for(db, q) is None and len(revisions.history(db, q)) == 1


def test_rules_are_published_as_a_new_revision_with_a_time_limit_and_extension(client, db, instructor):
    url = f"{BANK}/settings"
    page = client.get(url).text
    assert "Attempts already started keep the rules they began under" in page
    data = {**form_of(client, url), "time_limit_minutes": "20", "allow_extension": "y", "action": "publish"}
    assert client.post(url, data=data).status_code == 302
    db.expire_all()
    q = quiz(db, "alpha-quiz")
    assert q.settings.number == 2 and q.time_limit_minutes == 20 and q.allow_extension
    data = {**form_of(client, url), "time_limit_minutes": "", "action": "publish"}
    assert client.post(url, data=data).status_code == 302
    db.expire_all()
    assert quiz(db, "alpha-quiz").time_limit_minutes is None  # blank: untimed


# ---------------------------------------------------------------- history


def test_history_compares_two_revisions_and_restores_one_as_the_draft(client, db, instructor, second):
    url = f"{BANK}/questions/alpha-q1"
    assert client.post(url, data={**form_of(client, url), "stem": "Second wording?", "action": "publish"}) \
        .status_code == 302  # fmt: skip
    page = client.get(f"{url}/revisions").text
    assert "Revision 1" in page and "Revision 2" in page and "Ira Instructor" in page and "the content files" in page
    assert "alpha question 1?" in page and "Second wording?" in page  # the diff of the two newest
    assert client.get(f"{url}/revisions?a=1&b=2").status_code == 200
    assert client.get(f"{url}/revisions?a=9&b=2").status_code == 404
    restore = form_of(client, f"{url}/revisions", f"{url}/revisions/1/restore")
    # Someone saves a draft after the history page was opened: the restore is refused, their draft kept.
    assert second.post(url, data={**form_of(second, url), "stem": "A draft in between?"}).status_code == 302
    response = client.post(f"{url}/revisions/1/restore", data=restore)
    assert response.status_code == 409 and "Someone else saved this draft" in response.text
    assert draft_of(db, "alpha-q1").data["stem"] == "A draft in between?"
    restore = form_of(client, f"{url}/revisions", f"{url}/revisions/1/restore")
    response = client.post(f"{url}/revisions/1/restore", data=restore)
    assert response.status_code == 302 and response.location.endswith(url)
    assert draft_of(db, "alpha-q1").data["stem"] == "alpha question 1?"
    assert db.get(QuestionRevision, question_of(db, "alpha-q1").published_revision_id).number == 2  # not yet
    page = client.get(f"{url}/revisions").text
    assert "The current draft" in page
    assert client.post(f"{url}/revisions/7/restore", data=restore).status_code == 404


def test_a_question_published_with_a_note_shows_it_in_its_history(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    note = "Distractor C reworded: it was arguably correct"
    published = {**form_of(client, url), "stem": "Second wording?", "action": "publish", "change_note": note}
    assert client.post(url, data=published).status_code == 302
    rows = re.findall(r"<tr>.*?</tr>", client.get(f"{url}/revisions").text, re.S)[1:]
    assert "Published" in rows[0] and note in rows[0] and "Restore as draft" not in rows[0]
    assert "from the content files" in rows[1] and "Restore as draft" in rows[1]
    again = {**form_of(client, url), "stem": "Third wording?", "action": "publish", "change_note": "\x07"}
    assert client.post(url, data=again).status_code == 400  # a control character: nothing published
    assert db.get(QuestionRevision, question_of(db, "alpha-q1").published_revision_id).number == 2


@pytest.mark.parametrize("path", ["cases/case-a/revisions", "settings/revisions"])
def test_case_and_rules_history_pages(client, instructor, path):
    page = client.get(f"{BANK}/{path}")
    # One revision, the one attempts get, and no draft: nothing to restore it over.
    assert page.status_code == 200 and "what new attempts get" in page.text and "Restore as draft" not in page.text


# ---------------------------------------------------------------- script in the text stays text


PAYLOADS = [
    "<script>alert('stem')</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(2)">click</a>',
    "<svg onload=alert(3)>",
    "<iframe src=javascript:alert(4)></iframe>",
    "<style>body{display:none}</style>",
]


def _inert(html: str) -> None:
    for payload in PAYLOADS:
        assert payload not in html
    assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")


def test_script_in_stem_options_explanation_and_case_renders_inert(app, client, db, instructor):
    rules = f"{BANK}/settings"
    data = {**form_of(client, rules), "draw": "6", "reveal_answers": "always", "action": "publish"}
    assert client.post(rules, data=data).status_code == 302
    url = f"{BANK}/questions/alpha-q5"
    values = form_of(client, url)
    rows = [("a", PAYLOADS[1], True), ("b", PAYLOADS[2], True), ("c", PAYLOADS[3], False), ("d", PAYLOADS[4], False)]
    data = {**with_options(values, rows), "stem": f"{PAYLOADS[0]} Which apply?", "explanation": PAYLOADS[5],
            "action": "publish"}  # fmt: skip
    response = client.post(url, data=data)
    assert response.status_code == 302, response.text
    case_url = f"{BANK}/cases/case-a"
    data = {**form_of(client, case_url), "text": "<script>alert('case')</script>", "action": "publish"}
    assert client.post(case_url, data=data).status_code == 302
    for page in (client.get(BANK).text, client.get(url).text, client.get(case_url).text,
                 client.get(f"{url}/revisions").text):  # fmt: skip
        _inert(page)
        assert "<script>alert('case')</script>" not in page

    _learner, learner = _learner_client(app, db)
    attempt_id = _start(learner)
    page = learner.get(f"/attempts/{attempt_id}").text
    _inert(page)
    assert "&lt;script&gt;alert(&#39;stem&#39;)&lt;/script&gt; Which apply?" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(&#39;case&#39;)&lt;/script&gt;" in page and "<script>alert('case')" not in page
    db.expire_all()
    assert learner.post(f"/attempts/{attempt_id}/submit", data=correct_answers(db.get(Attempt, attempt_id))) \
        .status_code == 302  # fmt: skip
    result = learner.get(f"/attempts/{attempt_id}/result").text
    _inert(result)
    assert "&lt;style&gt;body{display:none}&lt;/style&gt;" in result  # the explanation, shown as text
    assert "&lt;svg onload=alert(3)&gt;" in result


def test_every_form_carries_its_csrf_token(client, db, instructor, csrf_on):
    url = f"{BANK}/questions/alpha-q1"
    assert client.post(url, data={"action": "save", "stem": "No token?"}).status_code == 400
    assert client.post(url, data={**form_of(client, url), "stem": "With the token?"}).status_code == 302
    move = form_of(client, BANK, f"{BANK}/questions/alpha-q2/move")
    assert client.post(f"{BANK}/questions/alpha-q2/move", data=move).status_code == 302
    assert client.post(f"{BANK}/questions", data=form_of(client, BANK, f"{BANK}/questions")).status_code == 302
    add_case = {**form_of(client, url, f"{BANK}/cases"), "case-key": "case-z", "case-title": "Z", "case-text": "Zed."}
    assert client.post(f"{BANK}/cases", data=add_case).status_code == 302
    restore = form_of(client, f"{url}/revisions", f"{url}/revisions/1/restore")
    assert client.post(f"{url}/revisions/1/restore", data=restore).status_code == 302
    for page in (f"{BANK}/settings", f"{BANK}/cases/case-a"):
        assert client.post(page, data=form_of(client, page)).status_code == 302


def test_saving_the_published_version_unchanged_makes_no_draft(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    response = client.post(url, data={**form_of(client, url), "action": "publish"}, follow_redirects=True)
    assert "Nothing to save" in response.text
    assert draft_of(db, "alpha-q1") is None and len(revisions.history(db, question_of(db, "alpha-q1"))) == 1


# ---------------------------------------------------------------- the preview


def _review(page: str) -> str:
    """The review part of a preview page ('' before an answer is tried)."""
    return page.split('id="review"')[1] if 'id="review"' in page else ""


def test_the_preview_shows_the_question_as_learners_get_it_and_grades_a_tried_answer(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1/preview"
    page = client.get(url).text
    assert "alpha question 1?" in page and page.count('type="radio" name="answer"') == 3
    assert "Choose one answer." in page and not _review(page)  # no answer tried: no key shown
    right = client.get(url, query_string={"answer": "a"}).text
    assert "correct" in _review(right) and "Because right 1 is right." in _review(right)
    assert 'value="a" checked' in right
    wrong = _review(client.get(url, query_string={"answer": "b"}).text)
    assert "incorrect" in wrong and "Re-read: Introduction to alpha" in wrong
    assert "Right 1 <strong>(correct answer)</strong>" in wrong
    assert db.scalar(select(Attempt.id)) is None  # trying an answer stores nothing


def test_the_preview_of_a_select_all_question_shows_its_case_and_follows_the_partial_credit_rule(client, instructor):
    url = f"{BANK}/questions/alpha-q5/preview"
    page = client.get(url).text
    assert "Case: A" in page and "A shared case." in page and page.count('type="checkbox" name="answer"') == 4
    assert "This bank gives no partial credit" in page
    nothing = client.get(url, query_string={"check": "1"}).text
    assert "Choose an answer, then check it." in nothing and not _review(nothing)
    half = _review(client.get(url, query_string=[("answer", "a")]).text)
    assert "incorrect" in half  # this bank gives no partial credit
    both = _review(client.get(url, query_string=[("answer", "a"), ("answer", "b")]).text)
    assert "✓" in both and "One and two." in both
    ignored = _review(client.get(url, query_string=[("answer", "zz"), ("answer", "../x")]).text)
    assert not ignored  # option ids the question does not have are not an answer


def test_the_preview_shows_the_saved_draft_with_a_way_to_the_published_revision(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    values = {**form_of(client, url), "stem": "A reworded alpha question?", "action": "save"}
    assert client.post(url, data=values).status_code == 302
    page = client.get(f"{url}/preview").text
    assert "A reworded alpha question?" in page and "the <strong>draft</strong>" in page
    assert "?version=published" in page
    published = client.get(f"{url}/preview", query_string={"version": "published"}).text
    assert "alpha question 1?" in published and "A reworded alpha question?" not in published
    assert 'name="version" value="published"' in published  # trying an answer stays on the published revision
    assert "Preview this question as a learner sees it" in client.get(url).text


def test_the_preview_button_shows_the_form_unsaved_and_saves_nothing(client, db, instructor):
    url = f"{BANK}/questions/alpha-q1"
    values = form_of(client, url)
    rows = [("a", "A typed right option", True), ("b", "A typed wrong option", False), ("c", "Another wrong", False)]
    typed = {**with_options(values, rows), "stem": "A typed, unsaved stem?", "action": "preview"}
    response = client.post(url, data=typed)
    page = response.text
    assert response.status_code == 200 and "Preview of the form: not saved" in page
    shown = page.split('id="unsaved-h"')[1].split("</section>")[0]
    assert "A typed, unsaved stem?" in shown and "A typed right option <strong>(correct answer)</strong>" in shown
    assert "A typed wrong option</span>" in shown
    assert 'value="A typed, unsaved stem?"' in page or "A typed, unsaved stem?</textarea>" in page  # still in the form
    assert draft_of(db, "alpha-q1") is None  # nothing saved
    refused = client.post(url, data={**typed, "options-0-correct": ""})
    assert refused.status_code == 400 and "Nothing was saved: please correct the following" in refused.text
    assert "Preview of the form" not in refused.text
    # What saving would refuse, the preview refuses too, saying why: here two correct options of a single answer.
    two_right = client.post(url, data={**typed, "options-1-correct": "y"})
    assert two_right.status_code == 400 and "Preview of the form" not in two_right.text
    saved = client.post(url, data={**typed, "options-1-correct": "y", "action": "save"})
    assert saved.status_code == 400 and draft_of(db, "alpha-q1") is None
    assert "tick “Correct” beside the right option" in refused.text and draft_of(db, "alpha-q1") is None


def test_the_preview_of_an_unfinished_draft_says_a_learner_could_not_answer_it(client, db, instructor):
    url = _new_question(client)  # its first draft is blank
    page = client.get(f"{url}/preview").text
    assert page.count('name="answer"') == 0 and "A learner could not answer this yet" in page


def test_an_option_is_written_in_a_box_that_shows_it_whole_and_its_line_breaks_are_saved_as_spaces(
    client, db, instructor
):
    url = f"{BANK}/questions/alpha-q1"
    page = client.get(url).text
    assert '<textarea class="input bank-option-text" id="options-0-text"' in page
    values = form_of(client, url)
    rows = [("a", "Right 1,\r\nwritten over\n two lines", True), ("b", "Wrong A 1", False), ("c", "Wrong B 1", False)]
    assert client.post(url, data={**with_options(values, rows), "action": "save"}).status_code == 302
    assert draft_of(db, "alpha-q1").data["options"][0]["text"] == "Right 1, written over two lines"
