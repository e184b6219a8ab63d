"""Question types as a registry: how each is answered and graded. Pure functions, no database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaptrain.quizzes.models import QuestionType

Options = Sequence[Mapping[str, Any]]
Grader = Callable[[Options, frozenset[str], bool], float]


def correct_ids(options: Options) -> frozenset[str]:
    """The ids of the correct options."""
    return frozenset(str(o["id"]) for o in options if o["correct"])


def _grade_one_answer(options: Options, selected: frozenset[str], _partial: bool) -> float:
    return 1.0 if selected == correct_ids(options) else 0.0


def _grade_select_all(options: Options, selected: frozenset[str], partial: bool) -> float:
    right = correct_ids(options)
    if selected == right:
        return 1.0
    if not partial:
        return 0.0
    # Partial credit: each right choice earns a share; each wrong choice takes one away; never below 0.
    hits = len(selected & right)
    wrong = len(selected - right)
    return max(0.0, (hits - wrong) / len(right))


@dataclass(frozen=True)
class QuestionKind:
    """How one question type is presented and graded."""

    input_type: str  # "radio" or "checkbox"
    instruction: str
    grade: Grader
    single_choice: bool


REGISTRY: dict[QuestionType, QuestionKind] = {
    QuestionType.SINGLE: QuestionKind("radio", "Choose one answer.", _grade_one_answer, True),
    QuestionType.TRUE_FALSE: QuestionKind("radio", "True or false?", _grade_one_answer, True),
    QuestionType.MULTIPLE: QuestionKind("checkbox", "Select all that apply.", _grade_select_all, False),
}


def grade(qtype: QuestionType, options: Options, selected: frozenset[str], partial: bool) -> float:
    """Credit in [0, 1] for one answer."""
    return REGISTRY[qtype].grade(options, selected, partial)
