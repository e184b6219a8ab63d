"""Forms of the certificates console and the reports page."""

from __future__ import annotations

import datetime as dt

from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from kaptrain.certificates.models import CertificateStatus, RevocationReason
from kaptrain.forms import BaseForm, account_email_field


class CertificateSearchForm(BaseForm):
    """Search the certificates (GET; no CSRF token needed to read)."""

    class Meta:
        csrf = False

    q = StringField("Number, code, holder or course", validators=[Optional(), Length(max=200)])
    status = SelectField(
        "Status",
        choices=[SelectChoice("", "Any status")] + [SelectChoice(s.value, s.value.title()) for s in CertificateStatus],
        default="",  # not Optional(): it let whitespace through as a status, past the check of the choices
    )
    page = IntegerField("Page", default=1, validators=[Optional(), NumberRange(min=1, max=100_000)])


class ApproveForm(BaseForm):
    """Approve the chosen pending certificates, or all of them."""

    selected = SubmitField("Approve selected")
    everything = SubmitField("Approve all")


class ApproveOneForm(BaseForm):
    """Approve one pending certificate, for the hours claimed or fewer (saying why)."""

    hours = StringField("CE hours to certify", validators=[DataRequired(message="Enter the hours to certify.")])
    reason = TextAreaField("Why fewer hours than claimed (kept on record)", validators=[Length(max=1000)])
    # The holder's details as the page showed them (services.holder_digest): changed since, the approval waits.
    holder = HiddenField()
    submit = SubmitField("Approve and issue")


class ReturnClaimForm(BaseForm):
    """Send a learner's claim back instead of approving it, with a note the learner reads."""

    note = TextAreaField(
        "Note to the learner",
        validators=[DataRequired(message="Tell the learner why their claim is returned."), Length(max=2000)],
        description="Why, and what to do: for example, how they studied away from the site, or to claim the hours "
        "they can account for. The learner is emailed this note and sees it when they attest again.",
    )
    submit = SubmitField("Return the claim to the learner")


class DeclineCorrectionForm(BaseForm):
    """Answer a holder's correction request without re-issuing, with a note the holder reads."""

    note = TextAreaField(
        "Note to the holder",
        validators=[DataRequired(message="Tell the holder why the certificate is not re-issued."), Length(max=2000)],
        description="Why, and what to do: for example, that the licence number is not on the board's register, and "
        "to correct it on their profile and ask again. The holder is emailed this note and sees it on My learning.",
        id="decline-note",  # the revoke form on the same page has its own "note"
    )
    submit = SubmitField("Decline the request")


class IssueForm(BaseForm):
    """Issue a certificate for a completion recorded elsewhere."""

    email = account_email_field("Holder's email", "holder's")
    course = SelectField("Course", coerce=int, validators=[DataRequired(message="Choose a course.")])
    # Text, not a number field: kaptrain.certificates.services.parse_hours says what is wrong in words.
    hours = StringField(
        "CE hours the record shows", validators=[DataRequired(message="Enter the hours to certify, e.g. 7.5.")]
    )
    completed_on = DateField(
        "Completed on",
        # InputRequired, not DataRequired: a day typed in another form gets the parser's own "not a valid date".
        validators=[InputRequired(message="Enter the day the record shows the course was completed.")],
    )
    reason = TextAreaField(
        "Reason (kept on record)",
        validators=[DataRequired(message="Give the reason for issuing outside the course."), Length(max=1000)],
    )
    submit = SubmitField("Issue certificate")


class RevokeForm(BaseForm):
    """Revoke an active certificate: a category and a note are both required."""

    reason = SelectField(
        "Reason",
        choices=[SelectChoice("", "Choose a reason")]
        + [SelectChoice(r.value, r.label.capitalize()) for r in RevocationReason],
        validators=[DataRequired(message="Choose the reason for revoking.")],
    )
    note = TextAreaField(
        "Note (kept on record)",
        validators=[DataRequired(message="Explain why the certificate is revoked."), Length(max=1000)],
    )
    confirm_revoke = BooleanField(
        "Yes, revoke it: it stops being valid at once, its earlier versions too, and the holder is emailed",
        validators=[DataRequired(message="Tick the box to confirm the revocation: it cannot be undone.")],
    )
    submit = SubmitField("Revoke certificate")


class ReissueForm(BaseForm):
    """Re-issue from the holder's current profile, saying why (kept in the audit log)."""

    reason = TextAreaField(
        "What changed (kept on record)",
        validators=[
            DataRequired(message="Say why it is re-issued, e.g. the holder's name was corrected."),
            Length(max=1000),
        ],
        id="reissue-reason",  # the revoke form on the same page has its own "reason"
    )
    # Text, not a number field: kaptrain.certificates.services.parse_hours says what is wrong in words.
    hours = StringField("Hours to certify (optional)", validators=[Length(max=20)])
    hours_reason = TextAreaField(
        "Why these hours (when you change them)",
        validators=[Length(max=1000)],
        description="Kept on record, and given in the CE report as the reason for the hours certified: e.g. the "
        "hours the holder showed for study away from the site.",
    )
    confirm_reissue = BooleanField(
        "Yes, issue the new certificate: the holder is emailed it, and a version still in force stops being valid",
        validators=[DataRequired(message="Tick the box to confirm the new certificate.")],
    )
    # The status the page showed: a certificate revoked or re-issued by someone else meanwhile is not re-issued
    # unseen (a replacement for a revocation made a moment ago is a decision of its own).
    seen_status = HiddenField()
    # The holder's details as the page showed them (services.holder_digest): changed since, the re-issue waits, as an
    # approval does, so the new certificate prints what the administrator checked.
    holder = HiddenField()
    submit = SubmitField("Re-issue certificate")


class DateRangeForm(BaseForm):
    """A range of issue dates, inclusive (GET)."""

    class Meta:
        csrf = False

    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    page = IntegerField("Page", default=1, validators=[Optional(), NumberRange(min=1, max=100_000)])

    def validate_date_to(self, field: DateField) -> None:
        """Refuse a range that ends before it starts."""
        start: dt.date | None = self.date_from.data
        if start is not None and field.data is not None and field.data < start:
            raise ValidationError("The end date is before the start date: choose a range that runs forwards.")
