"""Pydantic schemas for the course, module and question files (see docs/content-format.md)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=100)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# Titles, names and sections are columns of at most this many characters (PostgreSQL refuses a longer value).
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Objective = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^The clinician can ")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://\S+$")]

BANNED_OPTIONS = re.compile(r"\b(all|none) of the above\b", re.IGNORECASE)
# Unicode control characters but tab and line breaks: no course text needs them, and PostgreSQL refuses NUL outright.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _refuse_duplicates(what: str, values: list[str]) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"duplicate {what}(s): {', '.join(dupes)}")


class Strict(BaseModel):
    """Unknown fields are errors, so a typo in a field name is reported, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            found = CONTROL_CHARACTER.search(text) if isinstance(text, str) else None
            if found:
                raise ValueError(f"contains the invisible control character U+{ord(found.group()):04X}: remove it")
        return value


class CourseObjective(Strict):
    """A course learning objective; its id is stable, so evaluation answers survive rewording."""

    id: Slug
    text: Objective


class CreditDesignation(Strict):
    """One accreditor's credit for the course, printed on the certificate as approved."""

    credit_type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    hours: Decimal = Field(gt=0, le=200, decimal_places=2)
    statement: Text
    provider_number: str = ""


class CertificateSettings(Strict):
    """How the course's completion certificate is issued."""

    approval: Literal["automatic", "manual"] = "automatic"  # manual: an administrator approves each one
    validity_months: int | None = Field(default=None, ge=1, le=240)  # None: it does not expire
    signatory_name: Name
    signatory_title: Name


class TeamMember(Strict):
    """Someone who planned, wrote or reviewed the course, named on its page as CE standards ask."""

    name: Name
    credentials: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    role: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CourseFile(Strict):
    """modules/<course>/course.yaml"""

    slug: Slug
    title: Title
    description: Text
    audience: Text
    ce_hours: Decimal = Field(gt=0, le=200, decimal_places=2)
    passing_score: int = Field(ge=1, le=100)
    provider: Title
    financial_disclosure: Text
    off_label_statement: Text
    disclaimer: Text
    objectives: list[CourseObjective] = Field(min_length=1)
    # Active reading a module needs before its quiz opens, as a percentage of its estimated minutes.
    min_reading_percent: int = Field(default=0, ge=0, le=100)
    delivery_format: Title = "Enduring online material"
    credit_designations: list[CreditDesignation] = []
    certificate: CertificateSettings
    # Enduring material states when it was released and when its content is due for review (its planned end of
    # credit); both are shown on the course page before enrolment.
    released_on: dt.date | None = None
    review_by: dt.date | None = None
    team: list[TeamMember] = []

    @field_validator("objectives")
    @classmethod
    def _unique_objective_ids(cls, objectives: list[CourseObjective]) -> list[CourseObjective]:
        _refuse_duplicates("objective id", [o.id for o in objectives])
        return objectives

    @field_validator("review_by")
    @classmethod
    def _review_after_release(cls, review_by: dt.date | None, info: ValidationInfo) -> dt.date | None:
        released_on = info.data.get("released_on")
        if review_by and released_on and review_by <= released_on:
            raise ValueError(f"must be a later date than released_on ({released_on})")
        return review_by

    @model_validator(mode="after")
    def _designations_within_hours(self) -> CourseFile:
        over = [d.credit_type for d in self.credit_designations if d.hours > self.ce_hours]
        if over:
            raise ValueError(f"credit designation(s) {', '.join(over)} claim more hours than ce_hours")
        return self


class Reference(Strict):
    """A published source the module cites."""

    key: Slug
    authors: Text
    year: int = Field(ge=1800, le=2100)
    title: Text
    source: Text
    doi: str | None = None
    url: HttpsUrl | None = None

    @property
    def first_author(self) -> str:
        """The first author's surname (or organisation), as the body must cite it."""
        return re.split(r"[\s,]", self.authors, maxsplit=1)[0]


class ModuleMeta(Strict):
    """The YAML front matter of a module file."""

    slug: Slug
    # Slugs this module had before; declaring them keeps learners' progress when a module is renamed.
    previous_slugs: list[Slug] = []
    title: Title
    # One or two sentences for the course outline and the instructor workspace.
    summary: str = Field(default="", max_length=1000)
    order: int = Field(ge=1)
    estimated_minutes: int = Field(ge=1, le=1000)
    last_reviewed: dt.date
    objectives: list[Objective] = Field(min_length=1)
    references: list[Reference] = Field(min_length=1)

    @field_validator("references")
    @classmethod
    def _unique_keys(cls, refs: list[Reference]) -> list[Reference]:
        _refuse_duplicates("reference key", [r.key for r in refs])
        return refs


