"""Account forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from kaptrain.accounts.models import PROFESSIONS
from kaptrain.accounts.services import MAX_PASSWORD, MIN_PASSWORD

_password_rules = [
    DataRequired(),
    Length(min=MIN_PASSWORD, max=MAX_PASSWORD, message=f"Use {MIN_PASSWORD} to {MAX_PASSWORD} characters."),
]


class ProfileFields(FlaskForm):
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
    submit = SubmitField("Create account")


class LoginForm(FlaskForm):
    """Log in."""

    email = EmailField("Email", validators=[DataRequired(message="Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])
    submit = SubmitField("Log in")


class ProfileForm(ProfileFields):
    """Edit your own profile (never role or email)."""

    submit = SubmitField("Save profile")


class PasswordForm(FlaskForm):
    """Change your password."""

    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField(f"New password (at least {MIN_PASSWORD} characters)", validators=_password_rules)
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )
    submit = SubmitField("Change password")


class LogoutForm(FlaskForm):
    """Log out (a POST, so another site cannot log you out)."""

    submit = SubmitField("Log out")
