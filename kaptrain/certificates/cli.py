"""`flask certificates ...`: issue, revoke, re-issue, approve, re-render, remind and export certificates; verify
a certificate file; rotate the signing key or mark one compromised.

Each command checks all its input first, acts through the services (which write the audit entries, here
attributed to the operating-system account), commits once and says what it did. Bad input is one line naming
the argument, exit status 1, and nothing changed. Approvals, re-renders and reminders are jobs
(kaptrain.jobs): inline they run as the progress bar moves; with KAPTRAIN_REDIS_URL they are queued."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain import audit, csvout, jobs
from kaptrain.accounts import services as accounts
from kaptrain.certificates import checking, services, signing, signing_keys, tasks
from kaptrain.certificates.models import Certificate, CertificateFile, CertificateStatus, RevocationReason
from kaptrain.certificates.report import COLUMNS, ce_report
from kaptrain.content.models import Course
from kaptrain.credentials import KeyStoreError
from kaptrain.db import get_session, utcnow

certificates_cli = AppGroup(
    "certificates", help="Issue, revoke, re-issue, approve, re-render, export and verify certificates; manage keys."
)

CATEGORIES = [r.value for r in RevocationReason]


def _bad(argument: str, message: str) -> click.ClickException:
    """The one-line error for bad input: exit status 1, nothing committed."""
    return click.ClickException(f"{argument}: {message}")


def _find(session: Session, code: str) -> Certificate:
    """The certificate with this verification code (or, for convenience, this number)."""
    found = services.find_by_code(session, code) or session.scalar(
        select(Certificate).where(Certificate.number == code)
    )
    if found is None:
        raise _bad("CODE", f"no certificate has the code or number {code!r}.")
    return found


def _name(certificate: Certificate) -> str:
    return certificate.number or f"#{certificate.id} (pending)"


def _queued() -> bool:
    return bool(current_app.config["REDIS_URL"])


def _select(
    session: Session, codes: Sequence[str], everything: bool, all_of: Callable[[], list[Certificate]]
) -> list[Certificate]:
    """The certificates named by CODE arguments, or every one `all_of` gives for --all."""
    if everything and codes:
        raise _bad("--all", "give either --all or certificate codes, not both.")
    if not everything and not codes:
        raise _bad("CODE", "give one or more certificate codes, or --all.")
    if everything:
        return all_of()
    found = [_find(session, code) for code in dict.fromkeys(codes)]  # in order, each once
    return list({c.id: c for c in found}.values())


def _run_jobs(label: str, func: Callable[..., None], ids: list[int], *args: str) -> None:
    """Enqueue one job per certificate with a progress bar (inline, each runs as the bar moves)."""
    with click.progressbar(ids, label=label, file=sys.stderr) as bar:
        for certificate_id in bar:
            jobs.enqueue(func, certificate_id, *args)


@certificates_cli.command("issue")
@click.option("--email", required=True, help="The holder's account email.")
@click.option("--course", "slug", required=True, help="The course's slug, as in modules/<slug>/.")
@click.option("--reason", required=True, help="Why it is issued here, e.g. the record number in the old system.")
@click.option("--hours", default=None, help="The CE hours the record shows (default: the course's maximum).")
@click.option(
    "--completed",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day the record shows the course was completed, YYYY-MM-DD (default: today).",
)
def issue_command(email: str, slug: str, reason: str, hours: str | None, completed: dt.datetime | None) -> None:
    """Issue a certificate for a completion recorded elsewhere (records migrated from another system)."""
    session = get_session()
    user = accounts.find_user_by_email(session, email)
    if user is None:
        raise _bad("--email", f"no account has the email {email!r}.")
    course = session.scalar(select(Course).where(Course.slug == slug))
    if course is None:
        raise _bad("--course", f"no course has the slug {slug!r}.")
    if not reason.strip():
        raise _bad("--reason", "say why the certificate is issued outside the course.")
    try:
        claimed = None if hours is None else services.parse_hours(hours, course.ce_hours)
    except services.CertificateError as exc:
        raise _bad("--hours", str(exc)) from None
    try:
        certificate = services.issue_without_course(
            session,
            user,
            course,
            reason,
            actor_label=audit.cli_actor(),
            hours=claimed,
            completed_on=completed.date() if completed else None,
        )
    except services.CertificateError as exc:
        raise _bad("--completed" if exc.field == "completed_on" else "--email", str(exc)) from None
    session.commit()  # the "issued" email goes out now, after the commit
    done = f"{certificate.hours:f} hours, completed {certificate.completion_day.isoformat()}"
    click.echo(f"Issued {certificate.number} to {user.email} for {course.slug} ({done}).")
    click.echo(f"Verification: {services.verification_url(certificate.code)}")


@certificates_cli.command("revoke")
@click.argument("code")
@click.option("--reason", "note", required=True, help="What happened, for the record (not shown publicly).")
@click.option(
    "--category",
    default=RevocationReason.OTHER.value,
    show_default=True,
    metavar="|".join(CATEGORIES),
    help="The reason the public verification page gives, in words.",
)
def revoke_command(code: str, note: str, category: str) -> None:
    """Revoke an active certificate; its verification page and API say so from now on."""
    if category not in CATEGORIES:
        raise _bad("--category", f"choose one of {', '.join(CATEGORIES)} (not {category!r}).")
    if not note.strip():
        raise _bad("--reason", "say why the certificate is revoked.")
    session = get_session()
    certificate = _find(session, code)
    try:
        services.revoke(session, certificate, RevocationReason(category), note, actor_label=audit.cli_actor())
    except services.CertificateError as exc:
        raise _bad("CODE", str(exc)) from None
    session.commit()
    label = RevocationReason(category).label
    click.echo(f"Revoked {_name(certificate)} ({certificate.holder_name}, {certificate.course_title}): {label}.")


@certificates_cli.command("reissue")
@click.argument("code")
@click.option("--reason", default="", help="What changed, kept in the audit log (e.g. name corrected on request).")
@click.option("--hours", default=None, help="Correct the hours certified (at most those claimed); needs --reason.")
def reissue_command(code: str, reason: str, hours: str | None) -> None:
    """Issue a new version from the holder's current profile (e.g. a corrected name).

    An active certificate is superseded by it; a revoked one stays revoked and the new one is its replacement."""
    session = get_session()
    old = _find(session, code)
    try:
        corrected = services.parse_hours(hours, old.max_hours) if hours is not None else None
        new = services.reissue(session, old, actor_label=audit.cli_actor(), reason=reason, hours=corrected)
    except services.CertificateError as exc:
        raise _bad({"hours": "--hours", "reason": "--reason"}.get(exc.field or "", "CODE"), str(exc)) from None
    session.commit()
    outcome = "stays revoked" if old.status == CertificateStatus.REVOKED else "is superseded"
    click.echo(f"Re-issued {old.number} as {new.number} for {new.holder_name}; {old.number} {outcome}.")
    click.echo(f"Verification: {services.verification_url(new.code)}")


@certificates_cli.command("approve")
@click.argument("codes", nargs=-1, metavar="[CODE]...")
@click.option("--all", "everything", is_flag=True, help="Every certificate waiting for approval.")
def approve_command(codes: tuple[str, ...], everything: bool) -> None:
    """Issue certificates waiting for an administrator's approval, one job each."""
    session = get_session()
    chosen = _select(session, codes, everything, lambda: services.pending_certificates(session))
    for c in chosen:
        if c.status != CertificateStatus.PENDING:
            raise _bad("CODE", f"certificate {_name(c)} is {c.status.value}, not waiting for approval.")
    held = services.held_for_review(session, chosen)
    if held and not everything:
        c = next(c for c in chosen if c.id in held)
        raise _bad("CODE", f"certificate {_name(c)} claims over {services.review_factor()} times the measured "
                   "time: approve it in the admin console, where the hours certified can be lowered.")  # fmt: skip
    if held:
        click.echo(f"Left out {len(held)} claim(s) over {services.review_factor()} times the measured time: approve "
                   "each in the admin console.")  # fmt: skip
        chosen = [c for c in chosen if c.id not in held]
    if not chosen:
        click.echo("No certificates are waiting for approval.")
        return
    ids = [c.id for c in chosen]
    # Nothing to commit: end the read, so that each job's approval commits on its own (and SQLite's
    # write lock is free for it) and the jobs run at once instead of after this command's commit.
    session.rollback()
    _run_jobs("Approving certificates", tasks.approve_job, ids, audit.cli_actor())
    if _queued():
        click.echo(f"Queued {len(ids)} approval(s) for the worker.")
        return
    issued = session.scalars(
        select(Certificate.number).where(Certificate.id.in_(ids), Certificate.status != CertificateStatus.PENDING)
    ).all()
    click.echo(f"Approved and issued {len(issued)} certificate(s): {', '.join(sorted(n or '' for n in issued))}.")
    if len(issued) < len(ids):
        raise click.ClickException(f"{len(ids) - len(issued)} could not be issued; the log says why.")