class ModuleFile(Strict):
    """A module: front matter plus Markdown body."""

    meta: ModuleMeta
    body: Text

    @model_validator(mode="after")
    def _references_cited(self) -> ModuleFile:
        missing = [
            r.key for r in self.meta.references if r.first_author not in self.body or str(r.year) not in self.body
        ]
        if missing:
            raise ValueError("reference(s) not cited in the body by first author and year: " + ", ".join(missing))
        problems = body_problems(self.body, [(r.authors, r.year) for r in self.meta.references])
        if problems:
            raise ValueError(". ".join(p[0].upper() + p[1:] for p in problems))
        return self


def body_problems(body: str, references: list[tuple[str, int]]) -> list[str]:
    """What is wrong with a module's text whatever its other fields say: a code block never closed (everything
    after it would show as code) and citations with no reference of that author and year. The module editor's
    preview shows these as the instructor types."""
    problems = []
    opened = unclosed_fence(body)
    if opened is not None:
        problems.append(
            f"a code block opened on line {opened} of the text (a line of ``` or ~~~) is never closed, so "
            "everything after it would show as code: close it with the same marks on a line of their own, or "
            "remove it"
        )
    unlisted = [
        f"{name} ({year})"
        for name, year in cited_sources(body)
        if not any(y == year and name.split()[0].casefold() in authors.casefold() for authors, y in references)
    ]
    if unlisted:
        problems.append(
            "citation(s) in the text with no reference of that author and year in the list of references: "
            + ", ".join(dict.fromkeys(unlisted))
        )
    return problems


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def unclosed_fence(body: str) -> int | None:
    """The line (from 1) of a fenced code block's opening that nothing closes, as CommonMark reads fences."""
    opened: tuple[int, str] | None = None
    for number, line in enumerate(body.splitlines(), 1):
        found = _FENCE.fullmatch(line.rstrip())
        if found is None:
            continue
        marks, rest = found.groups()
        if opened is None:
            if not (marks[0] == "`" and "`" in rest):  # an info string may not hold a backtick
                opened = (number, marks)
        elif marks[0] == opened[1][0] and len(marks) >= len(opened[1]) and not rest.strip():
            opened = None
    return opened[0] if opened else None


_MONTHS = frozenset("January February March April May June July August September October November December".split())
_YEAR = r"((?:19|20)\d{2})[a-z]?"
# "(Jelovac et al., 2025)", "(Dean et al., 2021; Module 1)", "(American Society of Anesthesiologists, 2025)"
_PARENTHETICAL = re.compile(
    r"([A-Z][\w'’.-]+(?:\s+[A-Z][\w'’-]+)*)(?:\s+et al\.?|\s+(?:and|&)\s+[A-Z][\w-]+(?:\s+[A-Z][\w-]+)*)?,?\s+" + _YEAR
)
# "Williams and colleagues (2018)", "Kew et al. (2023)", "Short (2018)"
# Its words are bounded (no surname is longer): an unbounded word made a long run like "A-A-A-..." quadratic.
_NARRATIVE = re.compile(
    r"\b([A-Z][\w'’-]{0,60})(?:\s+et al\.?|\s+and colleagues|\s+(?:and|&)\s+[A-Z][\w-]{0,60})?\s+\(" + _YEAR + r"[,)]"
)


_CITATION_CHARS = 200
_BRACKETED = re.compile(r"\(([^()]*)\)")
_HAS_YEAR = re.compile(r"\b(?:19|20)\d{2}[a-z]?\b")


