"""The base of every form: text fields refuse control characters before any other check."""

from __future__ import annotations

import unicodedata
from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, StringField, TextAreaField
from wtforms.csrf.core import CSRFTokenField
from wtforms.validators import DataRequired, Email, StopValidation

# A text area keeps what people type on several lines; every other control character is refused.
MULTILINE_ALLOWED = frozenset("\t\n\r")

SINGLE_LINE_MESSAGE = (
    "Remove control characters (invisible characters such as line breaks, tabs or NUL) from this field."
)
MULTILINE_MESSAGE = "Remove control characters (invisible characters such as NUL) from this field."


def has_control_characters(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """True when the text holds a character of Unicode category Cc that is not in allowed."""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def refuse_control_characters(form: Any, field: Field) -> None:
    """Validator: stop with a field error when the field's text holds a control character."""
    multiline = isinstance(field, TextAreaField)
    text = field.data
    if isinstance(text, str) and has_control_characters(text, MULTILINE_ALLOWED if multiline else frozenset()):
        raise StopValidation(MULTILINE_MESSAGE if multiline else SINGLE_LINE_MESSAGE)


def _is_checked(field: Field) -> bool:
    # Passwords are only hashed, never stored or shown, and refusing a character could lock out an
    # account whose password already holds one; the CSRF token has its own check.
    return isinstance(field, StringField) and not isinstance(field, PasswordField | CSRFTokenField)


class BaseForm(FlaskForm):
    """Every form in kaptrain: NUL and other control characters never reach a service or the database."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self:
            if _is_checked(field):
                # First in the chain, so a value like "a\x00@b.org" gets this message, not a vaguer one.
                field.validators = [refuse_control_characters, *field.validators]


def account_email_field(label: str, whose: str) -> EmailField:
    """An email field that names an existing account (an administrator finds the person by it)."""
    return EmailField(
        label,
        validators=[DataRequired(message=f"Enter the {whose} email."), Email(message="Enter a valid email address.")],
    )
