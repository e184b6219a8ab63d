"""Parsing and validating content files: pure functions, no database."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from kaptrain.content.files import ContentError, SafeLoader, _unreadable_scalar, parse_module, parse_quiz, read_content
from kaptrain.content.schema import cited_sources, unclosed_fence
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the fixture content."""
    shutil.copytree(FIXTURE_MODULES, tmp_path / "modules")
    shutil.copytree(FIXTURE_QUIZZES, tmp_path / "quizzes")
    return tmp_path


def problems(tree: Path) -> list[str]:
    with pytest.raises(ContentError) as exc:
        read_content(tree / "modules", tree / "quizzes")
    return [str(p) for p in exc.value.problems]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_fixture_content_is_valid(tree):
    courses = read_content(tree / "modules", tree / "quizzes")
    assert [c.course.slug for c in courses] == ["demo-course"]
    assert [m.meta.slug for m in courses[0].modules] == ["alpha", "beta", "gamma"]


def test_missing_field_names_file_field_and_line(tree):
    edit(tree / "modules/demo-course/01-alpha.md", "estimated_minutes: 20\n", "")
    found = problems(tree)
    assert found == ["modules/demo-course/01-alpha.md:2: estimated_minutes: required field is missing"]


def test_wrong_type_is_reported_at_its_line(tree):
    edit(tree / "modules/demo-course/01-alpha.md", "estimated_minutes: 20", "estimated_minutes: twenty")
    (msg,) = problems(tree)
    assert msg.startswith("modules/demo-course/01-alpha.md:5: estimated_minutes:")
    assert "integer" in msg


def test_unknown_field_is_an_error(tree):
    edit(tree / "modules/demo-course/course.yaml", "ce_hours: 3.5", "ce_hours: 3.5\nce_hourz: 4")
    assert problems(tree) == ["modules/demo-course/course.yaml:6: ce_hourz: unknown field (check its spelling)"]


def test_release_and_review_dates_and_the_team_are_read_and_checked(tree):
    course = tree / "modules/demo-course/course.yaml"
    edit(
        course,
        "ce_hours: 3.5",
        "ce_hours: 3.5\nreleased_on: 2026-11-28\nreview_by: 2027-11-30\nteam:\n"
        "  - {name: Jo Park, credentials: PsyD, role: Planner}",
    )
    (read,) = read_content(tree / "modules", tree / "quizzes")
    assert (str(read.course.released_on), str(read.course.review_by)) == ("2026-11-28", "2027-11-30")
    assert [(t.name, t.credentials, t.role) for t in read.course.team] == [("Jo Park", "PsyD", "Planner")]
    edit(course, "review_by: 2027-11-30", "review_by: 2025-01-01")
    assert problems(tree) == [
        "modules/demo-course/course.yaml:7: review_by: must be a later date than released_on (2026-11-28)"
    ]


def test_duplicate_module_slug_and_order(tree):
    edit(tree / "modules/demo-course/02-beta.md", "slug: beta", "slug: alpha")
    edit(tree / "modules/demo-course/02-beta.md", "order: 2", "order: 1")
    found = " | ".join(problems(tree))
    assert 'duplicate module slug "alpha"' in found
    assert "module orders must run 1..3" in found


def test_question_whose_correct_answer_is_not_among_options(tree):
    path = tree / "quizzes/demo-course/01-alpha.yaml"
    edit(path, "      - text: Right 1\n        correct: true\n", "      - text: Right 1\n")
    (msg,) = problems(tree)
    assert msg.startswith("quizzes/demo-course/01-alpha.yaml:")
    assert "questions.0" in msg and "no option is marked correct" in msg
    line = int(msg.split(":")[1])
    assert path.read_text().splitlines()[line - 1].strip() == "- key: alpha-q1"


def test_bad_yaml_reports_line(tree):
    edit(tree / "quizzes/demo-course/02-beta.yaml", "  draw: 3", "  draw: [3")
    (msg,) = problems(tree)
    assert msg.startswith("quizzes/demo-course/02-beta.yaml:") and "not valid YAML" in msg


def test_unsafe_yaml_tags_are_refused(tree):
    edit(
        tree / "quizzes/demo-course/02-beta.yaml", "title: Quiz beta", "title: !!python/object/apply:os.system ['true']"
    )
    (msg,) = problems(tree)
    assert "not valid YAML" in msg


def test_section_must_be_a_module_heading(tree):
    edit(tree / "quizzes/demo-course/01-alpha.yaml", "section: Details of alpha", "section: Nowhere")
    found = problems(tree)
    assert any('"Nowhere" is not a ## or ### heading of module "alpha"' in p for p in found)


def test_every_problem_is_listed_not_just_the_first(tree):
    edit(tree / "modules/demo-course/01-alpha.md", "estimated_minutes: 20\n", "")
    edit(tree / "quizzes/demo-course/02-beta.yaml", "  draw: 3", "  draw: 30")
    found = problems(tree)
    assert len(found) == 2, found
    assert any("draw is 30 but the bank has only 6 questions" in p for p in found)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('[{text: "True", correct: true}, {text: "Maybe"}]', "exactly the options"),
        ("[{text: A, correct: true}, {text: B, correct: true}, {text: C}]", "exactly one correct"),
        ("[{text: A, correct: true}, {text: A}, {text: C}]", "same text"),
        ("[{text: A, correct: true}, {text: B}, {text: All of the above}]", "all/none of the above"),
    ],
)
def test_option_rules(options, message):
    qtype = "true_false" if "Maybe" in options else "single"
    text = f"""quiz: {{slug: q, title: Q, module: m}}
questions:
  - {{key: k, type: {qtype}, section: S, stem: Why, explanation: Because., options: {options}}}
"""
    quiz, found = parse_quiz("q.yaml", text)
    assert quiz is None and message in " ".join(p.message for p in found)


