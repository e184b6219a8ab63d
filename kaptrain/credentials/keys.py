"""The issuer's Ed25519 signing keys: files outside the database, owner-only, with a public history of every key.

The key directory (setting CREDENTIAL_KEY_DIR, created 0700 on first use) holds keyring.json (the history: each
key's did:key, file, creation, retirement and compromise), one PKCS#8 ed25519-*.pem per key ever made (0600;
the newest unretired one signs) and a .lock that serialises generation and rotation across processes.
The app never logs or exports a private key. How to back the directory up: README.md beside this file."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaptrain.credentials.did import did_document, did_key, public_key_from_did, verification_method_id

INDEX_FILE = "keyring.json"
LOCK_FILE = ".lock"


class KeyStoreError(RuntimeError):
    """The key directory cannot be used safely (wrong permissions, a missing or mismatched key file)."""


def _stamp(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PublicKey:
    """One key in the issuer's history, public part only: its did:key and its life."""

    key_id: str  # the did:key, also the credential's issuer id while this key signs
    created_at: dt.datetime
    retired_at: dt.datetime | None = None
    compromised_since: dt.datetime | None = None

    @property
    def verification_method(self) -> str:
        """The did:key URL that proofs by this key name."""
        return verification_method_id(self.key_id)

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return public_key_from_did(self.key_id)

    def to_json(self) -> dict[str, Any]:
        """The entry as published in the key history."""
        return {
            "id": self.key_id,
            "publicKeyMultibase": self.key_id.removeprefix("did:key:"),
            "created": _stamp(self.created_at),
            "retired": _stamp(self.retired_at),
            "compromisedSince": _stamp(self.compromised_since),
        }


