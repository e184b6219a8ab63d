"""The attempt lifecycle: rules, drawing, submission and grading, review. Grading is server-side only."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload, object_session
from sqlalchemy.orm.attributes import set_committed_value

from kaptrain import activity
from kaptrain.content import revisions
from kaptrain.content.models import Module
from kaptrain.db import utcnow

# grant_accommodation and withdraw_accommodation are re-exported: callers reach quiz services through here.
from kaptrain.quizzes.accommodations import current_accommodation
from kaptrain.quizzes.accommodations import grant_accommodation as grant_accommodation
from kaptrain.quizzes.accommodations import withdraw_accommodation as withdraw_accommodation
from kaptrain.quizzes.drawing import balanced_draw
from kaptrain.quizzes.grading import REGISTRY, correct_ids, grade
from kaptrain.quizzes.models import (
    Attempt,
    AttemptItem,
    AttemptStatus,
    QuestionRevision,
    QuestionType,
    Quiz,
    QuizKind,
    Reveal,
    Vignette,
)

# A submission this soon after the deadline still counts: it covers the time the request takes.
GRACE = dt.timedelta(seconds=30)
# Active time an untimed quiz may credit, per question drawn (a timed quiz credits up to its limit).
UNTIMED_SECONDS_PER_QUESTION = 180
# Only these count as a number in a form: str.isdigit() also accepts "²" and "١".
ASCII_NUMBER = re.compile(r"[0-9]{1,6}")
# An answer's attempt item id: ids pass a million at about 100,000 attempts (the scale data set has 1.2 million).
ITEM_ID = re.compile(r"[0-9]{1,18}")


class QuizError(Exception):
    """A quiz action that cannot be carried out; the message is shown to the learner."""

    def __init__(self, message: str, status: int = 409, until: dt.datetime | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.until = until  # the end of a cooldown, for the page to show in the learner's time zone


@dataclass
class Rules:
    """The limits that apply to one learner on one quiz, accommodations included."""

    max_attempts: int
    time_limit_minutes: int | None
    extra_minutes: int = 0
    extra_attempts: int = 0


@dataclass
class QuizState:
    """Where one learner stands on one quiz."""

    quiz: Quiz
    rules: Rules
    attempts: list[Attempt]
    open_attempt: Attempt | None
    passed: bool
    attempts_left: int
    cooldown_until: dt.datetime | None
    locked_reason: str | None = None
    history: list[Attempt] = field(default_factory=list)
    # The next moment this state changes by the clock alone (a pause ends, an open attempt's time runs out).
    changes_at: dt.datetime | None = None

    @property
    def can_start(self) -> bool:
        """A new attempt may begin now."""
        return (
            not self.passed and self.open_attempt is None and self.cooldown_until is None and self.locked_reason is None
        )


def get_quiz(session: Session, course_id: int, slug: str) -> Quiz | None:
    """A course's quiz by slug (slugs are unique within a course, not across courses)."""
    return session.scalar(select(Quiz).where(Quiz.course_id == course_id, Quiz.slug == slug))


def rules_for(session: Session, user_id: int, quiz: Quiz) -> Rules:
    """The quiz's rules, adjusted by any accommodation granted to this learner."""
    acc = current_accommodation(session, user_id, quiz.id)  # a withdrawn grant no longer applies
    extra_min = acc.extra_minutes if acc else 0
    extra_att = acc.extra_attempts if acc else 0
    limit = quiz.time_limit_minutes + extra_min if quiz.time_limit_minutes else None
    return Rules(quiz.max_attempts + extra_att, limit, extra_min, extra_att)


