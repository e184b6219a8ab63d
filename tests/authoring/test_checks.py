"""Item-writing checks (kaptrain/authoring/checks.py): each finding fires on a question or bank crafted to have
the cue, and stays silent on a clean one; the bank figures count what they say."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kaptrain.authoring import checks
from kaptrain.content.schema import Option, QuestionFile, QuizFile

SECTIONS = ["Introduction to alpha", "Details of alpha"]


def question(key: str = "q1", **fields: Any) -> QuestionFile:
    """A clean single-answer question: options of equal length, a plain stem, a real section."""
    data: dict[str, Any] = {
        "key": key,
        "type": "single",
        "section": "Introduction to alpha",
        "stem": "Which receptor does ketamine chiefly block?",
        "options": [
            {"text": "NMDA receptor", "correct": True},
            {"text": "GABA-A receptor"},
            {"text": "mu-opioid receptor"},
        ],
        "explanation": "Ketamine is an NMDA receptor antagonist.",
    }
    data.update(fields)
    return QuestionFile.model_validate(data)


def multiple(key: str, correct: int, total: int, stem: str) -> QuestionFile:
    options = [{"text": f"Choice {chr(65 + i)}", "correct": i < correct} for i in range(total)]
    return question(key, type="multiple", options=options, stem=stem)


def bank(*questions: QuestionFile, slug: str = "alpha-quiz") -> QuizFile:
    return QuizFile.model_validate(
        {
            "quiz": {"slug": slug, "title": "Quiz", "module": "alpha", "draw": 1},
            "questions": [q.model_dump() for q in questions],
        }
    )


def codes(findings: list[checks.Finding]) -> list[str]:
    return [f.code for f in findings]


# Distinct stems, so that banks built from them have no near-duplicates.
STEMS = [
    "Which receptor does ketamine chiefly block?",
    "How long does the dissociative phase of an intramuscular dose usually last?",
    "What should be measured before the first dosing session?",
    "Who decides the dose in a ketamine-assisted psychotherapy session?",
    "When is integration work usually scheduled?",
    "Which vital sign rises most often during a session?",
    "What does informed consent have to cover for this treatment?",
    "Where should the client rest until discharge criteria are met?",
]


# ---------------------------------------------------------------- one question at a time


def test_a_clean_question_has_no_findings():
    assert checks.question_findings("alpha-quiz", question(), SECTIONS) == []


def test_key_longest_is_a_note_not_a_warning():
    q = question(options=[{"text": "The NMDA glutamate receptor", "correct": True}, {"text": "GABA"}, {"text": "mu"}])
    (finding,) = checks.question_findings("alpha-quiz", q, SECTIONS)
    assert finding.code == "key-longest" and finding.is_note
    assert str(finding).startswith("alpha-quiz.q1: key-longest: the correct option is the longest")
    assert checks.key_is_longest(q)


def test_a_key_as_long_as_a_distractor_counts_as_longest_but_a_shorter_one_does_not():
    tie = question(options=[{"text": "AAAA", "correct": True}, {"text": "BBBB"}, {"text": "CC"}])
    shorter = question(options=[{"text": "AA", "correct": True}, {"text": "BBBB"}, {"text": "CC"}])
    assert checks.key_is_longest(tie) and not checks.key_is_longest(shorter)


def test_all_or_none_of_the_above_is_flagged_even_when_the_schema_was_bypassed():
    # The schema refuses the option outright; the check still catches data built another way (e.g. a draft).
    q = question().model_copy(
        update={
            "options": [
                Option(text="NMDA", correct=True),
                Option(text="GABA"),
                Option.model_construct(text="None of the above", correct=False),
            ]
        }
    )
    assert "all-none-of-the-above" in codes(checks.question_findings("alpha-quiz", q, SECTIONS))


def test_absolute_words_only_in_distractors_give_them_away():
    q = question(
        options=[
            {"text": "NMDA receptor", "correct": True},
            {"text": "It always blocks GABA"},
            {"text": "Never any receptor"},
        ]
    )
    (finding,) = [f for f in checks.question_findings("alpha-quiz", q, SECTIONS) if not f.is_note]
    assert finding.code == "absolute-word" and "(always, never)" in finding.message


def test_absolute_words_in_the_key_as_well_are_no_cue():
    q = question(options=[{"text": "Always NMDA", "correct": True}, {"text": "It always blocks GABA"}, {"text": "Mu"}])
    assert "absolute-word" not in codes(checks.question_findings("alpha-quiz", q, SECTIONS))


def test_absolute_words_are_not_checked_on_true_false():
    q = question(
        type="true_false",
        stem="Ketamine never raises blood pressure.",
        options=[{"text": "True"}, {"text": "False", "correct": True}],
    )
    assert checks.question_findings("alpha-quiz", q, SECTIONS) == []


@pytest.mark.parametrize(
    ("stem", "word"),
    [
        ("Which of these is not a sign of emergence?", "not"),
        ("All of these are contraindications except which?", "except"),
        ("A client arrives late. Which step is least urgent?", "least"),
    ],
)
def test_a_negative_stem_without_emphasis_is_flagged(stem, word):
    (finding,) = checks.question_findings("alpha-quiz", question(stem=stem), SECTIONS)
    assert finding.code == "negative-stem" and f'"{word}"' in finding.message


@pytest.mark.parametrize(
    "stem",
    [
        "Which of these is NOT a sign of emergence?",  # emphasised: written in capitals
        "The client did not sleep. What should the clinician ask first?",  # the negative is not in the question
    ],
)
def test_an_emphasised_negative_or_one_outside_the_question_is_fine(stem):
    assert checks.question_findings("alpha-quiz", question(stem=stem), SECTIONS) == []


def test_a_section_that_is_not_a_heading_of_the_module_is_flagged():
    (finding,) = checks.question_findings("alpha-quiz", question(section="Dosing tables"), SECTIONS)
    assert finding.code == "section" and '"Dosing tables" is not a heading' in finding.message


def test_section_matching_ignores_case_and_punctuation_and_needs_known_sections():
    assert checks.question_findings("alpha-quiz", question(section="introduction to ALPHA!"), SECTIONS) == []
    assert checks.question_findings("alpha-quiz", question(section="Anything"), None) == []


# ---------------------------------------------------------------- a bank as a whole


def longest_key(key: str, stem: str) -> QuestionFile:
    return question(
        key, stem=stem, options=[{"text": "The longest option here", "correct": True}, {"text": "B"}, {"text": "C"}]
    )


def shortest_key(key: str, stem: str) -> QuestionFile:
    return question(
        key, stem=stem, options=[{"text": "A", "correct": True}, {"text": "The longer one"}, {"text": "Another"}]
    )


def test_bank_figures_count_longest_keys_and_answer_patterns():
    quiz = bank(
        longest_key("q1", STEMS[0]),
        shortest_key("q2", STEMS[1]),
        shortest_key("q3", STEMS[2]),
        multiple("q4", 2, 4, STEMS[3]),
        multiple("q5", 2, 4, STEMS[4]),
        multiple("q6", 3, 5, STEMS[5]),
        question(
            "q7", type="true_false", stem=STEMS[6], options=[{"text": "True", "correct": True}, {"text": "False"}]
        ),
    )
    fig = checks.bank_figures(quiz)
    assert (fig.quiz, fig.single_items, fig.key_longest, fig.multiple_items) == ("alpha-quiz", 3, 1, 3)
    assert (fig.top_pattern, fig.top_pattern_items) == ("2 of 4", 2)
    assert fig.key_longest_share == pytest.approx(1 / 3)
    assert str(fig) == (
        "alpha-quiz: key is the longest option in 1 of 3 single-answer items (33%); "
        "commonest multiple-answer pattern 2 of 4 in 2 of 3"
    )


def test_bank_figures_of_a_bank_without_single_or_multiple_items():
    quiz = bank(
        question("q1", type="true_false", stem=STEMS[0], options=[{"text": "True", "correct": True}, {"text": "False"}])
    )
    fig = checks.bank_figures(quiz)
    assert (fig.single_items, fig.key_longest_share, fig.multiple_items, fig.top_pattern) == (0, 0.0, 0, None)
    assert str(fig) == "alpha-quiz: key is the longest option in 0 of 0 single-answer items (0%)"
    assert checks.bank_findings(quiz) == []


def test_too_many_longest_keys_is_a_bank_warning():
    quiz = bank(longest_key("q1", STEMS[0]), longest_key("q2", STEMS[1]), shortest_key("q3", STEMS[2]))
    (finding,) = checks.bank_findings(quiz)
    assert finding.code == "key-longest-share" and finding.key is None and not finding.is_note
    assert finding.message == "the key is the longest option in 67% of single-answer items (at most 40%)"


def test_a_share_of_longest_keys_at_the_limit_is_fine():
    quiz = bank(
        longest_key("q1", STEMS[0]),
        longest_key("q2", STEMS[1]),
        *(shortest_key(f"q{i}", STEMS[i - 1]) for i in range(3, 6)),
    )
    assert checks.bank_figures(quiz).key_longest_share == pytest.approx(0.4)
    assert checks.bank_findings(quiz) == []


def test_one_answer_pattern_for_most_multiple_answer_items_is_a_warning():
    quiz = bank(multiple("q1", 2, 4, STEMS[0]), multiple("q2", 2, 4, STEMS[1]), multiple("q3", 3, 4, STEMS[2]))
    (finding,) = checks.bank_findings(quiz)
    assert finding.code == "answer-pattern"
    assert finding.message.startswith("2 of 3 multiple-answer items have 2 of 4 correct")


def test_varied_answer_patterns_or_a_single_multiple_answer_item_are_fine():
    varied = bank(multiple("q1", 2, 4, STEMS[0]), multiple("q2", 3, 4, STEMS[1]), multiple("q3", 1, 4, STEMS[2]))
    lone = bank(multiple("q1", 2, 4, STEMS[0]))
    assert checks.bank_findings(varied) == [] and checks.bank_findings(lone) == []


# ---------------------------------------------------------------- across banks


def test_near_duplicate_stems_within_and_across_banks():
    first = bank(question("q1", stem="Which receptor does ketamine chiefly block?"), question("q2", stem=STEMS[1]))
    second = bank(question("q9", stem="Which receptor does ketamine mainly block?"), slug="beta-quiz")
    (finding,) = checks.duplicate_findings([first, second])
    assert (finding.quiz, finding.key, finding.code) == ("alpha-quiz", "q1", "near-duplicate")
    assert "the same as beta-quiz.q9" in finding.message


def test_identical_stems_differing_only_in_case_and_punctuation_are_duplicates():
    quiz = bank(question("q1", stem="Who decides the dose?"), question("q2", stem="who decides the dose"))
    (finding,) = checks.duplicate_findings([quiz])
    assert "100% the same as alpha-quiz.q2" in finding.message


def test_different_stems_are_not_duplicates():
    quiz = bank(*(question(f"q{i}", stem=s) for i, s in enumerate(STEMS)))
    assert checks.duplicate_findings([quiz]) == []


def test_course_findings_use_each_final_question_s_own_module_sections():
    final = QuizFile.model_validate(
        {
            "quiz": {"slug": "final", "title": "Final", "kind": "final", "draw": 1},
            "questions": [
                question("f1", stem=STEMS[0], module="alpha", section="Details of alpha").model_dump(),
                question("f2", stem=STEMS[1], module="beta", section="Details of alpha").model_dump(),
            ],
        }
    )
    found = checks.course_findings([final], {"alpha": SECTIONS, "beta": ["Introduction to beta"]})
    assert [(f.key, f.code) for f in found] == [("f2", "section")]


def test_a_clean_course_has_no_findings():
    quiz = bank(
        shortest_key("q1", STEMS[0]),
        shortest_key("q2", STEMS[1]),
        multiple("q3", 2, 4, STEMS[2]),
        multiple("q4", 3, 5, STEMS[3]),
    )
    assert checks.course_findings([quiz], {"alpha": SECTIONS}) == []


@pytest.mark.parametrize(
    ("stem", "question"),
    [
        ("A client asks about dosing. Which reply is NOT within scope?", "Which reply is NOT within scope?"),
        ("Which reply is within scope?", "Which reply is within scope?"),
        (
            "Read the case (e.g. a lozenge).\n\nWhat should the therapist do first?",
            "What should the therapist do first?",
        ),
        ("Complete the sentence: the label says", "Complete the sentence: the label says"),
        ("Is it (e.g.x) true?", "Is it (e.g.x) true?"),  # no sentence break before the question: the whole stem
    ],
)
def test_the_question_sentence_is_the_stems_last(stem, question):
    assert checks.question_sentence(stem) == question


def test_finding_the_question_sentence_stays_linear_on_hostile_stems():
    """The attack saved a draft stem of "." and 2,000 spaces and "..": 14 s on every view of the bank page (minutes
    at the 5,000-character limit). It takes microseconds now; the bound only catches a return of that."""
    started = time.perf_counter()
    assert checks.question_sentence("." + " " * 4997 + "..") == "." + " " * 4997 + ".."
    assert time.perf_counter() - started < 1
