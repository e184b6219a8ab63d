"""`flask backup` / `flask restore` (kaptrain/backup.py): a SQLite site with a certificate PDF and uploads is backed
up while it is read and written, changed, restored and compared; bad files and PostgreSQL are refused.

These tests make their own SQLite site whatever TEST_DATABASE_URL says: the commands handle SQLite only."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select, text

from kaptrain import backup
from kaptrain.accounts.models import User
from kaptrain.certificates.models import CertificateFile
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.migrate import upgrade
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, make_test_app
from tests.factories import certified, enrolled, make_user

UPLOAD_NAMES = ("0123456789abcdef0123456789abcdef.png", "fedcba9876543210fedcba9876543210.jpg")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite site with the fixture course, two learners and one issued certificate (with its PDF)."""
    folder = tmp_path_factory.mktemp("backup-template")
    app = make_test_app(f"sqlite:///{folder / 'site.sqlite3'}", UPLOAD_DIR=str(folder / "uploads"))
    database = app.extensions["kaptrain.db"]
    upgrade(database.engine)
    session = database.new_session()
    import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
    with app.app_context():
        holder = make_user(session, email="holder@example.org", full_name="Ana Ruiz, LCSW")
        enrolled(session, holder)
        certified(session, holder)
        enrolled(session, make_user(session, email="other@example.org", full_name="Ben Okafor, RN"))
        session.commit()  # in the context: the emails held for the commit are sent from it
    session.close()
    database.engine.dispose()  # checkpoints the WAL: the file alone is the whole database
    return folder


@dataclass
class Site:
    """A copy of the template site: its app, database file and upload folder."""

    app: Flask
    database: Path
    uploads: Path

    def run(self, *args: str) -> Result:
        """A flask command against this site."""
        return self.app.test_cli_runner().invoke(args=list(args))

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Rows from a fresh connection (what the next request would see)."""
        with sqlite3.connect(self.database) as conn:
            return conn.execute(sql).fetchall()

    def counts(self) -> dict[str, int]:
        """Rows in every table."""
        with sqlite3.connect(self.database) as conn:
            return backup.row_counts(conn)

    def upload_files(self) -> dict[str, bytes]:
        """The upload folder's files and contents."""
        return {p.name: p.read_bytes() for p in sorted(self.uploads.iterdir())}


@pytest.fixture
def site(template: Path, tmp_path: Path) -> Iterator[Site]:
    """A fresh copy of the template site, with two uploaded files."""
    shutil.copyfile(template / "site.sqlite3", tmp_path / "site.sqlite3")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for n, name in enumerate(UPLOAD_NAMES):
        (uploads / name).write_bytes(bytes([n]) * 1000)
    app = make_test_app(f"sqlite:///{tmp_path / 'site.sqlite3'}", UPLOAD_DIR=str(uploads))
    yield Site(app, tmp_path / "site.sqlite3", uploads)
    app.extensions["kaptrain.db"].engine.dispose()


def pdf_digest(site: Site) -> str:
    """SHA-256 of the stored certificate PDF."""
    ((pdf,),) = site.query("SELECT pdf FROM certificate_files")
    return hashlib.sha256(pdf).hexdigest()  # type: ignore[arg-type]