def quiz_state(
    session: Session,
    user_id: int,
    quiz: Quiz,
    gate: str | None,
    now: dt.datetime | None = None,
    attempts: list[Attempt] | None = None,
) -> QuizState:
    """The learner's attempts, attempts left and any cooldown on this quiz.

    `gate` is why the learner may not take the quiz yet (kaptrain.courses.completion.quiz_gate), or None.
    `attempts` are the learner's attempts at the quiz in order, when the caller has them (`attempts_in_course`).
    An open attempt found past its deadline is closed here, at its first observation."""
    now = now or utcnow()
    rules = rules_for(session, user_id, quiz)
    if attempts is None:
        attempts = list(
            session.scalars(
                select(Attempt)
                .where(Attempt.user_id == user_id, Attempt.quiz_id == quiz.id)
                .order_by(Attempt.number)
                .options(lazyload(Attempt.items))  # a list of attempts needs no questions
            )
        )
    open_attempt = next((a for a in attempts if a.status == AttemptStatus.OPEN), None)
    if open_attempt is not None and is_expired(open_attempt, now):
        close_expired(session, open_attempt, now)
        open_attempt = None
    passed = any(a.passed for a in attempts)
    graded = [a for a in attempts if a.status == AttemptStatus.SUBMITTED]
    failures = [a.submitted_at or a.started_at for a in graded if not a.passed]
    used = len(current_block(failures, quiz.cooldown_hours))
    cooldown_until = None
    moments = [open_attempt.deadline_at + GRACE] if open_attempt is not None and open_attempt.deadline_at else []
    if quiz.cooldown_hours and failures:
        until = failures[-1] + dt.timedelta(hours=quiz.cooldown_hours)
        if now >= until:
            used = 0  # the pause is long enough: the next attempt starts a fresh block
        else:
            moments.append(until)
            if used >= rules.max_attempts:
                cooldown_until = until
    if not quiz.cooldown_hours:
        used %= rules.max_attempts  # no cooldown: blocks simply follow one another
    attempts_left = max(0, rules.max_attempts - used)
    if open_attempt is not None:
        attempts_left -= 1
    return QuizState(
        quiz,
        rules,
        attempts,
        open_attempt,
        passed,
        attempts_left,
        cooldown_until,
        gate,
        history=[a for a in attempts if a.status == AttemptStatus.SUBMITTED],
        changes_at=min(moments, default=None),
    )


def attempts_in_course(session: Session, user_id: int, course_id: int) -> list[Attempt]:
    """Every attempt of the learner at the course's quizzes, by quiz and number, in one statement (no questions)."""
    return list(
        session.scalars(
            select(Attempt)
            .join(Quiz, Quiz.id == Attempt.quiz_id)
            .where(Attempt.user_id == user_id, Quiz.course_id == course_id)
            .order_by(Attempt.quiz_id, Attempt.number)
            .options(lazyload(Attempt.items))
        )
    )


def _all_attempts(n: int) -> str:
    return "your one attempt" if n == 1 else f"all {n} attempts"


def current_block(failures: list[dt.datetime], cooldown_hours: int) -> list[dt.datetime]:
    """The failed attempts in the learner's current block.

    A block ends when the learner pauses for at least the cooldown after a failure (whether they had to or
    chose to), so the count depends only on when attempts happened. Granting extra attempts later raises
    the allowance of the current block; it can never start a cooldown by itself."""
    if not cooldown_hours:
        return failures
    pause = dt.timedelta(hours=cooldown_hours)
    start = 0
    for i in range(1, len(failures)):
        if failures[i] - failures[i - 1] >= pause:
            start = i
    return failures[start:]


def is_expired(attempt: Attempt, now: dt.datetime) -> bool:
    """The attempt's time limit (plus grace) has run out."""
    return attempt.deadline_at is not None and now > attempt.deadline_at + GRACE


def close_expired(session: Session, attempt: Attempt, now: dt.datetime) -> None:
    """Close an attempt whose time ran out and grade the answers saved before the deadline (none: a fail)."""
    saved = saved_answers(attempt)  # read before the claim refreshes the attempt
    _grade_once(session, attempt, saved, attempt.deadline_at or now, late=True)


