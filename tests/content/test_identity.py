"""Stable content identity: per-course quiz slugs, declared renames, retired quizzes, lossless export."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from kaptrain.content.files import ContentError, read_content, write_content
from kaptrain.content.loader import export_content, import_content
from kaptrain.courses.completion import State
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Question, QuestionRevision, Quiz, Vignette
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES
from tests.factories import enrolled, make_user, pass_quiz, quiz, record


def copy_tree(root: Path) -> Path:
    shutil.copytree(FIXTURE_MODULES, root / "modules")
    shutil.copytree(FIXTURE_QUIZZES, root / "quizzes")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def reimport(db, root: Path):  # type: ignore[no-untyped-def]
    stats = import_content(db, read_content(root / "modules", root / "quizzes"))
    db.expire_all()
    return stats


def rename_alpha(root: Path, declare: bool) -> None:
    """Rename module alpha to alpha-renamed and its quiz to alpha-check."""
    md = root / "modules/demo-course/01-alpha.md"
    edit(md, "slug: alpha\n", "slug: alpha-renamed\n" + ("previous_slugs: [alpha]\n" if declare else ""))
    for name in ("01-alpha.yaml", "final.yaml"):
        path = root / "quizzes/demo-course" / name
        path.write_text(path.read_text().replace("module: alpha\n", "module: alpha-renamed\n"))
    qf = root / "quizzes/demo-course/01-alpha.yaml"
    edit(qf, "slug: alpha-quiz\n", "slug: alpha-check\n" + ("  previous_slugs: [alpha-quiz]\n" if declare else ""))


def test_declared_rename_keeps_learners_mid_course_where_they_were(client, db, learner, tmp_path):
    pass_quiz(db, learner, "alpha-quiz")
    client.get("/courses/demo-course/modules/beta")
    db.commit()
    root = copy_tree(tmp_path)
    rename_alpha(root, declare=True)
    stats = reimport(db, root)
    assert stats["modules renamed"] == 1 and stats["quizzes renamed"] == 1
    assert "quizzes retired" not in stats and "modules retired" not in stats
    now = record(db, learner)
    assert now.modules[0].module.slug == "alpha-renamed"
    assert [m.state for m in now.modules] == [State.COMPLETED, State.OPEN, State.LOCKED]
    db.commit()
    assert client.get("/courses/demo-course/modules/beta").status_code == 200
    page = client.get("/courses/demo-course/quizzes/alpha-check").data
    assert b"You passed this quiz." in page
    assert client.get("/courses/demo-course/quizzes/alpha-quiz").status_code == 404


def test_undeclared_rename_imports_cleanly_and_the_old_quiz_is_retired(db, tmp_path):
    """Today's IntegrityError: a renamed quiz file made a second quiz for the same module."""
    user = make_user(db)
    enrolled(db, user)
    old = pass_quiz(db, user, "alpha-quiz").quiz
    root = copy_tree(tmp_path)
    rename_alpha(root, declare=False)
    stats = reimport(db, root)
    assert stats["modules retired"] == 1 and stats["quizzes retired"] == 1 and stats["quizzes created"] == 1
    assert db.get(Quiz, old.id).is_retired  # the learner's attempts are kept, on the retired quiz
    # Undeclared, it is a new module: the learner starts it afresh (the docs say to declare renames).
    assert record(db, user).modules[0].state == State.OPEN


def test_deleted_quiz_file_is_retired_and_stops_gating_its_module(client, db, learner, tmp_path):
    root = copy_tree(tmp_path)
    (root / "quizzes/demo-course/01-alpha.yaml").unlink()
    stats = reimport(db, root)
    assert stats["quizzes retired"] == 1
    db.commit()
    alpha = record(db, learner).modules[0]
    assert alpha.quiz is None  # no longer gating
    client.get("/courses/demo-course/modules/alpha")
    response = client.post("/courses/demo-course/modules/alpha/read")
    assert response.location.endswith("/courses/demo-course")  # no quiz to go to
    assert client.get("/courses/demo-course/modules/beta").status_code == 200
    response = client.post("/courses/demo-course/quizzes/alpha-quiz/start")
    assert response.status_code == 403 and b"retired" in response.data


def test_a_passed_quiz_that_is_later_retired_still_completes_its_module(db, tmp_path):
    user = make_user(db)
    enrolled(db, user)
    pass_quiz(db, user, "alpha-quiz")
    root = copy_tree(tmp_path)
    (root / "quizzes/demo-course/01-alpha.yaml").unlink()
    reimport(db, root)
    assert record(db, user).modules[0].state == State.COMPLETED


