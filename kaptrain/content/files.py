"""Read, validate and write the content files; pure functions, no Flask and no database."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kaptrain.content.schema import CourseFile, ModuleFile, ModuleMeta, QuestionFile, QuizFile, QuizSettings

# libyaml's C loader when present (much faster); both are safe loaders that build no Python objects.
SafeLoader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n(.*)\Z", re.DOTALL)
# No content file needs more than five levels (a bank's questions, their options, an option's fields); libyaml
# builds the node tree recursively in C, and a file nested some 50,000 levels deep crashes the process outright.
MAX_NESTING = 40
# No content file needs a number longer than this. YAML 1.1's base-60 numbers (`1:59:59`) are built digit group by
# digit group in ever larger integers, in time that grows with the square of their length: a module file of 840 KB
# holding one such number held a worker for 34 s (attack2 review). Decimal ones stop at int()'s 4,300 digits.
MAX_NUMBER_CHARS = 100
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_RESOLVER = yaml.resolver.Resolver()
HEADING = re.compile(r"^#{2,3}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a content file, located as precisely as we can."""

    path: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field or '(file)'}: {self.message}"


@dataclass
class CourseContent:
    """One course as read from its files."""

    course: CourseFile
    modules: list[ModuleFile] = field(default_factory=list)
    quizzes: list[QuizFile] = field(default_factory=list)


