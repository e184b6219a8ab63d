"""Forms of the question-bank editor: a question with its option rows, a case, a bank's rules, and the small
forms of the bank page (add a question, move, retire, restore)."""

from __future__ import annotations

import json
from typing import Any

from wtforms import (
    BooleanField,
    Field,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from kaptrain.authoring.bank import ModuleChoice
from kaptrain.authoring.forms import plain_message
from kaptrain.authoring.services import InvalidDraft
from kaptrain.content.revisions import QUIZ
from kaptrain.forms import BaseForm, refuse_control_characters, whole_number
from kaptrain.quizzes.grading import REGISTRY
from kaptrain.quizzes.models import QuestionType

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_MESSAGE = "Use lower-case letters, digits and single hyphens, e.g. alpha-q7."
# How each question type is named to authors; a type added to the grader registry shows under its own name.
TYPE_LABELS = {
    QuestionType.SINGLE: "Single answer (one option is correct)",
    QuestionType.MULTIPLE: "Multiple answers (select all that apply)",
    QuestionType.TRUE_FALSE: "True or false",
}
REVEAL_CHOICES = [
    SelectChoice("after_pass", "After the learner passes"),
    SelectChoice("always", "Always, after each attempt"),
    SelectChoice("never", "Never"),
]
MAX_OPTIONS = 8  # the most options a question type allows (multiple answers)
BLANK_ROWS = 2  # empty option rows offered for adding options


def type_names() -> dict[str, str]:
    """Every question type the quiz engine grades, by value, with its name for authors."""
    return {t.value: TYPE_LABELS.get(t, t.value.replace("_", " ").capitalize()) for t in REGISTRY}


def type_choices() -> list[SelectChoice]:
    """The question type list's options."""
    return [SelectChoice(value, label) for value, label in type_names().items()]


def section_choices(current: str, sections: list[str] | None) -> list[SelectChoice]:
    """The options of a section <select>: the module's headings, and the current section when it is not one."""
    choices = [SelectChoice(s, s) for s in sections or []]
    if current and current not in (sections or []):
        choices.insert(0, SelectChoice(current, f"{current} (not a heading of the module)"))
    if not current:
        choices.insert(0, SelectChoice("", "Choose the section that teaches this"))
    return choices


def _optional_int(value: Any) -> int | None:
    return whole_number(value)  # "" and "None" (an empty choice) are None, and so is anything but an id


class OptionRow(Form):
    """One option row: its stable id (hidden, so item analysis follows the option), its text, whether it is
    correct. A row left empty is not an option."""

    option_id = HiddenField(validators=[Optional(), Regexp(r"^[a-z0-9-]{1,20}$")])
    # A box of two lines that grows, so a long option is read whole while it is written; its line breaks are
    # spaces to learners, and are saved as spaces (question_data).
    text = TextAreaField("Option text", validators=[refuse_control_characters, Length(max=1000)])
    correct = BooleanField("Correct")


class EditorForm(BaseForm):
    """What every draft editor sends besides the content: the draft version and the published revision number it
    was opened at (empty: none), and the revision a confirmed "Publish anyway" replaces."""

    loaded_version = HiddenField()
    loaded_revision = HiddenField()
    replace_revision = HiddenField()
    # Kept with the revision when the form is published, for the revision history (not part of the item).
    change_note = TextAreaField(
        "What changed (optional, when publishing)",
        description="A line for the revision history, e.g. “Distractor C reworded: it was arguably correct”. Saved "
        "with the revision when you publish; a draft does not keep it. Up to 500 characters.",
        validators=[refuse_control_characters, Length(max=500, message="Keep the note under 500 characters.")],
        render_kw={"rows": 2},
    )

    def loaded(self) -> tuple[int | None, int | None]:
        """The draft version and published revision number the editor was opened at."""
        return _optional_int(self.loaded_version.data), _optional_int(self.loaded_revision.data)

    def load(self, loaded: tuple[int | None, int | None]) -> None:
        """Put the page at this draft version and published revision."""
        self.loaded_version.data = "" if loaded[0] is None else str(loaded[0])
        self.loaded_revision.data = "" if loaded[1] is None else str(loaded[1])

    def replacing(self) -> int | None:
        """The revision number a confirmed publish replaces, if any."""
        return _optional_int(self.replace_revision.data)

    def note(self) -> str:
        """What changed, as the author says, for the revision history."""
        return (self.change_note.data or "").strip()


HIDDEN = ("csrf_token", "loaded_version", "loaded_revision", "replace_revision")


class QuestionForm(EditorForm):
    """A question: type, module (final assessment only), section, case, stem, options and explanation."""

    type = SelectField("Question type", choices=type_choices())
    module_id = SelectField("Module this question tests", coerce=_optional_int, validate_choice=False)
    # Any heading may be sent (the module select can change the list in the browser); the checks judge it.
    section = SelectField(
        "Section of the module that teaches this",
        validators=[DataRequired(message="Choose the section of the module that teaches this.")],
        validate_choice=False,
    )
    vignette_id = SelectField("Case", coerce=_optional_int, validate_choice=False)
    stem = TextAreaField(
        "Question",
        validators=[DataRequired(message="Write the question."), Length(max=5000)],
        render_kw={"rows": 4},
    )
    options = FieldList(FormField(OptionRow), min_entries=0, max_entries=MAX_OPTIONS + BLANK_ROWS + 4)
    explanation = TextAreaField(
        "Explanation (shown in the review)",
        validators=[DataRequired(message="Explain why the correct answer is right."), Length(max=5000)],
        render_kw={"rows": 4},
    )
    page_order = ["type", "module_id", "section", "vignette_id", "stem", "options", "explanation"]

    def offer(self, modules: list[ModuleChoice], chosen: ModuleChoice | None, cases: list[tuple[str, str]]) -> None:
        """Fill the lists: the course's modules (with every module's headings for the browser to swap in), the chosen
        module's headings as sections, and the bank's cases (value, name); then blank option rows."""
        sections = {str(m.id): m.sections for m in modules}
        self.module_id.render_kw = {"data-sections": json.dumps(sections)}  # authoring-bank.js lists them on a change
        self.module_id.choices = [SelectChoice("", "Choose the module")] + [
            SelectChoice(str(m.id), f"Module {m.position}: {m.title}") for m in modules
        ]
        self.section.choices = section_choices(self.section.data or "", chosen.sections if chosen else None)
        self.vignette_id.choices = [SelectChoice("", "No case")] + [SelectChoice(v, label) for v, label in cases]
        self.add_blank_rows()

    def add_blank_rows(self) -> None:
        """Offer empty rows for new options (not for true/false, whose two options are fixed)."""
        if self.type.data == QuestionType.TRUE_FALSE.value:
            return
        blanks = sum(1 for row in self.options if not (row.form.text.data or "").strip())
        for _ in range(max(0, min(BLANK_ROWS - blanks, MAX_OPTIONS + BLANK_ROWS - len(self.options)))):
            self.options.append_entry()


def question_form_data(data: dict[str, Any]) -> dict[str, Any]:
    """A question's data as the form's fields."""
    return {
        "type": data.get("type"),
        "module_id": data.get("module_id"),
        "section": data.get("section") or "",
        "vignette_id": data.get("vignette_id"),
        "stem": data.get("stem") or "",
        "explanation": data.get("explanation") or "",
        "options": [
            {"option_id": o.get("id") or "", "text": o.get("text") or "", "correct": bool(o.get("correct"))}
            for o in data.get("options") or []
        ],
    }


def question_data(form: QuestionForm, module_id: int | None) -> dict[str, Any]:
    """The form as a question's draft data; refuses, as the service would, a question with no correct answer.

    Empty rows are dropped (clearing a row's text removes the option); each kept row keeps its option id."""
    options, seen = [], set()
    for row in form.options:
        text = " ".join((row.form.text.data or "").split())
        if not text:
            continue
        oid = (row.form.option_id.data or "").strip()
        if oid in seen:
            oid = ""  # a row copied with its id: treat it as a new option
        seen.add(oid)
        options.append({"id": oid or None, "text": text, "correct": bool(row.form.correct.data)})
    if options and not any(o["correct"] for o in options):
        raise InvalidDraft(
            {"options": "A question with no correct answer cannot be saved: tick “Correct” beside the right option."}
        )
    return {
        "type": form.type.data,
        "section": (form.section.data or "").strip(),
        "module_id": module_id,
        "vignette_id": form.vignette_id.data,
        "stem": (form.stem.data or "").strip(),
        "options": options,
        "explanation": (form.explanation.data or "").strip(),
    }


class CaseForm(EditorForm):
    """A case (vignette) shared by several questions."""

    title = StringField("Title", validators=[DataRequired(message="Give the case a title."), Length(max=300)])
    text = TextAreaField(
        "Case text",
        validators=[DataRequired(message="Write the case."), Length(max=10_000)],
        render_kw={"rows": 8},
    )

    def data_for_draft(self) -> dict[str, Any]:
        """The form as a case's draft data."""
        return {"title": (self.title.data or "").strip(), "text": (self.text.data or "").strip()}


class AddCaseForm(BaseForm):
    """A new case for the bank (published at once: no learner reads it until a published question uses it)."""

    key = StringField(
        "Key",
        validators=[DataRequired(message="Give the case a key."), Length(max=100), Regexp(SLUG, message=SLUG_MESSAGE)],
    )
    title = StringField("Title", validators=[DataRequired(message="Give the case a title."), Length(max=300)])
    text = TextAreaField(
        "Case text", validators=[DataRequired(message="Write the case."), Length(max=10_000)], render_kw={"rows": 5}
    )
    question = HiddenField()  # the question editor to return to


class AddQuestionForm(BaseForm):
    """A new question at the end of the bank, opened in its editor as a draft."""

    key = StringField(
        "Key",
        validators=[
            DataRequired(message="Give the question a key."),
            Length(max=100),
            Regexp(SLUG, message=SLUG_MESSAGE),
        ],
        description="Stable: learners' answers and item analysis are kept under it.",
    )
    type = SelectField("Question type", choices=type_choices())


def _count(label: str, low: int, high: int, message: str) -> IntegerField:
    return IntegerField(
        label,
        validators=[InputRequired(message=message), NumberRange(min=low, max=high, message=f"Use {low} to {high}.")],
    )


class RulesForm(EditorForm):
    """A bank's rules: title, draw, pass mark, attempts, cooldown, time limit and the answer policy."""

    title = StringField("Title", validators=[DataRequired(message="Give the quiz a title."), Length(max=300)])
    draw = _count("Questions drawn for each attempt", 1, 500, "Say how many questions an attempt draws.")
    passing_score = _count("Pass mark (%)", 1, 100, "Give the pass mark.")
    max_attempts = _count("Attempts before a pause", 1, 100, "Say how many attempts a learner has.")
    cooldown_hours = IntegerField(
        "Pause after the last attempt (hours)",
        validators=[Optional(), NumberRange(min=0, max=24 * 365, message="Use 0 to 8760 hours.")],
        default=0,
    )
    time_limit_minutes = IntegerField(
        "Time limit (minutes)",
        validators=[Optional(), NumberRange(min=1, max=24 * 60, message="Use 1 to 1440 minutes, or leave it empty.")],
        description="Leave it empty for an untimed quiz.",
    )
    reveal_answers = SelectField("Show the correct answers", choices=REVEAL_CHOICES)
    partial_credit = BooleanField("Partial credit on multiple-answer questions")
    allow_extension = BooleanField("Learners may ask for more time")
    page_order = list(QUIZ.fields)

    def data_for_draft(self) -> dict[str, Any]:
        """The form as the rules' draft data."""
        return {
            "title": (self.title.data or "").strip(),
            "draw": self.draw.data,
            "passing_score": self.passing_score.data,
            "max_attempts": self.max_attempts.data,
            "cooldown_hours": self.cooldown_hours.data or 0,
            "time_limit_minutes": self.time_limit_minutes.data or None,
            "reveal_answers": self.reveal_answers.data,
            "partial_credit": bool(self.partial_credit.data),
            "allow_extension": bool(self.allow_extension.data),
        }


class ActionForm(BaseForm):
    """A button with nothing else to send but the CSRF token (move, retire, reinstate)."""


class RestoreForm(BaseForm):
    """Restore an old revision as the draft: carries the draft version the history page showed."""

    loaded_version = HiddenField()


# ---------------------------------------------------------------- errors


def attach_errors(form: BaseForm, errors: dict[str, str], group_errors: list[str]) -> None:
    """Put the service's errors on the fields they name; option errors and errors about the whole question (which
    are about its options) go to the options group; anything else to the form."""
    for name, message in errors.items():
        head = name.split(".", 1)[0]
        target: Field | None = form[head] if head in form._fields else None
        message = plain_message(head, message)
        message = message[:1].upper() + message[1:]
        if head == "options" or (head == "draft" and "options" in form._fields):
            parts = name.split(".")
            where = f"Option {int(parts[1]) + 1}: " if len(parts) > 1 and parts[1].isdigit() else ""
            group_errors.append(where + message)
        elif target is not None and head not in HIDDEN:
            target.errors = [*target.errors, message]
        else:
            form.form_errors.append(message)


def summary(form: BaseForm, group_errors: list[str], group_id: str = "options") -> list[tuple[str, str, str]]:
    """Every error on the page as (field id to link to, label, message), in the order the page shows them."""
    order = getattr(form, "page_order", [])
    names = [n for n in order if n in form._fields] + [n for n in form._fields if n not in order]
    out = []
    for name in names:
        f = form[name]
        if name in HIDDEN:
            out += [("", "", str(e)) for e in f.errors]
        elif name == "options":
            label = "Options"
            out += [(group_id, label, m) for m in group_errors]
            for i, row in enumerate(f):
                for sub in ("text", "option_id", "correct"):
                    out += [(row.form[sub].id, f"Option {i + 1}", str(e)) for e in row.form[sub].errors]
        else:
            out += [(f.id, str(f.label.text), str(e)) for e in f.errors if isinstance(e, str)]
    out += [("", "", str(e)) for e in form.form_errors]
    if "options" not in form._fields:
        out += [(group_id, "", m) for m in group_errors]
    return out
