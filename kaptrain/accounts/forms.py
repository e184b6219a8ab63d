"""Account forms."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from wtforms import (
    BooleanField,
    EmailField,
    Field,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from kaptrain.accounts.models import PROFESSIONS
from kaptrain.accounts.services import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    Profile,
    is_time_zone,
    time_zones,
    zone_countries,
)
from kaptrain.forms import BaseForm


def _password_length(form: Any, field: Field) -> None:
    """Say what is wrong with a password's length, and by how much."""
    n = len(field.data or "")
    if n < MIN_PASSWORD:
        raise ValidationError(
            f"The password is too short: it has {n} character{'' if n == 1 else 's'}, and it needs at least "
            f"{MIN_PASSWORD}. A few words with spaces between them make a long password that is easy to remember."
        )
    if n > MAX_PASSWORD:
        raise ValidationError(f"The password is too long: it has {n} characters; use at most {MAX_PASSWORD}.")


_password_rules = [DataRequired(message="Enter a password."), _password_length]


def _time_zone_choices() -> list[SelectChoice]:
    """The zones grouped by region, each named as people say it, with its country and its offset from UTC today
    ("Denver, United States, UTC-07:00" under America)."""
    choices = [SelectChoice("", "Not chosen (times are shown in UTC)"), SelectChoice("UTC", "UTC")]
    countries = zone_countries()
    now = dt.datetime.now(dt.UTC)
    for zone in time_zones():
        if "/" not in zone:
            continue
        region, *place = zone.split("/")
        label = ", ".join(reversed([p.replace("_", " ") for p in place]))
        country = countries.get(zone, "")
        if country and country not in label:
            label += f", {country}"
        offset = now.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%z")
        label += f", UTC{offset[:3]}:{offset[3:]}"
        choices.append(SelectChoice(zone, label, optgroup=region.replace("_", " ")))
    return choices


def _known_time_zone(form: Any, field: Field) -> None:
    if field.data and not is_time_zone(field.data):
        raise ValidationError("Choose a time zone from the list.")


def _time_zone_field(detect: bool = False) -> SelectField:
    # detect: kaptrain.js preselects the browser's zone while the select is still empty.
    return SelectField(
        "Time zone (optional)",
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
        description="Your name only: your credential (for example LCSW or MD) has its own field below.",
    )
    profession = SelectField(
        "Profession",
        choices=[SelectChoice("", "Choose your profession")] + [SelectChoice(p, p) for p in PROFESSIONS],
        validators=[DataRequired(message="Choose your profession.")],
    )
    credential = StringField(
        "Credential (optional, e.g. LPC, LCSW, PhD, MD, RN)",
        validators=[Optional(), Length(max=100)],
        description="Printed after your name on certificates.",
    )
    licence_number = StringField(
        "Licence number (optional)",
        validators=[Optional(), Length(max=100)],
        description="As the licensing board issued it.",
    )
    jurisdiction = StringField(
        "Licensing jurisdiction (optional)",
        validators=[Optional(), Length(max=100)],
        description="The state, province or country, e.g. Colorado.",
    )
    time_zone = _time_zone_field()

    def validate_full_name(self, field: StringField) -> None:
        """A credential typed after the name would be printed twice ("Dana Ruiz, LCSW, LCSW"): say where it goes."""
        full = (field.data or "").strip()
        credentials = {_letters(part) for part in (self.credential.data or "").split(",")} - {""}
        words = full.split()
        if len(words) > 1 and "," not in words[-2] and _letters(words[-1]) in credentials:  # "Sam Lee LCSW"
            raise ValidationError(
                f"Remove “{words[-1]}” from the end of your name: certificates print your credential after it, "
                "from the Credential field."
            )
        name, comma, tail = full.rpartition(",")
        tail = tail.strip()
        if not comma or not name.strip():
            return
        if _letters(tail) in credentials:
            raise ValidationError(
                f"Remove “, {tail}” from your name: certificates print your credential after it, from the "
                "Credential field."
            )
        if not credentials and _looks_like_credential(tail):
            raise ValidationError(
                f"Enter “{tail}” in the Credential field, not after your name: certificates print it after your "
                "name from there."
            )


# Name suffixes that are not credentials ("Jo Park, Jr.", "Sam Lee, III").
_NAME_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "v"}


def _letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _looks_like_credential(text: str) -> bool:
    """One word of letters (dots, hyphens and slashes between), at least half of them capitals and at least two:
    LCSW, Ph.D., PsyD, MD, LPC-S; not DeShawn, McDonald or Jr."""
    letters = re.sub(r"[^A-Za-z]", "", text)
    capitals = sum(c.isupper() for c in letters)
    return (
        re.fullmatch(r"[A-Za-z][A-Za-z./-]*", text) is not None
        and _letters(text) not in _NAME_SUFFIXES
        and 2 <= len(letters) <= 10
        and capitals >= 2
        and capitals * 2 >= len(letters)
    )