class ContentError(Exception):
    """Content files failed validation; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the content files")
        self.problems = problems


# ---------------------------------------------------------------- reading


def _node_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through a composed YAML node tree to a line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _validation_problems(
    path: str, exc: ValidationError, root: yaml.Node | None, line_offset: int = 0, strip: str = ""
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if strip and loc[:1] == (strip,):
            loc = loc[1:]
        line = _node_line(root, loc) if root is not None else None
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        problems.append(Problem(path, ".".join(str(p) for p in loc), msg, line + line_offset if line else None))
    return problems


def _beyond_bounds(text: str) -> tuple[str, yaml.Mark] | None:
    """What no content file needs, and where: collections nested deeper than MAX_NESTING, an alias (`*name`), or a
    number longer than MAX_NUMBER_CHARS.
    Read event by event (the parser keeps its own stack, so this never recurses); None when there is none of them.

    An alias repeats its anchor's node without repeating its text, so a few hundred bytes of aliases of aliases
    name one list 9**8 times, and merge keys (`<<: [*a, *a, ...]`) make PyYAML copy the pairs that often while
    building the document: 516 bytes took 6 s and 130 MB, each level nine times more. No content file uses them."""
    depth = 0
    for event in yaml.parse(text, Loader=SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            return "it repeats a part with an alias (*name), which content files do not use: write it out", (
                event.start_mark
            )
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_NUMBER_CHARS and _is_number(event):
            return f"a number {len(event.value):,} characters long, which no content file needs", event.start_mark
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                return f"nested more than {MAX_NESTING} levels deep, which no content file needs", event.start_mark
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _is_number(event: yaml.ScalarEvent) -> bool:
    """Whether the scalar is built as an integer or a float: tagged so (`!!int`), or plain and reading as one."""
    tag = event.tag
    if tag in (None, "!"):
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
    return tag in _NUMBER_TAGS


def _unreadable_scalar(loader: Any, root: yaml.Node) -> yaml.Node | None:
    """The first scalar whose value cannot be built (a date like 2026-02-30, an integer of 5,000 digits).

    Each node is visited once: an alias shares its anchor's node, so the tree is a graph in which a few hundred
    bytes can reach one list 9**8 times over (a YAML "billion laughs")."""
    todo = [root]
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node)
            except (ValueError, OverflowError):
                return node
        elif isinstance(node, yaml.SequenceNode):
            todo += reversed(node.value)
        elif isinstance(node, yaml.MappingNode):
            todo += reversed([part for pair in node.value for part in pair])
    return None


def _parse_yaml(path: str, text: str, line_offset: int = 0) -> tuple[Any, yaml.Node | None, list[Problem]]:
    def problem(message: str, mark: yaml.Mark | None) -> tuple[Any, yaml.Node | None, list[Problem]]:
        return None, None, [Problem(path, "", message, mark.line + 1 + line_offset if mark is not None else None)]

    # One parse gives the node tree (for line numbers) and the data built from it, as yaml.load would.
    loader = SafeLoader(text)
    try:
        beyond = _beyond_bounds(text)
        if beyond is not None:
            return problem(*beyond)
        root = loader.get_single_node()
        try:
            data = loader.construct_document(root) if root is not None else None
        except (ValueError, OverflowError) as exc:
            bad = _unreadable_scalar(SafeLoader(""), root) if root is not None else None
            value = f" {bad.value[:40]!r}" if isinstance(bad, yaml.ScalarNode) else ""
            reason = "it has too many digits" if "digits" in str(exc) else str(exc)  # int()'s 4,300-digit limit
            return problem(f"the value{value} cannot be read: {reason}", bad.start_mark if bad else None)
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        return problem(f"not valid YAML: {reason}", getattr(exc, "problem_mark", None))
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        return None, None, [Problem(path, "", "expected a mapping of fields at the top level", 1)]
    return data, root, []


def _validate(
    model: type[BaseModel], path: str, data: Any, root: yaml.Node | None, offset: int = 0, strip: str = ""
) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, _validation_problems(path, exc, root, offset, strip)


def parse_course(path: str, text: str) -> tuple[CourseFile | None, list[Problem]]:
    """Parse a course.yaml."""
    data, root, problems = _parse_yaml(path, text)
    if problems:
        return None, problems
    course, problems = _validate(CourseFile, path, data, root)
    return course, problems


def parse_module(path: str, text: str) -> tuple[ModuleFile | None, list[Problem]]:
    """Parse a module file: YAML front matter between --- lines, then the Markdown body."""
    match = FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not match:
        return None, [
            Problem(
                path,
                "",
                "missing YAML front matter: start the file with a --- line, then the fields, then another --- line",
                1,
            )
        ]
    meta_text, body = match.groups()
    data, root, problems = _parse_yaml(path, meta_text, line_offset=1)
    if problems:
        return None, problems
    meta, problems = _validate(ModuleMeta, path, data, root, offset=1)
    if problems:
        return None, problems
    body_line = meta_text.count("\n") + 3
    try:
        return ModuleFile(meta=meta, body=body), []
    except ValidationError as exc:
        return None, [Problem(path, "body", e["msg"].removeprefix("Value error, "), body_line) for e in exc.errors()]


def parse_quiz(path: str, text: str) -> tuple[QuizFile | None, list[Problem]]:
    """Parse a question bank."""
    data, root, problems = _parse_yaml(path, text)
    if problems:
        return None, problems
    quiz, problems = _validate(QuizFile, path, data, root)
    return quiz, problems


def module_sections(module: ModuleFile) -> list[str]:
    """The module's ## and ### headings, which questions name in `section` (and "Re-read" links to)."""
    return [m.group(1).strip() for m in HEADING.finditer(module.body)]