@certificates_cli.command("rerender")
@click.argument("codes", nargs=-1, metavar="[CODE]...")
@click.option("--all", "everything", is_flag=True, help="Every issued certificate (active, superseded, revoked).")
def rerender_command(codes: tuple[str, ...], everything: bool) -> None:
    """Render certificate PDFs again (e.g. after a template change), keeping their numbers and codes."""
    session = get_session()
    issued = select(Certificate).where(Certificate.status != CertificateStatus.PENDING).order_by(Certificate.id)
    chosen = _select(session, codes, everything, lambda: list(session.scalars(issued)))
    for c in chosen:
        if c.status == CertificateStatus.PENDING:
            raise _bad("CODE", f"certificate {_name(c)} is pending: it has no PDF until it is issued.")
    if not chosen:
        click.echo("No issued certificates to re-render.")
        return
    actor = audit.cli_actor()
    for c in chosen:
        audit.record(session, "certificate.rerender", "certificate", c.id, actor_label=actor, number=c.number)
    ids = [c.id for c in chosen]
    started = utcnow()
    session.commit()  # the audit entries; the jobs then render and commit each PDF
    _run_jobs("Re-rendering certificates", tasks.rerender_job, ids)
    if _queued():
        click.echo(f"Queued {len(ids)} re-render(s) for the worker.")
        return
    rendered = CertificateFile.certificate_id.in_(ids), CertificateFile.rendered_at >= started
    done = session.scalar(select(func.count()).select_from(CertificateFile).where(*rendered)) or 0
    click.echo(f"Re-rendered {done} certificate PDF(s); numbers and codes are unchanged.")
    if done < len(ids):
        raise click.ClickException(f"{len(ids) - done} could not be re-rendered; the log says why.")