def start_attempt(
    session: Session, user_id: int, quiz: Quiz, gate: str | None, rng: random.Random | None = None
) -> Attempt:
    """Draw questions and open an attempt; an attempt already open is returned instead."""
    state = quiz_state(session, user_id, quiz, gate)
    if state.locked_reason:
        raise QuizError(f"This quiz is not open yet. First: {state.locked_reason}.", 403)
    if state.open_attempt is not None:
        return state.open_attempt
    if state.passed:
        raise QuizError("You have already passed this quiz; your attempts stay available to review.")
    if state.cooldown_until is not None:
        raise QuizError(
            f"You have used {_all_attempts(state.rules.max_attempts)}. Reviewing the module meanwhile is a good idea.",
            429,
            until=state.cooldown_until,
        )
    rng = rng or random.SystemRandom()
    questions = revisions.published_questions(session, quiz.id)
    drawn = balanced_draw(questions, quiz.draw, lambda pair: pair[1].module_id, rng)
    cases = _published_cases(session, [rev for _, rev in drawn])
    now = utcnow()
    rules = state.rules
    number = (
        session.scalar(select(func.max(Attempt.number)).where(Attempt.user_id == user_id, Attempt.quiz_id == quiz.id))
        or 0
    ) + 1
    attempt = Attempt(
        user_id=user_id,
        quiz_id=quiz.id,
        number=number,
        started_at=now,
        passing_score=quiz.passing_score,
        settings_id=quiz.published_revision_id,
        deadline_at=now + dt.timedelta(minutes=rules.time_limit_minutes) if rules.time_limit_minutes else None,
    )
    try:
        with session.begin_nested():
            session.add(attempt)
            session.flush()
            for position, (_, revision) in enumerate(drawn):
                if revision.type == QuestionType.TRUE_FALSE:  # always True, then False: never shuffled
                    order = [o["id"] for o in sorted(revision.options, key=lambda o: o["text"] != "True")]
                else:
                    order = [o["id"] for o in revision.options]
                    rng.shuffle(order)
                session.add(
                    AttemptItem(
                        attempt_id=attempt.id,
                        position=position,
                        question_revision_id=revision.id,
                        vignette_revision_id=cases.get(revision.vignette_id or 0),
                        option_order=order,
                    )
                )
            session.flush()
    except IntegrityError:
        # Another tab opened an attempt at the same moment: the database allows one; use it.
        existing = session.scalar(
            select(Attempt).where(
                Attempt.user_id == user_id, Attempt.quiz_id == quiz.id, Attempt.status == AttemptStatus.OPEN
            )
        )
        if existing is None:
            raise QuizError("Another attempt was started at the same time. Reload the page.") from None
        return existing
    session.refresh(attempt)
    return attempt


class Unanswered(QuizError):
    """A submission that leaves questions blank: refused, naming them; the answers sent are in `answers`."""

    def __init__(self, positions: list[int], answers: dict[int, frozenset[str]]) -> None:
        named = ", ".join(f"question {n}" for n in positions)
        super().__init__(f"Answer every question before submitting. Not answered yet: {named}.", 400)
        self.positions = positions
        self.answers = answers


def _published_cases(session: Session, drawn: list[QuestionRevision]) -> dict[int, int]:
    """The published text of each case the drawn questions refer to: vignette id -> its revision id."""
    ids = {rev.vignette_id for rev in drawn if rev.vignette_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Vignette.id, Vignette.published_revision_id).where(Vignette.id.in_(ids)))
    return {vid: rev_id for vid, rev_id in rows if rev_id is not None}


def parse_answers(attempt: Attempt, form: dict[str, list[str]]) -> dict[int, frozenset[str]]:
    """Check a submitted form against the attempt: every question answered, only its own options."""
    answers = read_answers(attempt, form)
    missing = unanswered(attempt, answers)
    if missing:
        raise Unanswered(missing, answers)
    return answers


