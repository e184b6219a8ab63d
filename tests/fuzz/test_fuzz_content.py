"""Broken content files: the reader accepts a file or refuses it with ContentError, never another exception; a file
that is wrong on its own is named in the error (and the field, where there is one); a refused `content import`
exits non-zero naming the file, prints no traceback and writes nothing; an accepted one imports without error on
SQLite and PostgreSQL alike.

Each example takes one file of the fixture course (tests/fixtures/content) and breaks it: keys dropped, renamed,
duplicated or given values of another type, hypothesis-made YAML values (huge numbers and strings, NUL, dates that
do not exist, nested garbage, references to modules, cases and sections that do not exist), text spliced in
(wrong front matter delimiters, tabs, nesting 100 levels deep, aliases, tags), and bytes that are not UTF-8.
Some examples also change the tree: a module copied (its slug twice), a bank removed, a stray folder.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from kaptrain.content.files import FRONT_MATTER, ContentError, parse_course, parse_module, parse_quiz, read_content
from tests.conftest import FIXTURES
from tests.fuzz.support import bound_connection, changed_tables, fingerprint, fuzz, rolled_back

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

COURSE = "demo-course"
FILES = {
    "course": f"modules/{COURSE}/course.yaml",
    "module": f"modules/{COURSE}/01-alpha.md",
    "quiz": f"quizzes/{COURSE}/01-alpha.yaml",
    "final": f"quizzes/{COURSE}/final.yaml",
}
PARSERS = {"course": parse_course, "module": parse_module, "quiz": parse_quiz, "final": parse_quiz}
FOLDERS = (f"modules/{COURSE}", f"quizzes/{COURSE}")
PARSE_EXAMPLES = 120
IMPORT_EXAMPLES = 30

# ---------------------------------------------------------------- breaking a file

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.dates(),
    st.sampled_from(
        [
            10**30,
            -1,
            0,
            "x" * 100_000,
            "\x00",
            "a\x1bb",
            "",
            " ",
            "all of the above",
            "The clinician can ",
            "http://example.org",
            "no-such-module",
            "case-zzz",
            "No such heading",
            "single",
            "final",
            "alpha",
        ]
    ),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Text spliced in at the start of a line: each breaks the YAML (or the front matter) in its own way.
SPLICES = (
    "---\n",
    "--\n",
    "+++\n",
    "\t- tab: indented\n",
    "key: [" * 100 + "\n",
    "- " * 100 + "x\n",
    "a: &a [*a]\nb: *a\n",
    "x: !!python/object:os.system ls\n",
    "x: !!binary AAAA\n",
    "? [a, b]\n: c\n",
    "last_reviewed: 2026-02-30\n",
    "order: " + "9" * 5000 + "\n",
    "draw: " + "9" * 400 + "\n",
    "%YAML 1.1\n",
    "\ufeff",
    "<<: *nowhere\n",
    'title: "\\0 NUL"\n',
    "questions: null\n",
)
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80")


@dataclass(frozen=True)
class Damage:
    """How one file is broken: edits to its data, then to its text, then to its bytes; and to the tree around it."""

    edits: tuple[tuple[str, int, Any], ...]  # (what, which node, new value)
    splices: tuple[tuple[int, str], ...]  # (which line, text put before it)
    raw: tuple[tuple[int, bytes], ...]  # (where, bytes put there)
    tree: str  # "as is", "module copied", "bank removed", "stray folder"


def _sometimes(strategy: st.SearchStrategy[Any], times_in_four: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """Usually nothing, so that most examples break a file in one way and some files stay valid enough to import."""
    return st.one_of(*[st.just(())] * (4 - times_in_four), *[strategy.map(lambda x: (x,))] * times_in_four)


damage = st.builds(
    Damage,
    edits=st.lists(
        st.tuples(st.sampled_from(["drop", "set", "retype", "duplicate", "rename"]), st.integers(0, 10**6), garbage),
        max_size=2,
    ).map(tuple),
    splices=_sometimes(st.tuples(st.integers(0, 10**6), st.sampled_from(SPLICES) | st.text(max_size=20)), 1),
    raw=_sometimes(st.tuples(st.integers(0, 10**6), st.sampled_from(INVALID_UTF8) | st.binary(max_size=4)), 1),
    tree=st.sampled_from(["as is", "as is", "as is", "module copied", "bank removed", "stray folder"]),
)


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into the data (keys of mappings, indexes of lists), the root's children first."""
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield (*path, key)
        yield from _nodes(value, (*path, key))


