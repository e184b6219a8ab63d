"""Account services: create users, authenticate, change passwords, profiles, roles and account status."""

from __future__ import annotations

import functools
import importlib.resources
import re
import secrets
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context, has_request_context
from limits import parse_many
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.accounts import browser_sessions
from kaptrain.accounts.models import Role, User
from kaptrain.db import after_commit, utcnow
from kaptrain.extensions import limiter

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


def the_sites_team() -> str:
    """Who to contact, in words: the support address when the deployment gives one."""
    support = current_app.config.get("SUPPORT_EMAIL") or ""
    return f"the site's team at {support}" if support else "the site's team"


class AccountDeactivated(AccountError):
    """The password was right, but an administrator deactivated the account."""

    def __init__(self) -> None:
        super().__init__(
            f"This account is deactivated, so it cannot log in. If you think that is a mistake, contact "
            f"{the_sites_team()}.",
            "password",
        )


class EmailTaken(AccountError):
    """Another account already uses this email address."""

    def __init__(self) -> None:
        super().__init__("An account with this email already exists. Log in instead.", "email")


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
    """The time zones the forms offer, sorted: "UTC" and the places of the tz database's zone.tab, one or more per
    country under their current names ("Asia/Kolkata", not the old "Asia/Calcutta"; no "US/Pacific" or
    "Australia/ACT"). Without zone.tab, every region/place name; the technical entries ("Factory", "EST5EDT",
    "Etc/GMT+5", whose sign is the reverse of what people expect) are never offered."""
    known = _time_zone_set()
    places = _zone_tab() & known or {z for z in known if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/"))}
    return tuple(sorted(places | {"UTC"}))


@functools.cache
def zone_countries() -> dict[str, str]:
    """Each zone.tab zone's country, by its English name ("America/Denver": "United States"); empty without the
    tables."""
    codes = dict(row[:2] for row in _tab_rows("iso3166.tab") if len(row) >= 2)
    return {row[2]: codes[row[0]] for row in _tab_rows("zone.tab") if len(row) >= 3 and row[0] in codes}


def _tab_rows(name: str) -> list[list[str]]:
    """The rows of one of the tz database's tab-separated tables (the tzdata package's, else the system's)."""
    try:
        text = importlib.resources.files("tzdata").joinpath(f"zoneinfo/{name}").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        system = Path("/usr/share/zoneinfo") / name
        text = system.read_text(encoding="utf-8") if system.is_file() else ""
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def _zone_tab() -> set[str]:
    """The zone names listed in zone.tab, or an empty set."""
    return {row[2] for row in _tab_rows("zone.tab") if len(row) >= 3}


def is_time_zone(name: str) -> bool:
    """True when name is a zone the tz database knows (one chosen before the list was shortened stays good)."""
    return name in _time_zone_set()


@functools.cache
def _time_zone_set() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def check_time_zone(name: str) -> None:
    """Raise AccountError unless the time zone is empty (UTC) or a known zone."""
    if name and not is_time_zone(name):
        raise AccountError("Choose a time zone from the list.", "time_zone")


# zxcvbn's score (0-4) a password must reach: 3 is about 10^8 guesses, "safely unguessable" for an online attack
# that is also rate-limited. Scored on its first characters only: past these, any password is long enough.
MIN_PASSWORD_SCORE = 3
_SCORED_CHARACTERS = 64


def check_password_length(password: str) -> None:
    """Raise AccountError when a password is too short or too long (ASVS V2.1)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Use at least {MIN_PASSWORD} characters.", "password")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"Use at most {MAX_PASSWORD} characters.", "password")


def check_password_rules(password: str, context: Sequence[str] = ()) -> None:
    """Raise AccountError when a password is too short or too long (ASVS V2.1), or easy to guess (ASVS V2.1.7,
    NIST SP 800-63B 5.1.1.2): a common password, a repeat or a sequence, or built from the person's own name or
    email address, or the site's name (`context`: the words to count against it)."""
    check_password_length(password)
    from zxcvbn import zxcvbn  # noqa: PLC0415 - its word lists load on the first password set, not at start-up

    texts = [t.lower() for t in (*context, _site_name()) if t]
    _refuse_built_from(password, texts)
    # Each whole (an email address, a name with and without its spaces) and each of its words.
    words = [*texts, *(re.sub(r"\W+", "", t) for t in texts)]
    words += [w for t in texts for w in re.split(r"[\s@.,_+-]+", t) if len(w) > 2]
    verdict = zxcvbn(password[:_SCORED_CHARACTERS], user_inputs=words)
    if verdict["score"] < MIN_PASSWORD_SCORE:
        warning = verdict["feedback"]["warning"]
        raise AccountError(
            f"This password would be easy to guess{': ' + warning.rstrip('.').lower() if warning else ''}. Use a "
            "few unrelated words with spaces between them, not your name, your email address or the site's name.",
            "password",
        )


# Letters a password must keep once the person's own words, the site's name, digits and punctuation are taken out.
_OWN_LETTERS = 6


def _refuse_built_from(password: str, texts: list[str]) -> None:
    """Refuse a password that is little more than the person's name or email, or the site's name, with a year or
    symbols ("garcia maria 2026", "Kaptrain2026!!"), or one word said again ("password password"): patterns zxcvbn
    scores too kindly."""
    words = sorted({w for t in texts for w in re.split(r"[^\w]+", t) if len(w) >= 3}, key=len, reverse=True)
    left = password.casefold()
    for word in words:
        left = left.replace(word, "")
    if len(re.sub(r"[\W\d_]+", "", left)) < _OWN_LETTERS:
        raise AccountError(
            "This password would be easy to guess: it is mostly your name, your email address or the site's name. "
            "Use a few unrelated words with spaces between them.",
            "password",
        )
    said = password.casefold().split()
    if len(said) > 1 and len(set(said)) == 1:
        raise AccountError(
            "This password would be easy to guess: it says one word again. Use different words.", "password"
        )


def _site_name() -> str:
    return str(current_app.config.get("SITE_NAME", "kaptrain")) if has_app_context() else "kaptrain"


def password_context(user: User) -> list[str]:
    """The words a person's password must not be built from: their name and email address."""
    return [user.full_name, user.email]


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def find_user_by_email(session: Session, email: str) -> User | None:
    """The user with this email, if any."""
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session,
    email: str,
    password: str,
    profile: Profile,
    role: Role = Role.LEARNER,
    *,
    confirmed: bool = False,
    published_password: bool = False,
) -> User:
    """Create an account; raises AccountError for a weak password and EmailTaken for a taken email.

    confirmed: the address is taken as proven (an operator's `users create`, the demo accounts); otherwise
    the person confirms it by the emailed link (kaptrain/accounts/ownership.py)."""
    email = normalise_email(email)
    if published_password:  # the demo accounts' password is in the README: only its length is checked
        check_password_length(password)
    else:
        check_password_rules(password, [email, profile.full_name])
    if not profile.full_name.strip():
        raise AccountError("Enter your full name as it should appear on certificates.", "full_name")
    check_time_zone(profile.time_zone)
    exists = session.scalar(select(func.count()).select_from(User).where(User.email == email))
    if exists:
        raise EmailTaken()
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
        email_confirmed_at=utcnow() if confirmed else None,
    )
    try:
        with session.begin_nested():  # a concurrent registration with the same email wins the race
            session.add(user)
    except IntegrityError:
        raise EmailTaken() from None
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user when email and password match an active account, else None. AccountDeactivated when they match
    a deactivated one: only someone who knows the password learns that the account exists and why it is shut."""
    user = find_user_by_email(session, email)
    if user is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if not user.is_active:
        raise AccountDeactivated()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


CHECKS_USED_UP = (
    "Your password has been asked for on your account pages too many times in the last hour, so it is not checked "
    "now. Wait an hour and try again, or log out and use “Forgot your password?” on the login page."
)


def check_current_password(user: User, password: str) -> None:
    """Raise AccountError (on the current_password field) unless password is the user's password.

    Each check counts against KAPTRAIN_PASSWORD_CHECK_RATE_LIMIT for the account, whichever page asks (change the
    password or the address, recovery codes, two-factor sign-in on or off, closing the account), so a browser
    left signed in cannot be used to guess the password. The check is counted before the password is compared,
    in one step that tests and adds (the limiter's hit), so requests sent at once cannot all slip under it."""
    if not _may_check_password(user):
        raise AccountError(CHECKS_USED_UP, "current_password")
    if not _verify(user.password_hash, password):
        raise AccountError("Your current password is not correct.", "current_password")


def _may_check_password(user: User) -> bool:
    if not has_request_context() or not limiter.enabled:
        return True
    limits = parse_many(str(current_app.config["PASSWORD_CHECK_RATE_LIMIT"]))
    return all(limiter.limiter.hit(item, "current-password", str(user.id)) for item in limits)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; ends every other session."""
    check_current_password(user, current)
    check_password_rules(new, password_context(user))
    user.password_hash = hash_password(new)
    user.session_version += 1
    session.flush()


def set_password(session: Session, user: User, new: str) -> None:
    """Set a password without the old one (administrators and the CLI)."""
    check_password_rules(new, password_context(user))
    user.password_hash = hash_password(new)
    user.session_version += 1
    session.flush()


# What a person's profile holds; certificates print the name, credential and licence, and date themselves in the
# holder's time zone.
PROFILE_FIELDS = ("full_name", "profession", "credential", "licence_number", "jurisdiction", "time_zone")


def update_profile(session: Session, user: User, profile: Profile, actor: User | None = None) -> list[str]:
    """Update the fields a person may change about themselves (never role or email), or an administrator (`actor`)
    for them. Returns the names of the fields that changed, audited as user.profile_change with who changed them."""
    if not profile.full_name.strip():
        raise AccountError("Enter the full name as it should appear on certificates.", "full_name")
    check_time_zone(profile.time_zone)
    before = {name: getattr(user, name) for name in PROFILE_FIELDS}
    user.full_name = profile.full_name.strip()
    user.profession = profile.profession.strip()
    user.credential = profile.credential.strip()
    user.licence_number = profile.licence_number.strip()
    user.jurisdiction = profile.jurisdiction.strip()
    user.time_zone = profile.time_zone
    session.flush()
    after = {name: getattr(user, name) for name in PROFILE_FIELDS}
    changed = [name for name in PROFILE_FIELDS if after[name] != before[name]]
    if changed:  # the CE record keeps who changed what, and when
        audit.record(
            session,
            "user.profile_change",
            "user",
            user.id,
            actor_id=(actor or user).id,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return changed


def end_sessions(session: Session, user: User) -> None:
    """Invalidate every session cookie issued to this user so far (used at logout)."""
    user.session_version += 1
    session.flush()


def parse_session_token(token: str) -> tuple[int, int] | None:
    """The user id and session version of a Flask-Login session id "id:version" (None if malformed)."""
    raw_id, _, raw_version = token.partition(":")
    user_id, version = _parse_id(raw_id), _parse_id(raw_version)
    if user_id is None or version is None:
        return None
    return user_id, version


def load_session_user(session: Session, token: str, sid: str = "") -> User | None:
    """The user for a Flask-Login session id "id:version", if still valid, and the cookie's login (its id `sid`,
    kaptrain.accounts.browser_sessions) not logged out; one statement."""
    parsed = parse_session_token(token)
    if parsed is None:
        return None
    user_id, version = parsed
    found = session.execute(select(User, browser_sessions.ended(sid)).where(User.id == user_id)).first()
    if found is None:
        return None
    user, logged_out = found
    if logged_out or not user.is_active or user.session_version != version:
        return None
    return user


def _parse_id(text: str) -> int | None:
    # ASCII digits only: str.isdigit() also accepts "²" (int() then raises) and "١" (int() reads it as 1).
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(_MAX_ID)):
        return None
    number = int(text)
    return number if number <= _MAX_ID else None


# Closed accounts keep their row (CE records point at it) under an address that can never receive mail.
CLOSED_EMAIL = "closed-{id}@invalid.example"
CLOSED_NAME = "Closed account {id}"


def is_closed(user: User) -> bool:
    """True when the account was closed at the person's request (and pseudonymised)."""
    return user.email == CLOSED_EMAIL.format(id=user.id)


