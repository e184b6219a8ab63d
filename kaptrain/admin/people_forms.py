"""Forms of the people console: the search filters and the account actions."""

from __future__ import annotations

from typing import Any

from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from kaptrain.accounts.forms import email_field
from kaptrain.accounts.models import Role
from kaptrain.admin.directory import STATUSES
from kaptrain.forms import BaseForm

ROLE_CHOICES = [SelectChoice(r.value, r.value.title()) for r in Role]
STATUS_CHOICES = [SelectChoice(s, s.title()) for s in STATUSES]


class PeopleSearchForm(BaseForm):
    """Search and filters for the people list, read from the query string (a GET, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField("Name or email", validators=[Optional(), Length(max=200, message="Use at most 200 characters.")])
    role = SelectField("Role", choices=[SelectChoice("", "Any role"), *ROLE_CHOICES], default="")
    status = SelectField("Status", choices=[SelectChoice("", "Any status"), *STATUS_CHOICES], default="")
    course = SelectField("Enrolled in", choices=[SelectChoice("", "Any course")], default="")
    page = IntegerField("Page", validators=[Optional(), NumberRange(min=1, max=1_000_000, message="Not a page.")])

    def __init__(self, *args: Any, course_choices: list[SelectChoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.course.choices = [SelectChoice("", "Any course"), *course_choices]


class RoleForm(BaseForm):
    """Change a person's role."""

    # The service checks the value and says in words why an unknown role is refused.
    role = SelectField("Role", choices=ROLE_CHOICES, validate_choice=False)
    confirm_role = BooleanField(
        "Yes, change the role: what they may see and do changes, and their sessions end",
        validators=[DataRequired(message="Tick the box to confirm the change of role.")],
    )
    submit = SubmitField("Change role")


class EnrolForm(BaseForm):
    """Enrol the person in a published course they are not enrolled in."""

    # The view says in words why a course is refused (unknown, unpublished, already enrolled).
    course = SelectField(
        "Course", choices=[], validators=[DataRequired(message="Choose a course.")], validate_choice=False
    )
    submit = SubmitField("Enrol")

    def __init__(self, *args: Any, course_choices: list[SelectChoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.course_count = len(course_choices)
        # The only course there is comes chosen; with several, the administrator picks one.
        self.course.choices = (
            course_choices if self.course_count == 1 else [SelectChoice("", "Choose a course"), *course_choices]
        )


class StatusForm(BaseForm):
    """Reactivate an account, or reset its two-factor sign-in (the button says which)."""

    submit = SubmitField("Reactivate")


class DeactivateForm(BaseForm):
    """Deactivate an account, once the box is ticked."""

    confirm_deactivate = BooleanField(
        "Yes, deactivate the account: they can no longer log in",
        validators=[DataRequired(message="Tick the box to confirm deactivating the account.")],
    )
    submit = SubmitField("Deactivate the account")


class CloseAccountForm(BaseForm):
    """Confirm closing an account at the person's request."""

    confirm = BooleanField(
        "The person asked to close their account. Deactivate it and replace their name and email.",
        validators=[DataRequired(message="Tick the box to confirm that the person asked for this.")],
    )
    submit = SubmitField("Close the account")


class InviteForm(BaseForm):
    """Make an account for someone: they get an email to choose their password."""

    full_name = StringField(
        "Full name",
        validators=[DataRequired(message="Enter the person's full name."), Length(max=200)],
        description="As it should appear on certificates; they can correct it themselves later.",
    )
    email = email_field("Email address", "Enter the person's email address.")
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.LEARNER.value)
    submit = SubmitField("Make the account and email the person")