def _retyped(value: Any) -> Any:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, str):
        return len(value)
    return str(value)


def _edit(data: Any, what: str, index: int, new: Any) -> None:
    paths = list(_nodes(data))
    if not paths:
        return
    *parent_path, key = paths[index % len(paths)]
    parent = data
    for part in parent_path:
        parent = parent[part]
    if what == "drop":
        del parent[key]
    elif what == "set":
        parent[key] = new
    elif what == "retype":
        parent[key] = _retyped(parent[key])
    elif what == "duplicate" and isinstance(parent, list):
        parent.insert(key, parent[key])  # the same id, key or option twice
    elif what == "rename" and isinstance(parent, dict):
        parent[f"{key}x" if isinstance(key, str) else key] = parent.pop(key)  # a typo in a field name


def broken(kind: str, original: str, d: Damage) -> bytes:
    """The file's text with the damage done, as bytes."""
    if kind == "module":
        match = FRONT_MATTER.match(original)
        assert match is not None
        meta_text, body = match.groups()
        data = yaml.safe_load(meta_text)
    else:
        data, body = yaml.safe_load(original), ""
    for what, index, new in d.edits:
        _edit(data, what, index, new)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False) if d.edits else None
    if kind == "module":
        text = original if text is None else f"---\n{text}---\n{body}"
    elif text is None:
        text = original
    lines = text.splitlines(keepends=True)
    for where, splice in d.splices:
        lines.insert(where % (len(lines) + 1), splice)
    out = "".join(lines).encode("utf-8")
    for where, raw in d.raw:
        at = where % (len(out) + 1)
        out = out[:at] + raw + out[at:]
    return out


# ---------------------------------------------------------------- a copy of the fixture tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the fixture content to break."""
    root = tmp_path / "content"
    shutil.copytree(FIXTURES / "content", root)
    return root


def _lay_out(root: Path, kind: str, data: bytes, tree_change: str) -> None:
    """Put the fixture tree back as it was, then write the broken file and change the tree around it."""
    for folder in ("modules", "quizzes"):
        shutil.rmtree(root / folder)
        shutil.copytree(FIXTURES / "content" / folder, root / folder)
    (root / FILES[kind]).write_bytes(data)
    if tree_change == "module copied":
        shutil.copy(root / FILES["module"], root / f"modules/{COURSE}/04-alpha-again.md")
    elif tree_change == "bank removed":
        (root / f"quizzes/{COURSE}/02-beta.yaml").unlink()
    elif tree_change == "stray folder":
        (root / "quizzes/no-such-course").mkdir()
        shutil.copy(root / FILES["quiz"], root / "quizzes/no-such-course/01-alpha.yaml")