def parse_role(value: str) -> Role:
    """The Role named by value; AccountError in words for anything else."""
    try:
        return Role(value)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise AccountError(f"“{value[:40]}” is not a role. Choose one of: {names}.", "role") from None


def _audit(session: Session, action: str, user: User, actor: User | None, **details: Any) -> None:
    audit.record(session, action, "user", user.id, actor_id=actor.id if actor else None, **details)


def _refuse_last_admin(session: Session, user: User, doing: str) -> None:
    """Raise AccountError when user is the only active admin; the rows are locked so two admins
    demoting each other at once cannot both succeed (PostgreSQL; SQLite serialises writers)."""
    if user.role != Role.ADMIN or not user.is_active:
        return
    admins = session.scalars(
        select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).with_for_update()
    ).all()
    if len(admins) <= 1:
        raise AccountError(
            f"{user.full_name} is the only active administrator, so you cannot {doing}. "
            "Make someone else an administrator first.",
            "role",
        )


def set_role(session: Session, user: User, role: Role | str, actor: User | None) -> bool:
    """Change a role (audited); False when it was already that role. Refuses demoting the last admin."""
    new = role if isinstance(role, Role) else parse_role(role)
    if user.role == new:
        return False
    if new != Role.ADMIN:
        _refuse_last_admin(session, user, f"make them {new.value}")
    before = user.role
    user.role = new
    user.session_version += 1  # a role change takes effect at the next login
    session.flush()
    _audit(session, "user.role", user, actor, before={"role": before.value}, after={"role": new.value})
    return True


