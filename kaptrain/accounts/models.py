"""Account models."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from kaptrain.db import Base, utcnow


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

    def has_role(self, *roles: Role) -> bool:
        """True when the user holds one of the roles (admins hold every role)."""
        return self.role == Role.ADMIN or self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"