def _own_problems(kind: str, data: bytes) -> list[str]:
    """What the file's own parser says about it alone (nothing: it is valid on its own, or not UTF-8 text)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ["not UTF-8 text"]
    _model, problems = PARSERS[kind](FILES[kind], text)
    return [p.message for p in problems]


def assert_refusal_names_the_file(exc: ContentError, kind: str, data: bytes) -> None:
    """Every problem says where and what; a file wrong on its own is named, with its own problems."""
    assert exc.problems
    for problem in exc.problems:
        assert problem.path and problem.message, problem
        assert problem.path in FOLDERS or Path(problem.path).parts[0] in ("modules", "quizzes"), problem
    own = _own_problems(kind, data)
    named = [p for p in exc.problems if p.path == FILES[kind]]
    if own:
        assert named, f"{FILES[kind]} is wrong on its own ({own[:3]}) but the error names only {exc.problems[:3]}"
        assert {p.message for p in named} >= set(own) - {"not UTF-8 text"}


# Bugs the fuzzing found, kept as explicit examples: (file, damage).
CONTENT_REGRESSIONS: list[tuple[str, Damage]] = [
    # A date that does not exist made PyYAML raise ValueError, not a content error.
    ("module", Damage((), ((6, "last_reviewed: 2026-02-30\n"),), (), "as is")),
    # A number of 5,000 digits: PyYAML's int() raised ValueError.
    ("quiz", Damage((), ((6, "  draw: " + "9" * 5000 + "\n"),), (), "as is")),
    # Bytes that are not UTF-8: read_text raised UnicodeDecodeError.
    ("course", Damage((), (), ((10, b"\xff"),), "as is")),
    # Nesting 50,000 levels deep crashed the process in libyaml (a segmentation fault).
    ("final", Damage((), ((1, "x: " + "[" * 50_000 + "\n"),), (), "as is")),
]
# Valid to the old schema, refused by the database (a traceback from `content import` on PostgreSQL). Each line is
# put after the one it repeats, so it wins (the last of two equal keys does).
_IMPORT_REGRESSIONS: list[tuple[str, Damage]] = [
    # A title longer than its column.
    ("quiz", Damage((), ((3, "  title: " + "x" * 301 + "\n"),), (), "as is")),
    # NUL inside a quoted string: PostgreSQL refuses NUL in text.
    ("module", Damage((), ((3, 'title: "Alpha\\0"\n'),), (), "as is")),
    # An attempt limit no integer column holds.
    ("quiz", Damage((), ((8, "  max_attempts: " + "1" * 30 + "\n"),), (), "as is")),
]


def _with_examples(test: Any, cases: list[tuple[str, Damage]]) -> Any:
    for kind, d in cases:
        test = example(kind=kind, d=d)(test)
    return test


def test_reader_accepts_or_refuses_with_a_content_error(tree: Path) -> None:
    """read_content on a tree with one broken file: accepted, or ContentError naming the file; nothing else."""

    def check(kind: str, d: Damage) -> None:
        original = (FIXTURES / "content" / FILES[kind]).read_text("utf-8")
        data = broken(kind, original, d)
        _lay_out(tree, kind, data, d.tree)
        try:
            read_content(tree / "modules", tree / "quizzes")
        except ContentError as exc:
            assert_refusal_names_the_file(exc, kind, data)

    test = given(kind=st.sampled_from(sorted(FILES)), d=damage)(check)
    fuzz(PARSE_EXAMPLES)(_with_examples(test, CONTENT_REGRESSIONS))()


def test_cli_import_refuses_cleanly_and_writes_nothing(
    app: Flask, db: Session, runner: FlaskCliRunner, tree: Path
) -> None:
    """`content import` of a broken tree: exit 1 naming the file and nothing written, or an import that works;
    never a traceback. `content check` agrees with it."""
    connection = bound_connection(app)
    before = fingerprint(connection)
    dirs = ["--modules", str(tree / "modules"), "--quizzes", str(tree / "quizzes")]

    def check(kind: str, d: Damage) -> None:
        original = (FIXTURES / "content" / FILES[kind]).read_text("utf-8")
        data = broken(kind, original, d)
        _lay_out(tree, kind, data, d.tree)
        checked = runner.invoke(args=["content", "check", *dirs])
        assert checked.exception is None or isinstance(checked.exception, SystemExit), (
            f"{FILES[kind]}: `content check` raised {checked.exception!r}\n{checked.output}"
        )
        with rolled_back(app, []) as conn:
            result = runner.invoke(args=["content", "import", *dirs])
            output = result.output
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                f"{FILES[kind]}: `content import` raised {result.exception!r}\n{output}"
            )
            assert "Traceback" not in output, output
            if result.exit_code == 0:
                assert "Imported:" in result.stdout
                assert checked.exit_code == 0, f"check refused what import took:\n{checked.output}"
                return
            assert result.exit_code == 1, output
            assert "nothing was imported" in result.stderr, output
            assert re.search(r"^(modules|quizzes)/\S*: ", result.stderr, re.MULTILINE), f"names no file:\n{output}"
            if _own_problems(kind, data):
                assert f"{FILES[kind]}:" in result.stderr, f"{FILES[kind]} is wrong but not named:\n{output}"
            assert not changed_tables(before, fingerprint(conn)), f"a refused import wrote to the database:\n{output}"
            assert checked.exit_code == 1 and re.search(r"problem\(s\) found", checked.stderr), checked.output

    test = given(kind=st.sampled_from(sorted(FILES)), d=damage)(check)
    fuzz(IMPORT_EXAMPLES)(_with_examples(test, CONTENT_REGRESSIONS + _IMPORT_REGRESSIONS))()
