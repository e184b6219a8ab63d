"""Item-writing checks: the cues that let a test-wise learner answer without knowing the subject.

Pure functions over the content file models, shared by `flask content check` and the browser editor. They
warn rather than refuse: a rule of thumb can have a good exception, which `--strict` does not allow."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from kaptrain.content.schema import BANNED_OPTIONS, QuestionFile, QuizFile

# Specific determiners: options that carry them are usually wrong, so learners eliminate them unread.
ABSOLUTE = re.compile(
    r"\b(always|never|only|all|none|every|must|completely|entirely|guarantee[sd]?|impossible|invariably"
    r"|absolutely|certainly)\b",
    re.IGNORECASE,
)
# A negative in the question sentence is missed by readers unless it is emphasised (written in capitals).
NEGATIVE = re.compile(r"\b(not|except|least|incorrect|false)\b")
NEAR_DUPLICATE = 0.8
LONGEST_KEY_LIMIT = 0.4  # share of a bank's single-answer items whose key is the longest option
PATTERN_LIMIT = 0.5  # share of a bank's multiple-answer items with the same correct-of-total pattern


@dataclass(frozen=True)
class Finding:
    """One item-writing warning, about a question (key) or a whole bank (key is None)."""

    quiz: str
    key: str | None
    code: str
    message: str
    # A note is a cue that is fine now and then (a longest key); only the bank's share of them is a warning.
    is_note: bool = False

    def __str__(self) -> str:
        where = f"{self.quiz}.{self.key}" if self.key else self.quiz
        return f"{where}: {self.code}: {self.message}"


@dataclass(frozen=True)
class BankFigures:
    """Per-bank construction figures, reported by `content check`."""

    quiz: str
    single_items: int
    key_longest: int
    multiple_items: int
    top_pattern: str | None
    top_pattern_items: int

    @property
    def key_longest_share(self) -> float:
        """Share of single-answer items whose keyed option is the longest."""
        return self.key_longest / self.single_items if self.single_items else 0.0

    def __str__(self) -> str:
        text = f"{self.quiz}: key is the longest option in {self.key_longest} of {self.single_items}"
        text += f" single-answer items ({self.key_longest_share:.0%})"
        if self.multiple_items:
            text += f"; commonest multiple-answer pattern {self.top_pattern} in {self.top_pattern_items}"
            text += f" of {self.multiple_items}"
        return text


def key_is_longest(q: QuestionFile) -> bool:
    """Whether a single-answer question's keyed option is at least as long as every distractor."""
    keyed = [len(o.text) for o in q.options if o.correct]
    others = [len(o.text) for o in q.options if not o.correct]
    return bool(keyed and others) and max(keyed) >= max(others)


def answer_pattern(q: QuestionFile) -> str:
    """A multiple-answer question's shape, e.g. "3 of 5"."""
    return f"{sum(o.correct for o in q.options)} of {len(q.options)}"


def question_findings(quiz: str, q: QuestionFile, sections: Sequence[str] | None = None) -> list[Finding]:
    """The warnings about one question on its own (sections: its module's headings, when known)."""
    out: list[Finding] = []

    def warn(code: str, message: str) -> None:
        out.append(Finding(quiz, q.key, code, message))

    if q.type == "single" and key_is_longest(q):
        message = "the correct option is the longest: fine now and then, a cue when it is the habit of the bank"
        out.append(Finding(quiz, q.key, "key-longest", message, is_note=True))
    if any(BANNED_OPTIONS.search(o.text) for o in q.options):
        warn("all-none-of-the-above", '"all/none of the above" cannot work when options are shuffled')
    if q.type != "true_false":
        keyed_absolute = any(ABSOLUTE.search(o.text) for o in q.options if o.correct)
        cued = [o.text for o in q.options if not o.correct and ABSOLUTE.search(o.text)]
        if cued and not keyed_absolute:
            words = sorted({m.group(1).lower() for t in cued for m in ABSOLUTE.finditer(t)})
            warn("absolute-word", f"only distractors use absolute words ({', '.join(words)}), which gives them away")
    question = question_sentence(q.stem)
    negative = NEGATIVE.search(question)
    if negative:
        warn("negative-stem", f'the question says "{negative.group(1)}" without emphasis: write it in capitals')
    if sections is not None and _norm(q.section) not in {_norm(s) for s in sections}:
        warn("section", f'"{q.section}" is not a heading of the module, so "Re-read" cannot link to it')
    return out


