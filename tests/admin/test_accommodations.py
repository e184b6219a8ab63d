"""Accommodations: a reason is required, grants are edited and withdrawn, and every change is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kaptrain.accounts.models import Role
from kaptrain.audit import AuditEntry
from kaptrain.quizzes import services
from kaptrain.quizzes.accommodations import AccommodationError
from kaptrain.quizzes.models import Accommodation, AccommodationAction
from tests.factories import make_user, quiz


@pytest.fixture
def admin(db, login):  # type: ignore[no-untyped-def]
    """A logged-in administrator."""
    user = make_user(db, role=Role.ADMIN, full_name="Ada Admin")
    db.commit()
    return login(user)


def grant(db, admin, learner, minutes: int = 15, attempts: int = 1) -> Accommodation:  # type: ignore[no-untyped-def]
    """A grant made through the service."""
    q = quiz(db, "alpha-quiz")
    acc = services.grant_accommodation(db, learner.id, q, minutes, attempts, "DSS letter", admin.id)
    db.commit()
    return acc


def audit_actions(db, acc: Accommodation) -> list[str]:  # type: ignore[no-untyped-def]
    """The audit log's actions on one grant, oldest first."""
    return list(
        db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "accommodation", AuditEntry.subject_id == acc.id)
            .order_by(AuditEntry.id)
        )
    )


@pytest.mark.parametrize("note", ["", "   "])
def test_a_reason_is_required(client, db, admin, note):
    learner = make_user(db)
    db.commit()
    page = client.post(
        "/admin/accommodations",
        data={"email": learner.email, "quiz": str(quiz(db, "alpha-quiz").id), "extra_minutes": "10", "note": note},
    )
    assert page.status_code == 422 and "Give the reason for this accommodation" in page.text
    assert db.scalar(select(func.count()).select_from(Accommodation)) == 0
    with pytest.raises(AccommodationError, match="reason"):
        services.grant_accommodation(db, learner.id, quiz(db, "alpha-quiz"), 10, 0, note, admin.id)


def test_editing_keeps_the_earlier_terms_in_history_and_the_audit_log(client, db, admin):
    learner = make_user(db)
    acc = grant(db, admin, learner)
    response = client.post(
        f"/admin/accommodations/{acc.id}", data={"extra_minutes": "30", "extra_attempts": "2", "note": "New letter"}
    )
    assert response.status_code == 302
    db.expire_all()
    assert [c.action for c in acc.changes] == [AccommodationAction.GRANTED, AccommodationAction.EDITED]
    edited = acc.changes[-1]
    assert edited.before == {"extra_minutes": 15, "extra_attempts": 1, "note": "DSS letter"}
    assert edited.after == {"extra_minutes": 30, "extra_attempts": 2, "note": "New letter"}
    assert edited.changed_by_id == admin.id
    assert audit_actions(db, acc) == ["accommodation.granted", "accommodation.edited"]
    rules = services.rules_for(db, learner.id, quiz(db, "alpha-quiz"))
    assert rules.extra_minutes == 30 and rules.extra_attempts == 2
    page = client.get(f"/admin/accommodations/{acc.id}")
    assert page.status_code == 200 and "Edited" in page.text and "DSS letter" in page.text


def test_an_edit_without_a_reason_changes_nothing(client, db, admin):
    acc = grant(db, admin, make_user(db))
    data = {"extra_minutes": "99", "extra_attempts": "1", "note": ""}
    page = client.post(f"/admin/accommodations/{acc.id}", data=data)
    assert page.status_code == 422
    db.expire_all()
    assert acc.extra_minutes == 15 and len(acc.changes) == 1


def test_a_withdrawn_grant_no_longer_applies_and_can_be_given_again(client, db, admin):
    learner = make_user(db)
    q = quiz(db, "alpha-quiz")
    acc = grant(db, admin, learner)
    refused = client.post(f"/admin/accommodations/{acc.id}/withdraw", data={"reason": ""}, follow_redirects=True)
    assert "Give the reason for withdrawing" in refused.text
    db.expire_all()
    assert not acc.is_withdrawn

    response = client.post(f"/admin/accommodations/{acc.id}/withdraw", data={"reason": "Letter expired"})
    assert response.status_code == 302
    db.expire_all()
    assert acc.is_withdrawn and acc.withdrawn_by_id == admin.id
    rules = services.rules_for(db, learner.id, q)
    assert rules.max_attempts == q.max_attempts and rules.extra_minutes == 0
    withdrawn = acc.changes[-1]
    assert withdrawn.action == AccommodationAction.WITHDRAWN and withdrawn.reason == "Letter expired"
    with pytest.raises(AccommodationError, match="already withdrawn"):
        services.withdraw_accommodation(db, acc, "again", admin.id)

    services.grant_accommodation(db, learner.id, q, 0, 3, "New letter", admin.id)
    assert not acc.is_withdrawn and services.rules_for(db, learner.id, q).extra_attempts == 3
    assert [c.action.value for c in acc.changes] == ["granted", "withdrawn", "granted"]
    assert audit_actions(db, acc) == ["accommodation.granted", "accommodation.withdrawn", "accommodation.granted"]


def test_the_list_shows_withdrawn_grants_with_their_links(client, db, admin):
    acc = grant(db, admin, make_user(db, full_name="Wren Learner"))
    services.withdraw_accommodation(db, acc, "No longer needed", admin.id)
    db.commit()
    page = client.get("/admin/accommodations")
    assert "Wren Learner" in page.text and "Withdrawn" in page.text
    assert f"/admin/accommodations/{acc.id}" in page.text


def test_an_unknown_grant_is_404(client, db, admin):
    assert client.get("/admin/accommodations/999999").status_code == 404
    assert client.post("/admin/accommodations/999999/withdraw", data={"reason": "x"}).status_code == 404
