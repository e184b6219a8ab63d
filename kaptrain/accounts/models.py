"""Account models."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kaptrain.accounts.sealing import SealedSecret
from kaptrain.db import Base, one_of, utcnow


class Role(enum.StrEnum):
    """What a person may do on the site."""

    LEARNER = "learner"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"


PROFESSIONS = (
    "Counsellor / therapist",
    "Psychologist",
    "Social worker",
    "Physician",
    "Psychiatrist",
    "Nurse / nurse practitioner",
    "Marriage and family therapist",
    "Other licensed clinician",
)


class User(Base):
    """A person with an account: learner, instructor or administrator."""

    __tablename__ = "users"
    __table_args__ = (
        one_of("role", Role),
        CheckConstraint("session_version >= 1", name="session_version"),
        # Two-factor sign-in in force needs the secret its codes are checked against.
        CheckConstraint("totp_enabled_at IS NULL OR totp_secret IS NOT NULL", name="totp_secret"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    profession: Mapped[str] = mapped_column(String(100))
    credential: Mapped[str] = mapped_column(String(100), default="")
    licence_number: Mapped[str] = mapped_column(String(100), default="")
    jurisdiction: Mapped[str] = mapped_column(String(100), default="")
    # IANA zone name for showing dates and times ("" = not chosen: UTC).
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=Role.LEARNER,
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    # Bumped on logout and password change: every session cookie issued before is then refused.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    # When the person proved they receive mail at `email` (a link we sent them); None: not yet. Never unset:
    # a change of address takes effect only once the new address is confirmed.
    email_confirmed_at: Mapped[dt.datetime | None]
    # Two-factor sign-in (kaptrain/accounts/twofactor.py): the base32 TOTP secret, set when enrolment begins;
    # it is in force from totp_enabled_at. totp_last_counter is the time step of the last code accepted, so
    # no code is accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(SealedSecret())  # sealed at rest: kaptrain.accounts.sealing
    totp_enabled_at: Mapped[dt.datetime | None]
    totp_last_counter: Mapped[int | None]
    # Moved by the database (triggers of migration 0011) whenever something this learner's pages show changes;
    # kaptrain.pagecache keeps rendered pages under it. Nothing in the code writes it.
    pages_version: Mapped[int] = mapped_column(default=0, server_default="0")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        """Every loaded user is authenticated."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Loaded users are never anonymous."""
        return False

    def get_id(self) -> str:
        """Session identifier: id and session version, so old cookies stop working."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_email_confirmed(self) -> bool:
        """True once the person followed a confirmation (or password-reset) link sent to their address."""
        return self.email_confirmed_at is not None

    @property
    def has_two_factor(self) -> bool:
        """True when logging in asks for a code after the password."""
        return self.totp_enabled_at is not None

    @property
    def must_use_two_factor(self) -> bool:
        """Instructors and administrators must sign in with two factors."""
        return self.role in (Role.INSTRUCTOR, Role.ADMIN)

    def has_role(self, *roles: Role) -> bool:
        """True when the user holds one of the roles (admins hold every role)."""
        return self.role == Role.ADMIN or self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class TokenPurpose(enum.StrEnum):
    """What an emailed link does."""

    RESET_PASSWORD = "reset_password"  # noqa: S105 - a kind of link, not a password
    CONFIRM_EMAIL = "confirm_email"  # the account's own address, after registration
    CHANGE_EMAIL = "change_email"  # a new address the person asked to move to


class AccountToken(Base):
    """A single-use link sent by email; only a hash of its secret is stored (kaptrain/accounts/tokens.py)."""

    __tablename__ = "account_tokens"
    __table_args__ = (one_of("purpose", TokenPurpose),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # CASCADE: a token is not a record anyone must keep; it goes with the account.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(TokenPurpose, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the secret in the link, hex
    # The address the link was sent to: the account's own (reset, confirm) or the new one (change).
    email: Mapped[str] = mapped_column(String(254))
    # A fingerprint of the password hash when the link was sent: any change of password voids the link.
    password_stamp: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]  # replaced by a later link of the same purpose


class RecoveryCode(Base):
    """A one-time code that stands in for the authenticator app; only its hash is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the normalised code, hex
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]


class EndedSession(Base):
    """A browser's session that logged out: its cookie, replayed, no longer signs anyone in.

    Each login gives the browser's cookie a random session id (kaptrain.accounts.browser_sessions); logging out
    records it here, so one browser logs out without ending the account's others. Rows are kept only while such
    a cookie could still be current (SESSION_HOURS after its login), and name no one."""

    __tablename__ = "ended_sessions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
