"""Backup and restore of a SQLite site: the database (with the certificate PDFs it stores) and the uploaded images,
as one bundle; `flask --app kaptrain backup FILE` and `restore FILE`.

The database is copied with SQLite's online backup API in a single step: one read transaction, so the copy is
one committed state of the database, and in WAL mode neither readers nor writers of the running site wait for
it. Uploads are copied after the database, so every upload the copy names is already on disk (files are written
before their row commits). The signing keys are deliberately NOT in the bundle: they are secrets and are backed
up apart, encrypted (README, "Backup and restore"). PostgreSQL sites use pg_dump / pg_restore instead.

A bundle is a gzipped tar: kaptrain-backup.json (format, time, schema revision, SHA-256 and row counts of the
database), kaptrain.sqlite3 (journal mode DELETE: a single self-contained file) and uploads/<name>."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

from kaptrain.migrate import alembic_config

FORMAT = "kaptrain-backup"
FORMAT_VERSION = 1
MANIFEST = "kaptrain-backup.json"
DATABASE = "kaptrain.sqlite3"
UPLOADS = "uploads"
SQLITE_HEADER = b"SQLite format 3\x00"
DOCS = "README.md, section 'Backup and restore'"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


class BackupError(RuntimeError):
    """The backup or restore cannot go ahead; nothing was changed."""


@dataclass(frozen=True)
class Manifest:
    """What a bundle holds, written as kaptrain-backup.json."""

    created_at: str
    revision: str
    sha256: str
    row_counts: dict[str, int]
    uploads: int

    def as_json(self) -> bytes:
        """The manifest file's bytes."""
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.__dict__}
        return json.dumps(body, indent=2, sort_keys=True).encode()


def sqlite_path(database_url: str) -> Path:
    """The database file of a SQLite URL; refuses PostgreSQL (and anything else) with the documented way."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"This site's database is {url.get_backend_name()}, not SQLite: back it up with pg_dump -Fc and restore "
            f"it with pg_restore, as described in {DOCS}. The backup and restore commands handle SQLite only."
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("The database is in memory: there is no file to back up or restore.")
    return Path(url.database)


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows in every table (what a restore is compared against)."""
    names = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    ]
    # The table names come from sqlite_master, never from input.
    return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in sorted(names)}  # noqa: S608


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _known_revisions() -> tuple[set[str], str | None]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}, script.get_current_head()


def check_database(path: Path, label: str | None = None) -> str:
    """Check that a file is a sound kaptrain SQLite database (label: the name to give in messages); its revision."""
    name = label or path.name
    with path.open("rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{name} is not a SQLite database.")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"{name} is damaged (SQLite integrity check failed).")
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.OperationalError:  # no such table
            rows = []
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name} is damaged: it cannot be read as a SQLite database ({exc}).") from None
    finally:
        conn.close()
    if len(rows) != 1:
        raise BackupError(f"{name} is a SQLite database but not a kaptrain one (it has no schema version).")
    revision = str(rows[0][0])
    if revision not in _known_revisions()[0]:
        raise BackupError(
            f"{name} has schema revision {revision}, which this version of kaptrain does not know: it was made "
            "by a newer kaptrain (upgrade the code first) or by another application."
        )
    return revision


