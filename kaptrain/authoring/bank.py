"""What the question-bank editor works with: a bank's questions with their current data (draft or published) as
content-file models and their item-writing findings, the module headings a section is chosen from, the cases and
who uses them, and the bank's structure (move, retire). Saving and publishing: bank_editing.py."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.authoring import checks, services
from kaptrain.authoring.checks import BankFigures, Finding
from kaptrain.authoring.models import Draft
from kaptrain.content import files, revisions
from kaptrain.content.files import module_sections
from kaptrain.content.models import Course, Module
from kaptrain.content.schema import ModuleFile, Option, QuestionFile, QuizFile, QuizSettings
from kaptrain.quizzes import bank as quiz_files
from kaptrain.quizzes.models import Question, QuestionRevision, Quiz, QuizKind
from kaptrain.quizzes.models import Vignette as VignetteRow

# ---------------------------------------------------------------- finding things


def find_bank(session: Session, course_slug: str, quiz_slug: str) -> tuple[Course, Quiz]:
    """A course (published or not: instructors prepare courses) and one of its quizzes; 404 when either is missing."""
    course = session.scalar(select(Course).where(Course.slug == course_slug))
    quiz = session.scalar(select(Quiz).where(Quiz.course_id == course.id, Quiz.slug == quiz_slug)) if course else None
    if course is None or quiz is None:
        raise services.AuthoringError("There is no question bank at this address.", 404)
    return course, quiz


def question_by_key(session: Session, quiz: Quiz, key: str) -> Question | None:
    """A question of the bank by key, if there is one."""
    return session.scalar(select(Question).where(Question.quiz_id == quiz.id, Question.key == key))


def find_question(session: Session, quiz: Quiz, key: str) -> Question:
    """A question of the bank by key (404 when there is none)."""
    found = question_by_key(session, quiz, key)
    if found is None:
        raise services.AuthoringError(f"This bank has no question with the key “{key}”.", 404)
    return found


def find_case(session: Session, quiz: Quiz, key: str) -> VignetteRow:
    """A case of the bank by key (404 when there is none)."""
    found = session.scalar(select(VignetteRow).where(VignetteRow.quiz_id == quiz.id, VignetteRow.key == key))
    if found is None:
        raise services.AuthoringError(f"This bank has no case with the key “{key}”.", 404)
    return found


def cases_of(session: Session, quiz: Quiz) -> list[VignetteRow]:
    """The bank's cases, by key."""
    return list(session.scalars(select(VignetteRow).where(VignetteRow.quiz_id == quiz.id).order_by(VignetteRow.key)))


def people(session: Session, ids: list[int | None]) -> dict[int, str]:
    """Names of the people with these ids."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


# ---------------------------------------------------------------- modules and their headings


@dataclass(frozen=True)
class ModuleChoice:
    """A module a final-assessment question can test, with the headings its section is chosen from."""

    id: int
    slug: str
    title: str
    position: int
    sections: list[str]


def headings(body: str) -> list[str]:
    """A module text's ## and ### headings, exactly as `content check` reads them."""
    # module_sections reads only the body, so a body-only model stands in for the whole file.
    return module_sections(ModuleFile.model_construct(body=body))


def course_modules(session: Session, course_id: int) -> dict[int, ModuleChoice]:
    """The course's modules learners see (published, not retired), in order, with their published headings."""
    return {
        m.id: ModuleChoice(m.id, m.slug, rev.title, m.position, headings(rev.body))
        for m, rev in revisions.published_modules(session, course_id)
    }


# ---------------------------------------------------------------- questions as content-file models


@dataclass
class BankQuestion:
    """One question of a bank as the editor shows it: its current data and the warnings about it."""

    question: Question
    data: dict[str, Any]
    draft: Draft | None
    file: QuestionFile
    findings: list[Finding] = field(default_factory=list)


def question_file(key: str, data: dict[str, Any], module_slug: str | None, case_key: str | None) -> QuestionFile:
    """A question's data as the content-file model the checks read, without validating it (a draft may be
    unfinished: the checks only read its text)."""
    options = [
        Option.model_construct(text=str(o.get("text") or ""), correct=bool(o.get("correct")))
        for o in data.get("options") or []
        if isinstance(o, dict)
    ]
    return QuestionFile.model_construct(
        key=key,
        type=data.get("type") or "single",
        section=data.get("section") or "",
        module=module_slug,
        vignette=case_key,
        stem=data.get("stem") or "",
        options=options,
        explanation=data.get("explanation") or "",
    )


