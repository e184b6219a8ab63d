"""A question as a learner would get it, for its author: the case above it, the stem, the options with the
inputs of its type, and, once the author tries an answer, the credit it earns and the review a passing learner
sees (the correct options and the explanation). Nothing is stored: no attempt, no item-analysis figure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kaptrain.authoring import services
from kaptrain.content import revisions
from kaptrain.quizzes import grading
from kaptrain.quizzes.grading import QuestionKind
from kaptrain.quizzes.models import Question, QuestionType, Quiz
from kaptrain.quizzes.models import Vignette as VignetteRow


@dataclass(frozen=True)
class PreviewOption:
    id: str
    text: str
    correct: bool
    chosen: bool


@dataclass(frozen=True)
class QuestionPreview:
    """One version of a question laid out as the quiz page lays it out."""

    version: str  # "draft", "published" or "unsaved" (the editor's form)
    has_draft: bool
    has_published: bool
    kind: QuestionKind
    stem: str
    options: list[PreviewOption]
    explanation: str
    section: str
    case: tuple[str, str] | None  # the case's title and text
    answered: bool
    credit: float | None  # what the tried answer earns, 0 to 1, under the bank's partial-credit rule

    @property
    def complete(self) -> bool:
        """Whether a learner could be given it: a stem and at least two options, one of them correct."""
        return bool(self.stem.strip()) and len(self.options) >= 2 and any(o.correct for o in self.options)


def _case(session: Session, quiz: Quiz, case_id: Any) -> tuple[str, str] | None:
    """The case's title and text as the editor has them now (cases publish at once), if it is one of this bank's."""
    case = session.get(VignetteRow, case_id) if isinstance(case_id, int) else None
    if case is None or case.quiz_id != quiz.id:
        return None
    data, _draft = services.current_data(session, case)
    return str(data.get("title") or ""), str(data.get("text") or "")


def preview(session: Session, quiz: Quiz, question: Question, version: str, answer: list[str]) -> QuestionPreview:
    """The question's draft (or, when asked or when there is none, its published revision), with `answer` (option
    ids) tried against it. Raises AuthoringError (404) when the question has neither."""
    draft = revisions.draft_for(session, question)
    published = revisions.published(session, question)
    if draft is None or (version == "published" and published is not None):
        if published is None:
            raise services.AuthoringError("This question has neither a draft nor a published revision.", 404)
        data, shown = revisions.revision_data(revisions.QUESTION, published), "published"
    else:
        data, shown = dict(draft.data), "draft"
    return laid_out(session, quiz, data, shown, draft is not None, published is not None, answer)


def unsaved(session: Session, quiz: Quiz, question: Question, data: dict[str, Any]) -> QuestionPreview:
    """What the editor's form says, laid out as a learner would get it: nothing saved, no answer tried."""
    draft = revisions.draft_for(session, question)
    published = revisions.published(session, question)
    return laid_out(session, quiz, data, "unsaved", draft is not None, published is not None, [])


def laid_out(
    session: Session,
    quiz: Quiz,
    data: dict[str, Any],
    shown: str,
    has_draft: bool,
    has_published: bool,
    answer: list[str],
) -> QuestionPreview:
    """A question's plain data (a draft's, a revision's or the form's) as the quiz page lays it out, with `answer`
    (option ids) tried against it."""
    try:
        qtype = QuestionType(data.get("type") or QuestionType.SINGLE)
    except ValueError:
        qtype = QuestionType.SINGLE
    kind = grading.REGISTRY[qtype]
    rows = [o for o in data.get("options") or [] if isinstance(o, dict) and str(o.get("text") or "").strip()]
    ids = [str(o.get("id") or f"row-{n}") for n, o in enumerate(rows, 1)]
    picked = [a for a in dict.fromkeys(answer) if a in ids]
    if kind.single_choice:
        picked = picked[:1]
    options = [
        PreviewOption(oid, str(o["text"]), bool(o.get("correct")), oid in picked)
        for oid, o in zip(ids, rows, strict=True)
    ]
    credit = None
    if picked:
        graded = [{"id": o.id, "correct": o.correct} for o in options]
        credit = grading.grade(qtype, graded, frozenset(picked), quiz.partial_credit)
    return QuestionPreview(
        version=shown,
        has_draft=has_draft,
        has_published=has_published,
        kind=kind,
        stem=str(data.get("stem") or ""),
        options=options,
        explanation=str(data.get("explanation") or ""),
        section=str(data.get("section") or ""),
        case=_case(session, quiz, data.get("vignette_id")),
        answered=bool(picked),
        credit=credit,
    )
