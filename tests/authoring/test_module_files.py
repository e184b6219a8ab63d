"""A module as a file in the browser: download it in the content-file format, load a file back into the editor
(nothing saved until the instructor saves), and every way a file is refused with nothing lost."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.authoring.bank import published_count
from kaptrain.authoring.diff import diff
from kaptrain.content import files, loader, revisions
from kaptrain.quizzes.models import Quiz
from tests.authoring.test_module_editor import (
    EDITOR,
    alpha,
    drafts,
    form_fields,
    log_in,
    open_editor,
    other_client,
    published_body,
    with_body,
)
from tests.factories import make_user

FILE = EDITOR + "/file"
ADDED = "A paragraph written offline about the integration session."


@pytest.fixture
def instructor(db):  # type: ignore[no-untyped-def]
    user = make_user(db, Role.INSTRUCTOR, full_name="Ines Instructor, PhD")
    db.commit()
    return user


@pytest.fixture
def author(client, db, instructor):  # type: ignore[no-untyped-def]
    return log_in(client, db, instructor)


def download(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get(FILE)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/markdown"
    assert response.headers["Content-Disposition"] == "attachment; filename=01-alpha.md"
    return response.get_data(as_text=True)


def upload(client, raw: bytes, name: str = "01-alpha.md", fields: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    loaded = {k: v for k, v in (fields or {}).items() if k in ("loaded_version", "loaded_revision")}
    return client.post(FILE, data={**loaded, "file": (io.BytesIO(raw), name)}, content_type="multipart/form-data")


def test_download_is_the_published_module_as_its_file(author, db):
    text = download(author)
    parsed, problems = files.parse_module("01-alpha.md", text)
    assert problems == [] and parsed is not None
    assert parsed.meta.slug == "alpha" and parsed.body.strip() == published_body(db).strip()
    revision = revisions.published(db, alpha(db))
    assert loader.module_data(parsed) == revisions.revision_data(revisions.MODULE, revision)


def test_download_holds_the_saved_draft_not_what_learners_see(author, db):
    fields = open_editor(author)
    assert author.post(EDITOR, data=with_body(fields, fields["body"] + "\n\n" + ADDED)).status_code == 302
    assert ADDED in download(author)
    assert ADDED not in published_body(db)
    assert "Download the saved draft as 01-alpha.md" in author.get(EDITOR).get_data(as_text=True)


def test_a_loaded_file_fills_the_form_shows_the_changes_and_saves_nothing(author, db):
    fields = open_editor(author)
    text = download(author).rstrip("\n") + "\n\n" + ADDED + "\n"
    response = upload(author, text.encode(), fields=fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "01-alpha.md is in the form below: nothing is saved yet" in page
    assert "01-alpha.md (loaded, not saved)" in page and "Revision 1 (published)" in page
    assert ADDED in form_fields(page)["body"]
    assert drafts(db) == [] and ADDED not in published_body(db)

    saved = author.post(EDITOR, data={**form_fields(page), "action": "save"}, follow_redirects=True)
    assert "Draft saved" in saved.get_data(as_text=True)
    assert ADDED in drafts(db)[0].data["body"]


def test_loading_the_same_text_says_there_is_nothing_to_save(author, db):
    page = upload(author, download(author).encode()).get_data(as_text=True)
    assert "The file says the same as what the editor held" in page and drafts(db) == []


def test_windows_line_ends_and_a_byte_order_mark_are_read(author, db):
    text = download(author).replace("\n", "\r\n")
    response = upload(author, b"\xef\xbb\xbf" + text.encode())
    assert response.status_code == 200
    assert "The file says the same as what the editor held" in response.get_data(as_text=True)


def _front_matter_broken(text: str) -> str:
    return text.removeprefix("---\n")


def _wrong_minutes(text: str) -> str:
    lines = text.split("\n")
    return "\n".join("estimated_minutes: 0" if line.startswith("estimated_minutes:") else line for line in lines)


def _other_slug(text: str) -> str:
    return text.replace("slug: alpha", "slug: beta", 1)


def _uncited(text: str) -> str:
    return text + "\n\nAs Nobody (1999) found, this is not a reference.\n"


BAD_FILES = {
    "not UTF-8": (lambda t: t.encode("utf-16"), "is not UTF-8 text"),
    "empty": (lambda t: b"  \n", "01-alpha.md is empty"),
    "no front matter": (lambda t: _front_matter_broken(t).encode(), "01-alpha.md:1: (file): missing YAML front matter"),
    "bad field": (lambda t: _wrong_minutes(t).encode(), "estimated_minutes"),
    "another module": (lambda t: _other_slug(t).encode(), "the file is for the module “beta”, and this is “alpha”"),
    "uncited citation": (lambda t: _uncited(t).encode(), "Nobody (1999)"),
    "a word-processor document": (lambda t: b"PK\x03\x04" + t.encode(), "is a word-processor document"),
    "a date not written as the files write it": (
        lambda t: re.sub(r"last_reviewed: .*", "last_reviewed: 27/11/2026", t).encode(),
        "last_reviewed: must be a date written YYYY-MM-DD",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_is_refused_naming_file_and_field_and_nothing_changes(author, db, case):
    make, expected = BAD_FILES[case]
    before = published_body(db)
    response = upload(author, make(download(author)))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The file was not loaded, and nothing was saved" in page
    assert expected in page.replace("&#34;", '"').replace("&#39;", "'")
    assert "Traceback" not in page
    assert form_fields(page)["body"].strip() == before.strip()  # the editor still holds the module
    assert drafts(db) == [] and published_body(db) == before


def test_a_field_error_names_its_line_in_plain_words(author):
    text = download(author)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("estimated_minutes:"))
    page = upload(author, _wrong_minutes(text).encode()).get_data(as_text=True)
    assert f"01-alpha.md:{line}: estimated_minutes: must be at least 1" in page
    uncited = _uncited(text)
    cited_on = len(uncited.rstrip("\n").splitlines())
    page = upload(author, uncited.encode()).get_data(as_text=True)
    assert f"01-alpha.md:{cited_on}: body:" in page  # the line of the citation, not of the text's start


def test_posting_without_a_file_asks_for_one(author, db):
    response = author.post(FILE, data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose the module&#39;s .md file to load." in response.get_data(as_text=True)


def test_the_browser_folder_in_a_file_name_is_not_shown(author):
    page = upload(author, b"\xff\xfe", name="../home/ines/Desktop/01-alpha.md").get_data(as_text=True)
    assert "01-alpha.md is not UTF-8 text" in page and "Desktop" not in page


def test_saving_a_loaded_file_over_a_colleagues_newer_draft_is_refused(app, db, instructor):
    colleague = make_user(db, Role.INSTRUCTOR, full_name="Cass Colleague, MD")
    db.commit()
    mine, theirs = other_client(app, db, instructor), other_client(app, db, colleague)
    fields = open_editor(mine)
    text = download(mine).rstrip("\n") + "\n\n" + ADDED + "\n"
    other = open_editor(theirs)
    assert theirs.post(EDITOR, data=with_body(other, other["body"] + "\n\nTheir paragraph.")).status_code == 302

    page = upload(mine, text.encode(), fields=fields).get_data(as_text=True)
    refused = mine.post(EDITOR, data={**form_fields(page), "action": "save"})
    assert refused.status_code == 409 and "Someone else saved this draft" in refused.get_data(as_text=True)
    assert "Their paragraph." in drafts(db)[0].data["body"] and ADDED not in drafts(db)[0].data["body"]


def test_the_upload_needs_the_csrf_token(author, db, csrf_on):
    response = upload(author, download(author).encode())
    assert response.status_code == 400 and drafts(db) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_learners_cannot_download_or_load_module_files(client, learner, method):
    assert getattr(client, method)(FILE).status_code == 403


BANK_FILE = "/author/courses/demo-course/quizzes/alpha-quiz/file"


def test_the_published_bank_downloads_as_its_file(author, db):
    response = author.get(BANK_FILE)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=01-alpha.yaml"
    parsed, problems = files.parse_quiz("01-alpha.yaml", response.get_data(as_text=True))
    assert problems == [] and parsed is not None
    quiz = db.scalar(select(Quiz).where(Quiz.slug == "alpha-quiz"))
    assert parsed.quiz.slug == "alpha-quiz" and len(parsed.questions) == published_count(db, quiz)
    assert "Download the published bank as a file" in author.get(BANK_FILE.removesuffix("/file")).get_data(as_text=True)


def test_learners_cannot_download_a_bank(client, learner):
    assert client.get(BANK_FILE).status_code == 403


def test_a_reference_change_reads_as_a_reference_list_line_not_as_data():
    old = {"references": [{"key": "smith2020", "authors": "Smith J", "year": 2020, "title": "A", "source": "J"}]}
    new = {"references": [*old["references"], {"key": "lee2024", "authors": "Lee K", "year": 2024, "title": "B",
                                                "source": "Lancet 1:2", "doi": "10.1/x"}]}  # fmt: skip
    [references] = diff(old, new, ("references",))
    added = [row.right for row in references.rows if row.change == "added"]
    assert added == ["[lee2024] Lee K (2024). B. Lancet 1:2. doi:10.1/x"]
