"""Two-factor sign-in: TOTP (RFC 6238, pyotp) and one-time recovery codes; an administrator's reset.

- Enrolment: `start_enrolment` makes a secret (shown as a QR code and as text), `enable` switches it on
  once the person types a code from their app, and returns ten recovery codes, shown that once.
- Login: after the password, `verify` takes a 6-digit code or a recovery code. A TOTP code is accepted for
  the time step before, at and after now (clocks drift), and only for a step later than the last one
  accepted, so a code seen over someone's shoulder cannot be replayed. The check and the update of
  `totp_last_counter` are one conditional UPDATE, so two logins racing with one code cannot both pass.
- Recovery codes are 80 random bits each, stored as SHA-256 (with that much entropy a fast hash cannot be
  searched), and used up with a conditional UPDATE.
- Instructors and administrators must have it (`User.must_use_two_factor`): the accounts views send them
  to enrolment before anything else.

The TOTP secret must be readable by the server, which computes the codes from it: it is sealed at rest with a
key derived from SECRET_KEY (kaptrain.accounts.sealing), so a copy of the database alone does not hold it. At each
accepted code a secret stored plain (before sealing) or under an earlier key is sealed again under the current one.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

import pyotp
import segno
from pyotp.utils import strings_equal
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from kaptrain import audit
from kaptrain.accounts import mailer, sealing
from kaptrain.accounts.models import RecoveryCode, User
from kaptrain.accounts.services import AccountError, check_current_password
from kaptrain.db import utcnow

RECOVERY_CODE_COUNT = 10
_TOTP_PATTERN = re.compile(r"[0-9]{6}")
_RECOVERY_PATTERN = re.compile(r"[a-z2-7]{16}")
# Either kind of code, typed with spaces or hyphens or not, is at most this long.
MAX_CODE_LENGTH = 40

UNREADABLE = (
    "Codes from your authenticator app cannot be checked at the moment: this site's secret key was changed since "
    "you set up two-factor sign-in. Log in with one of your recovery codes, or ask an administrator to reset "
    "your two-factor sign-in."
)
WRONG_CODE = (
    "That code is not correct. Type the 6-digit code your authenticator app shows now (each code works once), "
    "or one of your recovery codes."
)

USED_CODE = (
    "That code was right, but it cannot be used again: each code works once, and not after a newer one. Wait for "
    "your authenticator app to show its next code (a new one appears every 30 seconds) and type that, or use one "
    "of your recovery codes."
)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text, its QR code, and the URI the QR code holds."""

    secret: str
    uri: str
    qr_data_uri: str  # an SVG as a data: URI, for an <img> (the CSP allows data: images, nothing external)

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four letters, easier to type into an app by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def normalise_code(code: str) -> str:
    """A code as typed, without spaces or hyphens, in lower case."""
    return re.sub(r"[\s-]", "", code).lower()


def _hash_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode("ascii")).hexdigest()


UNPROVEN_ADDRESS = (
    "Confirm your email address first: two-factor sign-in is for the owner of the address, so it is set up once "
    "the address is proven. Follow the link we emailed to you, or send a new one from your account page."
)


def may_enrol(user: User) -> bool:
    """Whether the person may set up two-factor sign-in now: their address is proven (else whoever registered
    someone else's address could lock its owner out), or they are staff, who must have it and whose accounts an
    administrator made."""
    return user.is_email_confirmed or user.must_use_two_factor


def start_enrolment(session: Session, user: User, issuer: str) -> Enrolment:
    """The secret to enrol (made on first visit and kept until enrolment is done, so reloading the page
    does not change the QR code already scanned)."""
    if user.has_two_factor:
        raise AccountError("Two-factor sign-in is already on for your account.")
    if not may_enrol(user):
        raise AccountError(UNPROVEN_ADDRESS)
    if not user.totp_secret or sealing.is_sealed(user.totp_secret):  # none yet, or one this site cannot open
        user.totp_secret = pyotp.random_base32()
        session.flush()
    return enrolment_for(user, issuer)


def enrolment_for(user: User, issuer: str) -> Enrolment:
    """The QR code (an SVG made here by segno, no outside service) and text of the user's pending secret."""
    assert user.totp_secret is not None
    uri = pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=issuer)
    qr = segno.make(uri, error="m", micro=False)
    return Enrolment(user.totp_secret, uri, qr.svg_data_uri(scale=5, border=2))


def enable(session: Session, user: User, code: str, current_password: str) -> list[str]:
    """Switch two-factor sign-in on once the password is the account's and the code from the app matches; returns
    the new recovery codes. The password first: someone using a browser left signed in must not be able to turn
    it on with their own phone and so lock the owner out (a reset link does not switch it off again)."""
    if user.has_two_factor:
        raise AccountError("Two-factor sign-in is already on for your account.", "code")
    if not may_enrol(user):
        raise AccountError(UNPROVEN_ADDRESS, "code")
    if not user.totp_secret:
        raise AccountError("Start again: open the two-factor page to get a new QR code.", "code")
    check_current_password(user, current_password)
    if not _accept_totp(session, user, code):
        raise AccountError(
            "That code does not match. Check that the app shows this site's entry, and type the 6 digits it shows "
            "now; if your phone's clock is wrong, codes will not match.",
            "code",
        )
    user.totp_enabled_at = utcnow()
    user.session_version += 1  # sessions that signed in with the password alone end
    session.flush()
    audit.record(session, "user.two_factor_enable", "user", user.id, actor_id=user.id)
    return new_recovery_codes(session, user)


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones, returned once (only their hashes are kept)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower() for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash_code(c)) for c in codes)
    session.flush()
    return ["-".join(c[i : i + 4] for i in range(0, 16, 4)) for c in codes]


