"""Site settings an administrator edits in the console, and the one place certificates read them from.

Precedence, highest first: a value set in the console (a row in `settings`), then the deployment's
environment (KAPTRAIN_* config), then the course file (course.yaml). A course's approval mode set in the
console is stored here under `approval:<course slug>`; `content import` only updates the course.yaml
default on the course row, so it can never undo an administrator's choice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import JSON, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kaptrain import audit
from kaptrain.accounts.models import User
from kaptrain.cache import VERSION_KEY
from kaptrain.config import PAGE_SIZES
from kaptrain.content.models import Course
from kaptrain.db import Base, utcnow

APPROVAL_MODES = ("automatic", "manual")
# The settings that are not per course, and the config key that gives each one's environment default.
SITE_KEYS = {
    "provider_name": None,  # default: the provider named in each course.yaml
    "accreditation_statement": "ACCREDITATION_STATEMENT",
    "signatory_name": "CERTIFICATE_SIGNATORY_NAME",
    "signatory_title": "CERTIFICATE_SIGNATORY_TITLE",
    "certificate_page_size": "CERTIFICATE_PAGE_SIZE",
}
APPROVAL_PREFIX = "approval:"


class Setting(Base):
    """One value an administrator set in the console; no row means the default applies."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(150), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SettingsError(ValueError):
    """A settings change that cannot be saved; the message names the field."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def approval_key(course_slug: str) -> str:
    """The settings key of one course's approval mode."""
    return f"{APPROVAL_PREFIX}{course_slug}"


def get_setting(session: Session, key: str) -> Any | None:
    """The value set in the console for key, or None when the default applies."""
    row = session.get(Setting, key)
    return None if row is None else row.value


def all_settings(session: Session) -> dict[str, Any]:
    """Every value set in the console, by key."""
    # The content version token shares the table (kaptrain.cache) but is no console setting.
    return {s.key: s.value for s in session.scalars(select(Setting)) if s.key != VERSION_KEY}


def environment_default(key: str) -> str:
    """What the deployment's configuration gives for a site setting ("" when it gives nothing)."""
    config_key = SITE_KEYS[key]
    return str(current_app.config.get(config_key) or "") if config_key else ""


def _validate(key: str, value: Any) -> None:
    if key == "certificate_page_size" and value not in PAGE_SIZES:
        raise SettingsError(f"Paper size must be one of {', '.join(PAGE_SIZES)}.", key)
    if key.startswith(APPROVAL_PREFIX) and value not in APPROVAL_MODES:
        raise SettingsError(f"Approval must be one of {', '.join(APPROVAL_MODES)}.", key)
    if key not in SITE_KEYS and not key.startswith(APPROVAL_PREFIX):
        raise SettingsError(f"There is no setting called {key!r}.", key)
    if not isinstance(value, str) or len(value) > 2000:
        raise SettingsError("Use text of at most 2,000 characters.", key)


def set_settings(session: Session, values: Mapping[str, Any | None], actor: User | None) -> dict[str, Any]:
    """Save console values (None removes a value, so the default applies again); each change is audited.

    Returns {key: (before, after)} for the keys that changed."""
    changed: dict[str, Any] = {}
    for key, value in values.items():
        if value is not None:
            _validate(key, value)
        row = session.get(Setting, key)
        before = None if row is None else row.value
        if before == value:
            continue
        if value is None:
            assert row is not None  # noqa: S101 - before != value, so the row exists
            session.delete(row)
        elif row is None:
            session.add(Setting(key=key, value=value, updated_by_id=actor.id if actor else None))
        else:
            row.value, row.updated_at, row.updated_by_id = value, utcnow(), actor.id if actor else None
        changed[key] = (before, value)
        audit.record(
            session, "settings.change", "setting", None, actor_id=actor.id if actor else None,
            key=key, before=before, after=value,
        )  # fmt: skip
    session.flush()
    return changed


@dataclass(frozen=True)
class CertificateSettings:
    """What a certificate issued now prints, and how it is approved, for one course."""

    provider: str
    accreditation_statement: str | None
    signatory_name: str
    signatory_title: str
    page_size: str
    approval: str


def page_size(session: Session) -> str:
    """The certificate paper size in effect (console, else environment)."""
    value = get_setting(session, "certificate_page_size")
    return str(value or current_app.config["CERTIFICATE_PAGE_SIZE"])


def accreditation_statement(session: Session, stored: dict[str, Any] | None = None) -> str:
    """The accreditation statement in effect ("" when the courses carry no accredited CE credit); `stored`: the
    console's values when the caller has read them already (all_settings)."""
    key = "accreditation_statement"
    value = stored.get(key) if stored is not None else get_setting(session, key)
    return str(value or environment_default(key) or "")


def certificate_settings(session: Session, course: Course) -> CertificateSettings:
    """The values in effect for a certificate of this course: console, else environment, else course.yaml."""
    stored = all_settings(session)

    def pick(key: str, fallback: str) -> str:
        return str(stored.get(key) or environment_default(key) or fallback)

    return CertificateSettings(
        provider=pick("provider_name", course.provider),
        accreditation_statement=accreditation_statement(session, stored) or None,
        signatory_name=pick("signatory_name", course.signatory_name),
        signatory_title=pick("signatory_title", course.signatory_title),
        # From the rows read above (page_size() would read its row again, or miss it with a query).
        page_size=str(stored.get("certificate_page_size") or current_app.config["CERTIFICATE_PAGE_SIZE"]),
        approval=str(stored.get(approval_key(course.slug)) or course.certificate_approval),
    )


def unsigned_courses(session: Session) -> list[Course]:
    """The courses whose certificates print only the signatory named in their course file, because no name is set
    in the console or the environment: often a role ("Education Director") over an empty signature line."""
    if get_setting(session, "signatory_name") or environment_default("signatory_name"):
        return []
    return list(session.scalars(select(Course).order_by(Course.title)))


def shadowed_by_console(session: Session, file_approvals: Iterable[tuple[str, str]]) -> list[str]:
    """Notes for `content import`: course files whose approval mode a console setting overrides."""
    notes = []
    for slug, from_file in file_approvals:
        override = get_setting(session, approval_key(slug))
        if override is not None and override != from_file:
            notes.append(
                f"Note: {slug}: course.yaml says approval {from_file!r}, but the console setting {override!r} "
                "stays in effect (change it in Admin > Settings)."
            )
    return notes