def _read(path: Path, shown: str) -> tuple[str | None, list[Problem]]:
    """A content file's text (UTF-8, a byte-order mark allowed); otherwise a problem saying where it went wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, "", f"cannot be read: {exc.strerror or exc}")]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read; save the file as UTF-8"
        return None, [Problem(shown, "", message, line)]


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base.parent))
    except ValueError:
        return str(path)


def read_content(modules_dir: Path, quizzes_dir: Path) -> list[CourseContent]:
    """Read and validate every content file; raise ContentError listing every problem."""
    problems: list[Problem] = []
    courses: dict[str, CourseContent] = {}
    if not modules_dir.is_dir():
        raise ContentError([Problem(str(modules_dir), "", "content folder not found")])
    for course_dir in sorted(p for p in modules_dir.iterdir() if p.is_dir()):
        course_path = course_dir / "course.yaml"
        if not course_path.exists():
            problems.append(Problem(_rel(course_dir, modules_dir), "", "folder has no course.yaml"))
            continue
        shown = _rel(course_path, modules_dir)
        text, errs = _read(course_path, shown)
        course, more = parse_course(shown, text) if text is not None else (None, [])
        problems += errs + more
        if course is None:
            continue
        if course.slug != course_dir.name:
            problems.append(
                Problem(
                    _rel(course_path, modules_dir),
                    "slug",
                    f'slug "{course.slug}" must match its folder name "{course_dir.name}"',
                    1,
                )
            )
        content = courses[course_dir.name] = CourseContent(course)
        before = len(problems)
        for md in sorted(course_dir.glob("*.md")):
            text, errs = _read(md, _rel(md, modules_dir))
            module, more = parse_module(_rel(md, modules_dir), text) if text is not None else (None, [])
            problems += errs + more
            if module is not None:
                content.modules.append(module)
        for qf in sorted((quizzes_dir / course_dir.name).glob("*.yaml")):
            text, errs = _read(qf, _rel(qf, quizzes_dir))
            quiz, more = parse_quiz(_rel(qf, quizzes_dir), text) if text is not None else (None, [])
            problems += errs + more
            if quiz is not None:
                content.quizzes.append(quiz)
        if len(problems) == before:
            # Checks across files only make sense once every file of the course parsed.
            problems += _cross_checks(content)
    if quizzes_dir.is_dir():
        for qdir in sorted(p for p in quizzes_dir.iterdir() if p.is_dir()):
            if qdir.name not in courses and not (modules_dir / qdir.name).is_dir():
                problems.append(Problem(_rel(qdir, quizzes_dir), "", "no course folder of this name in modules/"))
    if problems:
        raise ContentError(problems)
    return list(courses.values())


def _cross_checks(content: CourseContent) -> list[Problem]:
    """Checks that span files: orders, unique slugs, quizzes pointing at real modules and sections."""
    slug = content.course.slug
    problems: list[Problem] = []
    where = f"modules/{slug}"
    orders = sorted(m.meta.order for m in content.modules)
    if orders != list(range(1, len(orders) + 1)):
        problems.append(
            Problem(where, "order", f"module orders must run 1..{len(orders)} without gaps or repeats; found {orders}")
        )
    seen: set[str] = set()
    for m in content.modules:
        if m.meta.slug in seen:
            problems.append(Problem(where, "slug", f'duplicate module slug "{m.meta.slug}"'))
        seen.add(m.meta.slug)
    problems += _previous_slug_problems(where, [(m.meta.slug, m.meta.previous_slugs) for m in content.modules])
    problems += _previous_slug_problems(
        f"quizzes/{slug}", [(q.quiz.slug, q.quiz.previous_slugs) for q in content.quizzes], "quiz."
    )
    by_slug = {m.meta.slug: m for m in content.modules}
    qwhere = f"quizzes/{slug}"
    quiz_slugs: set[str] = set()
    quizzed: set[str] = set()
    finals = 0
    for quiz in content.quizzes:
        s = quiz.quiz
        if s.slug in quiz_slugs:
            problems.append(Problem(qwhere, "quiz.slug", f'duplicate quiz slug "{s.slug}"'))
        quiz_slugs.add(s.slug)
        if s.kind == "final":
            finals += 1
            for q in quiz.questions:
                if q.module not in by_slug:
                    problems.append(Problem(qwhere, f"{s.slug}.{q.key}.module", f'no module "{q.module}"'))
                elif q.section not in module_sections(by_slug[q.module]):
                    problems.append(
                        Problem(
                            qwhere,
                            f"{s.slug}.{q.key}.section",
                            f'"{q.section}" is not a ## or ### heading of module "{q.module}"',
                        )
                    )
            continue
        assert s.module is not None  # guaranteed by QuizSettings for module quizzes
        if s.module not in by_slug:
            problems.append(Problem(qwhere, f"{s.slug}.quiz.module", f'no module "{s.module}" in this course'))
            continue
        if s.module in quizzed:
            problems.append(Problem(qwhere, f"{s.slug}.quiz.module", f'module "{s.module}" already has a quiz'))
        quizzed.add(s.module)
        sections = module_sections(by_slug[s.module])
        for q in quiz.questions:
            if q.section not in sections:
                problems.append(
                    Problem(
                        qwhere,
                        f"{s.slug}.{q.key}.section",
                        f'"{q.section}" is not a ## or ### heading of module "{s.module}"',
                    )
                )
    if finals > 1:
        problems.append(Problem(qwhere, "quiz.kind", "a course has at most one final assessment"))
    return problems


def _previous_slug_problems(where: str, items: list[tuple[str, list[str]]], prefix: str = "") -> list[Problem]:
    """A previous slug must not be in use now, nor claimed by two files: either would make a rename ambiguous."""
    current = {slug for slug, _ in items}
    claimed: dict[str, str] = {}
    problems = []
    for slug, previous in items:
        for old in previous:
            if old in current:
                problems.append(
                    Problem(where, f"{prefix}previous_slugs", f'"{old}" (listed by "{slug}") is still a current slug')
                )
            elif old in claimed:
                problems.append(
                    Problem(
                        where, f"{prefix}previous_slugs", f'"{old}" is listed by both "{claimed[old]}" and "{slug}"'
                    )
                )
            claimed[old] = slug
    return problems


# ---------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with multi-line strings as literal blocks, for readable diffs."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _decimal_presenter(dumper: yaml.SafeDumper, data: Decimal) -> yaml.ScalarNode:
    return dumper.represent_float(float(data))


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(Decimal, _decimal_presenter)


def dump_yaml(data: Any) -> str:
    """Serialise to YAML in the project's file style."""
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))


