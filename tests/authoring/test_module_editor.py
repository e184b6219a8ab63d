"""The module editor in the browser: workspace, drafts, preview, publish, two instructors at once, revisions,
structure changes, and Markdown that must stay inert."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.authoring.models import Draft
from kaptrain.authoring.services import MAX_BODY_CHARS
from kaptrain.content import revisions
from kaptrain.content.models import Module, ModuleRevision
from kaptrain.courses.models import ModuleProgress
from tests.conftest import sign_in
from tests.factories import enrolled, make_user

EDITOR = "/author/courses/demo-course/modules/alpha"
HISTORY = EDITOR + "/revisions"
LEARNER_PAGE = "/courses/demo-course/modules/alpha"
NEW_LINE = "A sentence the instructor added about integration sessions."


# ---------------------------------------------------------------- helpers


class _FormReader(HTMLParser):
    """The fields of the module editor's form, as a browser would send them (buttons left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}
        self._inside = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "data-preview-url" in a:
            self._inside = True
        elif self._inside and tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif self._inside and tag == "textarea":
            self._textarea = a["name"]
            self.fields[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data


def form_fields(html: str) -> dict[str, str]:
    """The editor form's fields and values in a page."""
    reader = _FormReader()
    reader.feed(html)
    assert reader.fields, "the page has no module editor form"
    return reader.fields


def open_editor(client: FlaskClient, url: str = EDITOR) -> dict[str, str]:
    """GET the editor and read its form."""
    response = client.get(url)
    assert response.status_code == 200, response.data
    return form_fields(response.get_data(as_text=True))


def log_in(client: FlaskClient, db: Session, user: User) -> FlaskClient:
    """Log a client in through the form (with the two-factor step staff must take: tests/conftest.py sign_in)."""
    sign_in(client, db, user)
    return client


@pytest.fixture
def instructor(db: Session) -> User:
    """An instructor account."""
    user = make_user(db, Role.INSTRUCTOR, full_name="Ines Instructor, PhD")
    db.commit()
    return user


@pytest.fixture
def author(client: FlaskClient, db: Session, instructor: User) -> FlaskClient:
    """The test client, logged in as the instructor."""
    return log_in(client, db, instructor)


def other_client(app: Flask, db: Session, user: User) -> FlaskClient:
    """A second browser, logged in as someone else."""
    return log_in(app.test_client(), db, user)


def alpha(db: Session) -> Module:
    """The fixture module being edited."""
    found = db.scalar(select(Module).where(Module.slug == "alpha"))
    assert found is not None
    db.refresh(found)
    return found


def published_body(db: Session) -> str:
    """What learners get for module alpha."""
    module = alpha(db)
    revision = db.get(ModuleRevision, module.published_revision_id)
    assert revision is not None
    db.refresh(revision)
    return revision.body


def drafts(db: Session) -> list[Draft]:
    """Every draft there is (expired first, so what the requests wrote is read)."""
    db.expire_all()
    return list(db.scalars(select(Draft)))


def with_body(fields: dict[str, str], body: str, action: str = "save") -> dict[str, str]:
    """The form with a new text and a button pressed."""
    return {**fields, "body": body, "action": action}


# ---------------------------------------------------------------- access


ROUTES = [
    ("get", "/author/"),
    ("post", "/author/courses/demo-course/modules"),
    ("get", EDITOR),
    ("post", EDITOR),
    ("post", EDITOR + "/move"),
    ("post", EDITOR + "/retire"),
    ("post", "/author/preview"),
    ("get", HISTORY),
    ("post", HISTORY + "/1/restore"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_learners_get_403_on_every_authoring_route(client, learner, method, path):
    response = getattr(client, method)(path, data={"action": "save", "body": "x"} if method == "post" else None)
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_anonymous_visitors_are_sent_to_log_in(client, db, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302 and "/login" in response.location


def test_nothing_changes_when_a_learner_posts(client, db, learner):
    before = published_body(db)
    client.post(EDITOR, data={"action": "publish", "title": "Hacked", "body": "Hacked"})
    assert published_body(db) == before and drafts(db) == []


# ---------------------------------------------------------------- workspace


def test_workspace_lists_modules_and_quizzes_with_state_editor_and_links(author, db):
    page = author.get("/author/").get_data(as_text=True)
    assert ">Authoring</a>" in page  # the navigation link for instructors
    imported = "Imported from the content files"
    for text in ("Module Alpha", "Module Beta", "Module Gamma", "Quiz alpha", "Published", imported):
        assert text in page
    assert 'href="/author/courses/demo-course/modules/alpha"' in page
    assert 'href="/author/courses/demo-course/modules/alpha/revisions"' in page
    assert "/author/courses/demo-course/quizzes/alpha-quiz" in page
    assert "Move up" in page and "Move down" in page and "Retire" in page


def test_learners_do_not_see_the_authoring_link(client, learner):
    assert ">Authoring</a>" not in client.get("/dashboard").get_data(as_text=True)


def test_workspace_shows_a_pending_draft_and_its_editor(author, db):
    fields = open_editor(author)
    author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\n" + NEW_LINE))
    page = author.get("/author/").get_data(as_text=True)
    assert "Published, draft pending" in page and "Ines Instructor, PhD" in page


# ---------------------------------------------------------------- save, preview, publish


def test_save_draft_leaves_learners_alone_until_publish(app, author, db, instructor):
    learner = make_user(db)
    enrolled(db, learner)
    db.commit()
    reader = other_client(app, db, learner)
    fields = open_editor(author)
    assert "Text about alpha" in fields["body"] and fields["loaded_version"] == ""

    saved = author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\n" + NEW_LINE), follow_redirects=True)
    page = saved.get_data(as_text=True)
    assert "Draft saved: learners still see revision 1 until you publish." in page
    assert "Draft pending" in page and NEW_LINE in page
    assert NEW_LINE not in reader.get(LEARNER_PAGE).get_data(as_text=True)

    fields = form_fields(page)
    assert fields["loaded_version"] == "1"
    published = author.post(EDITOR, data={**fields, "action": "publish"}, follow_redirects=True)
    assert "Published as revision 2" in published.get_data(as_text=True)
    assert NEW_LINE in reader.get(LEARNER_PAGE).get_data(as_text=True)
    assert drafts(db) == []
    assert alpha(db).published_revision_id != alpha(db).file_revision_id  # made in the browser


def test_a_learner_part_way_through_carries_on_after_a_publish(app, client, db, learner, instructor):
    assert client.get(LEARNER_PAGE).status_code == 200  # the page is open, the clock started
    editor = other_client(app, db, instructor)
    fields = open_editor(editor)
    response = editor.post(EDITOR, data=with_body(fields, fields["body"] + "\n\n" + NEW_LINE, "publish"))
    assert response.status_code == 302
    assert client.post(LEARNER_PAGE + "/heartbeat").status_code == 200
    assert client.post(LEARNER_PAGE + "/read").status_code == 302
    progress = db.scalar(select(ModuleProgress).where(ModuleProgress.user_id == learner.id))
    db.refresh(progress)
    assert progress.read_at is not None and progress.seat_seconds >= 0
    assert NEW_LINE in client.get(LEARNER_PAGE).get_data(as_text=True)


def test_publish_straight_from_the_form_without_saving_first(author, db):
    fields = open_editor(author)
    response = author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\n" + NEW_LINE, "publish"))
    assert response.status_code == 302
    assert NEW_LINE in published_body(db) and drafts(db) == []


def test_saving_the_unchanged_text_makes_no_draft(author, db):
    fields = open_editor(author)
    page = author.post(EDITOR, data={**fields, "action": "save"}, follow_redirects=True).get_data(as_text=True)
    assert "Nothing to save" in page and drafts(db) == []


def test_a_double_submitted_save_is_saved_once(author, db):
    fields = with_body(open_editor(author), "Smith (2020) said one thing.\n\nThen another.")
    assert author.post(EDITOR, data=fields).status_code == 302
    second = author.post(EDITOR, data=fields, follow_redirects=True)
    assert second.status_code == 200 and "Draft saved" in second.get_data(as_text=True)
    assert [d.version for d in drafts(db)] == [1]


def test_a_double_submitted_publish_publishes_once(author, db):
    fields = with_body(open_editor(author), "Smith (2020) said one thing.", "publish")
    assert author.post(EDITOR, data=fields).status_code == 302
    second = author.post(EDITOR, data=fields, follow_redirects=True)
    assert "Nothing to publish" in second.get_data(as_text=True)
    assert len(revisions.history(db, alpha(db))) == 2


def test_the_editor_explains_the_formatting_it_accepts(author):
    """The walk-through: the text is Markdown with the site's own boxed blocks (::: caution), and nothing said so."""
    page = author.get(EDITOR).get_data(as_text=True)
    assert "<summary>Formatting help</summary>" in page
    for syntax in ("## Heading", "::: vignette", "key-points", "Smith (2020)"):
        assert syntax in page


def test_the_editor_shows_a_word_count(author):
    page = author.get(EDITOR).get_data(as_text=True)
    count = re.search(r'data-words="(\d+)"', page)
    assert count is not None and int(count.group(1)) > 10


def test_preview_without_javascript_renders_the_text_and_saves_nothing(author, db):
    fields = open_editor(author)
    body = fields["body"] + "\n\nThis is **bold** and a | table |\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    response = author.post(EDITOR, data=with_body(fields, body, "preview"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "nothing has been saved" in page
    assert "<strong>bold</strong>" in page
    assert 'class="table-scroll" role="region"' in page  # tables wrapped as on the learner page
    assert 'class="lesson lesson-preview"' in page and 'class="prose"' in page
    assert "This is **bold**" in form_fields(page)["body"]  # what was typed stays in the form
    assert drafts(db) == [] and "bold" not in published_body(db)


def test_live_preview_returns_the_sanitised_fragment(author):
    fields = open_editor(author)
    response = author.post("/author/preview", data=with_body(fields, "## A heading\n\nSome *text*."))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h2 id="a-heading">A heading</h2>' in html and "<em>text</em>" in html
    assert "<form" not in html and "<html" not in html


def test_the_preview_says_what_saving_would_refuse_in_the_text(author):
    fields = open_editor(author)
    assert "Saving would be refused" not in author.post("/author/preview", data=fields).text
    body = "Intro.\n\n```\n" + fields["body"] + "\n\nA newer trial disagreed (Nobody et al., 2099)."
    html = author.post("/author/preview", data=with_body(fields, body)).text
    assert "Saving would be refused" in html
    assert "A code block opened on line 3 of the text" in html and "Nobody (2099)" in html


def test_live_preview_needs_the_csrf_token(author, csrf_on):
    fields = open_editor(author)
    token = fields.pop("csrf_token")
    assert author.post("/author/preview", data=fields).status_code == 400
    ok = author.post("/author/preview", data=fields, headers={"X-CSRFToken": token})
    assert ok.status_code == 200


# ---------------------------------------------------------------- bad input


def _too_long(fields: dict[str, str]) -> dict[str, str]:
    return {**fields, "body": "Smith (2020) " + "word " * (MAX_BODY_CHARS // 5 + 1)}


BAD_INPUT = {
    "empty title": (lambda f: {**f, "title": "  "}, "Title: Cannot be empty"),
    "body too long": (_too_long, "It is longer than 200,000 characters; split the module"),
    "objective wording": (
        lambda f: {**f, "objectives": "The clinician can describe alpha.\nKnow everything about alpha."},
        "Objective 2 must start with “The clinician can ”",
    ),
    "reference not cited": (
        lambda f: {
            **f,
            "references-1-key": "nobody2019",
            "references-1-authors": "Nobody A",
            "references-1-year": "2019",
            "references-1-title": "Uncited",
            "references-1-source": "J Tests",
        },
        "not cited in the body by first author and year: nobody2019",
    ),
    # The walk-through published a section citing a source the module does not list: refused, naming it.
    "citation without a reference": (
        lambda f: {**f, "body": f["body"] + "\n\nA newer trial disagreed (Nobody et al., 2099)."},
        "Citation(s) in the text with no reference of that author and year in the list of references: Nobody (2099)",
    ),
    # The walk-through published a module with an unclosed ``` near the top: the rest showed as code.
    "unclosed code block": (
        lambda f: {**f, "body": "Intro.\n\n```\n" + f["body"]},
        "A code block opened on line 3 of the text (a line of ``` or ~~~) is never closed",
    ),
    "empty text": (lambda f: {**f, "body": "\r\n  "}, "Text (Markdown): Cannot be empty"),
    "year not a number": (lambda f: {**f, "references-0-year": "twenty"}, "Reference 1, Year: Enter a whole number"),
    "minutes missing": (lambda f: {**f, "estimated_minutes": ""}, "Enter the estimated minutes as a whole number."),
    # pydantic's own wording ("Input should be greater than or equal to 1") said as the editor says things
    "minutes zero": (lambda f: {**f, "estimated_minutes": "0"}, "Estimated minutes: Must be at least 1"),
    "year too late": (lambda f: {**f, "references-0-year": "2999"}, "Reference 1, Year: Must be at most 2100"),
    "address not https": (
        lambda f: {**f, "references-0-url": "javascript:alert(1)"},
        "Must be a web address starting https://",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
@pytest.mark.parametrize("action", ["save", "publish"])
def test_bad_input_is_refused_on_the_form_and_nothing_is_saved(author, db, case, action):
    change, message = BAD_INPUT[case]
    fields = change({**open_editor(author), "action": action})
    before = published_body(db)
    response = author.post(EDITOR, data=fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<title>Error:" in page and 'class="error-summary"' in page
    assert message in page
    kept = form_fields(page)
    for name in ("title", "objectives", "references-1-key", "estimated_minutes"):
        if name in fields:
            assert kept[name].strip() == fields[name].strip(), name  # kept as typed
    assert drafts(db) == [] and published_body(db) == before
    assert len(revisions.history(db, alpha(db))) == 1


def test_clearing_a_reference_row_removes_it(author, db):
    fields = open_editor(author)
    body = fields["body"] + "\n\nAs Doe (2021) showed."
    fields = {
        **with_body(fields, body),
        "references-1-key": "doe2021",
        "references-1-authors": "Doe J",
        "references-1-year": "2021",
        "references-1-title": "A second study",
        "references-1-source": "J Tests 2",
    }
    assert author.post(EDITOR, data=fields).status_code == 302
    assert [r["key"] for r in drafts(db)[0].data["references"]] == ["smith2020", "doe2021"]
    fields = open_editor(author)
    assert fields["references-1-key"] == "doe2021" and "references-4-key" in fields  # three blank rows follow
    cleared = {**fields, **{k: "" for k in fields if k.startswith("references-1-")}, "action": "save"}
    refused = author.post(EDITOR, data=cleared)  # the text still cites Doe (2021)
    assert refused.status_code == 400 and "no reference of that author and year" in refused.get_data(as_text=True)
    cleared["body"] = cleared["body"].replace("As Doe (2021) showed.", "").rstrip()
    assert author.post(EDITOR, data=cleared).status_code == 302
    assert [r["key"] for r in drafts(db)[0].data["references"]] == ["smith2020"]


# ---------------------------------------------------------------- two instructors


def test_a_stale_save_is_refused_with_the_other_changes_shown_and_nothing_lost(app, db, instructor):
    colleague = make_user(db, Role.INSTRUCTOR, full_name="Cass Colleague, MD")
    db.commit()
    a = other_client(app, db, colleague)
    b = other_client(app, db, instructor)
    fields_a, fields_b = open_editor(a), open_editor(b)
    # A starts a draft; both pages were then at "no draft".
    assert a.post(EDITOR, data=with_body(fields_a, fields_a["body"] + "\n\nA's paragraph.")).status_code == 302
    a_draft = drafts(db)[0].data

    mine = fields_b["body"] + "\n\nB's own paragraph."
    refused = b.post(EDITOR, data=with_body(fields_b, mine))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "Someone else saved this draft" in page
    assert "Their draft (saved by Cass Colleague, MD" in page and "What you typed (not saved)" in page
    assert "A&#39;s paragraph." in page  # their change, in the side-by-side table
    kept = form_fields(page)
    assert "B's own paragraph." in kept["body"]  # B's text is still in the form
    assert kept["loaded_version"] == "1"  # now pointing at A's draft
    assert drafts(db)[0].data == a_draft and drafts(db)[0].version == 1  # A's draft unchanged

    # B read A's change and saves again on purpose: that is allowed.
    again = b.post(EDITOR, data={**kept, "action": "save"})
    assert again.status_code == 302
    assert "B's own paragraph." in drafts(db)[0].data["body"]


def test_a_stale_save_by_the_same_instructor_in_two_tabs_says_so(app, db, instructor):
    tab_a, tab_b = other_client(app, db, instructor), other_client(app, db, instructor)
    fields_a, fields_b = open_editor(tab_a), open_editor(tab_b)
    assert tab_a.post(EDITOR, data=with_body(fields_a, fields_a["body"] + "\n\nFirst tab.")).status_code == 302
    refused = tab_b.post(EDITOR, data=with_body(fields_b, fields_b["body"] + "\n\nSecond tab."))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "You saved this draft" in page and "in another tab or window" in page
    assert "Someone else" not in page and "Their draft" not in page and "The draft (saved by" in page


def test_a_page_opened_before_a_newer_publish_cannot_overwrite_it(app, db, instructor):
    colleague = make_user(db, Role.INSTRUCTOR, full_name="Cass Colleague, MD")
    db.commit()
    a, b = other_client(app, db, colleague), other_client(app, db, instructor)
    fields_a, fields_b = open_editor(a), open_editor(b)
    assert (
        a.post(EDITOR, data=with_body(fields_a, fields_a["body"] + "\n\nPublished by A.", "publish")).status_code == 302
    )

    saved = b.post(EDITOR, data=with_body(fields_b, fields_b["body"] + "\n\nB's text."))
    assert saved.status_code == 409 and "Revision 2 was published after you opened this page" in saved.get_data(
        as_text=True
    )
    published = b.post(EDITOR, data=with_body(fields_b, fields_b["body"] + "\n\nB's text.", "publish"))
    page = published.get_data(as_text=True)
    assert published.status_code == 409 and "Publish anyway, replacing revision 2" in page
    assert "Published by A." in page and drafts(db) == [] and "Published by A." in published_body(db)

    anyway = b.post(EDITOR, data={**form_fields(page), "replace_revision": "2"})
    assert anyway.status_code == 302
    assert "B's text." in published_body(db) and len(revisions.history(db, alpha(db))) == 3


def test_publishing_over_a_revision_published_since_the_draft_began_needs_confirming(author, db, instructor):
    fields = open_editor(author)
    author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\nMy draft."))
    # Meanwhile a revision is published by another way (as an import with --overwrite or another tool might).
    module = alpha(db)
    data = {**revisions.revision_data(revisions.MODULE, revisions.published(db, module)), "summary": "Elsewhere."}
    revisions.publish(
        module, revisions.add_revision(db, module, revisions.revision_values(revisions.MODULE, data), None)
    )
    db.commit()

    fields = open_editor(author)
    refused = author.post(EDITOR, data={**fields, "action": "publish"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "Revision 2 was published after this draft was started" in page
    assert "Publish anyway, replacing revision 2" in page and "Elsewhere." in page
    assert len(revisions.history(db, alpha(db))) == 2

    anyway = author.post(EDITOR, data={**form_fields(page), "replace_revision": "2"})
    assert anyway.status_code == 302
    assert "My draft." in published_body(db) and len(revisions.history(db, alpha(db))) == 3


def test_discard_draft_goes_back_to_the_published_text(author, db):
    fields = open_editor(author)
    author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\n" + NEW_LINE))
    fields = open_editor(author)
    assert NEW_LINE in fields["body"]
    page = author.post(EDITOR, data={**fields, "action": "discard"}, follow_redirects=True).get_data(as_text=True)
    assert "Draft discarded" in page and NEW_LINE not in form_fields(page)["body"] and drafts(db) == []


def test_discarding_a_draft_someone_else_replaced_is_refused(app, author, db, instructor):
    fields = open_editor(author)
    author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\nFirst."))
    stale = open_editor(author)
    colleague = other_client(app, db, make_user(db, Role.INSTRUCTOR))
    fresh = open_editor(colleague)
    colleague.post(EDITOR, data=with_body(fresh, fresh["body"] + "\n\nSecond."))
    refused = author.post(EDITOR, data={**stale, "action": "discard"})
    assert refused.status_code == 409 and len(drafts(db)) == 1 and "Second." in drafts(db)[0].data["body"]


# ---------------------------------------------------------------- revisions


def _publish_change(client: FlaskClient, line: str = NEW_LINE, old: str = "More text.") -> None:
    fields = open_editor(client)
    assert old in fields["body"]
    changed = {
        **with_body(fields, fields["body"].replace(old, line), "publish"),
        "title": "Module Alpha, revised",
    }
    assert client.post(EDITOR, data=changed).status_code == 302


def test_history_lists_revisions_and_compares_previous_with_published_by_default(author, db):
    _publish_change(author)
    page = author.get(HISTORY).get_data(as_text=True)
    assert "Revision 2" in page and "Revision 1" in page and "Ines Instructor, PhD" in page
    assert "the content files" in page and "Matches the files" in page
    assert "Revision 1 → revision 2" in page
    assert "More text." in page and NEW_LINE in page  # the changed lines, side by side
    assert 'class="diff-changed"' in page and "Module Alpha, revised" in page


def test_a_publish_keeps_its_note_of_what_changed_in_the_history(author, db):
    """A walk-through: publishing recorded who and when, never why, as a CE provider's content review asks."""
    fields = open_editor(author)
    note = "Blood-pressure threshold left to the prescriber's protocol, after clinical review"
    published = {**with_body(fields, fields["body"] + "\n\n" + NEW_LINE, "publish"), "change_note": note}
    assert author.post(EDITOR, data=published).status_code == 302
    rows = re.findall(r"<tr[^>]*>.*?</tr>", author.get(HISTORY).text, re.S)[1:]
    assert "Revision 2" in rows[0] and note.replace("'", "&#39;") in rows[0]
    assert "from the content files" in rows[1] and "Restore as draft" in rows[1]
    assert "Restore as draft" not in rows[0] and "what learners see" in rows[0]  # restoring it would change nothing
    refused = {**published, "change_note": "x" * 501}
    assert author.post(EDITOR, data=refused).status_code == 400  # too long a note: nothing published
    assert len(revisions.history(db, alpha(db))) == 2


def test_history_compares_the_two_revisions_asked_for(author, db):
    _publish_change(author)
    _publish_change(author, "A third version of the line.", old=NEW_LINE)
    page = author.get(HISTORY + "?a=1&b=3").get_data(as_text=True)
    assert "Revision 1 → revision 3" in page and "A third version of the line." in page
    assert author.get(HISTORY + "?a=1&b=9").status_code == 400


def test_restore_makes_an_old_revision_the_draft(author, db):
    _publish_change(author)
    first = revisions.revision_data(revisions.MODULE, revisions.history(db, alpha(db))[-1])
    response = author.post(HISTORY + "/1/restore", data={"loaded_version": ""}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Revision 1 is now the draft; publish it to make it live" in page
    assert drafts(db)[0].data == first
    assert NEW_LINE in published_body(db)  # learners see no change until it is published
    assert form_fields(page)["body"].strip() == first["body"]
    # A second press (a double click) restores nothing twice and reports no conflict.
    assert author.post(HISTORY + "/1/restore", data={"loaded_version": ""}).status_code == 302


def test_restore_refuses_when_the_draft_changed_since_the_history_was_opened(author, db):
    fields = open_editor(author)
    author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\nDraft text."))
    response = author.post(HISTORY + "/1/restore", data={"loaded_version": ""})
    assert response.status_code == 409 and "nothing was restored" in response.get_data(as_text=True)
    assert "Draft text." in drafts(db)[0].data["body"]


def test_restore_of_a_revision_that_does_not_exist_is_404(author):
    assert author.post(HISTORY + "/9/restore", data={"loaded_version": ""}).status_code == 404


# ---------------------------------------------------------------- structure


def test_add_a_module_opens_its_editor_as_a_draft_only(author, db):
    response = author.post(
        "/author/courses/demo-course/modules", data={"demo-course-slug": "delta", "demo-course-title": "Module Delta"}
    )
    assert response.status_code == 302 and response.location.endswith("/author/courses/demo-course/modules/delta")
    page = author.get(response.location).get_data(as_text=True)
    assert "Not published yet" in page and "Module Delta" in page
    assert "Draft only" in author.get("/author/").get_data(as_text=True)
    assert "Module Delta" not in author.get("/courses/demo-course").get_data(as_text=True)


@pytest.mark.parametrize(
    ("slug", "title", "message"),
    [
        ("alpha", "Another", "Another module of this course already has this address."),
        ("Bad Slug", "Another", "Use lower-case letters, digits and hyphens only"),
        ("epsilon", "", "Enter the module&#39;s title."),
    ],
)
def test_add_a_module_refuses_bad_input(author, db, slug, title, message):
    response = author.post(
        "/author/courses/demo-course/modules", data={"demo-course-slug": slug, "demo-course-title": title}
    )
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Module)) == 3


def test_adding_the_same_module_twice_adds_it_once(author, db):
    data = {"demo-course-slug": "delta", "demo-course-title": "Module Delta"}
    assert author.post("/author/courses/demo-course/modules", data=data).status_code == 302
    assert author.post("/author/courses/demo-course/modules", data=data).status_code == 302
    assert db.scalar(select(func.count()).select_from(Module)) == 4


def test_publish_a_new_module_makes_it_part_of_the_course(author, db):
    author.post("/author/courses/demo-course/modules", data={"demo-course-slug": "delta", "demo-course-title": "Delta"})
    url = "/author/courses/demo-course/modules/delta"
    fields = open_editor(author, url)
    fields.update(
        {
            "objectives": "The clinician can describe delta.",
            "references-0-key": "smith2020",
            "references-0-authors": "Smith J",
            "references-0-year": "2020",
            "references-0-title": "A study of delta",
            "references-0-source": "J Tests",
            "body": "## Delta\n\nAs Smith (2020) found.",
            "action": "publish",
        }
    )
    assert author.post(url, data=fields).status_code == 302
    assert "Delta" in author.get("/courses/demo-course").get_data(as_text=True)


def test_move_swaps_a_module_with_its_neighbour(author, db):
    beta = "/author/courses/demo-course/modules/beta/move"
    assert author.post(beta, data={"direction": "up", "from_position": "2"}).status_code == 302
    positions = {m.slug: m.position for m in db.scalars(select(Module).execution_options(populate_existing=True))}
    assert positions == {"beta": 1, "alpha": 2, "gamma": 3}
    # The same click again (from the old page) moves nothing, and says so.
    again = author.post(beta, data={"direction": "up", "from_position": "2"}, follow_redirects=True)
    assert "nothing was moved" in again.get_data(as_text=True)
    refused = author.post(beta, data={"direction": "up", "from_position": "1"})
    assert refused.status_code == 400  # already first
    assert author.post(EDITOR + "/move", data={"direction": "sideways", "from_position": "2"}).status_code == 400
    positions = {m.slug: m.position for m in db.scalars(select(Module).execution_options(populate_existing=True))}
    assert positions == {"beta": 1, "alpha": 2, "gamma": 3}


def test_retire_asks_first_then_hides_a_module_and_reinstate_brings_it_back(author, db):
    unconfirmed = author.post("/author/courses/demo-course/modules/gamma/retire", data={"retire": "yes"})
    assert unconfirmed.status_code == 302 and unconfirmed.location.endswith("/modules/gamma/retire")
    workspace = author.get("/author/").get_data(as_text=True)
    assert 'href="/author/courses/demo-course/modules/gamma/retire"' in workspace  # a link to the question, no form
    asked = author.get("/author/courses/demo-course/modules/gamma/retire")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Retire module 3, “Module Gamma”?" in page
    assert "Every learner stops seeing it" in page
    assert "CE hours (3.5)" in page and 'name="confirmed" value="yes"' in page and "Cancel: keep it" in page
    assert "Module Gamma" in author.get("/courses/demo-course").get_data(as_text=True)  # nothing changed yet
    response = author.post(
        "/author/courses/demo-course/modules/gamma/retire", data={"retire": "yes", "confirmed": "yes"}
    )
    assert response.status_code == 302
    page = author.get("/author/").get_data(as_text=True)
    assert "hidden from learners, records kept" in page and "Reinstate" in page
    assert "Module Gamma" not in author.get("/courses/demo-course").get_data(as_text=True)
    assert author.post("/author/courses/demo-course/modules/gamma/retire", data={"retire": "no"}).status_code == 302
    assert "Module Gamma" in author.get("/courses/demo-course").get_data(as_text=True)


@pytest.mark.parametrize("retired", ["alpha", "gamma"])
def test_modules_are_numbered_without_gaps_after_retiring_and_reinstating(author, db, retired):
    """Learners count the modules in use: retiring one renumbers the rest, and one brought back comes last, so no
    page says "module 4 of 3"."""

    def positions() -> dict[str, int]:
        live = select(Module).where(Module.is_retired.is_(False)).execution_options(populate_existing=True)
        return {m.slug: m.position for m in db.scalars(live)}

    author.post(f"/author/courses/demo-course/modules/{retired}/retire", data={"retire": "yes", "confirmed": "yes"})
    assert sorted(positions().values()) == [1, 2]
    back = author.post(f"/author/courses/demo-course/modules/{retired}/retire", data={"retire": "no"})
    assert "reinstated as module 3, at the end of the course" in author.get(back.location).get_data(as_text=True)
    assert positions()[retired] == 3 and sorted(positions().values()) == [1, 2, 3]


def test_unknown_course_or_module_is_404(author):
    assert author.get("/author/courses/nope/modules/alpha").status_code == 404
    assert author.get("/author/courses/demo-course/modules/nope").status_code == 404


# ---------------------------------------------------------------- Markdown that must stay inert


PAYLOADS = [
    "<script>alert('x')</script>",
    '<img src="x" onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "<style>body { display: none }</style>",
    '<iframe src="https://evil.example/"></iframe>',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<a href="javascript:alert(1)" onclick="alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<div style="position:fixed;inset:0">cover</div>',
    "[x](vbscript:msgbox(1))",
]


class _Prose(HTMLParser):
    """Every element and attribute inside the page's .prose blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self.depth:
            self.elements.append((tag, a))
            if tag not in ("br", "hr", "img"):
                self.depth += 1
        elif tag == "div" and "prose" in a.get("class", "").split():
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1


def assert_inert(html: str) -> None:
    """No script, style, frame or event handler, and no link or image to a script or data URL, in the prose."""
    reader = _Prose()
    reader.feed(html)
    assert reader.elements, "no prose found"
    for tag, attrs in reader.elements:
        assert tag not in {"script", "style", "iframe", "svg", "object", "embed", "form", "input"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            if name in {"href", "src"}:
                assert value.startswith(("https://", "mailto:", "#", "/")), (tag, name, value)


def test_payloads_render_inert_in_both_previews_and_on_the_learner_page(app, author, db):
    learner = make_user(db)
    enrolled(db, learner)
    db.commit()
    fields = open_editor(author)
    body = fields["body"] + "\n\n" + "\n\n".join(PAYLOADS)

    no_js = author.post(EDITOR, data=with_body(fields, body, "preview")).get_data(as_text=True)
    assert_inert(no_js)
    live = author.post("/author/preview", data=with_body(fields, body)).get_data(as_text=True)
    assert_inert(live)
    assert "&lt;script&gt;" in live  # shown as text, not run

    assert author.post(EDITOR, data=with_body(fields, body, "publish")).status_code == 302
    page = other_client(app, db, learner).get(LEARNER_PAGE).get_data(as_text=True)
    assert_inert(page)
    assert page.count("<script") == 1  # the site's own kaptrain.js only


def test_a_reference_address_that_is_not_https_is_never_linked_in_the_preview(author):
    fields = {**open_editor(author), "references-0-url": "javascript:alert(1)"}
    html = author.post("/author/preview", data=fields).get_data(as_text=True)
    assert "javascript:" not in html
