"""Module editor forms: the module's structured fields, adding a module, moving it, and comparing revisions.

The content rules themselves live in the authoring services (the same schemas as the content files); these forms
only turn what the browser sent into a draft's plain data, and put the services' errors back beside the fields."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    Field,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from kaptrain.forms import BaseForm, refuse_control_characters, whole_number

# Blank reference rows offered below the filled ones, to add references without JavaScript.
BLANK_REFERENCE_ROWS = 3
REFERENCE_FIELDS = ("key", "authors", "year", "title", "source", "doi", "url")
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

# The schemas' wording, said the way the editor's fields are labelled.
_PLAIN_MESSAGES = (
    (re.compile(r"^String should have at least 1 character"), "cannot be empty"),
    (re.compile(r"^String should match pattern '\^The clinician can '"), "must start with “The clinician can ”"),
    (re.compile(r"^String should match pattern '\^https://"), "must be a web address starting https://, no spaces"),
    (re.compile(r"^String should match pattern '\^\[a-z0-9\]"), "use lower-case letters, digits and hyphens only"),
    (re.compile(r"^Input should be a valid integer"), "enter a whole number"),
    (re.compile(r"^Input should be a valid number"), "enter a number"),
    (re.compile(r"^Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"^Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"^Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"^String should have at most (\d+) characters?"), r"must be at most \1 characters long"),
    (re.compile(r"^Field required"), "is required"),
)
_EMPTY_LIST = {
    "objectives": "write at least one objective, one per line",
    "references": "add at least one reference",
}


def plain_message(field: str, message: str) -> str:
    """A service or schema message as the editor shows it."""
    if message.startswith("List should have at least 1 item") and field in _EMPTY_LIST:
        return _EMPTY_LIST[field]
    for pattern, text in _PLAIN_MESSAGES:
        found = pattern.search(message)
        if found:
            return found.expand(text)
    return message


def _text(value: Any) -> str:
    """Form text as stored: trimmed, with the browser's CRLF line ends made LF (as the content files have)."""
    return str(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()


class ModuleFileForm(BaseForm):
    """Load a module file into the editor; carries the versions the editor page was opened at, so that saving
    what was loaded is checked against newer drafts and revisions as a save of typed text is."""

    loaded_version = HiddenField(id="mf-loaded-version")
    loaded_revision = HiddenField(id="mf-loaded-revision")
    file = FileField(
        "Module file (.md)",
        id="mf-file",
        description="The module's Markdown file with its front matter, as Download gives it or the content folders "
        "hold it.",
        validators=[FileRequired(message="Choose the module's .md file to load.")],
    )

    def loaded(self) -> tuple[int | None, int | None]:
        """The draft version and published revision number the editor page was opened with."""
        return whole_number(self.loaded_version.data), whole_number(self.loaded_revision.data)


class ReferenceForm(Form):
    """One reference row; a row left entirely blank is dropped, so clearing a row removes the reference."""

    key = StringField("Key", description="Lower case, e.g. smith2020", validators=[refuse_control_characters])
    authors = StringField("Authors", validators=[refuse_control_characters])
    year = StringField("Year", validators=[refuse_control_characters])
    title = StringField("Title", validators=[refuse_control_characters])
    source = StringField("Source (journal, volume, pages)", validators=[refuse_control_characters])
    doi = StringField("DOI (optional)", validators=[refuse_control_characters])
    url = StringField("Web address (optional)", validators=[refuse_control_characters])


class ModuleForm(BaseForm):
    """The module editor: every field of a module revision, plus the draft version the page loaded."""

    # The draft version this page opened ("" when it opened no draft), and the published revision it showed:
    # a save from an older page is refused with the newer text shown, never silently applied over it.
    loaded_version = HiddenField(id="m-loaded-version")
    loaded_revision = HiddenField(id="m-loaded-revision")
    title = StringField("Title", id="m-title")
    summary = TextAreaField(
        "Summary",
        id="m-summary",
        description="One or two sentences for the course outline and the workspace.",
        render_kw={"rows": 3},
    )
    estimated_minutes = IntegerField(
        "Estimated minutes",
        id="m-estimated-minutes",
        description="How long a careful reading takes.",
        validators=[InputRequired(message="Enter the estimated minutes as a whole number.")],
    )
    last_reviewed = DateField(
        "Last reviewed",
        id="m-last-reviewed",
        description="The date the content was last checked against the literature.",
        validators=[InputRequired(message="Enter the date of the last review.")],
    )
    objectives = TextAreaField(
        "Learning objectives",
        id="m-objectives",
        description="One per line, each starting “The clinician can ”.",
        render_kw={"rows": 5},
    )
    references = FieldList(FormField(ReferenceForm), min_entries=BLANK_REFERENCE_ROWS)
    body = TextAreaField(
        "Text (Markdown)",
        id="m-body",
        description="Cite each reference in the text by first author and year, e.g. “Smith (2020)”.",
        render_kw={"rows": 24, "spellcheck": "true"},
    )
    # Kept with the revision when the form is published, for the revision history (not part of the module).
    change_note = TextAreaField(
        "What changed (optional, when publishing)",
        id="m-change-note",
        description="A line for the revision history, e.g. “Blood-pressure threshold left to the prescriber's "
        "protocol, after clinical review”. Saved with the revision when you publish; a draft does not keep it. "
        "Up to 500 characters.",
        validators=[refuse_control_characters, Length(max=500, message="Keep the note under 500 characters.")],
        render_kw={"rows": 2},
    )
    # Sent by the "Publish anyway, replacing revision N" button only.
    replace_revision = IntegerField(validators=[Optional()])

    page_order = ("title", "summary", "estimated_minutes", "last_reviewed", "objectives", "body", "references")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.references_errors: list[str] = []  # about the list as a whole (none given, a key used twice)
        self.other_errors: list[str] = []
        self._reference_rows: list[int] = []  # the filled rows, in the order the draft lists them

    @classmethod
    def from_data(cls, data: dict[str, Any], loaded_version: int | None, loaded_revision: int | None) -> ModuleForm:
        """The form filled from a draft's or revision's plain data, with blank reference rows to add more."""
        refs = [{f: "" if r.get(f) is None else str(r.get(f)) for f in REFERENCE_FIELDS} for r in data["references"]]
        form = cls(
            formdata=None,
            data={
                "title": data["title"],
                "summary": data["summary"],
                "estimated_minutes": data["estimated_minutes"],
                "last_reviewed": dt.date.fromisoformat(data["last_reviewed"]),
                "objectives": "\n".join(data["objectives"]),
                "references": refs + [{}] * BLANK_REFERENCE_ROWS,
                "body": data["body"],
            },
        )
        form.set_loaded(loaded_version, loaded_revision)
        return form

    def set_loaded(self, loaded_version: int | None, loaded_revision: int | None) -> None:
        """Point the page at a draft version and published revision (after a refused save: at the newer ones)."""
        self.loaded_version.data = "" if loaded_version is None else str(loaded_version)
        self.loaded_revision.data = "" if loaded_revision is None else str(loaded_revision)

    def loaded(self) -> tuple[int | None, int | None]:
        """The draft version and published revision number the page was opened with."""
        return whole_number(self.loaded_version.data), whole_number(self.loaded_revision.data)

    def ensure_blank_rows(self) -> None:
        """Keep blank reference rows at the end after a refused save, so a reference can still be added."""
        blank = sum(1 for entry in self.references if not _ref_filled(entry.form))
        for _ in range(max(0, BLANK_REFERENCE_ROWS - blank)):
            self.references.append_entry()

    def draft_data(self) -> dict[str, Any]:
        """What the form says, as a module draft's plain data (the services check it)."""
        self._reference_rows = [i for i, entry in enumerate(self.references) if _ref_filled(entry.form)]
        last = self.last_reviewed.data
        return {
            "title": _text(self.title.data),
            "summary": _text(self.summary.data),
            "estimated_minutes": self.estimated_minutes.data,
            "last_reviewed": last.isoformat() if isinstance(last, dt.date) else "",
            "objectives": [line.strip() for line in _text(self.objectives.data).split("\n") if line.strip()],
            "references": [_reference(self.references[i].form) for i in self._reference_rows],
            "body": _text(self.body.data),
        }

    def add_errors(self, errors: dict[str, str]) -> None:
        """Put a refused draft's errors (field name or "references.2.year" -> message) beside the fields."""
        rows = self._reference_rows
        for name, message in errors.items():
            parts = name.split(".")
            text = plain_message(parts[0], message)
            row = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else len(rows)
            if parts[0] == "references" and row < len(rows) and parts[2] in REFERENCE_FIELDS:
                _add(self.references[rows[row]][parts[2]], text)
            elif parts[0] == "objectives" and len(parts) == 2 and parts[1].isdigit():
                _add(self.objectives, f"objective {int(parts[1]) + 1} {text}")
            elif parts[0] == "references":
                self.references_errors.append(text)
            elif parts[0] in self.page_order:
                _add(self[parts[0]], text)
            elif parts[0] == "draft":  # whole-module rules (a reference not cited) are fixed in the text
                _add(self.body, text)
            else:
                self.other_errors.append(f"{name}: {text}")

    def summary_items(self) -> list[tuple[str, str]]:
        """The error summary, in page order: (id of the field to jump to, "Label: message")."""
        items: list[tuple[str, str]] = []
        for name in self.page_order:
            if name == "references":
                items += [("m-references", f"References: {e}") for e in self.references_errors]
                for n, entry in enumerate(self.references, start=1):
                    for sub in entry.form:
                        items += [(sub.id, f"Reference {n}, {sub.label.text}: {e}") for e in sub.errors]
                continue
            items += [(self[name].id, f"{self[name].label.text}: {e}") for e in self[name].errors]
        return items + [("m-title", e) for e in self.other_errors]


def _add(field: Field, message: str) -> None:
    text = "It " + message if message.startswith("is ") else message  # the services say "is longer than ..."
    text = text[:1].upper() + text[1:]
    field.errors = [*field.errors, text]


def _ref_filled(form: Form) -> bool:
    return any(_text(form[f].data) for f in REFERENCE_FIELDS)


def _reference(form: Form) -> dict[str, Any]:
    """One row as a reference's plain data: the year a number when it is one, DOI and address only when given."""
    ref: dict[str, Any] = {f: _text(form[f].data) for f in ("key", "authors", "year", "title", "source")}
    year = whole_number(ref["year"])
    if year is not None:
        ref["year"] = year
    for optional in ("doi", "url"):
        if _text(form[optional].data):
            ref[optional] = _text(form[optional].data)
    return ref


class AddModuleForm(BaseForm):
    """A new module at the end of a course: its address and title (the rest is written in the editor)."""

    slug = StringField(
        "Address (slug)",
        description="Lower-case letters, digits and hyphens, e.g. aftercare; it appears in the module's web address.",
        validators=[
            DataRequired(message="Enter the module's address."),
            Length(max=100, message="Keep the address under 100 characters."),
            Regexp(SLUG_PATTERN, message="Use lower-case letters, digits and hyphens only, e.g. aftercare."),
        ],
    )
    title = StringField(
        "Title",
        validators=[
            DataRequired(message="Enter the module's title."),
            Length(max=300, message="Keep the title under 300 characters."),
        ],
    )


class MoveForm(BaseForm):
    """Move a module one place up or down."""

    direction = HiddenField(validators=[DataRequired(), Regexp(r"^(up|down)$")])
    # The place the page showed: a move from an older page (or a double click) moves nothing.
    from_position = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9]+$")])


class RetireForm(BaseForm):
    """Retire a module, or bring a retired one back."""

    retire = HiddenField(validators=[DataRequired(), Regexp(r"^(yes|no)$")])
    confirmed = HiddenField()  # "yes" from the confirmation page: retiring asks first


class RestoreForm(BaseForm):
    """Restore an old revision as the draft; carries the draft version the history page saw."""

    loaded_version = HiddenField()

    def loaded(self) -> int | None:
        """The draft version the history page was opened with (None: there was no draft)."""
        return whole_number(self.loaded_version.data)


class CompareForm(BaseForm):
    """Choose two revisions to compare (a GET form: bookmarkable, no CSRF token)."""

    class Meta:
        csrf = False

    a = SelectField("Compare revision", coerce=int)
    b = SelectField("with revision", coerce=int)