def _plain(model: BaseModel) -> dict[str, Any]:
    data = model.model_dump(mode="python", exclude_none=True)
    return {k: v for k, v in data.items() if v != [] or k in {"objectives"}}


def module_text(module: ModuleFile) -> str:
    """A module file's full text."""
    meta = _plain(module.meta)
    if isinstance(meta.get("last_reviewed"), dt.date):
        meta["last_reviewed"] = module.meta.last_reviewed
    return f"---\n{dump_yaml(meta)}---\n{module.body}"


def quiz_text(quiz: QuizFile) -> str:
    """A question bank's full text."""
    settings = quiz.quiz.model_dump(mode="python")
    if settings["kind"] == "final":
        settings.pop("module")
    if not settings["previous_slugs"]:
        settings.pop("previous_slugs")
    out: dict[str, Any] = {"quiz": settings}
    if quiz.vignettes:
        out["vignettes"] = [v.model_dump() for v in quiz.vignettes]
    out["questions"] = [_question_dict(q) for q in quiz.questions]
    return dump_yaml(out)


def _question_dict(q: QuestionFile) -> dict[str, Any]:
    d = q.model_dump(mode="python", exclude_none=True)
    d["options"] = [{"text": o.text, "correct": True} if o.correct else {"text": o.text} for o in q.options]
    return d


def module_file_name(slug: str, order: int) -> str:
    """A module file's name in the documented layout."""
    return f"{order:02d}-{slug}.md"


def quiz_file_name(settings: QuizSettings, module_order: int) -> str:
    """A question bank's name in the documented layout: its module's, or final.yaml."""
    return "final.yaml" if settings.kind == "final" else f"{module_order:02d}-{settings.module}.yaml"


def write_content(courses: list[CourseContent], modules_dir: Path, quizzes_dir: Path) -> list[Path]:
    """Write courses back to files in the documented layout; returns the paths written."""
    written: list[Path] = []
    for content in courses:
        slug = content.course.slug
        cdir = modules_dir / slug
        qdir = quizzes_dir / slug
        cdir.mkdir(parents=True, exist_ok=True)
        qdir.mkdir(parents=True, exist_ok=True)
        path = cdir / "course.yaml"
        path.write_text(dump_yaml(_plain(content.course)), "utf-8")
        written.append(path)
        orders = {}
        for m in content.modules:
            orders[m.meta.slug] = m.meta.order
            path = cdir / module_file_name(m.meta.slug, m.meta.order)
            path.write_text(module_text(m), "utf-8")
            written.append(path)
        for q in content.quizzes:
            path = qdir / quiz_file_name(q.quiz, orders.get(q.quiz.module or "", 0))
            path.write_text(quiz_text(q), "utf-8")
            written.append(path)
    return written
