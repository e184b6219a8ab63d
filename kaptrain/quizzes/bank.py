"""Question banks: sync a bank file into revisioned questions, cases and rules, and export it back."""

from __future__ import annotations

import string
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain.content import revisions
from kaptrain.content.identity import find_by_slug
from kaptrain.content.models import Course, Module
from kaptrain.content.revisions import ImportReport
from kaptrain.content.schema import Option, QuestionFile, QuizFile, QuizSettings, Vignette
from kaptrain.quizzes.models import Question, Quiz, QuizKind, QuizSettingsRevision, VignetteRevision
from kaptrain.quizzes.models import Vignette as VignetteRow

SETTINGS = revisions.QUIZ.fields


def settings_data(s: QuizSettings) -> dict[str, Any]:
    """A bank file's `quiz:` block as the plain data of a rules revision."""
    return {f: getattr(s, f) for f in SETTINGS}


def question_data(q: QuestionFile, module_id: int | None, vignette_id: int | None) -> dict[str, Any]:
    """A bank file's question as the plain data of a question revision; option ids are letters in file order."""
    return {
        "type": q.type,
        "section": q.section,
        "module_id": module_id,
        "vignette_id": vignette_id,
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
    report: ImportReport,
    author_id: int | None = None,
) -> Quiz:
    """Create or update a quiz, its rules, cases and questions; what changed gets a new published revision."""
    s = data.quiz
    where = f"quizzes/{course.slug}/{s.slug}"
    quiz = find_by_slug(session, Quiz, course.id, s.slug, s.previous_slugs)
    module_id = modules[s.module].id if s.module else None
    if quiz is None:
        quiz = Quiz(slug=s.slug, course_id=course.id, kind=QuizKind(s.kind), module_id=module_id)
        session.add(quiz)
        session.flush()
        report.stats["quizzes created"] += 1
    elif quiz.slug != s.slug:
        quiz.slug = s.slug  # a declared rename: same quiz, so learners' attempts stay attached
        report.stats["quizzes renamed"] += 1
    quiz.kind, quiz.module_id, quiz.is_retired = QuizKind(s.kind), module_id, False
    quiz.previous_slugs = list(s.previous_slugs)
    revisions.sync_from_file(session, quiz, settings_data(s), f"{where} (quiz settings)", report, author_id)
    cases = _sync_vignettes(session, quiz, data.vignettes, where, report, author_id)
    existing = {q.key: q for q in session.scalars(select(Question).where(Question.quiz_id == quiz.id))}
    for position, qf in enumerate(data.questions):
        question = existing.pop(qf.key, None)
        if question is None:
            question = Question(quiz_id=quiz.id, key=qf.key)
            session.add(question)
            session.flush()
        question.position, question.is_retired = position, False
        own_module = modules[qf.module].id if qf.module else None
        values = question_data(qf, own_module, cases[qf.vignette].id if qf.vignette else None)
        revisions.sync_from_file(session, question, values, f"{where}: {qf.key}", report, author_id)
    for question in existing.values():
        if revisions.retire_from_file(session, question, f"{where}: {question.key}", report):
            report.stats["questions retired"] += 1
    session.flush()
    return quiz


def _sync_vignettes(
    session: Session, quiz: Quiz, files: list[Vignette], where: str, report: ImportReport, author_id: int | None
) -> dict[str, VignetteRow]:
    rows = {v.key: v for v in session.scalars(select(VignetteRow).where(VignetteRow.quiz_id == quiz.id))}
    for v in files:
        row = rows.get(v.key)
        if row is None:
            row = rows[v.key] = VignetteRow(quiz_id=quiz.id, key=v.key)
            session.add(row)
            session.flush()
        revisions.sync_from_file(
            session, row, {"title": v.title, "text": v.text}, f"{where}: case {v.key}", report, author_id
        )
    return rows


def retire_quizzes(session: Session, course: Course, keep: set[int], report: ImportReport) -> None:
    """Retire the course's quizzes whose files are gone: they stop gating, their attempts stay."""
    for quiz in session.scalars(select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False))):
        if quiz.id not in keep and revisions.retire_from_file(
            session, quiz, f"quizzes/{course.slug}/{quiz.slug}", report
        ):
            report.stats["quizzes retired"] += 1
    session.flush()


def export_quizzes(session: Session, course: Course) -> list[QuizFile]:
    """The course's current quizzes as file models: published rules, cases and questions still in use."""
    out = []
    current = session.scalars(
        select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False)).order_by(Quiz.id)
    )
    for quiz in current.all():
        if quiz.module is not None and quiz.module.is_retired:
            continue  # its module's file is gone; a quiz file naming it would not read back
        out.append(export_quiz(session, quiz))
    return out


def export_quiz(session: Session, quiz: Quiz) -> QuizFile:
    """One quiz as its bank file, from what is published."""
    rules = session.get(QuizSettingsRevision, quiz.published_revision_id)
    assert rules is not None  # every quiz is created with its rules
    settings = QuizSettings(
        slug=quiz.slug,
        previous_slugs=quiz.previous_slugs,
        kind=quiz.kind.value,
        module=quiz.module.slug if quiz.module else None,
        **revisions.revision_data(revisions.QUIZ, rules),
    )
    questions = []
    used: dict[int, Vignette] = {}
    for question, rev in revisions.published_questions(session, quiz.id):
        case = rev.vignette
        if case is not None and case.id not in used:
            text = session.get(VignetteRevision, case.published_revision_id)
            if text is not None:
                used[case.id] = Vignette(key=case.key, title=text.title, text=text.text)
        questions.append(
            QuestionFile(
                key=question.key,
                type=rev.type.value,
                section=rev.section,
                module=rev.module.slug if rev.module else None,
                vignette=case.key if case is not None and case.id in used else None,
                stem=rev.stem,
                explanation=rev.explanation,
                options=[Option(text=o["text"], correct=o["correct"]) for o in rev.options],
            )
        )
    return QuizFile(quiz=settings, vignettes=list(used.values()), questions=questions)
