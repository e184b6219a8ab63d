"""`flask content check`: the bank figures, item-writing warnings, and `--strict` failing on them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

# The fixture banks ask "alpha question 1?" ... "alpha question 4?": near-duplicates by design (other tests edit
# those stems). The clean copy words each one differently.
CLEAN_STEMS = {
    "alpha question 1?": "Which receptor does ketamine chiefly block?",
    "alpha question 2?": "How long does the dissociative phase usually last?",
    "alpha question 3?": "What should be measured before the first session?",
    "alpha question 4?": "Who decides the dose in a session?",
    "beta question 1?": "When is integration work usually scheduled?",
    "beta question 2?": "Which vital sign rises most often during dosing?",
    "beta question 3?": "What must informed consent cover for this treatment?",
    "beta question 4?": "Where does the client rest until discharge?",
}


def args(root: Path, *extra: str) -> list[str]:
    return ["content", "check", "--modules", str(root / "modules"), "--quizzes", str(root / "quizzes"), *extra]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


@pytest.fixture
def clean_content(tmp_path: Path) -> Path:
    """A copy of the fixture content with no item-writing warning."""
    root = tmp_path / "content"
    shutil.copytree(FIXTURES / "content", root)
    banks = root / "quizzes" / "demo-course"
    for old, new in CLEAN_STEMS.items():
        bank = banks / ("01-alpha.yaml" if old.startswith("alpha") else "02-beta.yaml")
        edit(bank, f"stem: {old}", f"stem: {new}")
    return root


def test_check_prints_each_bank_s_figures(runner):
    result = runner.invoke(args=args(FIXTURES / "content"))
    assert result.exit_code == 0, result.output
    assert "demo-course: 3 modules, 3 quizzes, 14 questions" in result.stdout
    assert (
        "  alpha-quiz: key is the longest option in 0 of 4 single-answer items (0%); "
        "commonest multiple-answer pattern 2 of 4 in 1 of 1"
    ) in result.stdout
    assert "  demo-final: key is the longest option in 0 of 1 single-answer items (0%)" in result.stdout
    assert "All content files are valid." in result.stdout


def test_warnings_are_printed_but_only_strict_fails_on_them(runner):
    relaxed = runner.invoke(args=args(FIXTURES / "content"))
    assert relaxed.exit_code == 0
    assert "warning: demo-course/alpha-quiz.alpha-q1: near-duplicate: stem is 94% the same as alpha-quiz.alpha-q2" in (
        relaxed.stderr
    )
    assert "item-writing warning(s)." in relaxed.stderr
    strict = runner.invoke(args=args(FIXTURES / "content", "--strict"))
    assert strict.exit_code == 1


def test_strict_passes_on_content_without_warnings(runner, clean_content):
    result = runner.invoke(args=args(clean_content, "--strict"))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and "All content files are valid." in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      - text: Wrong A 1\n",
            "      - text: Always wrong A 1\n",
            "alpha-quiz.alpha-q1: absolute-word: only distractors use absolute words (always)",
        ),
        (
            "stem: Which receptor does ketamine chiefly block?",
            "stem: Which receptor does ketamine not block?",
            'alpha-quiz.alpha-q1: negative-stem: the question says "not" without emphasis',
        ),
        (
            "stem: How long does the dissociative phase usually last?",
            "stem: Which receptor does ketamine mainly block?",
            "alpha-quiz.alpha-q1: near-duplicate: stem is",
        ),
    ],
    ids=["absolute-word", "negative-stem", "near-duplicate"],
)
def test_strict_fails_on_a_crafted_cue(runner, clean_content, old, new, expected):
    edit(clean_content / "quizzes" / "demo-course" / "01-alpha.yaml", old, new)
    relaxed = runner.invoke(args=args(clean_content))
    assert relaxed.exit_code == 0 and f"warning: demo-course/{expected}" in relaxed.stderr
    assert "1 item-writing warning(s)." in relaxed.stderr
    strict = runner.invoke(args=args(clean_content, "--strict"))
    assert strict.exit_code == 1 and f"warning: demo-course/{expected}" in strict.stderr


def test_a_longest_key_alone_is_a_note_but_a_habit_of_it_fails_strict(runner, clean_content):
    bank = clean_content / "quizzes" / "demo-course" / "01-alpha.yaml"
    edit(bank, "      - text: Right 1\n", "      - text: Right 1, the longest option\n")
    assert runner.invoke(args=args(clean_content, "--strict")).exit_code == 0  # 1 of 4: a note, not shown
    edit(bank, "      - text: Right 2\n", "      - text: Right 2, the longest option\n")
    result = runner.invoke(args=args(clean_content, "--strict"))
    assert result.exit_code == 1
    assert "alpha-quiz: key is the longest option in 2 of 4 single-answer items (50%)" in result.stdout
    assert "warning: demo-course/alpha-quiz: key-longest-share: the key is the longest option in 50%" in result.stderr


def test_invalid_content_exits_1_with_or_without_strict(runner, clean_content):
    edit(clean_content / "quizzes" / "demo-course" / "01-alpha.yaml", "  draw: 3\n", "  draw: 30\n")
    for extra in ((), ("--strict",)):
        result = runner.invoke(args=args(clean_content, *extra))
        assert result.exit_code == 1 and "draw" in result.output


def test_a_section_that_is_not_a_heading_is_an_error_in_files_not_only_a_warning(runner, clean_content):
    # In files the section must match a heading exactly (kaptrain/content/files.py); the "section" check is
    # what the browser editor shows beside a draft.
    bank = clean_content / "quizzes" / "demo-course" / "01-alpha.yaml"
    edit(
        bank,
        "    section: Introduction to alpha\n    stem: Which receptor",
        "    section: Pharmacology\n    stem: Which receptor",
    )
    result = runner.invoke(args=args(clean_content))
    assert result.exit_code == 1
    assert 'alpha-quiz.alpha-q1.section: "Pharmacology" is not a ## or ### heading of module "alpha"' in result.stderr
