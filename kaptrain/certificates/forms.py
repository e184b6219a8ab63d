"""The learner's certificate forms: the course evaluation and the attestation with the hours claimed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, Field, RadioField, SelectChoice, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation, ValidationError

from kaptrain.certificates.services import (
    ATTESTATION_STATEMENT,
    EVIDENCE_ANSWERS,
    EVIDENCE_UNANSWERED,
    EVIDENCE_UNEXPLAINED,
    OBJECTIVE_ANSWERS,
    PRACTICE_CHANGE_ANSWERS,
    CertificateError,
    EvaluationAnswers,
    parse_hours_spent,
)
from kaptrain.content.models import Course
from kaptrain.forms import BaseForm

MAX_COMMENT = 5000
OBJECTIVE_CHOICES = [SelectChoice(value, label) for value, label in OBJECTIVE_ANSWERS.items()]


def _chosen(message: str) -> Callable[[Any, Field], None]:
    """Validator: one of the field's own choices was picked; otherwise say what to do, in words."""

    def check(form: Any, field: Field) -> None:
        if field.data not in {choice.value for choice in field.choices}:
            raise StopValidation(message)

    return check


def _radio(label: str, choices: list[SelectChoice], message: str) -> RadioField:
    """A required radio group whose error message says what to choose."""
    # validate_choice=False: _chosen gives the message, not WTForms' "Not a valid choice".
    return RadioField(label, choices=choices, validate_choice=False, validators=[_chosen(message)])


def _rating(label: str, low: str, high: str) -> RadioField:
    """A 1-5 rating whose two ends are labelled."""
    ends = {1: f"1 · {low}", 5: f"5 · {high}"}
    choices = [SelectChoice(str(n), ends.get(n, str(n))) for n in range(1, 6)]
    return _radio(label, choices, "Choose a rating from 1 to 5.")