def test_a_second_course_with_the_same_quiz_slugs_does_not_take_over_the_first(db, tmp_path):
    user = make_user(db)
    enrolled(db, user)
    pass_quiz(db, user, "alpha-quiz")
    root = copy_tree(tmp_path)
    shutil.copytree(root / "modules/demo-course", root / "modules/second-course")
    shutil.copytree(root / "quizzes/demo-course", root / "quizzes/second-course")
    edit(root / "modules/second-course/course.yaml", "slug: demo-course", "slug: second-course")
    stats = reimport(db, root)
    assert stats["courses created"] == 1 and stats["quizzes created"] == 3
    first, second = quiz(db, "alpha-quiz"), quiz(db, "alpha-quiz", "second-course")
    assert first.id != second.id and first.course.slug == "demo-course"
    assert record(db, user).modules[0].state == State.COMPLETED  # still the first course's quiz


def test_previous_slug_still_in_use_is_reported_with_file_and_field(tmp_path):
    root = copy_tree(tmp_path)
    edit(root / "modules/demo-course/02-beta.md", "slug: beta\n", "slug: beta\nprevious_slugs: [alpha]\n")
    with pytest.raises(ContentError) as err:
        read_content(root / "modules", root / "quizzes")
    assert any(p.field == "previous_slugs" and '"alpha"' in p.message for p in err.value.problems)


def round_trip(db, out: Path) -> list:  # type: ignore[type-arg]
    write_content(export_content(db), out / "modules", out / "quizzes")
    return read_content(out / "modules", out / "quizzes")


def test_export_round_trips_renames_retired_modules_and_quizzes(db, tmp_path):
    root = copy_tree(tmp_path / "in")
    rename_alpha(root, declare=True)
    (root / "modules/demo-course/03-gamma.md").unlink()
    for p in (root / "quizzes/demo-course").glob("final.yaml"):
        p.unlink()  # the final names gamma's sections
    reimport(db, root)
    back = round_trip(db, tmp_path / "out")
    course = next(c for c in back if c.course.slug == "demo-course")
    assert [m.meta.slug for m in course.modules] == ["alpha-renamed", "beta"]
    assert course.modules[0].meta.previous_slugs == ["alpha"]
    assert sorted(q.quiz.slug for q in course.quizzes) == ["alpha-check", "beta-quiz"]
    assert next(q for q in course.quizzes if q.quiz.slug == "alpha-check").quiz.previous_slugs == ["alpha-quiz"]
    # And what was exported imports again with nothing to change.
    stats = import_content(db, back)
    assert stats["module revisions created"] == 0 and stats["question revisions created"] == 0


class CaseQuestionsFirst(random.Random):
    """Draws the questions that have a case, so the test does not depend on chance."""

    def sample(self, population, k, **_):  # type: ignore[no-untyped-def, override]
        return sorted(population, key=lambda pair: pair[1].vignette_id is None)[:k]


def test_a_case_is_one_shared_record_and_an_attempt_keeps_the_telling_it_showed(db, tmp_path):
    root = copy_tree(tmp_path / "in")
    bank = root / "quizzes/demo-course/01-alpha.yaml"
    edit(bank, "    stem: alpha question 4?", "    vignette: case-a\n    stem: alpha question 4?")
    reimport(db, root)
    q = quiz(db, "alpha-quiz")
    cases = db.scalars(select(Vignette).where(Vignette.quiz_id == q.id)).all()
    assert [c.key for c in cases] == ["case-a"]
    sharing = db.scalars(
        select(Question.key)
        .join(QuestionRevision, QuestionRevision.id == Question.published_revision_id)
        .where(QuestionRevision.vignette_id == cases[0].id)
        .order_by(Question.key)
    ).all()
    assert sharing == ["alpha-q4", "alpha-q5"]
    attempt = quizzes.start_attempt(db, make_user(db).id, q, None, rng=CaseQuestionsFirst())
    shown = {i.vignette.text for i in attempt.items if i.vignette is not None}
    assert shown == {"A shared case."}
    # The case is retold in the file: one new revision of the case, no new question revisions.
    edit(bank, "A shared case.", "A different telling of the case.")
    stats = reimport(db, root)
    assert stats["vignette revisions created"] == 1 and stats["question revisions created"] == 0
    db.refresh(attempt)
    assert {i.vignette.text for i in attempt.items if i.vignette is not None} == shown
    back = round_trip(db, tmp_path / "out")
    alpha = next(qf for c in back for qf in c.quizzes if qf.quiz.slug == "alpha-quiz")
    assert [(v.key, v.text) for v in alpha.vignettes] == [("case-a", "A different telling of the case.")]