@certificates_cli.command("remind-expiring")
@click.option("--days", default="30", show_default=True, help="Remind holders whose certificate expires this soon.")
def remind_expiring_command(days: str) -> None:
    """Email holders whose certificate expires within --days (once per certificate)."""
    if not days.isdigit() or int(days) < 1:
        raise _bad("--days", f"give a whole number of days, 1 or more (not {days!r}).")
    session = get_session()
    ids = tasks.expiring_soon(int(days))
    if not ids:
        click.echo(f"No certificates expire within {days} days without a reminder sent.")
        return
    actor = audit.cli_actor()
    for certificate_id in ids:
        audit.record(
            session, "certificate.expiry_reminder", "certificate", certificate_id, actor_label=actor, days=int(days)
        )
    session.commit()  # the audit entries; each job then emails and notes the reminder
    _run_jobs("Sending expiry reminders", tasks.send_expiry_reminder, ids)
    verb = "Queued" if _queued() else "Sent"
    click.echo(f"{verb} {len(ids)} expiry reminder(s) for certificates expiring within {days} days.")


def _since(raw: str) -> dt.date:
    try:
        return dt.datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise _bad("--since", f"give a date as YYYY-MM-DD, e.g. 2026-01-31 (not {raw!r}).") from None


@certificates_cli.command("export")
@click.option("--since", "since_raw", required=True, metavar="YYYY-MM-DD", help="Certificates issued on or after.")
@click.option("--output", metavar="FILE", help="Write the CSV to this file; default: standard output.")
def export_command(since_raw: str, output: str | None) -> None:
    """Write the CE report as CSV: one row per issued certificate (active, superseded or revoked)."""
    since = _since(since_raw)
    session = get_session()
    rows = list(ce_report(session, since))
    if output is None:
        csvout.write(sys.stdout, COLUMNS, rows)
    else:
        try:
            with Path(output).open("w", encoding="utf-8", newline="") as f:
                csvout.write(f, COLUMNS, rows)
        except OSError as exc:
            raise _bad("--output", f"cannot write {output}: {exc.strerror}.") from None
    # Personal data left the system: who took it, and what.
    audit.record(
        session,
        "certificate.export",
        "certificate",
        None,
        actor_label=audit.cli_actor(),
        since=since.isoformat(),
        rows=len(rows),
        output=output or "stdout",
    )
    session.commit()
    where = output or "standard output"
    click.echo(f"Exported {len(rows)} certificate(s) issued since {since.isoformat()} to {where}.", err=output is None)


