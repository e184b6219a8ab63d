"""Flask CLI commands: db, content, users, demo, certificates, backup, restore. Each commits once or not at all."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kaptrain import audit, demo_seed, migrate
from kaptrain.accounts import services as accounts
from kaptrain.accounts import twofactor
from kaptrain.accounts.models import Role, User
from kaptrain.admin import settings
from kaptrain.authoring import checks
from kaptrain.backup import backup_command, restore_command
from kaptrain.cache import bump_content_version
from kaptrain.certificates.cli import certificates_cli
from kaptrain.content.files import ContentError, module_sections, read_content, write_content
from kaptrain.content.loader import ImportConflict, export_content, import_content
from kaptrain.db import get_session
from kaptrain.jobs import worker_command

db_cli = AppGroup("db", help="Database schema migrations (Alembic).")
content_cli = AppGroup("content", help="Check, import and export course content files.")
users_cli = AppGroup("users", help="Create and manage accounts.")
demo_cli = AppGroup("demo", help="Demo accounts for trying the site.")

# email, name, role, profession, credential (the credential in its own field, as the profile form asks)
DEMO_ACCOUNTS = (
    ("learner@example.com", "Demo Learner", Role.LEARNER, "Counsellor / therapist", "LPC"),
    ("instructor@example.com", "Demo Instructor", Role.INSTRUCTOR, "Psychologist", "PhD"),
    ("admin@example.com", "Demo Administrator", Role.ADMIN, "Other licensed clinician", ""),
)
DEMO_PASSWORD = "kaptrain-demo-2026"  # noqa: S105 - documented demo credential, never in production


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    for group in (db_cli, content_cli, users_cli, demo_cli, certificates_cli):
        app.cli.add_command(group)
    app.cli.add_command(worker_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


def _engine() -> Engine:
    engine: Engine = current_app.extensions["kaptrain.db"].engine
    return engine


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    try:
        migrate.upgrade(_engine(), revision)
    except migrate.MigrationError as exc:  # rolled back: say why in words (e.g. rows a new constraint refuses)
        raise click.ClickException(str(exc)) from None
    click.echo(f"Database is at {revision}.")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" removes every table)."""
    migrate.downgrade(_engine(), revision)
    click.echo(f"Database is at {revision}.")


