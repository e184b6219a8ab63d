"""The signing keys as operators act on them: rotate, mark compromised; each with its audit entry.

The keys are files (kaptrain.credentials.keys), so a key change takes effect at once; the audit entry and the
re-signed status lists are in the caller's transaction, which the command commits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.certificates import signing
from kaptrain.certificates.models import StatusList
from kaptrain.credentials import sign, verify
from kaptrain.credentials import status_list as bitstring
from kaptrain.db import utcnow

SUBJECT = "signing_key"


def rotate_key(session: Session, actor_label: str) -> str:
    """Retire the current key (it keeps verifying what it signed) and make a new one; the new did:key."""
    ring = signing.keyring()
    old = ring.current().key_id
    new = ring.rotate().key_id
    audit.record(session, "signing_key.rotate", SUBJECT, None, actor_label=actor_label, retired=old, current=new)
    return new


def compromise_key(session: Session, key_id: str, since: dt.datetime, actor_label: str) -> str:
    """Mark a key compromised from `since` (rotating it first if it signs now); the did:key that signs now.

    KeyError when the site never used the key."""
    ring = signing.keyring()
    ring.mark_compromised(key_id, since)
    current = ring.current().key_id
    resigned = resign_status_lists(session)
    audit.record(
        session,
        "signing_key.compromise",
        SUBJECT,
        None,
        actor_label=actor_label,
        key=key_id.partition("#")[0],
        since=since.isoformat(),
        current=current,
        resigned_status_lists=resigned,
    )
    return current


def resign_status_lists(session: Session) -> list[int]:
    """Sign again, with the current key, every status list whose signature no longer verifies (same bits)."""
    ring = signing.keyring()
    history, key = ring.public_history(), ring.current()
    resigned = []
    for row in session.scalars(select(StatusList).order_by(StatusList.number)):
        if verify(row.credential, history).ok:
            continue
        now = utcnow()
        unsigned = bitstring.status_list_credential(signing.status_list_url(row.number), key.key_id, row.encoded, now)
        row.credential, row.updated_at = sign(unsigned, key), now
        resigned.append(row.number)
    session.flush()
    return resigned
