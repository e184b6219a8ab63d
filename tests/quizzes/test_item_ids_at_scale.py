"""Answers name attempt items by id: ids past a million (reached at about 100,000 attempts) are still accepted."""

from __future__ import annotations

import pytest

from kaptrain.quizzes import services
from kaptrain.quizzes.models import Attempt, AttemptItem, QuestionRevision, QuestionType


def _attempt(item_id: int) -> Attempt:
    revision = QuestionRevision(type=QuestionType.SINGLE, options=[{"id": "a", "correct": True}, {"id": "b"}])
    return Attempt(items=[AttemptItem(id=item_id, position=0, option_order=["b", "a"], revision=revision)])


@pytest.mark.parametrize("item_id", [7, 999_999, 1_203_736, 2_147_483_647])
def test_large_item_ids_are_read(item_id: int) -> None:
    assert services.read_answers(_attempt(item_id), {f"q-{item_id}": ["1"]}) == {item_id: frozenset({"a"})}


@pytest.mark.parametrize("key", ["q-1203737", "q-" + "9" * 19, "q-１２", "q-12a"])
def test_other_ids_are_refused(key: str) -> None:
    with pytest.raises(services.QuizError, match="do not belong to this attempt"):
        services.read_answers(_attempt(1_203_736), {key: ["0"]})