# ---------------------------------------------------------------- signed credentials


@certificates_cli.command("verify")
@click.argument("path", metavar="FILE")
@click.option("--online", is_flag=True, help="Also fetch the status list the credential names and check revocation.")
def verify_command(path: str, online: bool) -> None:
    """Check a certificate PDF or credential JSON against the site's keys: valid (exit 0) or why not (exit 1)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _bad("FILE", f"cannot read {path}: {exc.strerror}.") from None
    credential = checking.read_credential(data)
    try:
        if isinstance(credential, dict):
            verdict = checking.check_online(credential) if online else signing.check(None, credential)
        else:
            verdict = credential
    except KeyStoreError as exc:
        raise _bad("CREDENTIAL_KEY_DIR", str(exc)) from None
    click.echo(checking.sentence(verdict))
    if not verdict.ok:
        sys.exit(1)
    if online:
        click.echo("Not revoked, according to the issuer's status list.")
    else:
        click.echo("Revocation was not checked (offline); add --online to fetch the issuer's status list.")


@certificates_cli.command("rotate-key")
def rotate_key_command() -> None:
    """Make a new signing key; the old one is retired and keeps verifying what it signed."""
    session = get_session()
    try:
        new = signing_keys.rotate_key(session, audit.cli_actor())
    except KeyStoreError as exc:
        raise _bad("CREDENTIAL_KEY_DIR", str(exc)) from None
    session.commit()
    click.echo(f"New signing key: {new}")
    click.echo("Certificates signed with earlier keys still verify. Back up the key directory now.")


def _moment(raw: str) -> dt.datetime:
    """A --since value: YYYY-MM-DD or YYYY-MM-DDTHH:MM, in UTC, not in the future."""
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M"):
        try:
            moment = dt.datetime.strptime(raw, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if moment > utcnow():
            raise _bad("--since", f"{raw} is in the future; give the earliest moment the key may have leaked.")
        return moment
    raise _bad("--since", f"give a UTC date as YYYY-MM-DD or YYYY-MM-DDTHH:MM, e.g. 2026-01-31T14:00 (not {raw!r}).")


@certificates_cli.command("compromise-key")
@click.argument("key_id", metavar="KEY_ID")
@click.option("--since", "since_raw", required=True, metavar="YYYY-MM-DD[THH:MM]", help="Earliest possible leak (UTC).")
def compromise_key_command(key_id: str, since_raw: str) -> None:
    """Mark a signing key compromised: what it signed from --since on fails to verify (a current key is rotated)."""
    since = _moment(since_raw)
    session = get_session()
    try:
        current = signing_keys.compromise_key(session, key_id, since, audit.cli_actor())
    except KeyError:
        raise _bad("KEY_ID", f"this site never used the key {key_id!r} (see /credentials/keys.json).") from None
    except KeyStoreError as exc:
        raise _bad("CREDENTIAL_KEY_DIR", str(exc)) from None
    session.commit()
    click.echo(f"Marked {key_id.partition('#')[0]} compromised since {since.isoformat()}.")
    click.echo(f"Credentials it signed from then on no longer verify. New certificates are signed by {current}.")