def test_backup_changes_restore_and_compare(site: Site, tmp_path: Path) -> None:
    before_counts, before_uploads, before_pdf = site.counts(), site.upload_files(), pdf_digest(site)
    assert before_counts["certificate_files"] == 1 and before_counts["users"] == 2
    bundle = tmp_path / "backups" / "site.tar.gz"

    made = site.run("backup", str(bundle))
    assert made.exit_code == 0, made.output
    assert "2 accounts, 1 certificates, 1 certificate PDFs, 2 uploaded files" in made.output
    assert "Not included: the signing keys" in made.output
    assert bundle.stat().st_mode & 0o777 == 0o600

    # Change things: a row, a new account, the stored PDF, and the uploads.
    with sqlite3.connect(site.database) as conn:
        conn.execute("UPDATE users SET full_name = 'Changed Name' WHERE email = 'holder@example.org'")
        conn.execute("UPDATE certificate_files SET pdf = X'00'")
    with site.app.app_context():
        session = site.app.extensions["kaptrain.db"].new_session()
        make_user(session, email="later@example.org")
        session.commit()
        session.close()
    (site.uploads / UPLOAD_NAMES[0]).unlink()
    (site.uploads / "00000000000000000000000000000000.gif").write_bytes(b"new")
    assert site.counts() != before_counts

    restored = site.run("restore", str(bundle), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "2 uploaded files" in restored.output and "before the restore was saved to" in restored.output

    assert site.counts() == before_counts
    assert site.query("SELECT full_name FROM users WHERE email = 'holder@example.org'") == [("Ana Ruiz, LCSW",)]
    assert site.query("SELECT count(*) FROM users WHERE email = 'later@example.org'") == [(0,)]
    assert pdf_digest(site) == before_pdf
    assert site.upload_files() == before_uploads
    with sqlite3.connect(site.database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # still the site's mode

    # The site's own engine (connections opened before the restore) sees the restored data, and the app works.
    with site.app.app_context():
        session = site.app.extensions["kaptrain.db"].new_session()
        names = session.scalars(select(User.full_name).order_by(User.id)).all()
        assert names == ["Ana Ruiz, LCSW", "Ben Okafor, RN"]
        assert session.scalar(select(CertificateFile.sha256)) == before_pdf
        session.close()


def test_the_safety_copy_taken_before_a_restore_restores_the_changes(site: Site, tmp_path: Path) -> None:
    bundle = tmp_path / "site.tar.gz"
    assert site.run("backup", str(bundle)).exit_code == 0
    with sqlite3.connect(site.database) as conn:
        conn.execute("UPDATE users SET full_name = 'Changed Name' WHERE email = 'holder@example.org'")
    assert site.run("restore", str(bundle), "--yes").exit_code == 0
    (safety,) = site.database.parent.glob("kaptrain-before-restore-*.tar.gz")
    assert site.run("restore", str(safety), "--yes", "--no-safety-copy").exit_code == 0
    assert site.query("SELECT full_name FROM users WHERE email = 'holder@example.org'") == [("Changed Name",)]
    assert len(list(site.database.parent.glob("kaptrain-before-restore-*"))) == 1


def test_restore_asks_before_replacing(site: Site, tmp_path: Path) -> None:
    bundle = tmp_path / "site.tar.gz"
    assert site.run("backup", str(bundle)).exit_code == 0
    with sqlite3.connect(site.database) as conn:
        conn.execute("UPDATE users SET full_name = 'Changed Name' WHERE email = 'holder@example.org'")
    answered_no = site.app.test_cli_runner().invoke(args=["restore", str(bundle)], input="n\n")
    assert answered_no.exit_code == 1 and "Replace" in answered_no.output
    assert site.query("SELECT full_name FROM users WHERE email = 'holder@example.org'") == [("Changed Name",)]


def test_a_plain_sqlite_backup_is_restored_and_leaves_uploads_alone(site: Site, tmp_path: Path) -> None:
    plain = tmp_path / "plain.sqlite3"
    with sqlite3.connect(site.database) as src, sqlite3.connect(plain) as dst:
        src.backup(dst)  # what `sqlite3 site.sqlite3 ".backup plain.sqlite3"` makes
    with sqlite3.connect(site.database) as conn:
        conn.execute("UPDATE users SET full_name = 'Changed Name' WHERE email = 'holder@example.org'")
    (site.uploads / "00000000000000000000000000000000.gif").write_bytes(b"new")
    result = site.run("restore", str(plain), "--yes")
    assert result.exit_code == 0, result.output
    assert "upload folder left as it was" in result.output
    assert site.query("SELECT full_name FROM users WHERE email = 'holder@example.org'") == [("Ana Ruiz, LCSW",)]
    assert len(site.upload_files()) == 3


def test_backup_runs_while_a_reader_holds_a_transaction_and_a_writer_writes(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copying: list[tuple[float, float]] = []  # when the online backup step itself ran
    snapshot = backup._snapshot

    def timed_snapshot(source: Path, target: Path) -> None:
        began = time.monotonic()
        snapshot(source, target)
        copying.append((began, time.monotonic()))

    monkeypatch.setattr(backup, "_snapshot", timed_snapshot)
    with sqlite3.connect(site.database) as conn:
        # Enough pages that copying them takes a while, so the writer commits while the backup runs.
        conn.execute("CREATE TABLE load_padding (blob BLOB)")
        conn.executemany("INSERT INTO load_padding VALUES (randomblob(8192))", [()] * 1500)
        conn.execute("CREATE TABLE load_pairs (n INTEGER, half INTEGER)")

    reader = sqlite3.connect(site.database, isolation_level=None)
    reader.execute("BEGIN")
    reader_saw = reader.execute("SELECT count(*) FROM users").fetchone()[0]  # holds its snapshot from here on

    commits: list[float] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        # Each transaction inserts a pair: a consistent copy always holds an even number of rows.
        conn = sqlite3.connect(site.database, isolation_level=None, timeout=15)
        conn.execute("PRAGMA busy_timeout=15000")
        n = 0
        try:
            while not stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO load_pairs VALUES (?, 0)", (n,))
                conn.execute("INSERT INTO load_pairs VALUES (?, 1)", (n,))
                conn.execute("COMMIT")
                commits.append(time.monotonic())
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(commits) < 20:
            time.sleep(0.01)
        pairs = []
        for i in range(2):
            result = site.run("backup", str(tmp_path / f"b{i}.tar.gz"))
            assert result.exit_code == 0, result.output
            with tarfile.open(tmp_path / f"b{i}.tar.gz") as tar:
                manifest = json.load(tar.extractfile(backup.MANIFEST))  # type: ignore[arg-type]
            pairs.append(manifest["row_counts"]["load_pairs"])
        assert reader.execute("SELECT count(*) FROM users").fetchone()[0] == reader_saw
    finally:
        stop.set()
        writer.join()
        reader.execute("ROLLBACK")
        reader.close()
    assert not errors, errors
    during = sum(1 for t in commits for began, ended in copying if began < t < ended)
    assert len(copying) == 2 and during > 0, "the writer never committed while the database was being copied"
    assert all(p % 2 == 0 for p in pairs) and pairs == sorted(pairs) and pairs[0] > 0, pairs

    # Each bundle is one consistent, restorable database.
    result = site.run("restore", str(tmp_path / "b1.tar.gz"), "--yes", "--no-safety-copy")
    assert result.exit_code == 0, result.output
    assert site.query("SELECT count(*) FROM load_pairs") == [(pairs[1],)]
    assert site.query("PRAGMA integrity_check") == [("ok",)]


def _bundle(tmp_path: Path, name: str, members: dict[str, bytes]) -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _bad_files(site: Site, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.tar.gz"
    assert site.run("backup", str(good)).exit_code == 0
    with tarfile.open(good) as tar:
        manifest = tar.extractfile(backup.MANIFEST).read()  # type: ignore[union-attr]
        database = tar.extractfile(backup.DATABASE).read()  # type: ignore[union-attr]

    other_app = tmp_path / "other.sqlite3"
    with sqlite3.connect(other_app) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    unknown_revision = tmp_path / "future.sqlite3"
    unknown_revision.write_bytes(database)
    with sqlite3.connect(unknown_revision) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a backup at all\n" * 100)
    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(database[:5000])
    other_manifest = json.dumps({"format": "something-else", "format_version": 1}).encode()
    return {
        "garbage": (garbage, "neither a kaptrain backup nor a SQLite database"),
        "empty": (_bundle(tmp_path, "empty.bin", {}), "not a kaptrain backup"),
        "another application's SQLite": (other_app, "not a kaptrain one"),
        "a newer schema": (unknown_revision, "does not know"),
        "a damaged SQLite file": (truncated, "damaged"),
        "an archive without a manifest": (
            _bundle(tmp_path, "nomanifest.tar.gz", {"kaptrain.sqlite3": database}),
            "not a kaptrain backup",
        ),
        "another format's manifest": (
            _bundle(tmp_path, "other.tar.gz", {backup.MANIFEST: other_manifest, "kaptrain.sqlite3": database}),
            "not a kaptrain backup",
        ),
        "an altered database": (
            _bundle(tmp_path, "altered.tar.gz", {backup.MANIFEST: manifest, "kaptrain.sqlite3": database + b"\0"}),
            "does not match the checksum",
        ),
        "a path outside the folder": (
            _bundle(tmp_path, "escape.tar.gz", {backup.MANIFEST: manifest, "uploads/../../evil.png": b"x"}),
            "unexpected entry",
        ),
        "a missing file": (tmp_path / "nowhere.tar.gz", "does not exist"),
    }


BAD_KINDS = [
    "garbage",
    "empty",
    "another application's SQLite",
    "a newer schema",
    "a damaged SQLite file",
    "an archive without a manifest",
    "another format's manifest",
    "an altered database",
    "a path outside the folder",
    "a missing file",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_restore_refuses_what_is_not_a_kaptrain_backup(site: Site, tmp_path: Path, kind: str) -> None:
    path, message = _bad_files(site, tmp_path)[kind]
    before, uploads = site.counts(), site.upload_files()
    result = site.run("restore", str(path), "--yes")
    assert result.exit_code == 1 and message in result.output, result.output
    assert site.counts() == before and site.upload_files() == uploads
    assert not list(site.database.parent.glob("kaptrain-before-restore-*"))
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.parametrize("command", [["backup", "x.tar.gz"], ["restore", "x.tar.gz", "--yes"]])
def test_postgresql_is_refused_with_the_documented_procedure(tmp_path: Path, command: list[str]) -> None:
    app = make_test_app("postgresql+psycopg://kaptrain@127.0.0.1:1/kaptrain")  # never connected to
    result = app.test_cli_runner().invoke(args=command)
    assert result.exit_code == 1
    assert "pg_dump -Fc" in result.output and "pg_restore" in result.output and "Backup and restore" in result.output


def test_a_failed_backup_leaves_no_file(tmp_path: Path) -> None:
    app = make_test_app(f"sqlite:///{tmp_path / 'missing.sqlite3'}")
    app.extensions["kaptrain.db"].engine.dispose()
    (tmp_path / "missing.sqlite3").unlink(missing_ok=True)
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "out.tar.gz")])
    assert result.exit_code == 1 and "There is no database" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_backup_holds_the_schema_revision_and_is_a_single_file(site: Site, tmp_path: Path) -> None:
    bundle = tmp_path / "site.tar.gz"
    assert site.run("backup", str(bundle)).exit_code == 0
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(backup.MANIFEST))  # type: ignore[arg-type]
        database = tar.extractfile(backup.DATABASE).read()  # type: ignore[union-attr]
    assert names[:2] == [backup.MANIFEST, backup.DATABASE] and sorted(names[2:]) == [
        f"uploads/{n}" for n in UPLOAD_NAMES
    ]
    with site.app.app_context():
        session = site.app.extensions["kaptrain.db"].new_session()
        assert manifest["revision"] == session.scalar(text("SELECT version_num FROM alembic_version"))
        session.close()
    assert manifest["sha256"] == hashlib.sha256(database).hexdigest()
    assert database[:16] == backup.SQLITE_HEADER and database[18:20] == b"\x01\x01"  # rollback journal, not WAL