@db_cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (review it before committing)."""
    migrate.revision(_engine(), message)


@db_cli.command("check")
def db_check() -> None:
    """Exit 1 when the models and the migrated database disagree."""
    diffs = migrate.pending_model_changes(_engine())
    for d in diffs:
        click.echo(f"  {d}")
    if diffs:
        click.echo("Models and migrations disagree: run `flask --app kaptrain db revision -m ...`.")
        sys.exit(1)
    click.echo("Models and migrations agree.")


def _content_dirs(modules: str | None, quizzes: str | None) -> tuple[Path, Path]:
    return (Path(modules or current_app.config["MODULES_DIR"]), Path(quizzes or current_app.config["QUIZZES_DIR"]))


_dir_options = [
    click.option("--modules", "modules_dir", type=click.Path(file_okay=False), help="Default: modules/"),
    click.option("--quizzes", "quizzes_dir", type=click.Path(file_okay=False), help="Default: quizzes/"),
]


def _with_dirs(f):  # type: ignore[no-untyped-def]
    for opt in reversed(_dir_options):
        f = opt(f)
    return f


def _read_or_exit(modules_dir: str | None, quizzes_dir: str | None):  # type: ignore[no-untyped-def]
    try:
        return read_content(*_content_dirs(modules_dir, quizzes_dir))
    except ContentError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) found; nothing was imported.", err=True)
        sys.exit(1)


@content_cli.command("check")
@_with_dirs
@click.option("--strict", is_flag=True, help="Fail (exit 1) on item-writing warnings too.")
def content_check(modules_dir: str | None, quizzes_dir: str | None, strict: bool) -> None:
    """Validate every course, module and question file (errors exit 1), then run the item-writing checks."""
    courses = _read_or_exit(modules_dir, quizzes_dir)
    warnings = 0
    for c in courses:
        n_q = sum(len(q.questions) for q in c.quizzes)
        click.echo(f"{c.course.slug}: {len(c.modules)} modules, {len(c.quizzes)} quizzes, {n_q} questions")
        for quiz in c.quizzes:
            click.echo(f"  {checks.bank_figures(quiz)}")
        found = checks.course_findings(c.quizzes, {m.meta.slug: module_sections(m) for m in c.modules})
        findings = [f for f in found if not f.is_note]
        for finding in findings:
            click.echo(f"warning: {c.course.slug}/{finding}", err=True)
        warnings += len(findings)
    click.echo("All content files are valid.")
    if warnings:
        click.echo(f"{warnings} item-writing warning(s).", err=True)
        if strict:
            sys.exit(1)


@content_cli.command("import")
@_with_dirs
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace browser drafts and browser-published revisions that the files disagree with (drafts are lost).",
)
def content_import(modules_dir: str | None, quizzes_dir: str | None, overwrite: bool) -> None:
    """Load the files into the database in one transaction: all or nothing."""
    courses = _read_or_exit(modules_dir, quizzes_dir)
    session = get_session()
    steps = sum(len(c.modules) + len(c.quizzes) for c in courses)
    try:
        with click.progressbar(length=steps, label="Importing content", file=sys.stderr) as bar:
            stats = import_content(session, courses, progress=lambda _: bar.update(1), overwrite=overwrite)
    except ImportConflict as exc:
        session.rollback()
        for conflict in exc.report.conflicts:
            click.echo(conflict, err=True)
        click.echo(
            f"{len(exc.report.conflicts)} item(s) have work from the browser that these files would replace; nothing "
            "was imported. Bring that work into the files with `flask --app kaptrain content export .`, or run the "
            "import again with --overwrite to replace it.",
            err=True,
        )
        sys.exit(1)
    audit.record(session, "content.import", "content", None, counts=dict(stats), overwrite=overwrite)
    notes = settings.shadowed_by_console(session, ((c.course.slug, c.course.certificate.approval) for c in courses))
    session.commit()
    summary = ", ".join(f"{v} {k}" for k, v in sorted(stats.items())) or "nothing to do"
    click.echo(f"Imported: {summary}.")
    for note in notes:
        click.echo(note)


@content_cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
def content_export(directory: str) -> None:
    """Write the database's published content to DIRECTORY/modules and DIRECTORY/quizzes."""
    root = Path(directory)
    configured = _content_dirs(None, None)
    # Exporting into the site's own content folders brings browser work into the files: record that, so the next
    # import of those files does not report it as a conflict.
    into_site = ((root / "modules").resolve(), (root / "quizzes").resolve()) == tuple(p.resolve() for p in configured)
    session = get_session()
    written = write_content(export_content(session, mark_exported=into_site), root / "modules", root / "quizzes")
    session.commit()
    click.echo(f"Wrote {len(written)} files under {root}.")


@content_cli.command("refresh")
def content_refresh() -> None:
    """Give the content a new version, so every server reloads its cached copy (after SQL run by hand)."""
    session = get_session()
    bump_content_version(session)
    session.commit()
    click.echo("Every server reloads the course content on its next request.")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Full name as it should appear on certificates.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.LEARNER.value)
@click.option("--profession", default="Other licensed clinician", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, name: str, role: str, profession: str, password_stdin: bool) -> None:
    """Create an account (password from a prompt, or --password-stdin); its email counts as confirmed."""
    session = get_session()
    try:
        user = accounts.create_user(
            session,
            email,
            _read_password(password_stdin),
            accounts.Profile(full_name=name, profession=profession),
            Role(role),
            confirmed=True,  # the operator vouches for the address
        )
    except accounts.AccountError as exc:
        raise click.ClickException(f"{exc.field or 'account'}: {exc}") from None
    session.commit()
    click.echo(f"Created {user.role.value} {user.email}.")