def current_question_data(
    session: Session, questions: list[Question]
) -> dict[int, tuple[dict[str, Any], Draft | None]]:
    """What the editor shows for each question (its draft, else its published revision), in two queries."""
    ids = [q.id for q in questions]
    if not ids:
        return {}
    drafts = {d.question_id: d for d in session.scalars(select(Draft).where(Draft.question_id.in_(ids)))}
    wanted = [q.published_revision_id for q in questions if q.published_revision_id and q.id not in drafts]
    published = {r.id: r for r in session.scalars(select(QuestionRevision).where(QuestionRevision.id.in_(wanted)))}
    out: dict[int, tuple[dict[str, Any], Draft | None]] = {}
    for q in questions:
        if q.id in drafts:
            out[q.id] = (dict(drafts[q.id].data), drafts[q.id])
        elif q.published_revision_id in published:
            out[q.id] = (revisions.revision_data(revisions.QUESTION, published[q.published_revision_id]), None)
    return out


@dataclass
class BankReport:
    """A bank's questions with their warnings, and the bank's own figures and warnings."""

    questions: list[BankQuestion]
    figures: BankFigures
    findings: list[Finding]


def _findings_for(quiz: Quiz, bq: BankQuestion, modules: dict[int, ModuleChoice]) -> list[Finding]:
    module_id = quiz.module_id if quiz.kind == QuizKind.MODULE else bq.data.get("module_id")
    module = modules.get(module_id) if isinstance(module_id, int) else None
    # An unfinished draft with no section yet gets no "not a heading" warning: saving it names what is missing.
    sections = module.sections if module is not None and bq.file.section else None
    return checks.question_findings(quiz.slug, bq.file, sections)


def _bank_file(quiz: Quiz, questions: list[BankQuestion]) -> QuizFile:
    settings = QuizSettings.model_construct(slug=quiz.slug, kind=quiz.kind.value)
    return QuizFile.model_construct(quiz=settings, vignettes=[], questions=[bq.file for bq in questions])


def course_report(session: Session, quiz: Quiz) -> BankReport:
    """The bank's questions (retired ones included, last) with their item-writing warnings; the bank's figures and
    warnings count the questions in use, and near-duplicate stems are looked for across the course's banks."""
    banks = list(
        session.scalars(
            select(Quiz).where(Quiz.course_id == quiz.course_id, Quiz.is_retired.is_(False)).order_by(Quiz.id)
        )
    )
    if quiz not in banks:
        banks.append(quiz)
    questions = list(
        session.scalars(
            select(Question)
            .where(Question.quiz_id.in_([b.id for b in banks]))
            .order_by(Question.quiz_id, Question.is_retired, Question.position, Question.id)
        )
    )
    data = current_question_data(session, questions)
    modules = course_modules(session, quiz.course_id)
    slugs = {m.id: m.slug for m in session.scalars(select(Module).where(Module.course_id == quiz.course_id))}
    case_keys = {
        c.id: c.key for c in session.scalars(select(VignetteRow).where(VignetteRow.quiz_id.in_([b.id for b in banks])))
    }
    by_bank: dict[int, list[BankQuestion]] = defaultdict(list)
    for q in questions:
        if q.id not in data:
            continue
        values, draft = data[q.id]
        module_id, case_id = values.get("module_id"), values.get("vignette_id")
        qfile = question_file(q.key, values, slugs.get(module_id or 0), case_keys.get(case_id or 0))
        by_bank[q.quiz_id].append(BankQuestion(q, values, draft, qfile))
    by_key = {(b.slug, bq.question.key): bq for b in banks for bq in by_bank[b.id] if not bq.question.is_retired}
    own = by_bank[quiz.id]
    for bq in own:
        bq.findings = _findings_for(quiz, bq, modules)
    files = [_bank_file(b, [x for x in by_bank[b.id] if not x.question.is_retired]) for b in banks]
    for finding in _duplicates(files, quiz.slug):
        found = by_key.get((finding.quiz, finding.key or ""))
        if found is not None and found.question.quiz_id == quiz.id:
            found.findings.append(finding)
    in_use = _bank_file(quiz, [bq for bq in own if not bq.question.is_retired])
    return BankReport(own, checks.bank_figures(in_use), checks.bank_findings(in_use))