def profile_from(form: ProfileFields) -> Profile:
    """The profile a form sent (after validation)."""
    return Profile(
        full_name=form.full_name.data or "",
        profession=form.profession.data or "",
        credential=form.credential.data or "",
        licence_number=form.licence_number.data or "",
        jurisdiction=form.jurisdiction.data or "",
        time_zone=form.time_zone.data or "",
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
        "Repeat the password",
        validators=[
            DataRequired(message="Type the password again, to be sure it is the one you meant."),
            EqualTo("password", message="The passwords do not match: type the same password in both fields."),
        ],
    )
    time_zone = _time_zone_field(detect=True)
    submit = SubmitField("Create account")

    # The order the page shows the fields in (the form's own order follows the class hierarchy); the error
    # summary lists errors in this order, so it reads like the form.
    page_order = (
        "full_name",
        "email",
        "profession",
        "credential",
        "licence_number",
        "jurisdiction",
        "time_zone",
        "password",
        "confirm",
    )


class LoginForm(BaseForm):
    """Log in."""

    email = EmailField("Email", validators=[DataRequired(message="Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])
    submit = SubmitField("Log in")


class ProfileForm(ProfileFields):
    """Edit your own profile (never role or email); an administrator edits someone's with it too."""

    submit = SubmitField("Save profile")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A zone saved before the list was shortened is still offered, so saving the form does not change it.
        current = self.time_zone.data
        if current and current not in time_zones():
            self.time_zone.choices = [*_time_zone_choices(), SelectChoice(current, current)]


class PasswordForm(BaseForm):
    """Change your password."""

    current_password = PasswordField(
        "Current password", validators=[DataRequired(message="Enter your current password.")]
    )
    password = PasswordField(f"New password (at least {MIN_PASSWORD} characters)", validators=_password_rules)
    confirm = PasswordField(
        "Repeat the new password",
        validators=[
            DataRequired(message="Type the new password again, to be sure it is the one you meant."),
            EqualTo("password", message="The passwords do not match: type the same new password in both fields."),
        ],
    )
    submit = SubmitField("Change password")


class LogoutForm(BaseForm):
    """Log out (a POST, so another site cannot log you out)."""

    submit = SubmitField("Log out")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def email_field(label: str, missing: str = "Enter your email address.") -> EmailField:
    """An email address field: required (`missing` says so), well formed, trimmed."""
    return EmailField(
        label,
        filters=[_strip],  # an address pasted with a space around it is still that address
        validators=[
            DataRequired(message=missing),
            Email(message="Enter a valid email address."),
            Length(max=254, message="Use at most 254 characters."),
        ],
    )


class ForgotPasswordForm(BaseForm):
    """Ask for a password-reset link."""

    email = email_field("Email")
    submit = SubmitField("Send me a reset link")


class ResetPasswordForm(BaseForm):
    """Choose a new password through a reset link."""

    password = PasswordField(f"New password (at least {MIN_PASSWORD} characters)", validators=_password_rules)
    confirm = PasswordField(
        "Repeat the new password",
        validators=[
            DataRequired(message="Type the new password again, to be sure it is the one you meant."),
            EqualTo("password", message="The passwords do not match: type the same new password in both fields."),
        ],
    )
    submit = SubmitField("Set the new password")


class ConfirmEmailForm(BaseForm):
    """Follow a confirmation link (a button, so a mail scanner opening the link confirms nothing)."""

    submit = SubmitField("Confirm this email address")


class DataExportForm(BaseForm):
    """Download everything the site keeps about you (a POST: the download is audited)."""

    submit = SubmitField("Download my data (JSON)")


class CloseAccountForm(BaseForm):
    """Close your own account: the password again, and a tick, since it cannot be undone."""

    current_password = PasswordField(
        "Your password", validators=[DataRequired(message="Enter your password to close your account.")]
    )
    confirm = BooleanField(
        "Yes, close my account: I understand that it cannot be reopened",
        validators=[DataRequired(message="Tick the box to confirm: a closed account cannot be reopened.")],
    )
    submit = SubmitField("Close my account")


class ResendConfirmationForm(BaseForm):
    """Send the confirmation link again."""

    next = HiddenField()
    submit = SubmitField("Send the link again")


class EmailChangeForm(BaseForm):
    """Move the account to another address (it takes effect once the new address is confirmed)."""

    new_email = email_field("New email address")
    current_password = PasswordField(
        "Current password", validators=[DataRequired(message="Enter your current password.")]
    )
    submit = SubmitField("Send a confirmation link to the new address")


def _code_field(label: str, description: str, digits_only: bool = False) -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired(message="Enter the code."),
            Length(max=40, message="A code is 6 digits, or a recovery code of 16 letters and digits."),
        ],
        description=description,
        # A phone's number pad where only the app's digits are asked for (a recovery code has letters too).
        render_kw={"inputmode": "numeric"} if digits_only else None,
    )


class LoginCodeForm(BaseForm):
    """The second step of logging in."""

    code = _code_field(
        "Code",
        "The 6-digit code your authenticator app shows now, or one of your recovery codes.",
    )
    submit = SubmitField("Log in")


class EnableTwoFactorForm(BaseForm):
    """Finish enrolment by typing the code the app shows."""

    code = _code_field("Code from the app", "The 6 digits the app shows for this site now.", digits_only=True)
    current_password = PasswordField(
        "Your password",
        validators=[DataRequired(message="Enter your password.")],
        description="Asked again so that nobody else using this browser can turn it on with their own phone.",
    )
    submit = SubmitField("Turn on two-factor sign-in")


class CurrentPasswordForm(BaseForm):
    """An action that asks for the password again (new recovery codes, turning two-factor sign-in off)."""

    current_password = PasswordField(
        "Current password", validators=[DataRequired(message="Enter your current password.")]
    )
    submit = SubmitField("Continue")
