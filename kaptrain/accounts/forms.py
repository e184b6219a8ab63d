"""Account forms."""

from __future__ import annotations

from typing import Any

from wtforms import EmailField, Field, PasswordField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from kaptrain.accounts.models import PROFESSIONS
from kaptrain.accounts.services import MAX_PASSWORD, MIN_PASSWORD, is_time_zone, time_zones
from kaptrain.forms import BaseForm

_password_rules = [
    DataRequired(),
    Length(min=MIN_PASSWORD, max=MAX_PASSWORD, message=f"Use {MIN_PASSWORD} to {MAX_PASSWORD} characters."),
]


def _time_zone_choices() -> list[SelectChoice]:
    return [SelectChoice("", "Not chosen (times are shown in UTC)")] + [SelectChoice(z, z) for z in time_zones()]


def _known_time_zone(form: Any, field: Field) -> None:
    if field.data and not is_time_zone(field.data):
        raise ValidationError("Choose a time zone from the list.")


def _time_zone_field(detect: bool = False) -> SelectField:
    # detect: kaptrain.js preselects the browser's zone while the select is still empty.
    return SelectField(
        "Time zone",
        choices=_time_zone_choices,
        validate_choice=False,  # _known_time_zone says what is wrong in words, not "Not a valid choice"
        validators=[_known_time_zone],
        render_kw={"data-detect-time-zone": True} if detect else None,
    )


class ProfileFields(BaseForm):
    """The fields a clinician fills in about themselves."""

    full_name = StringField(
        "Full name, as it should appear on your certificate",
        validators=[DataRequired(message="Enter your full name."), Length(max=200)],
    )
    profession = SelectField(
        "Profession",
        choices=[SelectChoice("", "Choose your profession")] + [SelectChoice(p, p) for p in PROFESSIONS],
        validators=[DataRequired(message="Choose your profession.")],
    )
    credential = StringField("Credential (e.g. LPC, LCSW, PhD, MD, RN)", validators=[Optional(), Length(max=100)])
    licence_number = StringField("Licence number (optional)", validators=[Optional(), Length(max=100)])
    jurisdiction = StringField(
        "Licensing jurisdiction (optional, e.g. Colorado, Ontario)", validators=[Optional(), Length(max=100)]
    )
    time_zone = _time_zone_field()


class RegisterForm(ProfileFields):
    """Create an account."""

    email = EmailField(
        "Email",
        validators=[
            DataRequired(message="Enter your email address."),
            Email(message="Enter a valid email address."),
            Length(max=254),
        ],
    )
    password = PasswordField(f"Password (at least {MIN_PASSWORD} characters)", validators=_password_rules)
    confirm = PasswordField(
        "Repeat the password", validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")]
    )
    time_zone = _time_zone_field(detect=True)
    submit = SubmitField("Create account")


class LoginForm(BaseForm):
    """Log in."""

    email = EmailField("Email", validators=[DataRequired(message="Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])
    submit = SubmitField("Log in")


class ProfileForm(ProfileFields):
    """Edit your own profile (never role or email)."""

    submit = SubmitField("Save profile")


class PasswordForm(BaseForm):
    """Change your password."""

    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField(f"New password (at least {MIN_PASSWORD} characters)", validators=_password_rules)
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )
    submit = SubmitField("Change password")


class LogoutForm(BaseForm):
    """Log out (a POST, so another site cannot log you out)."""

    submit = SubmitField("Log out")