def question_sentence(stem: str) -> str:
    """The stem's last sentence, the question itself: what follows the last ".", "!" or "?" that a space follows,
    when nothing but a final mark comes after it (else the whole stem).

    Found by looking back once from the end: the pattern this replaces ("(?:^|[.!?]\\s+)([^.!?]*[.!?:]?)\\s*$")
    backtracked over every run of spaces, minutes for a 5,000-character stem, on every view of the bank page."""
    text = stem.strip()
    marks = [text.rfind(mark, 0, len(text) - 1) for mark in ".!?"]
    last = max(marks)
    if last < 0:
        return text
    after = text[last + 1 :]
    return after.lstrip() if after[:1].isspace() else stem


def bank_figures(quiz: QuizFile) -> BankFigures:
    """Construction figures of one bank."""
    singles = [q for q in quiz.questions if q.type == "single"]
    multiples = [q for q in quiz.questions if q.type == "multiple"]
    patterns = Counter(answer_pattern(q) for q in multiples).most_common(1)
    top, count = patterns[0] if patterns else (None, 0)
    return BankFigures(quiz.quiz.slug, len(singles), sum(map(key_is_longest, singles)), len(multiples), top, count)


def bank_findings(quiz: QuizFile) -> list[Finding]:
    """Warnings about a bank as a whole: too many longest keys, one multiple-answer pattern dominating."""
    fig = bank_figures(quiz)
    out = []
    if fig.single_items and fig.key_longest_share > LONGEST_KEY_LIMIT:
        out.append(
            Finding(
                fig.quiz,
                None,
                "key-longest-share",
                f"the key is the longest option in {fig.key_longest_share:.0%} of single-answer items "
                f"(at most {LONGEST_KEY_LIMIT:.0%})",
            )
        )
    if fig.multiple_items >= 2 and fig.top_pattern_items / fig.multiple_items > PATTERN_LIMIT:
        out.append(
            Finding(
                fig.quiz,
                None,
                "answer-pattern",
                f"{fig.top_pattern_items} of {fig.multiple_items} multiple-answer items have {fig.top_pattern} "
                "correct: the count of correct options becomes a cue",
            )
        )
    return out


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def similar_stems(stems: Iterable[tuple[str, str, str]]) -> list[tuple[tuple[str, str], tuple[str, str], float]]:
    """Pairs of (quiz, key) whose stems are the same or nearly so (ratio >= NEAR_DUPLICATE)."""
    items = [(quiz, key, _norm(stem)) for quiz, key, stem in stems]
    words = [set(text.split()) for _, _, text in items]
    pairs = []
    for i, (qa, ka, a) in enumerate(items):
        for j, (qb, kb, b) in enumerate(items[i + 1 :], start=i + 1):
            # Letters of any two English sentences look alike to quick_ratio, so first ask for shared words: stems
            # that are 80% the same text share well over half their words (checked on the shipped banks).
            if len(words[i] & words[j]) < 0.5 * max(len(words[i]), len(words[j])):
                continue
            matcher = SequenceMatcher(None, a, b, autojunk=False)
            # The cheap upper bounds first: most pairs are far apart.
            if matcher.real_quick_ratio() < NEAR_DUPLICATE or matcher.quick_ratio() < NEAR_DUPLICATE:
                continue
            ratio = matcher.ratio()
            if ratio >= NEAR_DUPLICATE:
                pairs.append(((qa, ka), (qb, kb), ratio))
    return pairs


def duplicate_findings(quizzes: Sequence[QuizFile]) -> list[Finding]:
    """Warnings for the same or nearly the same stem asked twice, within or across banks."""
    stems = [(qz.quiz.slug, q.key, q.stem) for qz in quizzes for q in qz.questions]
    out = []
    for (qa, ka), (qb, kb), ratio in similar_stems(stems):
        message = f"stem is {ratio:.0%} the same as {qb}.{kb}: ask each fact once"
        out.append(Finding(qa, ka, "near-duplicate", message))
    return out


def course_findings(quizzes: Sequence[QuizFile], sections: dict[str, list[str]]) -> list[Finding]:
    """Every item-writing warning for a course's banks (sections: module slug -> its headings)."""
    out: list[Finding] = []
    for quiz in quizzes:
        for q in quiz.questions:
            module = q.module if quiz.quiz.kind == "final" else quiz.quiz.module
            out += question_findings(quiz.quiz.slug, q, sections.get(module or ""))
        out += bank_findings(quiz)
    out += duplicate_findings(quizzes)
    return out
