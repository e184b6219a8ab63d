"""The key directory: generated on first use, owner-only, rotation with history, compromise."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from kaptrain.config import DEFAULTS, PROJECT_ROOT
from kaptrain.credentials import KeyHistory, Keyring, KeyStoreError
from kaptrain.credentials.did import public_key_from_did

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_setting_defaults_to_instance_keys() -> None:
    assert Path(DEFAULTS["CREDENTIAL_KEY_DIR"]) == PROJECT_ROOT / "instance" / "keys"


def test_first_use_generates_one_owner_only_key(keyring: Keyring) -> None:
    assert not keyring.directory.exists()
    key = keyring.current()
    assert key.key_id.startswith("did:key:z6Mk")
    assert keyring.current().key_id == key.key_id  # the same key from then on
    assert _mode(keyring.directory) == 0o700
    files = [path for path in keyring.directory.iterdir() if not path.name.startswith(".")]
    assert sorted(path.suffix for path in files) == [".json", ".pem"]
    assert all(_mode(path) == 0o600 for path in keyring.directory.iterdir())


def test_private_key_never_appears_in_repr_or_history(keyring: Keyring) -> None:
    key = keyring.current()
    pem = next(keyring.directory.glob("*.pem")).read_text()
    body = "".join(pem.splitlines()[1:-1])
    assert body not in repr(key) and "private" not in repr(key)
    assert body not in str(keyring.public_history().to_json())
    assert key.verification_method == f"{key.key_id}#{key.key_id.removeprefix('did:key:')}"


def test_rotation_keeps_the_old_key_in_the_history(keyring: Keyring) -> None:
    old = keyring.current()
    new = keyring.rotate(now=T0)
    assert new.key_id != old.key_id
    assert keyring.current().key_id == new.key_id
    history = keyring.public_history()
    assert [key.key_id for key in history.keys] == [old.key_id, new.key_id]
    assert history.keys[0].retired_at == T0 and history.keys[1].retired_at is None
    assert KeyHistory.from_json(history.to_json()) == history
    assert set(history.did_documents()) == {old.key_id, new.key_id}
    assert history.find(old.verification_method) == history.keys[0]


def test_marking_the_current_key_compromised_rotates_it(keyring: Keyring) -> None:
    leaked = keyring.current()
    keyring.mark_compromised(leaked.key_id, since=T0)
    assert keyring.current().key_id != leaked.key_id
    entry = keyring.public_history().find(leaked.key_id)
    assert entry is not None and entry.compromised_since == T0 and entry.retired_at is not None
    with pytest.raises(KeyError):
        keyring.mark_compromised("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", since=T0)


def test_refuses_a_directory_or_key_others_can_read(keyring: Keyring) -> None:
    keyring.current()
    os.chmod(keyring.directory, 0o755)  # noqa: S103 - the permissive mode is what is being refused
    with pytest.raises(KeyStoreError, match="chmod 700"):
        keyring.current()
    os.chmod(keyring.directory, 0o700)
    pem = next(keyring.directory.glob("*.pem"))
    os.chmod(pem, 0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        keyring.current()


def test_refuses_a_missing_or_swapped_key_file(keyring: Keyring, tmp_path: Path) -> None:
    keyring.current()
    pem = next(keyring.directory.glob("*.pem"))
    other = Keyring(tmp_path / "other")
    other.current()
    os.replace(next(other.directory.glob("*.pem")), pem)
    with pytest.raises(KeyStoreError, match="does not hold the key"):
        keyring.current()
    pem.unlink()
    with pytest.raises(KeyStoreError, match="restore the key directory"):
        keyring.current()


def test_history_entries_are_ed25519_did_keys(keyring: Keyring) -> None:
    keyring.current()
    keyring.rotate()
    for entry in keyring.public_history().to_json()["keys"]:
        assert len(public_key_from_did(entry["id"])) == 32
        assert entry["publicKeyMultibase"] == entry["id"].removeprefix("did:key:")
    with pytest.raises(ValueError, match="not a key history"):
        KeyHistory.from_json({"keys": [{"id": "did:web:example.org", "created": None}]})
