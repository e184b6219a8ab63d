"""Question banks: sync a bank file into versioned questions, and export it back."""

from __future__ import annotations

import string
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.content.identity import find_by_slug
from kaptrain.content.models import Course, Module
from kaptrain.content.schema import Option, QuestionFile, QuizFile, QuizSettings, Vignette
from kaptrain.quizzes.models import Question, QuestionRevision, Quiz, QuizKind, Reveal

SETTINGS = ("title", "draw", "passing_score", "max_attempts", "cooldown_hours", "time_limit_minutes", "partial_credit")
REVISION_FIELDS = (
    "type",
    "section",
    "module_slug",
    "vignette_key",
    "vignette_title",
    "vignette_text",
    "stem",
    "options",
    "explanation",
)


def latest_question_revision(session: Session, question: Question) -> QuestionRevision | None:
    """The question's current (highest-numbered) revision."""
    return session.scalar(
        select(QuestionRevision)
        .where(QuestionRevision.question_id == question.id)
        .order_by(QuestionRevision.number.desc())
        .limit(1)
    )


def revision_values(q: QuestionFile, vignettes: dict[str, Vignette]) -> dict[str, Any]:
    """The stored form of a question file entry; option ids are letters in file order."""
    v = vignettes.get(q.vignette) if q.vignette else None
    return {
        "type": q.type,
        "section": q.section,
        "module_slug": q.module,
        "vignette_key": v.key if v else None,
        "vignette_title": v.title if v else None,
        "vignette_text": v.text if v else None,
        "stem": q.stem,
        "options": [
            {"id": string.ascii_lowercase[i], "text": o.text, "correct": o.correct} for i, o in enumerate(q.options)
        ],
        "explanation": q.explanation,
    }


def sync_quiz(
    session: Session,
    course: Course,
    data: QuizFile,
    modules: dict[str, Module],
    stats: Counter[str],
    author_id: int | None = None,
) -> Quiz:
    """Create or update a quiz and its questions; changed questions get a new revision."""
    s = data.quiz
    quiz = find_by_slug(session, Quiz, course.id, s.slug, s.previous_slugs)
    module_id = modules[s.module].id if s.module else None
    if quiz is None:
        quiz = Quiz(slug=s.slug, course_id=course.id, kind=QuizKind(s.kind), module_id=module_id)
        session.add(quiz)
        stats["quizzes created"] += 1
    elif quiz.slug != s.slug:
        quiz.slug = s.slug  # a declared rename: same quiz, so learners' attempts stay attached
        stats["quizzes renamed"] += 1
    quiz.kind, quiz.module_id, quiz.is_retired = QuizKind(s.kind), module_id, False
    quiz.previous_slugs = list(s.previous_slugs)
    quiz.reveal_answers = Reveal(s.reveal_answers)
    for name in SETTINGS:
        setattr(quiz, name, getattr(s, name))
    session.flush()
    vignettes = {v.key: v for v in data.vignettes}
    existing = {q.key: q for q in session.scalars(select(Question).where(Question.quiz_id == quiz.id))}
    for position, qf in enumerate(data.questions):
        question = existing.pop(qf.key, None)
        if question is None:
            question = Question(quiz_id=quiz.id, key=qf.key)
            session.add(question)
            session.flush()
        question.position, question.is_retired = position, False
        values = revision_values(qf, vignettes)
        current = latest_question_revision(session, question)
        if current is not None and {k: getattr(current, k) for k in REVISION_FIELDS} == values:
            stats["questions unchanged"] += 1
            continue
        number = 1 if current is None else current.number + 1
        session.add(QuestionRevision(question_id=question.id, number=number, created_by_id=author_id, **values))
        stats["question revisions created"] += 1
    for question in existing.values():
        if not question.is_retired:
            question.is_retired = True
            stats["questions retired"] += 1
    session.flush()
    return quiz


def retire_quizzes(session: Session, course: Course, keep: set[int]) -> int:
    """Retire the course's quizzes whose files are gone: they stop gating, their attempts stay. Returns how many."""
    retired = 0
    for quiz in session.scalars(select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False))):
        if quiz.id not in keep:
            quiz.is_retired = True
            retired += 1
    session.flush()
    return retired


def export_quizzes(session: Session, course: Course) -> list[QuizFile]:
    """The course's current quizzes as file models (current revisions of questions still in use)."""
    out = []
    current = session.scalars(
        select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False)).order_by(Quiz.id)
    )
    for quiz in current.all():
        if quiz.module is not None and quiz.module.is_retired:
            continue  # its module's file is gone; a quiz file naming it would not read back
        settings = QuizSettings(
            slug=quiz.slug,
            previous_slugs=quiz.previous_slugs,
            kind=quiz.kind.value,
            module=quiz.module.slug if quiz.module else None,
            reveal_answers=quiz.reveal_answers.value,
            **{k: getattr(quiz, k) for k in SETTINGS},
        )
        vignettes: dict[str, Vignette] = {}
        keys: dict[tuple[str, str, str], str] = {}  # (key, title, text) -> key written to the file
        questions = []
        rows = session.scalars(
            select(Question)
            .where(Question.quiz_id == quiz.id, Question.is_retired.is_(False))
            .order_by(Question.position)
        )
        for question in rows:
            rev = latest_question_revision(session, question)
            if rev is None:
                continue
            vkey = None
            if rev.vignette_key and rev.vignette_title and rev.vignette_text:
                vkey = _vignette_key(vignettes, keys, rev.vignette_key, rev.vignette_title, rev.vignette_text)
            questions.append(
                QuestionFile(
                    key=question.key,
                    type=rev.type.value,
                    section=rev.section,
                    module=rev.module_slug,
                    vignette=vkey,
                    stem=rev.stem,
                    explanation=rev.explanation,
                    options=[Option(text=o["text"], correct=o["correct"]) for o in rev.options],
                )
            )
        out.append(QuizFile(quiz=settings, vignettes=list(vignettes.values()), questions=questions))
    return out


def _vignette_key(
    vignettes: dict[str, Vignette], keys: dict[tuple[str, str, str], str], key: str, title: str, text: str
) -> str:
    """The file key for a question's case; two questions whose copies of a case differ get separate cases
    (key, key-2, ...) so that neither text is silently replaced by the other on export."""
    found = keys.get((key, title, text))
    if found is not None:
        return found
    new, n = key, 1
    while new in vignettes:
        n += 1
        new = f"{key}-{n}"
    vignettes[new] = Vignette(key=new, title=title, text=text)
    keys[(key, title, text)] = new
    return new
