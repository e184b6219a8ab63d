"""Account services: create users, authenticate, change passwords and profiles."""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.db import utcnow

MIN_PASSWORD = 12
MAX_PASSWORD = 256
# Ids are PostgreSQL INTEGER: a larger number in a session cookie is not an id, and would fail in the query.
_MAX_ID = 2**31 - 1

_hasher = PasswordHasher()  # argon2id, m=64 MiB, t=3, p=4
# Verified against when the email is unknown, so both paths take about the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-000")


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message is shown to the user."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Profile:
    """Fields a person may set on their own profile."""

    full_name: str
    profession: str
    credential: str = ""
    licence_number: str = ""
    jurisdiction: str = ""
    time_zone: str = ""  # an IANA zone such as "America/New_York"; "" shows times in UTC


def normalise_email(email: str) -> str:
    """Emails are compared case-insensitively and without surrounding spaces."""
    return email.strip().lower()


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The IANA time zones a person may choose, sorted, always including "UTC"."""
    return tuple(sorted(zoneinfo.available_timezones() | {"UTC"}))


def is_time_zone(name: str) -> bool:
    """True when name is one of time_zones()."""
    return name in _time_zone_set()


@functools.cache
def _time_zone_set() -> frozenset[str]:
    return frozenset(time_zones())


def check_time_zone(name: str) -> None:
    """Raise AccountError unless the time zone is empty (UTC) or a known zone."""
    if name and not is_time_zone(name):
        raise AccountError("Choose a time zone from the list.", "time_zone")


def check_password_rules(password: str) -> None:
    """Raise AccountError when a password is too short or too long (ASVS V2.1)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Use at least {MIN_PASSWORD} characters.", "password")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"Use at most {MAX_PASSWORD} characters.", "password")


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def find_user_by_email(session: Session, email: str) -> User | None:
    """The user with this email, if any."""
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(session: Session, email: str, password: str, profile: Profile, role: Role = Role.LEARNER) -> User:
    """Create an account; raises AccountError for a taken email or a weak password."""
    email = normalise_email(email)
    check_password_rules(password)
    if not profile.full_name.strip():
        raise AccountError("Enter your full name as it should appear on certificates.", "full_name")
    check_time_zone(profile.time_zone)
    exists = session.scalar(select(func.count()).select_from(User).where(User.email == email))
    if exists:
        raise AccountError("An account with this email already exists. Log in instead.", "email")
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=role,
        full_name=profile.full_name.strip(),
        profession=profile.profession.strip(),
        credential=profile.credential.strip(),
        licence_number=profile.licence_number.strip(),
        jurisdiction=profile.jurisdiction.strip(),
        time_zone=profile.time_zone,
    )
    try:
        with session.begin_nested():  # a concurrent registration with the same email wins the race
            session.add(user)
    except IntegrityError:
        raise AccountError("An account with this email already exists. Log in instead.", "email") from None
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user when email and password match an active account, else None."""
    user = find_user_by_email(session, email)
    if user is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password) or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; ends every other session."""
    if not _verify(user.password_hash, current):
        raise AccountError("Your current password is not correct.", "current_password")
    check_password_rules(new)
    user.password_hash = hash_password(new)
    user.session_version += 1
    session.flush()


def set_password(session: Session, user: User, new: str) -> None:
    """Set a password without the old one (administrators and the CLI)."""
    check_password_rules(new)
    user.password_hash = hash_password(new)
    user.session_version += 1
    session.flush()


def update_profile(session: Session, user: User, profile: Profile) -> None:
    """Update the fields a person may change about themselves (never role or email)."""
    if not profile.full_name.strip():
        raise AccountError("Enter your full name as it should appear on certificates.", "full_name")
    check_time_zone(profile.time_zone)
    user.full_name = profile.full_name.strip()
    user.profession = profile.profession.strip()
    user.credential = profile.credential.strip()
    user.licence_number = profile.licence_number.strip()
    user.jurisdiction = profile.jurisdiction.strip()
    user.time_zone = profile.time_zone
    session.flush()


def end_sessions(session: Session, user: User) -> None:
    """Invalidate every session cookie issued to this user so far (used at logout)."""
    user.session_version += 1
    session.flush()


def load_session_user(session: Session, token: str) -> User | None:
    """The user for a Flask-Login session id "id:version", if still valid."""
    raw_id, _, raw_version = token.partition(":")
    user_id, version = _parse_id(raw_id), _parse_id(raw_version)
    if user_id is None or version is None:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def _parse_id(text: str) -> int | None:
    # ASCII digits only: str.isdigit() also accepts "²" (int() then raises) and "١" (int() reads it as 1).
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(_MAX_ID)):
        return None
    number = int(text)
    return number if number <= _MAX_ID else None
