"""Administration forms."""

from __future__ import annotations

from typing import Any

from wtforms import (
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from kaptrain.forms import BaseForm, account_email_field


class AccommodationForm(BaseForm):
    """Grant one learner extra time or attempts on one quiz."""

    email = account_email_field("Learner's email", "learner's")
    quiz = SelectField("Quiz", coerce=int, validators=[DataRequired(message="Choose a quiz.")])
    extra_minutes = IntegerField(
        "Extra minutes",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=600, message="Use 0 to 600 minutes.")],
    )
    extra_attempts = IntegerField(
        "Extra attempts",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=20, message="Use 0 to 20 attempts.")],
    )
    note = StringField(
        "Reason (kept on record)",
        validators=[DataRequired(message="Give the reason for this accommodation."), Length(max=500)],
    )
    submit = SubmitField("Save accommodation")


class AccommodationEditForm(BaseForm):
    """Change the terms of a grant in force, or give a withdrawn one again."""

    extra_minutes = AccommodationForm.extra_minutes
    extra_attempts = AccommodationForm.extra_attempts
    note = AccommodationForm.note
    submit = SubmitField("Save changes")


class WithdrawForm(BaseForm):
    """Withdraw a grant: it stops applying at once; the reason is kept."""

    reason = StringField(
        "Reason for withdrawing",
        validators=[DataRequired(message="Give the reason for withdrawing this accommodation."), Length(max=500)],
    )
    submit = SubmitField("Withdraw accommodation")


class AuditFilterForm(BaseForm):
    """Filters of the audit log (a GET form: bookmarkable, no CSRF token)."""

    class Meta:
        csrf = False

    action = StringField("Action", validators=[Optional(), Length(max=60)])
    actor = StringField("Who (name, email or CLI account)", validators=[Optional(), Length(max=200)])
    subject_type = StringField("Record type", validators=[Optional(), Length(max=60)])
    subject_id = IntegerField("Record number", validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    date_from = DateField("From (UTC)", validators=[Optional()])
    date_to = DateField("To (UTC, inclusive)", validators=[Optional()])

    def validate_date_to(self, field: DateField) -> None:
        """Refuse a range that ends before it starts."""
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date: swap them or change one.")


PAGE_SIZE_CHOICES = [SelectChoice("", "The server's default"), SelectChoice("A4"), SelectChoice("Letter")]
APPROVAL_CHOICES = [
    SelectChoice("", "As the course file says"),
    SelectChoice("automatic", "Automatic"),
    SelectChoice("manual", "Manual (an administrator approves)"),
]


class SettingsForm(BaseForm):
    """Site settings printed on certificates; an empty field means the default applies."""

    provider_name = StringField("Provider name", validators=[Optional(), Length(max=300)])
    accreditation_statement = TextAreaField("Accreditation statement", validators=[Optional(), Length(max=2000)])
    signatory_name = StringField("Signatory name", validators=[Optional(), Length(max=200)])
    signatory_title = StringField("Signatory title", validators=[Optional(), Length(max=200)])
    certificate_page_size = SelectField("Certificate paper size", choices=PAGE_SIZE_CHOICES)
    submit = SubmitField("Save settings")


def settings_form(course_slugs: list[tuple[str, str]], **kwargs: Any) -> SettingsForm:
    """The settings form with one approval-mode field per course (slug, title)."""

    class _Form(SettingsForm):
        pass

    for slug, title in course_slugs:
        field = SelectField(f"Approval of certificates: {title}", choices=APPROVAL_CHOICES)
        setattr(_Form, approval_field(slug), field)
    return _Form(**kwargs)


def approval_field(slug: str) -> str:
    """The form field name of one course's approval mode."""
    return "approval__" + slug.replace("-", "_")