def test_module_must_cite_its_references():
    text = """---
slug: m
title: M
order: 1
estimated_minutes: 5
last_reviewed: 2026-01-01
objectives: ["The clinician can read."]
references:
  - {key: doe2019, authors: Doe J, year: 2019, title: T, source: S}
---
## A

No citation here.
"""
    module, found = parse_module("m.md", text)
    assert module is None
    assert found[0].field == "body" and "doe2019" in found[0].message


def test_front_matter_is_required():
    module, found = parse_module("m.md", "# Just markdown\n")
    assert module is None and "missing YAML front matter" in found[0].message


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("Text.\n\n```\ncode\n```\n\nMore.", None),
        ("Text.\n\n```\ncode\n\nMore, all code now.", 3),
        ("~~~~\ncode\n```\n~~~\nstill code", 1),  # closed only by the same marks, at least as many
        ("````python\ncode\n`````\nText.", None),
        ("``` not a fence ` here\nText.", None),  # a backtick in the info string: not a fence
        ("```\na\n```\n\n   ~~~\nb", 5),
    ],
)
def test_an_unclosed_code_block_is_found_by_its_line(body, line):
    assert unclosed_fence(body) == line


def test_citations_are_found_in_the_forms_the_course_writes_them():
    body = (
        "Shown in a trial (Jelovac et al., 2025; Module 1), by a society (American Society of Anesthesiologists, "
        "2025) and by Kew et al. (2023); not a month (March 2019) nor a dose (10 mg in 2019)."
    )
    assert sorted(cited_sources(body)) == [("Anesthesiologists", 2025), ("Jelovac", 2025), ("Kew", 2023)]


def test_a_long_parenthesis_is_searched_at_its_ends():
    """A 60,000-word parenthesis took minutes when every position was tried against every other (about 0.03 s now:
    a return of that would show as this test hanging); a citation at either end of a long part is still found."""
    assert cited_sources("(" + "Aa " * 60_000 + "x; 2020)") == []
    assert cited_sources("(" + "word " * 100 + "as Smith et al., 2021 argued)") == [("Smith", 2021)]
    assert cited_sources("(Smith et al., 2021, " + "and more words " * 40 + ")") == [("Smith", 2021)]


@pytest.mark.parametrize(
    "body",
    [
        "(" + "2000 " * 40_000,  # an unclosed bracket before many years: 65 s, every thread of the process held
        "A-" * 100_000,  # one long run of capitalised word parts: minutes
    ],
    ids=["unclosed-bracket-with-years", "hyphenated-capitals"],
)
def test_the_citation_check_stays_linear_on_hostile_text(body):
    """The check runs on every live preview: text the editor accepts (200,000 characters) once held the whole
    process for over a minute. Each case takes well under a second now; the bound only catches that return."""
    started = time.perf_counter()
    assert cited_sources(body) == []
    assert time.perf_counter() - started < 10


def test_a_bad_value_after_nested_aliases_is_found_in_linear_time():
    """Aliases share their node, so a few hundred bytes can name the same list 9**8 times. Finding which value could
    not be built walked every alias again: 9 s for seven levels on a running site, nine times more per level.
    Files with aliases are refused before this now; the search itself visits each node once all the same."""
    lines = ["a0: &a0 [x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines += ["zz: 2026-02-30"]
    root = yaml.compose("\n".join(lines) + "\n", Loader=SafeLoader)
    started = time.perf_counter()
    bad = _unreadable_scalar(SafeLoader(""), root)
    assert bad is not None
    assert bad.value == "2026-02-30"
    assert time.perf_counter() - started < 5


def test_aliases_are_refused_before_merge_keys_copy_them():
    """Merge keys copy an alias's pairs while the document is built: nine per level, 516 bytes took 6 s and 130 MB
    on a running site, nine times more per level. No content file uses aliases, so they are refused unread."""
    lines = ["---", "slug: m", "a0: &a0 {x: 1}"]
    lines += [f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 9) + f"], k{i}: 1}}" for i in range(1, 10)]
    lines += ["---", "body"]
    started = time.perf_counter()
    module, found = parse_module("m.md", "\n".join(lines) + "\n")
    assert module is None
    assert "alias" in found[0].message
    assert found[0].line == 4  # the first alias, on the line of a1
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "number", ["1" + ":59" * 100_000, "!!int 1" + ":59" * 100_000, "!!float '" + "9" * 50_000 + "'"]
)
def test_a_number_longer_than_any_content_file_needs_is_refused_unbuilt(number):
    """YAML 1.1 builds a base-60 number (1:59:59...) digit group by digit group in ever larger integers, in time
    growing with the square of its length: 300 KB took 4 s, 840 KB 34 s on a running site (attack2 review)."""
    started = time.perf_counter()
    module, found = parse_module("m.md", f"---\nslug: m\ntitle: {number}\n---\nbody\n")
    assert module is None
    assert found[0].message.startswith("a number ") and found[0].line == 3
    assert time.perf_counter() - started < 1


def test_long_text_that_is_not_a_number_is_still_read():
    module, found = parse_module("m.md", "---\nslug: m\ntitle: '" + "1:59" * 100 + "'\n---\nbody\n")
    assert all("number" not in p.message for p in found)