class Answerable(Protocol):
    """What checking and grading answers need of a drawn question: an AttemptItem, or a PlainItem read with plain
    statements (kaptrain.quizzes.fast)."""

    @property
    def id(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def option_order(self) -> list[Any]: ...
    @property
    def question_type(self) -> QuestionType: ...
    @property
    def question_options(self) -> list[dict[str, Any]]: ...


def read_answers(attempt: Attempt, form: dict[str, list[str]]) -> dict[int, frozenset[str]]:
    """Check the answers sent for an attempt (blanks allowed): only its own questions, only the options shown."""
    return check_answers(attempt.items, form)


def check_answers(items: Sequence[Answerable], form: dict[str, list[str]]) -> dict[int, frozenset[str]]:
    """`read_answers` for an attempt's drawn questions, however they were read.

    The page names options by their shown position ("0", "1", ...), never by stored id, so not even
    the original file order (where a correct answer might habitually sit) reaches the browser."""
    by_id = {item.id: item for item in items}
    answers: dict[int, frozenset[str]] = {}
    for key, values in form.items():
        if not key.startswith("q-"):
            continue
        raw_id = key[2:]
        if not ITEM_ID.fullmatch(raw_id) or int(raw_id) not in by_id:
            raise QuizError("The answers sent do not belong to this attempt. Reload the quiz and try again.", 400)
        item = by_id[int(raw_id)]
        shown = len(item.option_order)
        if not all(ASCII_NUMBER.fullmatch(v) and int(v) < shown for v in values):
            raise QuizError("An answer was not one of the options shown. Reload the quiz and try again.", 400)
        chosen = frozenset(item.option_order[int(v)] for v in values)
        if REGISTRY[item.question_type].single_choice and len(chosen) > 1:
            raise QuizError(f"Question {item.position + 1} takes one answer only.", 400)
        answers[item.id] = chosen
    return answers


def unanswered(attempt: Attempt, answers: dict[int, frozenset[str]]) -> list[int]:
    """The numbers (as shown, from 1) of the attempt's questions that have no answer in `answers`."""
    return unanswered_in(attempt.items, answers)


def unanswered_in(items: Sequence[Answerable], answers: dict[int, frozenset[str]]) -> list[int]:
    """`unanswered` for an attempt's drawn questions, however they were read."""
    return [item.position + 1 for item in items if not answers.get(item.id)]


def score_answers(
    items: Sequence[Answerable], answers: dict[int, frozenset[str]], partial_credit: bool
) -> tuple[dict[int, float], float]:
    """Each drawn question's credit (0-1) and the score (0-100, two decimals) for the answers given."""
    credits = {
        item.id: grade(item.question_type, item.question_options, chosen, partial_credit)
        if (chosen := answers.get(item.id))
        else 0.0
        for item in items
    }
    score = round(100 * sum(credits.values()) / len(credits), 2) if credits else 0.0
    return credits, score


def untimed_cap(questions: int) -> int:
    """The active time an untimed attempt with this many questions may credit."""
    return UNTIMED_SECONDS_PER_QUESTION * questions


def saved_answers(attempt: Attempt) -> dict[int, frozenset[str]]:
    """The answers saved on the attempt so far (option ids by item id); empty selections are left out."""
    return {item.id: frozenset(item.selected) for item in attempt.items if item.selected}


class ChangedElsewhere(QuizError):
    """The saved answers are no longer those the page sending a save or a submission was showing: another window or
    tab saved since. `saved` holds the answers saved now, for the page to show instead."""

    def __init__(self, items: Sequence[Answerable], saved: dict[int, frozenset[str]], submitting: bool = False) -> None:
        done = "nothing was submitted" if submitting else "this page's answers were not saved over them"
        super().__init__(
            f"Your answers were changed in another window or tab after this page was loaded, so {done}. The page "
            "now shows the answers saved there: check them, then go on from here.",
            409,
        )
        self.saved = saved
        self.current = answers_fingerprint(items, saved)


def saved_now(session: Session, attempt_id: int) -> dict[int, frozenset[str]]:
    """The answers saved on the attempt as the database holds them now (the attempt's loaded items may be older)."""
    rows = session.execute(
        select(AttemptItem.id, AttemptItem.selected).where(AttemptItem.attempt_id == attempt_id)
    ).all()
    return {item_id: frozenset(selected) for item_id, selected in rows if selected}


def check_shown(session: Session, attempt: Attempt, shown: str | None, submitting: bool = False) -> None:
    """Refuse (ChangedElsewhere) a save or submission from a page that showed other answers than those saved now;
    a page that sent no fingerprint (one loaded before there was one) is not checked."""
    if shown is None:
        return
    saved = saved_now(session, attempt.id)
    if answers_fingerprint(attempt.items, saved) != shown:
        raise ChangedElsewhere(attempt.items, saved, submitting)


def answers_fingerprint(items: Sequence[Answerable], saved: dict[int, frozenset[str]]) -> str:
    """A short digest of the saved answers, which a page carries so that its saves replace only what it showed.

    Made of each answer's shown positions, what the page itself sends, never of the stored option ids: those follow
    the content file's order, where a key habitually sits first, and a digest of them could be matched against the
    few candidates in a moment, undoing the shuffle (second attack review)."""
    shown = {item.id: {oid: n for n, oid in enumerate(item.option_order)} for item in items}
    text = ";".join(
        f"{item}:{','.join(str(n) for n in sorted(shown.get(item, {}).get(oid, -1) for oid in chosen))}"
        for item, chosen in sorted(saved.items())
        if chosen
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_answers(
    session: Session,
    attempt: Attempt,
    answers: dict[int, frozenset[str]],
    now: dt.datetime | None = None,
    shown: str | None = None,
) -> str:
    """Keep the learner's answers on their open attempt as they go; a question sent without an answer is cleared.
    Returns the fingerprint of the answers now saved.

    The attempt row is locked first (FOR UPDATE on PostgreSQL; SQLite writers are serialised), so a save can
    never land on an attempt that a concurrent submission has just graded. `shown`, the fingerprint of the
    answers the page was showing, refuses a save over answers another window or tab saved since (ChangedElsewhere):
    each save sends the whole form, so a second tab's save would otherwise put back what the first one changed."""
    now = now or utcnow()
    row = session.execute(
        select(Attempt.status, Attempt.deadline_at).where(Attempt.id == attempt.id).with_for_update()
    ).one()
    if row.status != AttemptStatus.OPEN:
        raise QuizError("This attempt has been submitted, so its answers can no longer change.", 409)
    if row.deadline_at is not None and now > row.deadline_at + GRACE:
        raise QuizError("The time limit for this attempt has run out, so answers can no longer be saved.", 409)
    check_shown(session, attempt, shown)  # read under the lock: the loaded items may predate another tab's save
    for item in attempt.items:
        chosen = answers.get(item.id)
        item.selected = sorted(chosen) if chosen else None
    session.flush()
    return answers_fingerprint(attempt.items, answers)


def submit_attempt(
    session: Session,
    attempt: Attempt,
    form: dict[str, list[str]],
    now: dt.datetime | None = None,
    shown: str | None = None,
) -> Attempt:
    """Grade an open attempt exactly once; a repeated submission returns the first result unchanged. `shown`: the
    fingerprint of the answers the page was showing (a stale tab's submission is refused, as its saves are)."""
    now = now or utcnow()
    if attempt.status == AttemptStatus.SUBMITTED:
        return attempt
    if is_expired(attempt, now):
        raise QuizError(
            "The time limit for this attempt ran out before it was submitted, so these answers were not "
            "accepted. The attempt is closed and counts as not passed.",
            409,
        )
    check_shown(session, attempt, shown, submitting=True)
    answers = parse_answers(attempt, form)
    if not _grade_once(session, attempt, answers, now):
        session.refresh(attempt)  # a concurrent submission graded it first: return its result
    return attempt


def _grade_once(
    session: Session,
    attempt: Attempt,
    answers: dict[int, frozenset[str]],
    submitted_at: dt.datetime,
    late: bool = False,
) -> bool:
    """Grade the answers and claim the attempt with its result; False when another request graded it already.

    One conditional UPDATE moves the attempt from open to submitted together with its score and pass flag, so
    a double click grades once and the database never holds a submitted attempt without its result (a CHECK
    constraint refuses one). The answers and the active time are written in the same transaction after it."""
    rules = attempt.settings  # graded under the rules it was taken under, whatever was published since
    credits, score = score_answers(attempt.items, answers, rules.partial_credit)
    passed = score >= attempt.passing_score
    claimed = session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.status == AttemptStatus.OPEN)
        .values(status=AttemptStatus.SUBMITTED, submitted_at=submitted_at, score=score, passed=passed, late=late)
        .returning(Attempt.deadline_at)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        return False
    # What the UPDATE wrote (and the deadline as it stands, should time have been added meanwhile), without
    # reading the attempt again.
    for name, value in (
        ("status", AttemptStatus.SUBMITTED),
        ("submitted_at", submitted_at),
        ("score", score),
        ("passed", passed),
        ("late", late),
        ("deadline_at", claimed.deadline_at),
    ):
        set_committed_value(attempt, name, value)
    # The time before the answers: crediting it reads the learner's clock, and a read flushes what is pending,
    # so marking the answers first would write them in two flushes.
    attempt.active_seconds = _credit_time(session, attempt)
    for item in attempt.items:
        item.selected = sorted(answers.get(item.id, frozenset()))
        item.credit = credits[item.id]
    # What a pass completes is not recorded here: the completion rule derives it from this attempt.
    session.flush()
    return True


def _credit_time(session: Session, attempt: Attempt) -> int:
    """Credit the attempt's time (start to submit) to the learner's active time, capped by its time limit."""
    end = attempt.submitted_at or utcnow()
    if attempt.deadline_at is not None:
        cap = int((attempt.deadline_at - attempt.started_at).total_seconds())
    else:
        cap = untimed_cap(len(attempt.items))
    return activity.credit(session, attempt.user_id, attempt.started_at, end, cap).seconds


@dataclass
class ReviewOption:
    """One option as shown in a review."""

    id: str
    text: str
    chosen: bool
    correct: bool | None  # None when answers are not revealed


@dataclass
class ReviewItem:
    """One question in a review."""

    item: AttemptItem
    options: list[ReviewOption]
    is_correct: bool
    explanation: str | None


def answers_revealed(attempt: Attempt, quiz_passed: bool | None = None) -> bool:
    """Whether this attempt's review may show the correct answers and explanations: with "after a pass", every
    submitted attempt once the learner has passed the quiz (the earlier failed ones too, as the quiz page says).
    `quiz_passed`: whether the learner has passed the quiz, when the caller knows (QuizState.passed)."""
    reveal = attempt.quiz.reveal_answers  # the policy now, not when taken: withdrawing answers must take effect
    if attempt.status != AttemptStatus.SUBMITTED or reveal == Reveal.NEVER:
        return False
    if reveal == Reveal.ALWAYS or attempt.passed:
        return True
    if quiz_passed is not None:
        return quiz_passed
    session = object_session(attempt)
    passed = select(Attempt.id).where(
        Attempt.user_id == attempt.user_id, Attempt.quiz_id == attempt.quiz_id, Attempt.passed.is_(True)
    )
    return session is not None and session.scalar(passed.limit(1)) is not None


def shown_options(item: AttemptItem) -> list[dict[str, str]]:
    """The options of an open attempt in their shuffled order: position and text only, never the key."""
    by_id = {o["id"]: o for o in item.revision.options}
    return [{"value": str(i), "text": by_id[oid]["text"]} for i, oid in enumerate(item.option_order)]


def form_for(item: AttemptItem, chosen_ids: list[str]) -> list[str]:
    """The form values (shown positions) that select these option ids, for test clients and replays."""
    return [str(item.option_order.index(oid)) for oid in chosen_ids]


def review(attempt: Attempt, reveal: bool | None = None) -> list[ReviewItem]:
    """A submitted attempt as the learner may see it, honouring the quiz's reveal setting (`reveal`: what
    answers_revealed gave, when the caller has it)."""
    reveal = answers_revealed(attempt) if reveal is None else reveal
    out = []
    for item in attempt.items:
        right = correct_ids(item.revision.options)
        chosen = set(item.selected or [])
        by_id = {o["id"]: o for o in item.revision.options}
        options = [
            ReviewOption(oid, by_id[oid]["text"], oid in chosen, (oid in right) if reveal else None)
            for oid in item.option_order
        ]
        out.append(ReviewItem(item, options, (item.credit or 0) >= 1.0, item.revision.explanation if reveal else None))
    return out


def all_quizzes(session: Session) -> list[Quiz]:
    """Every current quiz, by course and module order, each course's final assessment last."""
    in_order = (Quiz.course_id, Quiz.kind == QuizKind.FINAL, Module.position, Quiz.id)
    found = select(Quiz).outerjoin(Module, Module.id == Quiz.module_id).where(Quiz.is_retired.is_(False))
    return list(session.scalars(found.order_by(*in_order)))
