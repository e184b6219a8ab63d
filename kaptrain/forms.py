"""The base of every form: text fields refuse control characters, and whole-number fields absurd numbers, before
any other check."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import (
    EmailField,
    Field,
    FieldList,
    FileField,
    FormField,
    IntegerField,
    PasswordField,
    SelectFieldBase,
    TextAreaField,
)
from wtforms.csrf.core import CSRFTokenField
from wtforms.validators import DataRequired, Email, StopValidation

# A text area keeps what people type on several lines; every other control character is refused.
MULTILINE_ALLOWED = frozenset("\t\n\r")

# Invisible format characters (Unicode Cf) that change how the text around them is shown: a name stored as
# "Dana <right-to-left override>ztiuR" shows as "Dana Ruitz" on the certificate and in every sentence naming it.
# The direction overrides and isolates are refused everywhere; a single line (a name, a licence) refuses every
# format character but the two joiners that Persian, Indic scripts and emoji need.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
JOINERS = frozenset("\u200c\u200d")
# Characters that draw nothing though they are not format characters: Hangul and halfwidth fillers, the braille
# blank, the combining grapheme joiner, and the variation selectors (a name of them alone prints blank).
BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u180b\u180c\u180d\u180f") | frozenset(
    map(chr, [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
)
MAX_STACKED_MARKS = 3  # combining marks on one letter: Vietnamese needs two; more draws over the line above

SINGLE_LINE_MESSAGE = (
    "Remove control characters (invisible characters such as line breaks, tabs, NUL, zero-width spaces or "
    "text-direction overrides) from this field."
)
MULTILINE_MESSAGE = (
    "Remove control characters (invisible characters such as NUL or text-direction overrides) from this field."
)


def has_control_characters(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """True when the text holds a character of Unicode category Cc that is not in allowed."""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


# The largest value an integer column holds (PostgreSQL's integer); no count on this site comes near it. Past it the
# database refuses the number, and past 10**308 wtforms' NumberRange cannot even compare it (OverflowError).
LARGEST_NUMBER = 2**31 - 1
NUMBER_MESSAGE = "That number is far too large: enter the number you mean."


def whole_number(value: object) -> int | None:
    """A whole number sent as text (an id, a version, a position), or None when it is not one a column holds.

    ASCII digits only: str.isdigit() also accepts "²" (int() then raises) and "١"; int() refuses past 4,300 digits."""
    text = "" if value is None else str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(LARGEST_NUMBER)):
        return None
    number = int(text)
    return number if number <= LARGEST_NUMBER else None


def has_hidden_characters(text: str, multiline: bool) -> bool:
    """True when the text holds a control character (a text area keeps its line breaks and tabs) or a character
    that may hide or reorder what is shown (DIRECTION_CONTROLS; on a single line also any other format character
    but a joiner between two letters of a script that needs it, a line or paragraph separator, a blank that draws
    nothing, or a pile of combining marks)."""
    if has_control_characters(text, MULTILINE_ALLOWED if multiline else frozenset()):
        return True
    if multiline:
        return any(c in DIRECTION_CONTROLS for c in text)
    stacked = 0
    for i, c in enumerate(text):
        category = unicodedata.category(c)
        if c in JOINERS and not _joins_letters(text, i):
            return True
        if (category == "Cf" and c not in JOINERS) or category in ("Zl", "Zp") or c in BLANKS:
            return True
        stacked = stacked + 1 if category in ("Mn", "Me") else 0
        if stacked > MAX_STACKED_MARKS:
            return True
    return False


def _joins_letters(text: str, i: int) -> bool:
    # Persian, the Indic scripts and emoji put a joiner between two characters, none of them ASCII: "Ru<ZWJ>iz"
    # (a look-alike of "Ruiz"), a joiner at either end, or a name of joiners alone is not that.
    before, after = text[i - 1 : i], text[i + 1 : i + 2]
    return bool(before) and bool(after) and not before.isascii() and not after.isascii()


def refuse_control_characters(form: Any, field: Field) -> None:
    """Validator: stop with a field error when the field's text (or any of its texts) holds a control character."""
    multiline = isinstance(field, TextAreaField)
    texts = field.data if isinstance(field.data, list) else [field.data]
    if any(isinstance(text, str) and has_hidden_characters(text, multiline) for text in texts):
        raise StopValidation(MULTILINE_MESSAGE if multiline else SINGLE_LINE_MESSAGE)


def refuse_huge_numbers(form: Any, field: Field) -> None:
    """Validator: stop with a field error when a whole number is beyond any count the site keeps."""
    if isinstance(field.data, int) and abs(field.data) > LARGEST_NUMBER:
        raise StopValidation(NUMBER_MESSAGE)


def _is_checked(field: Field) -> bool:
    # Every field whose value is text: text boxes, hidden fields, and a select that accepts any value sent
    # (validate_choice=False); any other select refuses what is not one of its choices, in its own words.
    # Passwords are only hashed, never stored or shown, and refusing a character could lock out an account whose
    # password already holds one; the CSRF token has its own check.
    if isinstance(field, SelectFieldBase):
        return not getattr(field, "validate_choice", True)
    return not isinstance(field, PasswordField | CSRFTokenField)


def _fields(fields: Any) -> Iterator[Field]:
    """Every field, those in the rows of a list and in sub-forms too (a question's options, a module's references)."""
    for field in fields:
        if isinstance(field, FieldList | FormField):
            yield from _fields(field)
        else:
            yield field


class BaseForm(FlaskForm):
    """Every form in kaptrain: NUL and other control characters never reach a service or the database."""

    class Meta:
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            """The request's form fields, and its files only under the names of the form's file fields: Flask-WTF
            offers every field the uploaded files, so a file sent under a text field's name became its value."""
            data = super().wrap_formdata(form, formdata)  # type: ignore[misc]
            if not isinstance(data, CombinedMultiDict):
                return data
            names = {f.name for f in form if isinstance(f, FileField)}  # its lists have no rows yet: none holds a file
            files = MultiDict([(k, v) for k, v in request.files.items(multi=True) if k in names])
            return CombinedMultiDict([files, request.form])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in _fields(self):
            if isinstance(field, SelectFieldBase) and _is_checked(field):
                # Last for a select: its own check of the value ("choose a time zone from the list") speaks first.
                field.validators = [*field.validators, refuse_control_characters]
            elif _is_checked(field):
                # First in the chain, so a value like "a\x00@b.org" gets this message, not a vaguer one.
                field.validators = [refuse_control_characters, *field.validators]
            if isinstance(field, IntegerField):
                field.validators = [refuse_huge_numbers, *field.validators]


def account_email_field(label: str, whose: str) -> EmailField:
    """An email field that names an existing account (an administrator finds the person by it)."""
    return EmailField(
        label,
        validators=[DataRequired(message=f"Enter the {whose} email."), Email(message="Enter a valid email address.")],
    )
