"""Importing and exporting content: all or nothing, idempotent, versioned, lossless."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from kaptrain.content.files import read_content, write_content
from kaptrain.content.loader import export_content, import_content
from kaptrain.content.models import Course, ModuleRevision
from kaptrain.courses.completion import State
from kaptrain.quizzes.models import Question, QuestionRevision
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES
from tests.factories import enrolled, make_user, pass_quiz, record


def counts(db) -> tuple[int, int, int, int]:
    return tuple(
        db.scalar(select(func.count()).select_from(m)) for m in (Course, ModuleRevision, Question, QuestionRevision)
    )


def copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE_MODULES, tmp_path / "modules")
    shutil.copytree(FIXTURE_QUIZZES, tmp_path / "quizzes")
    return tmp_path


def test_reimport_of_unchanged_files_changes_nothing(db):
    before = counts(db)
    stats = import_content(db, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
    assert counts(db) == before
    assert stats["module revisions created"] == 0 and stats["question revisions created"] == 0


def test_changed_module_and_question_get_new_revisions_and_past_attempts_keep_theirs(db, tmp_path):
    user = make_user(db)
    enrolled(db, user)
    attempt = pass_quiz(db, user, "alpha-quiz")
    asked = {item.question_revision_id: item.revision.stem for item in attempt.items}
    root = copy_tree(tmp_path)
    for i in range(1, 7):  # reword every alpha question, so whichever were drawn changed
        p = root / "quizzes/demo-course/01-alpha.yaml"
        p.write_text(p.read_text().replace(f"stem: alpha question {i}?", f"stem: alpha question {i}, reworded?"))
    md = root / "modules/demo-course/01-alpha.md"
    md.write_text(md.read_text().replace("More text.", "More and better text."))
    stats = import_content(db, read_content(root / "modules", root / "quizzes"))
    assert stats["module revisions created"] == 1
    assert stats["question revisions created"] == 4
    db.expire_all()
    for revision_id, stem in asked.items():
        assert db.get(QuestionRevision, revision_id).stem == stem  # unchanged in place
    # The learner's record survives the re-import: their module is still complete.
    statuses = record(db, user).modules
    assert statuses[0].state == State.COMPLETED
    assert "More and better text." in statuses[0].revision.body
    assert statuses[0].revision.number == 2


def test_removed_question_is_retired_not_deleted(db, tmp_path):
    root = copy_tree(tmp_path)
    p = root / "quizzes/demo-course/02-beta.yaml"
    text = p.read_text()
    start = text.index("  - key: beta-q4")
    end = text.index("  - key: beta-q5")
    p.write_text(text[:start] + text[end:])
    stats = import_content(db, read_content(root / "modules", root / "quizzes"))
    assert stats["questions retired"] == 1
    q = db.scalar(select(Question).where(Question.key == "beta-q4"))
    assert q.is_retired


def test_export_then_import_is_lossless(db, tmp_path):
    exported = export_content(db)
    write_content(exported, tmp_path / "modules", tmp_path / "quizzes")
    again = read_content(tmp_path / "modules", tmp_path / "quizzes")
    original = read_content(FIXTURE_MODULES, FIXTURE_QUIZZES)
    assert again[0].course == original[0].course
    assert again[0].modules == original[0].modules
    by_slug = {q.quiz.slug: q for q in original[0].quizzes}
    for quiz in again[0].quizzes:
        assert quiz == by_slug[quiz.quiz.slug]
    before = counts(db)
    stats = import_content(db, again)
    assert counts(db) == before and stats["question revisions created"] == 0


def test_import_command_is_all_or_nothing(runner, db, tmp_path):
    root = copy_tree(tmp_path)
    md = root / "modules/demo-course/01-alpha.md"
    md.write_text(md.read_text().replace("More text.", "Changed text."))
    bad = root / "quizzes/demo-course/02-beta.yaml"
    bad.write_text(bad.read_text().replace("  draw: 3", "  draw: nope"))
    before = counts(db)
    result = runner.invoke(
        args=["content", "import", "--modules", str(root / "modules"), "--quizzes", str(root / "quizzes")]
    )
    assert result.exit_code == 1
    assert "quizzes/demo-course/02-beta.yaml:" in result.output and "draw" in result.output
    assert "nothing was imported" in result.output
    assert counts(db) == before


def test_check_and_import_commands(runner):
    check = runner.invoke(args=["content", "check"])
    assert check.exit_code == 0 and "demo-course: 3 modules, 3 quizzes, 14 questions" in check.output
    result = runner.invoke(args=["content", "import"])
    assert result.exit_code == 0 and "3 modules unchanged" in result.output and "3 quizzes unchanged" in result.output


def test_export_command_writes_files(runner, tmp_path):
    result = runner.invoke(args=["content", "export", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "modules/demo-course/01-alpha.md").exists()
    assert (tmp_path / "quizzes/demo-course/final.yaml").exists()