@dataclass(frozen=True)
class KeyHistory:
    """Every key the issuer has used, oldest first: what a verifier needs, published at a stable URL."""

    keys: tuple[PublicKey, ...]

    def find(self, key_id: str) -> PublicKey | None:
        """The key with this did:key (a '#fragment' is ignored), or None if the issuer never used it."""
        did = key_id.partition("#")[0]
        return next((key for key in self.keys if key.key_id == did), None)

    def did_documents(self) -> dict[str, dict[str, Any]]:
        """The DID document of every key, by DID (for a document loader or a JavaScript verifier)."""
        return {key.key_id: did_document(key.key_id) for key in self.keys}

    def to_json(self) -> dict[str, Any]:
        """The history as published: {"keys": [...]} oldest first."""
        return {"keys": [key.to_json() for key in self.keys]}

    @classmethod
    def from_json(cls, data: Any) -> KeyHistory:
        """A history read back from its published JSON; ValueError if it is not one."""
        try:
            keys = tuple(
                PublicKey(
                    key_id=entry["id"],
                    created_at=_parse(entry["created"]) or dt.datetime.min.replace(tzinfo=dt.UTC),
                    retired_at=_parse(entry.get("retired")),
                    compromised_since=_parse(entry.get("compromisedSince")),
                )
                for entry in data["keys"]
            )
            for key in keys:
                public_key_from_did(key.key_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a key history: {exc}") from None
        return cls(keys)


@dataclass(frozen=True)
class SigningKey:
    """The private key that signs, with its did:key; its repr never shows the key."""

    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def verification_method(self) -> str:
        """The did:key URL that proofs by this key name."""
        return verification_method_id(self.key_id)

    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature of the data."""
        return self.private_key.sign(data)


@dataclass(frozen=True)
class _Entry:
    public: PublicKey
    filename: str


class Keyring:
    """The key directory: the current signing key (made on first use), rotation, compromise, public history."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def current(self) -> SigningKey:
        """The key that signs now; the first call on an empty directory generates it."""
        with self._locked():
            entries = self._read()
            active = [entry for entry in entries if entry.public.retired_at is None]
            if not active:
                active = [self._generate(entries)]
            return self._load(active[-1])

    def rotate(self, now: dt.datetime | None = None) -> SigningKey:
        """Retire the current key (kept for verification) and make a new one current."""
        with self._locked():
            return self._rotate(self._read(), now or dt.datetime.now(dt.UTC))

    def mark_compromised(self, key_id: str, since: dt.datetime, now: dt.datetime | None = None) -> None:
        """Record that a key leaked: its proofs created at or after `since` fail; if it signs now, rotate first."""
        if since.tzinfo is None:
            raise ValueError("since needs a time zone")
        with self._locked():
            entries = self._read()
            did = key_id.partition("#")[0]
            if not any(entry.public.key_id == did for entry in entries):
                raise KeyError(f"no such key: {key_id}")
            if any(entry.public.key_id == did and entry.public.retired_at is None for entry in entries):
                self._rotate(entries, now or dt.datetime.now(dt.UTC))
                entries = self._read()
            marked = [
                replace(entry, public=replace(entry.public, compromised_since=since))
                if entry.public.key_id == did
                else entry
                for entry in entries
            ]
            self._write(marked)

    def public_history(self) -> KeyHistory:
        """Every key's public part, oldest first (empty before the first key is made)."""
        with self._locked():
            return KeyHistory(tuple(entry.public for entry in self._read()))

    # -- files -------------------------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse (KeyStoreError) a key directory, or a file in it, that others may read; one not made yet is
        fine (it is made owner-only on first use). Run at start-up, so a loose directory stops the site at once
        instead of failing the first certificate a learner asks for."""
        if not self.directory.exists():
            return
        self._check_directory_mode()
        for path in self.directory.iterdir():
            if path.is_file() and path.name != LOCK_FILE:
                self._check_private(path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_directory()
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_directory_mode()

    def _check_directory_mode(self) -> None:
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(
                f"key directory {self.directory} is accessible to others (mode {mode:04o}); run chmod 700 on it"
            )

    def _read(self) -> list[_Entry]:
        path = self.directory / INDEX_FILE
        if not path.exists():
            return []
        self._check_private(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        history = KeyHistory.from_json(data)
        return [_Entry(key, entry["file"]) for key, entry in zip(history.keys, data["keys"], strict=True)]

    def _write(self, entries: list[_Entry]) -> None:
        data = {"keys": [{**entry.public.to_json(), "file": entry.filename} for entry in entries]}
        self._write_private(INDEX_FILE, (json.dumps(data, indent=2) + "\n").encode("utf-8"), replace_existing=True)

    def _write_private(self, name: str, content: bytes, *, replace_existing: bool) -> None:
        """Write a file readable by the owner only; atomically when it replaces an existing one."""
        target = self.directory / name
        temporary = target.with_name(f".{name}.tmp") if replace_existing else target
        if replace_existing:
            # Writers hold the directory lock, so a temporary file found here was left by one that died between
            # writing and renaming it (a killed worker): without this, O_EXCL would refuse every later write.
            temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if replace_existing:
            os.replace(temporary, target)

    def _check_private(self, path: Path) -> None:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(f"{path} is readable by others (mode {mode:04o}); run chmod 600 on it")

    def _generate(self, entries: list[_Entry], now: dt.datetime | None = None) -> _Entry:
        private_key = Ed25519PrivateKey.generate()
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        created = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        did = did_key(raw)
        filename = f"ed25519-{created:%Y%m%dT%H%M%SZ}-{did[-8:]}.pem"
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._write_private(filename, pem, replace_existing=False)
        entry = _Entry(PublicKey(did, created), filename)
        self._write([*entries, entry])
        return entry

    def _rotate(self, entries: list[_Entry], now: dt.datetime) -> SigningKey:
        retired = [
            replace(entry, public=replace(entry.public, retired_at=now)) if entry.public.retired_at is None else entry
            for entry in entries
        ]
        return self._load(self._generate(retired, now))

    def _load(self, entry: _Entry) -> SigningKey:
        path = self.directory / entry.filename
        if not path.exists():
            raise KeyStoreError(f"key file {path} is missing: restore the key directory from its backup")
        self._check_private(path)
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} does not hold an Ed25519 private key")
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if did_key(raw) != entry.public.key_id:
            raise KeyStoreError(f"{path} does not hold the key {entry.public.key_id} that {INDEX_FILE} names")
        return SigningKey(entry.public.key_id, private_key)
