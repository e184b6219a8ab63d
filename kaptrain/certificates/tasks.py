"""Certificate jobs (kaptrain.jobs): emails, bulk approval and re-rendering. Each takes ids and commits itself."""

from __future__ import annotations

import datetime as dt

from flask import current_app, render_template
from sqlalchemy import select

from kaptrain import mail
from kaptrain.accounts.models import Role, User
from kaptrain.accounts.services import is_closed, the_sites_team
from kaptrain.certificates import services
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.courses.models import Enrolment
from kaptrain.db import get_session, utcnow


def send_issued_email(certificate_id: int) -> None:
    """Tell the learner their certificate was issued, with the download and verification links."""
    session = get_session()
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.status != CertificateStatus.ACTIVE:
        return  # revoked or replaced before the mail went out: say nothing
    holder = session.get(User, certificate.user_id)
    assert holder is not None
    attestation = services.get_attestation(session, certificate.user_id, certificate.course_id)
    claimed = attestation.hours_claimed if attestation is not None else None
    context = {
        "certificate": certificate,
        "verify_url": services.verification_url(certificate.code),
        "claimed": claimed if claimed is not None and claimed != certificate.hours else None,
    }
    mail.send(
        holder.email,
        f"{_site()}: your {'corrected ' if certificate.supersedes else ''}certificate for {certificate.course_title}",
        render_template("certificates/email/issued.txt", **context),
    )


def _site() -> str:
    # Every email's subject starts with the site's name, as the account emails' do.
    return str(current_app.config["SITE_NAME"])


def send_revoked_email(certificate_id: int) -> None:
    """Tell the holder their certificate was revoked: which one, when, the reason's category (never the internal
    note), and whom to ask."""
    session = get_session()
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.status != CertificateStatus.REVOKED:
        return
    holder = session.get(User, certificate.user_id)
    assert holder is not None
    if is_closed(holder):
        return  # closed at the person's request: the address is a placeholder, nobody reads it
    context = {"certificate": certificate, "team": the_sites_team()}
    mail.send(
        holder.email,
        f"{_site()}: your certificate {certificate.number} was revoked",
        render_template("certificates/email/revoked.txt", **context),
    )


def send_claim_returned_email(enrolment_id: int) -> None:
    """Tell the learner their hours claim came back, with the administrator's note and the way to claim again."""
    session = get_session()
    enrolment = session.get(Enrolment, enrolment_id)
    if enrolment is None or not enrolment.claim_returned_note:
        return  # claimed again before the mail went out
    learner = session.get(User, enrolment.user_id)
    assert learner is not None
    if is_closed(learner):
        return
    context = {"learner": learner, "enrolment": enrolment, "course": enrolment.course, "team": the_sites_team()}
    mail.send(
        learner.email,
        f"{_site()}: your hours claim for {enrolment.course.title} was returned",
        render_template("certificates/email/claim_returned.txt", **context),
    )


def send_correction_requested_email(certificate_id: int) -> None:
    """Tell the site's administrators that a holder asked for a corrected certificate, with the page to answer on."""
    session = get_session()
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.correction_requested_at is None:
        return  # answered before the mail went out
    admins = session.scalars(select(User).where(User.role == Role.ADMIN, User.is_active.is_(True))).all()
    holder = session.get(User, certificate.user_id)
    changes = services.profile_changes(certificate, holder) if holder is not None else []
    body = render_template("certificates/email/correction_requested.txt", certificate=certificate, changes=changes)
    for admin in admins:
        mail.send(admin.email, f"{_site()}: a corrected certificate was asked for ({certificate.number})", body)


def send_correction_declined_email(certificate_id: int) -> None:
    """Tell the holder their correction request was declined, with the administrator's note."""
    session = get_session()
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.correction_declined_at is None:
        return  # asked again before the mail went out
    holder = session.get(User, certificate.user_id)
    assert holder is not None
    if is_closed(holder):
        return
    context = {"holder": holder, "certificate": certificate, "team": the_sites_team()}
    mail.send(
        holder.email,
        f"{_site()}: your request for a corrected certificate {certificate.number}",
        render_template("certificates/email/correction_declined.txt", **context),
    )


def approve_job(certificate_id: int, actor_label: str) -> None:
    """Issue one pending certificate (bulk approval runs one of these per certificate)."""
    session = get_session()
    services.approve_waiting(session, certificate_id, actor_label=actor_label)
    session.commit()


def rerender_job(certificate_id: int) -> None:
    """Render a certificate's PDF again, keeping its number and code (e.g. after a template change)."""
    session = get_session()
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.status == CertificateStatus.PENDING:
        return
    services.render_and_store(session, certificate)
    session.commit()


def send_expiry_reminder(certificate_id: int) -> None:
    """Remind the holder that their certificate expires soon (once per certificate)."""
    session = get_session()
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.status != CertificateStatus.ACTIVE or certificate.expiry_reminded_at:
        return
    holder = session.get(User, certificate.user_id)
    assert holder is not None
    mail.send(
        holder.email,
        f"{_site()}: your certificate for {certificate.course_title} expires soon",
        render_template(
            "certificates/email/expiring.txt",
            certificate=certificate,
            verify_url=services.verification_url(certificate.code),
        ),
    )
    certificate.expiry_reminded_at = utcnow()
    session.commit()


def expiring_soon(days: int, now: dt.datetime | None = None) -> list[int]:
    """Active certificates that expire within `days` and whose holder has not been reminded yet."""
    now = now or utcnow()
    return list(
        get_session().scalars(
            select(Certificate.id).where(
                Certificate.status == CertificateStatus.ACTIVE,
                Certificate.expiry_reminded_at.is_(None),
                Certificate.expires_at.is_not(None),
                Certificate.expires_at > now,
                Certificate.expires_at <= now + dt.timedelta(days=days),
            )
        )
    )
