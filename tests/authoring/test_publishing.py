"""The publishing model: one draft per item, publish makes an immutable revision, optimistic locking, restore,
and how `content import` meets browser work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.authoring import services
from kaptrain.authoring.models import Draft
from kaptrain.content import revisions
from kaptrain.content.files import read_content, write_content
from kaptrain.content.loader import ImportConflict, export_content, import_content
from kaptrain.content.models import Module
from kaptrain.courses import services as courses
from kaptrain.courses.completion import State
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Question
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES
from tests.factories import correct_answers, course, enrolled, make_user, quiz, record, set_rules, start


def module(db, slug: str = "alpha") -> Module:  # type: ignore[no-untyped-def]
    found = db.scalar(select(Module).where(Module.course_id == course(db).id, Module.slug == slug))
    assert found is not None
    return found


def edited(db, item, **changes):  # type: ignore[no-untyped-def]
    data, draft = services.current_data(db, item)
    return {**data, **changes}, (draft.version if draft else None)


def test_a_draft_is_invisible_to_learners_until_published(db):
    author, learner = make_user(db, Role.INSTRUCTOR), make_user(db)
    enrolled(db, learner)
    alpha = module(db)
    before = record(db, learner).modules[0].revision
    data, version = edited(db, alpha, body=before.body + "\n\nA new paragraph for the draft.")
    draft = services.save_draft(db, alpha, data, author, version)
    assert record(db, learner).modules[0].revision.id == before.id  # learners still get the published text
    revision = services.publish_draft(db, alpha, author, draft.version)
    assert revision.number == before.number + 1
    now = record(db, learner).modules[0].revision
    assert now.id == revision.id and "A new paragraph for the draft." in now.body
    assert revisions.draft_for(db, alpha) is None  # publishing used the draft up
    assert db.get(type(before), before.id).body == before.body  # the old revision is untouched


def test_a_stale_save_is_refused_and_the_newer_draft_is_kept(db):
    ann, ben = make_user(db, Role.INSTRUCTOR), make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    data, version = edited(db, alpha, title="Alpha, Ann's version")
    first = services.save_draft(db, alpha, data, ann, version)
    # Both open the draft at version 1; Ann saves again, then Ben saves what he loaded.
    ann_data = {**first.data, "title": "Alpha, Ann's second version"}
    services.save_draft(db, alpha, ann_data, ann, 1)
    with pytest.raises(services.StaleDraft) as refused:
        services.save_draft(db, alpha, {**first.data, "title": "Alpha, Ben's version"}, ben, 1)
    assert refused.value.current is not None and refused.value.current.data["title"] == "Alpha, Ann's second version"
    assert revisions.draft_for(db, alpha).data["title"] == "Alpha, Ann's second version"  # nothing lost


def test_a_second_new_draft_from_the_published_text_is_refused_when_one_appeared_meanwhile(db):
    ann, ben = make_user(db, Role.INSTRUCTOR), make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    data, version = edited(db, alpha, title="Ann's")
    assert version is None
    services.save_draft(db, alpha, data, ann, None)
    with pytest.raises(services.StaleDraft):
        services.save_draft(db, alpha, {**data, "title": "Ben's"}, ben, None)  # Ben also opened no draft


def test_publishing_over_a_revision_published_meanwhile_needs_confirmation(db):
    ann, ben = make_user(db, Role.INSTRUCTOR), make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    data, _ = edited(db, alpha, title="Ann's title")
    draft = services.save_draft(db, alpha, data, ann, None)
    # Meanwhile the files are imported with a change (a new published revision Ann's draft did not start from).
    values = revisions.revision_values(revisions.MODULE, {**data, "title": "X"})
    newer = revisions.add_revision(db, alpha, values, ben.id)
    revisions.publish(alpha, newer)
    with pytest.raises(services.PublishConflict) as conflict:
        services.publish_draft(db, alpha, ann, draft.version)
    assert conflict.value.published.id == newer.id
    done = services.publish_draft(db, alpha, ann, draft.version, replace_revision=newer.number)
    assert alpha.published_revision_id == done.id


def test_invalid_drafts_are_refused_field_by_field_and_nothing_is_stored(db):
    author = make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    for changes, field in (
        ({"title": ""}, "title"),
        ({"objectives": ["Understands ketamine"]}, "objectives.0"),
        ({"body": "x" * (services.MAX_BODY_CHARS + 1)}, "body"),
    ):
        data, version = edited(db, alpha, **changes)
        with pytest.raises(services.InvalidDraft) as bad:
            services.save_draft(db, alpha, data, author, version)
        assert field in bad.value.errors
    assert db.scalar(select(Draft).where(Draft.module_id == alpha.id)) is None


def test_a_question_without_a_correct_option_cannot_be_saved(db):
    author = make_user(db, Role.INSTRUCTOR)
    question = db.scalar(select(Question).where(Question.quiz_id == quiz(db, "alpha-quiz").id).limit(1))
    data, version = edited(db, question)
    data["options"] = [{**o, "correct": False} for o in data["options"]]
    with pytest.raises(services.InvalidDraft) as bad:
        services.save_draft(db, question, data, author, version)
    assert "no option is marked correct" in str(bad.value)


def test_restore_makes_an_old_revision_the_draft(db):
    author = make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    first = revisions.published(db, alpha)
    data, version = edited(db, alpha, title="Alpha renamed")
    services.publish_draft(db, alpha, author, services.save_draft(db, alpha, data, author, version).version)
    draft = services.restore(db, alpha, first.number, author, None)
    assert draft.data == revisions.revision_data(revisions.MODULE, first)
    assert revisions.published(db, alpha).title == "Alpha renamed"  # learners keep the live text until publish


def test_an_attempt_keeps_the_rules_and_question_versions_it_began_under(db):
    learner, author = make_user(db), make_user(db, Role.INSTRUCTOR)
    enrolled(db, learner)
    q = quiz(db, "alpha-quiz")
    courses.open_module(db, learner.id, module(db))  # as a learner must before its quiz
    attempt = start(db, learner, q)
    asked = {i.id: i.revision.stem for i in attempt.items}
    for question, _ in revisions.published_questions(db, q.id):
        data, version = edited(db, question, stem="A reworded stem?")
        services.publish_draft(db, question, author, services.save_draft(db, question, data, author, version).version)
    set_rules(db, q, passing_score=100)
    db.refresh(attempt)
    assert {i.id: i.revision.stem for i in attempt.items} == asked
    assert attempt.settings.passing_score == 80 and q.passing_score == 100
    quizzes.submit_attempt(db, attempt, correct_answers(attempt))
    assert attempt.passed  # graded against the pass mark it began under
    assert record(db, learner).modules[0].state == State.COMPLETED


# ---------------------------------------------------------------- files and browser together


def tree(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE_MODULES, tmp_path / "modules")
    shutil.copytree(FIXTURE_QUIZZES, tmp_path / "quizzes")
    return tmp_path


def reimport(db, root: Path, overwrite: bool = False):  # type: ignore[no-untyped-def]
    return import_content(db, read_content(root / "modules", root / "quizzes"), overwrite=overwrite)


def test_import_of_unchanged_files_leaves_a_browser_draft_alone(db, tmp_path):
    author = make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    data, _ = edited(db, alpha, title="Drafted in the browser")
    services.save_draft(db, alpha, data, author, None)
    reimport(db, tree(tmp_path))
    assert revisions.draft_for(db, alpha).data["title"] == "Drafted in the browser"


def test_import_that_would_replace_a_draft_or_a_browser_revision_reports_it_and_changes_nothing(db, tmp_path):
    author = make_user(db, Role.INSTRUCTOR)
    alpha, beta = module(db, "alpha"), module(db, "beta")
    data, _ = edited(db, alpha, title="Drafted in the browser")
    services.save_draft(db, alpha, data, author, None)
    data, _ = edited(db, beta, title="Published in the browser")
    published = services.publish_draft(db, beta, author, services.save_draft(db, beta, data, author, None).version)
    root = tree(tmp_path)
    for name in ("01-alpha.md", "02-beta.md"):
        md = root / "modules/demo-course" / name
        md.write_text(md.read_text().replace("More text.", "More text, edited in git."))
    with pytest.raises(ImportConflict) as conflict:
        reimport(db, root)
    report = "\n".join(conflict.value.report.conflicts)
    assert "modules/demo-course/alpha: has an unpublished draft" in report
    assert f"modules/demo-course/beta: revision {published.number} was published in the browser" in report


def test_import_with_overwrite_replaces_browser_work_and_says_so(db, tmp_path):
    author = make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    data, _ = edited(db, alpha, title="Drafted in the browser")
    services.save_draft(db, alpha, data, author, None)
    root = tree(tmp_path)
    md = root / "modules/demo-course/01-alpha.md"
    md.write_text(md.read_text().replace("More text.", "More text, edited in git."))
    stats = reimport(db, root, overwrite=True)
    assert stats["browser drafts discarded"] == 1 and stats["module revisions created"] == 1
    assert revisions.draft_for(db, alpha) is None
    assert "edited in git" in revisions.published(db, alpha).body


def test_browser_work_exports_to_files_and_imports_back_unchanged(db, tmp_path):
    author = make_user(db, Role.INSTRUCTOR)
    alpha = module(db)
    data, _ = edited(db, alpha, body=revisions.published(db, alpha).body + "\n\n## A new section\n\nWritten online.")
    services.publish_draft(db, alpha, author, services.save_draft(db, alpha, data, author, None).version)
    question = db.scalar(select(Question).where(Question.quiz_id == quiz(db, "alpha-quiz").id).limit(1))
    data, _ = edited(db, question, stem="Reworded online?")
    services.publish_draft(db, question, author, services.save_draft(db, question, data, author, None).version)
    out = tmp_path / "out"
    write_content(export_content(db, mark_exported=True), out / "modules", out / "quizzes")
    stats = reimport(db, out)
    assert stats.get("module revisions created", 0) == 0 and stats.get("question revisions created", 0) == 0
    assert "Written online." in (out / "modules/demo-course/01-alpha.md").read_text()
    assert "Reworded online?" in (out / "quizzes/demo-course/01-alpha.yaml").read_text()
    # Once exported, the next edit made in git imports without a conflict.
    md = out / "modules/demo-course/01-alpha.md"
    md.write_text(md.read_text().replace("Written online.", "Written online, then edited in git."))
    assert reimport(db, out)["module revisions created"] == 1
