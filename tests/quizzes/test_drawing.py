"""The final assessment draws each module's share of its questions; a module quiz draws a plain random sample."""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import select

from kaptrain.quizzes.drawing import balanced_draw
from kaptrain.quizzes.models import Attempt, AttemptItem, Question, QuestionRevision
from tests.factories import complete_learning, enrolled, make_user, quiz


def module_of(item: tuple[str, int]) -> str:
    return item[0]


SIX_BY_SIX = [(module, n) for module in "ABCDEF" for n in range(6)]


def test_twenty_five_of_six_modules_of_six_gives_each_module_four_or_five():
    for seed in range(200):
        drawn = balanced_draw(SIX_BY_SIX, 25, module_of, random.Random(seed))
        per_module = Counter(module for module, _ in drawn)
        assert len(drawn) == len(set(drawn)) == 25
        assert sorted(per_module.values()) == [4, 4, 4, 4, 4, 5], seed


def test_shares_follow_the_bank_and_every_question_can_be_drawn():
    bank = [("big", n) for n in range(12)] + [("small", n) for n in range(4)]  # 3 to 1
    seen: set[tuple[str, int]] = set()
    for seed in range(300):
        drawn = balanced_draw(bank, 8, module_of, random.Random(seed))
        assert Counter(module for module, _ in drawn) == {"big": 6, "small": 2}
        seen.update(drawn)
    assert seen == set(bank)  # random within each module: no question is left out for good


def test_the_order_is_mixed_not_module_by_module():
    orders = {tuple(m for m, _ in balanced_draw(SIX_BY_SIX, 25, module_of, random.Random(seed))) for seed in range(20)}
    assert len(orders) == 20 and all(order[:4] != ("A",) * 4 for order in orders)


def test_one_group_or_a_draw_of_the_whole_bank_is_a_plain_sample():
    bank = [("only", n) for n in range(10)]
    assert balanced_draw(bank, 4, module_of, random.Random(7)) == random.Random(7).sample(bank, 4)
    assert sorted(balanced_draw(SIX_BY_SIX, 99, module_of, random.Random(1))) == sorted(SIX_BY_SIX)


def test_a_final_attempt_draws_from_every_module_of_the_fixture_course(app, db):
    """The fixture final's questions name their modules (alpha, beta); an attempt started through the site draws each
    module's share, here one question each."""
    learner = make_user(db)
    enrolled(db, learner)
    final = quiz(db, "demo-final")
    bank = db.scalars(
        select(QuestionRevision)
        .join(Question, Question.published_revision_id == QuestionRevision.id)
        .where(Question.quiz_id == final.id, Question.is_retired.is_(False))
    ).all()
    modules = Counter(revision.module_id for revision in bank)
    assert len(modules) > 1, "the fixture final should span modules"
    with app.app_context():
        complete_learning(db, learner)
    attempts = db.scalars(select(Attempt).where(Attempt.user_id == learner.id, Attempt.quiz_id == final.id)).all()
    [attempt] = attempts
    drawn = Counter(
        db.scalars(
            select(QuestionRevision.module_id)
            .join(AttemptItem, AttemptItem.question_revision_id == QuestionRevision.id)
            .where(AttemptItem.attempt_id == attempt.id)
        ).all()
    )
    draw = min(final.draw, len(bank))
    for module, size in modules.items():
        assert abs(drawn[module] - draw * size / len(bank)) < 1, (drawn, modules)


def test_the_quiz_page_says_how_many_questions_pass_and_how_select_all_is_scored(client, db, learner):
    """The second walk-through: "80%" without the count it means, and nothing on how "select all" is marked."""
    alpha, final = quiz(db, "alpha-quiz"), quiz(db, "demo-final")
    alpha_page = " ".join(client.get("/courses/demo-course/quizzes/alpha-quiz").text.split())
    if alpha.partial_credit:
        assert "earns a share of its mark for each correct option" in alpha_page
    else:
        needed = -(-alpha.draw * alpha.passing_score // 100)
        said = f"Pass mark: {alpha.passing_score}% ({needed} of the {alpha.draw} questions answered right)"
        assert said in alpha_page
        assert "counts as right only when you choose every correct option and no other" in alpha_page
    assert final.partial_credit  # the fixture final gives partial credit: no count of questions, the share rule
    final_page = " ".join(client.get("/courses/demo-course/quizzes/demo-final").text.split())
    assert f"Pass mark: {final.passing_score}%." in final_page and "with questions from every module" in final_page
    assert "earns a share of its mark for each correct option you choose, less a share for each wrong one" in final_page
