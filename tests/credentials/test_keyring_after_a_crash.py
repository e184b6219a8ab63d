"""A process killed while writing the keyring's index leaves its temporary file behind; the next write goes on.

tests/test_kill.py shows it end to end (a gunicorn worker killed during the site's first issuance); these are the
fast checks on the keyring alone."""

from __future__ import annotations

import os
from pathlib import Path

from kaptrain.credentials import Keyring
from kaptrain.credentials.keys import INDEX_FILE


def leftover(directory: Path) -> Path:
    """What a writer killed between writing the index and renaming it leaves: a half-written temporary file."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f".{INDEX_FILE}.tmp"
    path.write_text('{"keys": [')
    os.chmod(path, 0o600)
    return path


def test_the_first_key_is_made_despite_a_dead_writers_leftover(keyring: Keyring) -> None:
    stale = leftover(keyring.directory)
    key = keyring.current()
    assert not stale.exists()
    assert [k.key_id for k in keyring.public_history().keys] == [key.key_id]
    assert Keyring(keyring.directory).current().key_id == key.key_id  # the index on disk is whole


def test_rotation_goes_on_after_a_dead_writers_leftover(keyring: Keyring) -> None:
    first = keyring.current()
    leftover(keyring.directory)
    second = keyring.rotate()
    history = keyring.public_history().keys
    assert [k.key_id for k in history] == [first.key_id, second.key_id] and history[0].retired_at is not None
    assert not any(p.name.endswith(".tmp") for p in keyring.directory.iterdir())