def deactivate(session: Session, user: User, actor: User | None) -> None:
    """Stop an account from logging in and end its sessions; every record of theirs stays."""
    if not user.is_active:
        raise AccountError("This account is already deactivated.", "status")
    _refuse_last_admin(session, user, "deactivate their account")
    user.is_active = False
    user.session_version += 1  # every session cookie issued so far stops working
    session.flush()
    _audit(session, "user.deactivate", user, actor, before={"is_active": True}, after={"is_active": False})


def reactivate(session: Session, user: User, actor: User | None) -> None:
    """Let a deactivated account log in again (a closed account cannot be reopened)."""
    if is_closed(user):
        raise AccountError("A closed account cannot be reopened; the person can register again.", "status")
    if user.is_active:
        raise AccountError("This account is already active.", "status")
    user.is_active = True
    session.flush()
    _audit(session, "user.reactivate", user, actor, before={"is_active": False}, after={"is_active": True})


def close_account(session: Session, user: User, actor: User | None) -> None:
    """Close an account at the person's request: deactivate it and pseudonymise what CE records do not need.

    Rows are never deleted. Issued certificates keep the name, credential, licence and jurisdiction they
    were issued with (copied at issue), so the account's own copies are cleared. The audit entry names the
    fields cleared, not their old values, so the log does not keep what closure removed."""
    if is_closed(user):
        raise AccountError("This account is already closed.", "status")
    was_active = user.is_active
    if was_active:
        _refuse_last_admin(session, user, "close their account")
    cleared = ["email", "full_name", "profession", "credential", "licence_number", "jurisdiction", "time_zone"]
    address = user.email  # told once the closure commits; the account then keeps no address
    user.email = CLOSED_EMAIL.format(id=user.id)
    user.full_name = CLOSED_NAME.format(id=user.id)
    user.profession = user.credential = user.licence_number = user.jurisdiction = user.time_zone = ""
    # No one knows this password: even a reactivated row could not be logged into.
    user.password_hash = hash_password(secrets.token_urlsafe(32))
    user.is_active = False
    user.session_version += 1
    session.flush()
    _audit(
        session,
        "user.close",
        user,
        actor,
        before={"is_active": was_active, "closed": False},
        after={"is_active": False, "closed": True},
        cleared=cleared,
    )
    from kaptrain.accounts import mailer  # noqa: PLC0415 - mailer imports this module

    after_commit(functools.partial(mailer.account_closed, address), session)  # only once the closure is kept