def cited_sources(body: str) -> list[tuple[str, int]]:
    """The (author, year) of each citation in a module's text, in the forms the course writes them."""
    found = [(m.group(1), int(m.group(2))) for m in _NARRATIVE.finditer(body)]
    # Each bracketed run is found in one linear pass (a bracket's run stops at the next bracket); only then is it
    # searched for a year. A single pattern that looked for the year while finding the brackets backtracked over
    # the rest of the text from every year after an unclosed bracket: minutes for a long module.
    for group in _BRACKETED.finditer(body):
        if not _HAS_YEAR.search(group.group(1)):
            continue
        for part in group.group(1).split(";"):
            # A citation is a few words: _PARENTHETICAL's time grows with the square of what it searches, so a
            # long part is searched at its two ends only (its start, or the words before its year).
            part = part.strip()
            ends = [part] if len(part) <= _CITATION_CHARS else [part[:_CITATION_CHARS], part[-_CITATION_CHARS:]]
            match = next((m for m in map(_PARENTHETICAL.search, ends) if m), None)
            if match:
                found.append((match.group(1), int(match.group(2))))
    return [(name, year) for name, year in found if name not in _MONTHS]


class QuizSettings(Strict):
    """The `quiz:` block of a question bank."""

    slug: Slug
    # Slugs this quiz had before; declaring them keeps learners' attempts when a quiz is renamed.
    previous_slugs: list[Slug] = []
    title: Title
    kind: Literal["module", "final"] = "module"
    module: Slug | None = None
    # The same limits as the rules editor in the browser (kaptrain.authoring.bank_forms.RulesForm).
    draw: int = Field(default=10, ge=1, le=500)
    passing_score: int = Field(default=80, ge=1, le=100)
    max_attempts: int = Field(default=3, ge=1, le=100)
    cooldown_hours: int = Field(default=24, ge=0, le=24 * 365)
    time_limit_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    reveal_answers: Literal["after_pass", "always", "never"] = "after_pass"
    partial_credit: bool = False
    # A learner may ask for more time on a timed attempt (WCAG 2.2.1; see docs/accessibility.md).
    allow_extension: bool = False

    @model_validator(mode="after")
    def _module_matches_kind(self) -> QuizSettings:
        if self.kind == "module" and not self.module:
            raise ValueError("a module quiz must name its module")
        if self.kind == "final" and self.module:
            raise ValueError("the final assessment belongs to the course, not a module")
        return self


class Vignette(Strict):
    """A case shared by several questions."""

    key: Slug
    title: Title
    text: Text


class Option(Strict):
    """One answer option."""

    text: Text
    correct: bool = False

    @field_validator("text")
    @classmethod
    def _no_above(cls, text: str) -> str:
        if BANNED_OPTIONS.search(text):
            raise ValueError('"all/none of the above" is not allowed: options are shuffled')
        return text


class QuestionFile(Strict):
    """One question in a bank."""

    key: Slug
    type: Literal["single", "multiple", "true_false"]
    section: Title
    module: Slug | None = None
    vignette: Slug | None = None
    stem: Text
    options: list[Option]
    explanation: Text

    @model_validator(mode="after")
    def _options_fit_type(self) -> QuestionFile:
        texts = [o.text for o in self.options]
        if len(set(texts)) != len(texts):
            raise ValueError("two options have the same text")
        n_correct = sum(o.correct for o in self.options)
        if n_correct == 0:
            raise ValueError("no option is marked correct: the correct answer is not among the options")
        if self.type == "single" and not (3 <= len(texts) <= 6 and n_correct == 1):
            raise ValueError("a single-answer question needs 3 to 6 options and exactly one correct")
        if self.type == "multiple" and not 3 <= len(texts) <= 8:
            raise ValueError("a multiple-answer question needs 3 to 8 options")
        if self.type == "true_false" and (sorted(texts) != ["False", "True"] or n_correct != 1):
            raise ValueError('a true/false question has exactly the options "True" and "False", one correct')
        return self


class QuizFile(Strict):
    """quizzes/<course>/<name>.yaml"""

    quiz: QuizSettings
    vignettes: list[Vignette] = []
    questions: list[QuestionFile] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> QuizFile:
        _refuse_duplicates("question key", [q.key for q in self.questions])
        vkeys = {v.key for v in self.vignettes}
        unknown = sorted({q.vignette for q in self.questions if q.vignette and q.vignette not in vkeys})
        if unknown:
            raise ValueError(f"question(s) name unknown vignette(s): {', '.join(unknown)}")
        if self.quiz.draw > len(self.questions):
            raise ValueError(f"draw is {self.quiz.draw} but the bank has only {len(self.questions)} questions")
        if self.quiz.kind == "final" and any(q.module is None for q in self.questions):
            raise ValueError("every final-assessment question must name its module")
        return self
