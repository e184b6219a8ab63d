"""Administration forms."""

from __future__ import annotations

from wtforms import EmailField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from kaptrain.forms import BaseForm


class AccommodationForm(BaseForm):
    """Grant one learner extra time or attempts on one quiz."""

    email = EmailField(
        "Learner's email",
        validators=[DataRequired(message="Enter the learner's email."), Email(message="Enter a valid email address.")],
    )
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
    note = StringField("Reason (kept on record)", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Save accommodation")
