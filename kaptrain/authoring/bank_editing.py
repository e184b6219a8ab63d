"""The editors' actions on any revisioned item (a question, a case, a bank's rules): save, publish, discard and
restore, with a refusal returned to show rather than raised; and an item's history, two versions compared.

Besides the services' own checks: a page opened with no draft, before a revision now published, cannot write over
that revision unnoticed (the services can only check a draft's version); and the same form sent twice (a double
click) counts as done, never as a conflict with oneself."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.authoring import services
from kaptrain.authoring.bank import people
from kaptrain.authoring.diff import FieldDiff, diff
from kaptrain.authoring.models import Draft
from kaptrain.content import revisions
from kaptrain.content.models import Module
from kaptrain.content.revisions import Item, Revision
from kaptrain.quizzes.models import Vignette as VignetteRow

FILES = "the content files"  # who wrote a revision that came from an import


# ---------------------------------------------------------------- running an editor's action


@dataclass
class Outcome:
    """What an editor's action did: a message for the author; when refused, the status, the errors by field, and
    the other version to compare with (someone else's draft, or the revision published meanwhile)."""

    message: str
    status: int = 200
    errors: dict[str, str] = field(default_factory=dict)
    theirs: dict[str, Any] | None = None
    theirs_label: str = ""
    replace: int | None = None  # the revision number a confirmed publish replaces
    # The draft version and published revision number the page holds from now on (None: keep what it sent): after
    # a refused save the page is at the other person's version, so saving again is a choice made having seen it.
    loaded: tuple[int | None, int | None] | None = None

    @property
    def ok(self) -> bool:
        """The action was done."""
        return self.status < 400


Loaded = tuple[int | None, int | None]  # (draft version, published revision number) the editor was opened at


def run_action(
    session: Session,
    item: Item,
    action: str,
    data: dict[str, Any] | None,
    user: User,
    loaded: Loaded,
    replace: int | None = None,
    note: str = "",
) -> Outcome:
    """Save the editor's data as the draft ("save"), save and publish it ("publish") or throw the draft away
    ("discard"). A refusal is returned, not raised; the caller answers with its status, which rolls back.

    Besides the services' draft-version check, a page opened with no draft, before the revision now published,
    cannot write over that revision unnoticed; `replace` is the revision number the author chose to replace."""
    kind = revisions.kind_of(item)
    try:
        if action == "discard":
            services.discard_draft(session, item, user, loaded[0])
            return Outcome("The draft was discarded. The published version is unchanged.")
        if data is None:
            raise services.InvalidDraft({"draft": "nothing was sent"})
        current = revisions.published(session, item)
        unchanged = current is not None and _same(kind, revisions.revision_data(kind, current), data)
        if unchanged and revisions.draft_for(session, item) is None:
            return Outcome("Nothing to save: the form says what is already published.")
        _refuse_older_page(session, item, current, loaded, action == "publish", replace)
        draft = services.save_draft(session, item, data, user, loaded[0])
        if action != "publish":
            return Outcome("Draft saved. Learners see no change until it is published.")
        replace_id = current.id if current is not None and replace == current.number else None
        revision = services.publish_draft(session, item, user, draft.version, replace_id, note=note)
        return Outcome(f"Published as revision {revision.number}. {_who_gets(kind)}")
    except services.InvalidDraft as exc:
        return Outcome("The draft was not saved: correct what is marked below.", 400, errors=exc.errors)
    except services.StaleDraft as exc:
        return _stale(session, item, action, data, exc)
    except services.PublishConflict as exc:
        if _same(kind, revisions.revision_data(kind, exc.published), data):
            return Outcome("This version is already published.")  # the same publish sent twice
        who = people(session, [exc.published.created_by_id]).get(exc.published.created_by_id or 0, FILES)
        return Outcome(
            str(exc),
            409,
            theirs=revisions.revision_data(kind, exc.published),
            theirs_label=f"Revision {exc.published.number}, published meanwhile by {who}",
            replace=exc.published.number,
        )
    except services.AuthoringError as exc:
        return Outcome(str(exc), exc.status)


def _refuse_older_page(
    session: Session, item: Item, current: Revision | None, loaded: Loaded, publishing: bool, replace: int | None
) -> None:
    loaded_version, loaded_revision = loaded
    if loaded_version is not None or current is None or loaded_revision == current.number:
        return  # a page that opened a draft is checked by the draft's version
    if replace == current.number or revisions.draft_for(session, item) is not None:
        return  # the author chose to replace it; or someone's draft is in the way, which save_draft reports
    if publishing:
        raise services.PublishConflict(current)
    raise services.StaleDraft(
        None,
        f"Revision {current.number} was published after you opened this page, so your changes were not saved. "
        "It is shown beside yours: copy what you need into the form and save again.",
    )


def _who_gets(kind: revisions.Kind) -> str:
    if kind is revisions.QUIZ:
        return "New attempts are taken under these rules; attempts already started keep the rules they began under."
    if kind is revisions.VIGNETTE:
        return "New attempts show this text; learners' past attempts keep the case text they read."
    return "New attempts draw this version; attempts already started keep the version they were given."


def _same(kind: revisions.Kind, a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return a is not None and b is not None and not diff(a, b, kind.fields)


def _stale(session: Session, item: Item, action: str, data: dict[str, Any] | None, exc: services.StaleDraft) -> Outcome:
    kind = revisions.kind_of(item)
    current: Revision | None = revisions.published(session, item)
    number = current.number if current is not None else None
    if exc.current is not None:
        if action == "save" and _same(kind, exc.current.data, data):
            return Outcome("Draft saved. Learners see no change until it is published.")  # the same form sent twice
        who = people(session, [exc.current.updated_by_id]).get(exc.current.updated_by_id or 0, "someone")
        label = f"The draft saved by {who} at {exc.current.updated_at:%H:%M} UTC"
        return Outcome(str(exc), 409, theirs=dict(exc.current.data), theirs_label=label,
                       loaded=(exc.current.version, number))  # fmt: skip
    theirs = revisions.revision_data(kind, current) if current is not None else None
    if action == "publish" and _same(kind, theirs, data):
        return Outcome("This version is already published.")  # the same publish sent twice
    if action == "discard":
        return Outcome("There is no draft any more (it was discarded or published): the current version is shown.")
    label = ""
    if current is not None:
        who = people(session, [current.created_by_id]).get(current.created_by_id or 0, FILES)
        label = f"Revision {current.number}, published by {who}"
    return Outcome(str(exc), 409, theirs=theirs, theirs_label=label, loaded=(None, number))


def run_restore(session: Session, item: Item, number: int, user: User, loaded_version: int | None) -> Outcome:
    """Make an old revision the item's draft; a refusal (a newer draft, a revision that no longer fits) is returned."""
    try:
        services.restore(session, item, number, user, loaded_version)
    except services.StaleDraft as exc:
        return Outcome(str(exc), 409)
    except services.InvalidDraft as exc:
        problems = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        return Outcome(f"Revision {number} cannot be restored as it is: {problems}.", 400)
    except services.AuthoringError as exc:
        return Outcome(str(exc), exc.status)
    return Outcome(f"Revision {number} is now the draft. Review it and publish it: learners see no change until then.")


# ---------------------------------------------------------------- revisions and comparing


@dataclass(frozen=True)
class RevisionRow:
    """One revision in an item's history."""

    number: int
    author: str
    created_at: dt.datetime
    is_published: bool
    note: str = ""  # what changed, as the author who published it said


@dataclass
class History:
    """An item's revisions, newest first, its draft, and the two versions chosen for comparison ("draft" or a
    revision number), with what each says."""

    rows: list[RevisionRow]
    draft: Draft | None
    a: str
    b: str
    left: dict[str, Any] | None
    right: dict[str, Any] | None

    @property
    def choices(self) -> list[tuple[str, str]]:
        """What can be compared: the draft, then each revision."""
        out = [("draft", "The current draft")] if self.draft is not None else []
        return out + [(str(r.number), f"Revision {r.number}" + (" (published)" if r.is_published else "")) for r in
                      self.rows]  # fmt: skip

    def label(self, choice: str) -> str:
        """How a chosen version is named above its column."""
        return dict(self.choices).get(choice, choice)

    @property
    def pair(self) -> bool:
        """Two different versions are chosen."""
        return self.left is not None and self.right is not None and self.a != self.b


def history(session: Session, item: Item, a: str | None, b: str | None) -> History:
    """The item's history, comparing a with b; by default the published revision with the draft, or else the two
    newest revisions. A choice that is not a revision (nor "draft" when there is one) is a 404."""
    kind = revisions.kind_of(item)
    found = revisions.history(session, item)
    who = people(session, [r.created_by_id for r in found])
    notes = services.publish_notes(session, item)
    rows = [
        RevisionRow(
            r.number,
            who.get(r.created_by_id or 0, FILES),
            r.created_at,
            r.id == item.published_revision_id,
            notes.get(r.number, ""),
        )
        for r in found
    ]
    draft = revisions.draft_for(session, item)
    published = next((str(r.number) for r in rows if r.is_published), str(rows[0].number) if rows else "")
    if draft is not None:
        default = (published or "draft", "draft")
    else:
        default = (str(rows[1].number) if len(rows) > 1 else published, published)
    a, b = a or default[0], b or default[1]
    by_number = {str(r.number): revisions.revision_data(kind, r) for r in found}
    if draft is not None:
        by_number["draft"] = dict(draft.data)
    for choice in (a, b):
        if choice and choice not in by_number:
            raise services.AuthoringError(f"There is no version “{choice}” of this item to compare.", 404)
    return History(rows, draft, a, b, by_number.get(a), by_number.get(b))


def readable(session: Session, data: dict[str, Any] | None) -> dict[str, Any]:
    """Data as a person compares it: a question's module and case by name rather than by id."""
    out = dict(data or {})
    if out.get("module_id"):
        module = session.get(Module, out["module_id"])
        out["module_id"] = module.slug if module is not None else out["module_id"]
    if out.get("vignette_id"):
        case = session.get(VignetteRow, out["vignette_id"])
        out["vignette_id"] = case.key if case is not None else out["vignette_id"]
    return out


def compare(
    session: Session, kind: revisions.Kind, left: dict[str, Any] | None, right: dict[str, Any] | None
) -> list[FieldDiff]:
    """The side-by-side differences between two versions of an item, as the people who wrote them read them."""
    return diff(readable(session, left), readable(session, right), kind.fields)