def regenerate_recovery_codes(session: Session, user: User, current_password: str) -> list[str]:
    """New recovery codes (the old ones stop working), after checking the password."""
    if not user.has_two_factor:
        raise AccountError("Turn on two-factor sign-in first; recovery codes come with it.")
    check_current_password(user, current_password)
    codes = new_recovery_codes(session, user)
    audit.record(session, "user.recovery_codes_regenerate", "user", user.id, actor_id=user.id)
    return codes


def recovery_codes_left(session: Session, user: User) -> int:
    """How many of the user's recovery codes are still unused."""
    return int(
        session.scalar(select(func.count()).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0
    )


@dataclass(frozen=True)
class Verified:
    """A second factor accepted at login, and how."""

    used_recovery_code: bool
    recovery_codes_left: int


def verify(session: Session, user: User, code: str) -> Verified:
    """Check the second factor at login: a TOTP code not used before, or an unused recovery code.

    Raises AccountError (field "code") when it is neither; a refusal changes nothing."""
    if not user.has_two_factor:
        raise AccountError("Two-factor sign-in is not on for this account.", "code")
    typed = normalise_code(code)
    if len(code) <= MAX_CODE_LENGTH and _TOTP_PATTERN.fullmatch(typed) and _accept_totp(session, user, typed):
        return Verified(False, recovery_codes_left(session, user))
    if len(code) <= MAX_CODE_LENGTH and _RECOVERY_PATTERN.fullmatch(typed) and _use_recovery_code(session, user, typed):
        left = recovery_codes_left(session, user)
        audit.record(session, "user.recovery_code_used", "user", user.id, actor_id=user.id, left=left)
        return Verified(True, left)
    raise AccountError(WRONG_CODE, "code")


def _accept_totp(session: Session, user: User, code: str) -> bool:
    """True when the code is right for a time step after the last one accepted; records that step."""
    secret = user.totp_secret
    assert secret is not None
    if sealing.is_sealed(secret):
        raise AccountError(UNREADABLE, "code")
    typed = normalise_code(code)
    if not _TOTP_PATTERN.fullmatch(typed):
        return False
    totp = pyotp.TOTP(secret)
    now = totp.timecode(utcnow())
    # Try each step of the window; compare in constant time, as pyotp's own verify does.
    step = next((c for c in (now - 1, now, now + 1) if strings_equal(typed, totp.generate_otp(c))), None)
    if step is None:
        return False
    result = session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_counter.is_(None), User.totp_last_counter < step))
        .values(totp_last_counter=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # This code (or a later one) was accepted already: a replay, or the person's own second use of a code
        # (signing in within the 30 seconds of setting up). Refused, and said so: the code is spent either way.
        raise AccountError(USED_CODE, "code")
    set_committed_value(user, "totp_last_counter", step)
    # Sealed again under the current key when stored plain or under a fallback key (the comparison's value is sealed
    # too, and sealing is deterministic: a secret already sealed under the current key is left as it is).
    session.execute(
        update(User)
        .where(User.id == user.id, User.totp_secret != secret)
        .values(totp_secret=secret)
        .execution_options(synchronize_session=False)
    )
    return True


def _use_recovery_code(session: Session, user: User, typed: str) -> bool:
    result = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash_code(typed),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def disable(session: Session, user: User, current_password: str) -> None:
    """Switch two-factor sign-in off for a learner, after checking the password (staff must keep it)."""
    if user.must_use_two_factor:
        raise AccountError(
            "Instructors and administrators must log in with two factors, so it cannot be turned off. "
            "If you lost your device, use a recovery code or ask another administrator to reset it.",
            "current_password",
        )
    if not user.has_two_factor:
        raise AccountError("Two-factor sign-in is already off for your account.", "current_password")
    check_current_password(user, current_password)
    _clear(session, user)
    user.session_version += 1  # as when it was turned on: a session elsewhere may be the reason it is turned off
    session.flush()
    audit.record(session, "user.two_factor_disable", "user", user.id, actor_id=user.id)


def reset(session: Session, person: User, actor: User | None) -> None:
    """An administrator (or the CLI) switches off someone's two-factor sign-in after they lost their device.

    Their recovery codes go too and their sessions end; instructors and administrators set it up again at
    their next login. Nobody resets their own: that would let a stolen password undo the second factor."""
    if actor is not None and actor.id == person.id:
        raise AccountError(
            "You cannot reset your own two-factor sign-in. Use one of your recovery codes, or ask another "
            "administrator.",
            "two_factor",
        )
    if not person.has_two_factor and not person.totp_secret:
        raise AccountError(
            f"{person.full_name} has not set up two-factor sign-in; there is nothing to reset.", "two_factor"
        )
    was_on = person.has_two_factor
    _clear(session, person)
    person.session_version += 1
    session.flush()
    audit.record(
        session,
        "user.two_factor_reset",
        "user",
        person.id,
        actor_id=actor.id if actor else None,
        before={"two_factor": was_on},
        after={"two_factor": False},
    )
    mailer.two_factor_reset(person)


def clear_unproven(session: Session, user: User) -> None:
    """Switch off two-factor sign-in set up before the account's address was proven, now that its owner proved
    it (kaptrain.accounts.ownership.reset_password); audited."""
    was_on = user.has_two_factor
    _clear(session, user)
    audit.record(
        session,
        "user.two_factor_cleared_unproven",
        "user",
        user.id,
        actor_id=user.id,
        before={"two_factor": was_on},
        after={"two_factor": False},
    )


def _clear(session: Session, user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_counter = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.flush()
