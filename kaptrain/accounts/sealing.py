"""Two-factor secrets sealed at rest.

A TOTP secret cannot be hashed like a password: the server computes the codes from it. It is therefore encrypted
with a key derived from the site's SECRET_KEY (HKDF-SHA256), so that a copy of the database alone (a backup, a
leaked dump) does not give anyone the second factor of an instructor's or administrator's account.

- AES-SIV (RFC 5297, `cryptography`): authenticated, and deterministic, which a random secret can afford; the
  same secret sealed under the same key is the same text, so "sealed under the current key?" is one comparison.
  A 32-character secret is stored as `s1.` and 48 characters, within the column's 64.
- Keys: SECRET_KEY seals; SECRET_KEY and then each of SECRET_KEY_FALLBACKS open. After a key rotation a secret is
  sealed again under the new key at its next accepted code (`twofactor`), so the old key can be dropped from the
  fallbacks once everyone with two-factor sign-in has signed in. The keys travel with the app's engine
  (`use_keys`, called by kaptrain.db.init_db), since a column type sees only the engine's dialect: every session,
  request or not, seals with its own app's keys.
- A value without the `s1.` prefix is a secret stored before sealing: read as it is, and sealed at its next
  accepted code (migration 0012 seals those present when it runs).
- A sealed value that no key opens (SECRET_KEY changed with the old one not kept as a fallback) is handed back
  as it is stored; `is_sealed` tells the sign-in code, which then asks for a recovery code. It is never read as a
  secret: pyotp refuses its `.`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Dialect, String
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

PREFIX = "s1."
COLUMN_LENGTH = 64
_INFO = b"kaptrain two-factor secret v1"


@functools.lru_cache(maxsize=16)
def _cipher(secret_key: str | bytes) -> AESSIV:
    material = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)
    return AESSIV(key)  # a 32-byte key: AES-128 in SIV mode


Keys = tuple[str | bytes, ...]


def use_keys(dialect: Dialect, secret_key: str | bytes, fallbacks: Sequence[str | bytes] = ()) -> None:
    """Seal with `secret_key` and open with it or a fallback, on the engine whose dialect this is."""
    dialect.kaptrain_sealing_keys = (secret_key, *fallbacks)  # type: ignore[attr-defined]


def keys_of(dialect: Dialect) -> Keys | None:
    """The keys `use_keys` gave this engine (None: an engine made without the app, such as Alembic's own)."""
    keys: Keys | None = getattr(dialect, "kaptrain_sealing_keys", None)
    return keys


def _keys(dialect: Dialect) -> Keys:
    keys = keys_of(dialect)
    if not keys:
        raise RuntimeError("This database engine has no keys for two-factor secrets (kaptrain.db.init_db sets them)")
    return keys


def is_sealed(value: str | None) -> bool:
    """Whether a value read from the column is still sealed: no key of this site opens it."""
    return value is not None and value.startswith(PREFIX)


def seal(secret: str, keys: Keys) -> str:
    """The base32 secret, sealed under the first key (a value sealed already is returned as it is)."""
    if secret.startswith(PREFIX):
        return secret
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    sealed = PREFIX + base64.urlsafe_b64encode(_cipher(keys[0]).encrypt(raw, None)).decode("ascii").rstrip("=")
    if len(sealed) > COLUMN_LENGTH:
        raise ValueError(f"a two-factor secret of {len(raw)} bytes does not fit the column sealed")
    return sealed


def unseal(stored: str, keys: Keys) -> str:
    """The base32 secret of a stored value: opened with the first key that can, or as stored before sealing.
    A value no key opens is returned as it is (see the module's text)."""
    if not stored.startswith(PREFIX):
        return stored
    body = stored[len(PREFIX) :]
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return stored
    for key in keys:
        try:
            raw = _cipher(key).decrypt(data, None)
        except InvalidTag:
            continue
        return base64.b32encode(raw).decode("ascii").rstrip("=")
    log.error("A two-factor secret could not be opened with SECRET_KEY or SECRET_KEY_FALLBACKS")
    return stored


class SealedSecret(TypeDecorator[str]):
    """A column holding a two-factor secret: sealed when written, opened when read, with the engine's keys."""

    impl = String(COLUMN_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Seal what is written."""
        return None if value is None else seal(value, _keys(dialect))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Open what is read."""
        return None if value is None else unseal(str(value), _keys(dialect))