# Stems sharing fewer of their words than this are not compared letter by letter: two stems whose letters are 80%
# the same (checks.NEAR_DUPLICATE) share far more of their words, and the letter-by-letter comparison of every
# pair of a course's long case stems takes many seconds, too slow for a page.
WORD_OVERLAP = 0.5


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def _duplicates(banks: list[QuizFile], own: str) -> list[Finding]:
    """Near-duplicate stems between the bank `own` and every bank of the course (itself included), found with
    `checks.similar_stems` and reported on both questions of each pair; unwritten stems are left out."""
    stems = [(qz.quiz.slug, q.key, q.stem) for qz in banks for q in qz.questions if q.stem.strip()]
    words = [_words(stem) for _quiz, _key, stem in stems]
    out = []
    for i, (quiz_a, _ka, _sa) in enumerate(stems):
        for j in range(i + 1, len(stems)):
            if own not in (quiz_a, stems[j][0]):
                continue
            shared = sum((words[i] & words[j]).values())
            if 2 * shared < WORD_OVERLAP * (sum(words[i].values()) + sum(words[j].values())):
                continue
            for (qa, ka), (qb, kb), ratio in checks.similar_stems([stems[i], stems[j]]):
                out.append(
                    Finding(qa, ka, "near-duplicate", f"stem is {ratio:.0%} the same as {qb}.{kb}: ask each fact once")
                )
                out.append(
                    Finding(qb, kb, "near-duplicate", f"stem is {ratio:.0%} the same as {qa}.{ka}: ask each fact once")
                )
    return out


def question_report(session: Session, quiz: Quiz, question: Question) -> BankQuestion | None:
    """One question of the bank with its warnings (None for a question with no data yet)."""
    return next((bq for bq in course_report(session, quiz).questions if bq.question.id == question.id), None)


def with_option_ids(session: Session, question: Question, data: dict[str, Any]) -> dict[str, Any]:
    """The data with an id for each new option, one no revision or draft of the question ever used: a removed
    option's id is never given to a new one, so item analysis never mixes the two."""
    kind = revisions.QUESTION
    seen = [revisions.revision_data(kind, r)["options"] for r in revisions.history(session, question)]
    draft = revisions.draft_for(session, question)
    if draft is not None:  # a new question's first draft has blank rows, which name nothing yet
        seen.append([o for o in draft.data.get("options") or [] if isinstance(o, dict) and o.get("text")])
    used = {str(o.get("id")) for options in seen for o in options if isinstance(o, dict) and o.get("id")}
    used |= {str(o["id"]) for o in data["options"] if o.get("id")}
    fresh = (i for i in [*"abcdefghijklmnopqrstuvwxyz", *(f"o{n}" for n in range(27, 10_000))] if i not in used)
    options = [{**o, "id": o.get("id") or next(fresh)} for o in data["options"]]
    return {**data, "options": options}


def case_users(session: Session, quiz: Quiz, case: VignetteRow) -> list[Question]:
    """The bank's questions whose current version uses the case."""
    questions = services.questions_of(session, quiz)
    data = current_question_data(session, questions)
    return [q for q in questions if q.id in data and data[q.id][0].get("vignette_id") == case.id]


def bank_file(session: Session, quiz: Quiz) -> tuple[str, str]:
    """The published bank as its content file: the text and the file's name in the content folders' layout.

    Raises ValidationError when what is published would not read back as a bank (fewer questions than drawn)."""
    exported = quiz_files.export_quiz(session, quiz)
    return files.quiz_text(exported), files.quiz_file_name(exported.quiz, quiz.module.position if quiz.module else 0)


def published_count(session: Session, quiz: Quiz) -> int:
    """How many questions new attempts of the bank can draw from."""
    return len(revisions.published_questions(session, quiz.id))


# ---------------------------------------------------------------- structure


def retire_question(session: Session, quiz: Quiz, question: Question, retired: bool, user: User) -> None:
    """Retire a question (no longer drawn; attempts that asked it keep it) or bring it back, never leaving the bank
    with fewer published questions than its rules draw."""
    if retired and not question.is_retired and question.published_revision_id is not None:
        left = published_count(session, quiz) - 1
        if left < quiz.draw:
            raise services.AuthoringError(
                f"The rules draw {quiz.draw} questions and the bank would keep only {left} published ones: "
                "lower the number drawn first, or publish another question.",
                400,
            )
    services.set_retired(session, question, retired, user)


def move_question(session: Session, question: Question, offset: int, user: User) -> None:
    """Move a question in use one place up (-1) or down (+1) in its bank."""
    if question.is_retired:
        raise services.AuthoringError("A retired question has no place in the bank: reinstate it first.", 400)
    services.move(session, question, offset, user)


def next_key(session: Session, quiz: Quiz) -> str:
    """A suggested key for a new question: the bank's slug and the next number."""
    count = session.scalar(select(func.count()).select_from(Question).where(Question.quiz_id == quiz.id)) or 0
    base = quiz.slug.removesuffix("-quiz")
    taken = set(session.scalars(select(Question.key).where(Question.quiz_id == quiz.id)))
    n = count + 1
    while f"{base}-q{n}" in taken:
        n += 1
    return f"{base}-q{n}"