class EvaluationForm(BaseForm):
    """The CE evaluation: objectives met, ratings, commercial bias, balance and evidence, hours spent, practice change
    and comments (objective fields added per course)."""

    objective_fields: list[tuple[str, str, str]] = []  # (field name, objective id, objective text)
    page_order: list[str] = []

    relevance = _rating("Relevance to your practice", "Not relevant", "Highly relevant")
    quality = _rating("Quality of the material", "Poor", "Excellent")
    overall = _rating("Overall rating of the course", "Poor", "Excellent")
    free_of_bias = _radio(
        "Was the content free of commercial bias?",
        [SelectChoice("yes", "Yes"), SelectChoice("no", "No")],
        "Answer yes or no.",
    )
    bias_comment = TextAreaField(
        "If not, where did you see commercial bias?",
        # No Optional(): it would stop the chain on an empty answer before validate_bias_comment runs.
        validators=[Length(max=MAX_COMMENT, message=f"Keep this under {MAX_COMMENT} characters.")],
    )
    evidence_balanced = _radio(
        "Was the content evidence-based and balanced, and clear about what is established and what is not, "
        "including off-label use?",
        [SelectChoice(value, label) for value, label in EVIDENCE_ANSWERS.items()],
        EVIDENCE_UNANSWERED,
    )
    evidence_comment = TextAreaField(
        "If partly or not, what was unbalanced or unclear?",
        # No Optional(), as for bias_comment: validate_evidence_comment must run on an empty answer.
        validators=[Length(max=MAX_COMMENT, message=f"Keep this under {MAX_COMMENT} characters.")],
    )
    # Text, not a number field: a browser sends a number field it cannot read as empty, and this one is optional,
    # so what was typed would be dropped without a word; parse_hours_spent says what is wrong instead.
    hours_spent = StringField(
        "About how many hours did you spend on this course, including reading outside the site? (optional)",
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    practice_change = _radio(
        "Will you change anything in your practice as a result of this course?",
        [SelectChoice(value, label) for value, label in PRACTICE_CHANGE_ANSWERS.items()],
        "Choose the answer closest to your plans.",
    )
    change_plan = TextAreaField(
        "What will you change, or what would stop you? (optional)",
        validators=[Optional(), Length(max=MAX_COMMENT, message=f"Keep this under {MAX_COMMENT} characters.")],
    )
    comments = TextAreaField(
        "Other comments (optional)",
        validators=[Optional(), Length(max=MAX_COMMENT, message=f"Keep this under {MAX_COMMENT} characters.")],
    )
    submit = SubmitField("Submit the evaluation")

    def validate_bias_comment(self, field: Field) -> None:
        """A "no" to the bias question needs a word on where the bias was."""
        if self.free_of_bias.data == "no" and not (field.data or "").strip():
            raise ValidationError("Tell us where you saw commercial bias, so it can be corrected.")

    def validate_evidence_comment(self, field: Field) -> None:
        """A "partly" or "no" to the balance and evidence question needs a word on what was not."""
        if self.evidence_balanced.data in {"partly", "no"} and not (field.data or "").strip():
            raise ValidationError(EVIDENCE_UNEXPLAINED)

    def validate_hours_spent(self, field: Field) -> None:
        """The hours spent, when given, are a number of quarter hours the service takes."""
        try:
            parse_hours_spent(field.data or "")
        except CertificateError as exc:
            raise ValidationError(str(exc)) from None

    def objectives(self) -> list[tuple[Field, str]]:
        """Each objective's field with the objective's text, in the course's order."""
        return [(self[name], text) for name, _id, text in self.objective_fields]

    def answers(self) -> EvaluationAnswers:
        """What the learner answered, for the certificates service."""
        return EvaluationAnswers(
            objectives_met={objective_id: self[name].data for name, objective_id, _text in self.objective_fields},
            relevance=int(self.relevance.data),
            quality=int(self.quality.data),
            overall=int(self.overall.data),
            free_of_bias=self.free_of_bias.data == "yes",
            bias_comment=self.bias_comment.data or "",
            comments=self.comments.data or "",
            practice_change=self.practice_change.data or "",
            change_plan=self.change_plan.data or "",
            evidence_balanced=self.evidence_balanced.data or "",
            evidence_comment=self.evidence_comment.data or "",
            hours_spent=parse_hours_spent(self.hours_spent.data or ""),
        )


def evaluation_form(course: Course) -> EvaluationForm:
    """The evaluation form for a course: one Met / Partly met / Not met question per learning objective."""

    class CourseEvaluationForm(EvaluationForm):
        """The evaluation form with this course's objectives."""

    CourseEvaluationForm.objective_fields = []
    for number, objective in enumerate(course.objectives, start=1):
        # Field names by position: objective ids are free text in course.yaml and need not be identifiers.
        name = f"objective_{number}"
        # WTForms' form class picks up fields set on it after creation (FormMeta.__setattr__).
        question = _radio(f"Objective {number}", OBJECTIVE_CHOICES, "Choose Met, Partly met or Not met.")
        setattr(CourseEvaluationForm, name, question)
        CourseEvaluationForm.objective_fields.append((name, str(objective["id"]), str(objective["text"])))
    # The error summary lists problems in the order the page shows the questions: the objectives come first.
    CourseEvaluationForm.page_order = [name for name, _id, _text in CourseEvaluationForm.objective_fields] + [
        *("relevance", "quality", "overall", "free_of_bias", "bias_comment"),
        *("evidence_balanced", "evidence_comment", "hours_spent", "practice_change", "change_plan", "comments"),
    ]
    return CourseEvaluationForm()


class AttestationForm(BaseForm):
    """The attestation: the hours claimed and the statement, confirmed with a tick."""

    # Text, not a number field: kaptrain.certificates.services.parse_hours says what is wrong in words.
    hours = StringField("Hours you claim", validators=[DataRequired(message="Enter the hours you claim, e.g. 7.5.")])
    note = TextAreaField(
        "How you studied (optional)",
        validators=[Optional(), Length(max=2000, message="Keep this under 2000 characters.")],
        description="For the provider reviewing your claim: for example, time spent reading the references or "
        "taking notes away from the site, which is not measured here. Kept with your claim.",
    )
    confirm = BooleanField(
        ATTESTATION_STATEMENT,
        validators=[DataRequired(message="Tick the box to make the attestation; no certificate is issued without it.")],
    )
    submit = SubmitField("Attest and request my certificate")


def attestation_form(maximum: Decimal) -> AttestationForm:
    """The attestation form, its hours field marked up as quarter hours up to the course's maximum."""
    form = AttestationForm()
    form.hours.render_kw = {
        "type": "number",
        "step": "0.25",
        "min": "0.25",
        "max": f"{maximum.normalize():f}",
        "inputmode": "decimal",
    }
    return form


def upload_limit() -> int:
    """The largest upload the site accepts, in bytes (MAX_CONTENT_LENGTH)."""
    return int(current_app.config["MAX_CONTENT_LENGTH"])


def _within_upload_limit(form: Any, field: Field) -> None:
    """Validator: the file is no larger than the site accepts (a larger request already gets a 413 page)."""
    data = field.data
    if data is not None and len(data.read()) > upload_limit():
        raise StopValidation(f"Choose a file of at most {upload_limit() // (1024 * 1024)} MB.")
    if data is not None:
        data.seek(0)


class CheckFileForm(BaseForm):
    """A certificate file to check: the PDF from this site, or the credential JSON beside it."""

    file = FileField(
        "Certificate file (PDF or JSON)",
        validators=[FileRequired(message="Choose the certificate PDF or its credential JSON."), _within_upload_limit],
        render_kw={"accept": ".pdf,.json,application/pdf,application/json"},
    )
    submit = SubmitField("Check the file")


class FindCodeForm(BaseForm):
    """The verification address, or its code, typed from a certificate (a GET form: it only leads to a page)."""

    class Meta:
        csrf = False

    code = StringField(
        "Verification address, code or certificate number",
        validators=[
            DataRequired(message="Enter the address printed on the certificate, the code at its end, or its number."),
            Length(max=500, message="That is longer than any verification address of this site."),
        ],
    )
    surname = StringField("Holder's surname (with a certificate number)", validators=[Length(max=200)])
    submit = SubmitField("Look it up")