def _snapshot(source: Path, target: Path) -> None:
    """Copy a live database with the online backup API, in one step (one read transaction)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=-1)  # -1: every page in one step, so the copy is one committed state
        dst.execute("PRAGMA journal_mode=DELETE")  # a single file, whatever the site's journal mode
    finally:
        dst.close()
        src.close()


def _upload_files(upload_dir: Path | None) -> list[Path]:
    if upload_dir is None or not upload_dir.is_dir():
        return []
    return sorted(
        p for p in upload_dir.iterdir() if p.is_file() and not p.is_symlink() and _SAFE_NAME.fullmatch(p.name)
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def create_backup(database: Path, upload_dir: Path | None, target: Path) -> Manifest:
    """Write a bundle of the database and the uploads to target (atomically: a partial file is never left)."""
    if not database.exists():
        raise BackupError(f"There is no database at {database}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".kaptrain-backup-") as tmp:
        copy = Path(tmp) / DATABASE
        _snapshot(database, copy)
        revision = check_database(copy)
        with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
            counts = row_counts(conn)
        uploads = _upload_files(upload_dir)
        manifest = Manifest(
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), revision, _sha256(copy), counts, len(uploads)
        )
        partial = Path(tmp) / "bundle.tar.gz"
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            _add_bytes(tar, MANIFEST, manifest.as_json())
            tar.add(copy, DATABASE)
            for path in uploads:
                tar.add(path, f"{UPLOADS}/{path.name}")
        partial.chmod(0o600)  # personal data: readable by the operator only
        os.replace(partial, target)
    return manifest


@dataclass(frozen=True)
class Unpacked:
    """A checked backup, unpacked into a scratch folder."""

    database: Path
    revision: str
    manifest: dict[str, Any] | None  # None for a plain SQLite file (e.g. from `sqlite3 ... ".backup FILE"`)
    uploads: Path | None


def unpack(source: Path, scratch: Path) -> Unpacked:
    """Check a bundle (or a plain SQLite database file) and unpack it; refuses anything else."""
    if not source.is_file():
        raise BackupError(f"{source} does not exist.")
    with source.open("rb") as f:
        plain = f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    if plain:
        copy = scratch / DATABASE
        shutil.copyfile(source, copy)
        return Unpacked(copy, check_database(copy, source.name), None, None)
    try:
        tar = tarfile.open(source, "r:*")  # closed by the with below
    except (tarfile.TarError, OSError):
        raise BackupError(f"{source.name} is neither a kaptrain backup nor a SQLite database.") from None
    with tar:
        try:
            members = tar.getmembers()
            manifest_member = next((m for m in members if m.name == MANIFEST), None)
            if manifest_member is None or not manifest_member.isfile():
                raise BackupError(f"{source.name} is an archive but not a kaptrain backup (no {MANIFEST}).")
            for m in members:
                folder, _, name = m.name.partition("/")
                if not m.isfile() or not (
                    m.name in (MANIFEST, DATABASE) or (folder == UPLOADS and _SAFE_NAME.fullmatch(name))
                ):
                    raise BackupError(
                        f"{source.name} holds an unexpected entry {m.name!r}; it was not made by kaptrain."
                    )
            tar.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{source.name} is damaged: {exc}") from None
    try:
        manifest = json.loads((scratch / MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{source.name}: {MANIFEST} is not valid JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source.name} is not a kaptrain backup (its manifest names another format).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{source.name} is backup format {manifest.get('format_version')}; this kaptrain reads {FORMAT_VERSION}."
        )
    database = scratch / DATABASE
    if not database.is_file():
        raise BackupError(f"{source.name} holds no database.")
    if _sha256(database) != manifest.get("sha256"):
        raise BackupError(
            f"{source.name}: the database does not match the checksum in its manifest (damaged or altered)."
        )
    revision = check_database(database, f"{source.name} ({DATABASE})")
    uploads = scratch / UPLOADS
    uploads.mkdir(exist_ok=True)
    return Unpacked(database, revision, manifest, uploads)


def _restore_database(source: Path, live: Path) -> None:
    """Overwrite the live database with the backup's pages through the backup API (connections stay valid)."""
    live.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(live, timeout=30)
    try:
        src.backup(dst, pages=-1)  # takes the write lock once; readers of the site see the restored state next
        if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"The restored database at {live} failed its integrity check.")
        _new_page_epoch(dst)
    finally:
        dst.close()
        src.close()


def _new_page_epoch(conn: sqlite3.Connection) -> None:
    """Give the restored database a page epoch no running server has seen (kaptrain.pagecache): the restored
    learners' page versions go back in time, so pages a server kept under them must never be served again."""
    with contextlib.suppress(sqlite3.OperationalError):  # a backup from before migration 0011 has no such table
        with conn:
            conn.execute("UPDATE cache_epochs SET version = ? WHERE name = 'pages'", (secrets.randbelow(2**62),))