def _account(email: str) -> User:
    user = accounts.find_user_by_email(get_session(), email)
    if user is None:
        raise click.ClickException(f"No account with email {email}.")
    return user


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def users_set_role(email: str, role: str) -> None:
    """Change an account's role (audited; the last active admin cannot be demoted)."""
    session = get_session()
    user = _account(email)
    try:
        changed = accounts.set_role(session, user, role, actor=None)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"{user.email} is now {role}." if changed else f"{user.email} was already {role}.")


@users_cli.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Stop an account from logging in; its records stay (audited)."""
    _change_status(email, accounts.deactivate, "deactivated")


@users_cli.command("reactivate")
@click.argument("email")
def users_reactivate(email: str) -> None:
    """Let a deactivated account log in again (audited)."""
    _change_status(email, accounts.reactivate, "reactivated")


@users_cli.command("close")
@click.argument("email")
def users_close(email: str) -> None:
    """Close an account at the person's request: deactivate and pseudonymise; CE records stay (audited)."""
    _change_status(email, accounts.close_account, "closed: name and email replaced, records kept")


def _change_status(email: str, change: Callable[[Session, User, User | None], None], done: str) -> None:
    session = get_session()
    user = _account(email)
    try:
        change(session, user, None)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"{user.email} {done}.")


@users_cli.command("reset-2fa")
@click.argument("email")
def users_reset_two_factor(email: str) -> None:
    """Switch off an account's two-factor sign-in after a lost device (audited; they set it up again)."""
    _change_status(email, twofactor.reset, "has two-factor sign-in off: recovery codes void, sessions ended")


@demo_cli.command("create")
def demo_create() -> None:
    """Create the demo learner, instructor and admin (skips any that exist)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("Demo accounts have a published password; they are never created in production.")
    session = get_session()
    created = []
    with click.progressbar(DEMO_ACCOUNTS, label="Demo accounts", file=sys.stderr) as bar:
        for email, name, role, profession, credential in bar:
            if accounts.find_user_by_email(session, email) is None:
                accounts.create_user(
                    session,
                    email,
                    DEMO_PASSWORD,
                    accounts.Profile(full_name=name, profession=profession, credential=credential),
                    role,
                    confirmed=True,
                    published_password=True,  # never in production (above)
                )
                created.append(email)
    session.commit()
    click.echo("Demo accounts (password for each: " + DEMO_PASSWORD + "):")
    for email, _name, role, _profession, _credential in DEMO_ACCOUNTS:
        click.echo(f"  {role.value:<10} {email}{'  (created)' if email in created else ''}")
    click.echo("The instructor and admin set up two-factor sign-in (an authenticator app) at their first login.")


@demo_cli.command("seed")
@click.option("--learners", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--course", "course_slug", help="Course slug; default: the first published course.")
@click.option(
    "--real-certificates",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Certificates issued through the real service (rendered); the rest copy the first one's PDF.",
)
@click.option("--seed", "rng_seed", type=int, default=2026, show_default=True, help="Random seed.")
def demo_seed_command(learners: int, course_slug: str | None, real_certificates: int, rng_seed: int) -> None:
    """Seed learners with realistic progress, graded attempts and certificates, for benchmarks (docs/performance.md)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("Seeded accounts share a published password; they are never created in production.")
    session = get_session()
    try:
        course = demo_seed.find_course(session, course_slug)
        with click.progressbar(length=learners, label="Seeding learners", file=sys.stderr) as bar:
            report = demo_seed.seed(
                session, course, learners, real_certificates=real_certificates, rng_seed=rng_seed, progress=bar.update
            )
    except demo_seed.SeedError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    for line in report.lines():
        click.echo(line)