def _replace_uploads(restored: Path, upload_dir: Path) -> None:
    """Swap the upload folder for the backup's (renames on one file system, so it is never half-copied)."""
    upload_dir.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(dir=upload_dir.parent, prefix=f".{upload_dir.name}-restoring-"))
    for path in restored.iterdir():
        shutil.copy2(path, incoming / path.name)
    old = upload_dir.parent / f".{upload_dir.name}-replaced"
    shutil.rmtree(old, ignore_errors=True)
    if upload_dir.exists():
        upload_dir.rename(old)
    incoming.rename(upload_dir)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    revision: str
    head: str | None
    created_at: str | None
    uploads: int | None  # None: the backup had no uploads folder and the site's were left as they were
    safety_copy: Path | None


def restore_backup(source: Path, database: Path, upload_dir: Path | None, safety_dir: Path | None) -> RestoreReport:
    """Check source, save the current state to safety_dir (unless None), then restore the database and uploads."""
    with tempfile.TemporaryDirectory(
        prefix=".kaptrain-restore-", dir=database.parent if database.parent.exists() else None
    ) as tmp:
        unpacked = unpack(source, Path(tmp))
        safety = None
        if safety_dir is not None and database.exists():
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            safety = safety_dir / f"kaptrain-before-restore-{stamp}.tar.gz"
            create_backup(database, upload_dir, safety)
        _restore_database(unpacked.database, database)
        restored_uploads = None
        if unpacked.uploads is not None and upload_dir is not None:
            _replace_uploads(unpacked.uploads, upload_dir)
            restored_uploads = sum(1 for _ in unpacked.uploads.iterdir())
    manifest = unpacked.manifest or {}
    return RestoreReport(unpacked.revision, _known_revisions()[1], manifest.get("created_at"), restored_uploads, safety)


def _site_paths() -> tuple[Path, Path | None, Path]:
    config = current_app.config
    upload_dir = Path(config["UPLOAD_DIR"]) if config.get("UPLOAD_DIR") else None
    return sqlite_path(config["DATABASE_URL"]), upload_dir, Path(config["CREDENTIAL_KEY_DIR"])


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(file: Path) -> None:
    """Back up the SQLite database (with certificate PDFs) and uploads to FILE, safely while the site runs."""
    try:
        database, upload_dir, key_dir = _site_paths()
        manifest = create_backup(database, upload_dir, file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    counts = manifest.row_counts
    click.echo(
        f"Backed up {database} (schema {manifest.revision}) to {file}: {counts.get('users', 0)} accounts, "
        f"{counts.get('certificates', 0)} certificates, {counts.get('certificate_files', 0)} certificate PDFs, "
        f"{manifest.uploads} uploaded files."
    )
    click.echo(
        f"Not included: the signing keys in {key_dir}. They are secrets: back them up separately, encrypted, and "
        f"never next to this file ({DOCS})."
    )


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--no-safety-copy", is_flag=True, help="Do not save the current database and uploads before replacing them."
)
@with_appcontext
def restore_command(file: Path, yes: bool, no_safety_copy: bool) -> None:
    """Replace the SQLite database and uploads with a backup made by `backup` (stop the site first)."""
    try:
        database, upload_dir, key_dir = _site_paths()
        with tempfile.TemporaryDirectory() as tmp:
            unpack(file, Path(tmp))  # refuse a bad file before asking anything
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    if not yes:
        click.confirm(f"Replace {database} and {upload_dir or 'no upload folder'} with {file}?", abort=True)
    current_app.extensions["kaptrain.db"].engine.dispose()  # no connection of ours holds the old pages
    try:
        report = restore_backup(file, database, upload_dir, None if no_safety_copy else database.parent)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    if report.safety_copy:
        click.echo(f"The state before the restore was saved to {report.safety_copy}.")
    made = f" made {report.created_at}" if report.created_at else ""
    uploads = "the upload folder left as it was" if report.uploads is None else f"{report.uploads} uploaded files"
    click.echo(f"Restored {database} from {file}{made} (schema {report.revision}), {uploads}.")
    if report.revision != report.head:
        click.echo(
            f"The backup's schema is older than this code's ({report.head}): run `flask --app kaptrain db upgrade`."
        )
    click.echo(f"The signing keys in {key_dir} are not in backups: restore them separately if they were lost ({DOCS}).")
