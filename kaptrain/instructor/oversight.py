"""Where every learner of a course stands, worked out for all of them in a few grouped queries.

The rule mirrors kaptrain.courses.completion (a module is done when its current quiz is passed, or when it
has none, when it was marked read) and kaptrain.quizzes.services.quiz_state (attempts come in blocks; a
learner who failed every attempt of a block waits for the cooldown). Read-only: nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import User
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation
from kaptrain.content.models import Course
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import utcnow
from kaptrain.quizzes.models import Accommodation, Attempt, AttemptStatus, Quiz, QuizKind
from kaptrain.quizzes.services import current_block


@dataclass
class LearnerRow:
    """One learner's standing in the course."""

    user: User
    step: str  # "disclosures", "module-<position>", "final", "evaluation", "attestation", "certificate", "done"
    step_label: str
    last_activity: dt.datetime
    quiz: Quiz | None = None  # the quiz of the current step, if it has one
    attempts_used: int = 0
    attempts_allowed: int = 0
    stuck: bool = False
    cooldown_until: dt.datetime | None = None


@dataclass
class _Attempts:
    passed: bool = False
    failures: list[dt.datetime] | None = None


def course_learners(session: Session, course: Course, now: dt.datetime | None = None) -> list[LearnerRow]:
    """Every enrolled learner's current step, last activity, attempts on the current quiz and stuck flag."""
    now = now or utcnow()
    enrolments = session.execute(
        select(Enrolment, User).join(User, User.id == Enrolment.user_id).where(Enrolment.course_id == course.id)
        .order_by(User.full_name, User.id)
    ).all()  # fmt: skip
    modules = [m for m in course.modules if not m.is_retired]
    quizzes = list(session.scalars(select(Quiz).where(Quiz.course_id == course.id, Quiz.is_retired.is_(False))))
    module_quiz = {q.module_id: q for q in quizzes if q.kind == QuizKind.MODULE}
    final = next((q for q in quizzes if q.kind == QuizKind.FINAL), None)
    in_course = select(Enrolment.user_id).where(Enrolment.course_id == course.id)

    progress: dict[int, dict[int, ModuleProgress]] = defaultdict(dict)
    for p in session.scalars(
        select(ModuleProgress).where(
            ModuleProgress.module_id.in_([m.id for m in modules]), ModuleProgress.user_id.in_(in_course)
        )
    ):
        progress[p.user_id][p.module_id] = p
    attempts: dict[tuple[int, int], _Attempts] = defaultdict(_Attempts)
    last_attempt: dict[int, dt.datetime] = {}
    rows = session.execute(
        select(
            Attempt.user_id, Attempt.quiz_id, Attempt.status, Attempt.passed, Attempt.started_at, Attempt.submitted_at
        )
        .where(Attempt.quiz_id.in_([q.id for q in quizzes]), Attempt.user_id.in_(in_course))
        .order_by(Attempt.number)
    )  # fmt: skip
    for user_id, quiz_id, status, passed, started_at, submitted_at in rows:
        a = attempts[(user_id, quiz_id)]
        a.passed = a.passed or bool(passed)
        latest = max(filter(None, [last_attempt.get(user_id), started_at, submitted_at]))
        last_attempt[user_id] = latest
        if status == AttemptStatus.SUBMITTED and not passed:
            a.failures = [*(a.failures or []), submitted_at or started_at]
    extra = _extra_attempts(session, [q.id for q in quizzes], in_course)
    done_steps = {
        model: set(session.scalars(select(model.user_id).where(model.course_id == course.id)))
        for model in (Evaluation, Attestation)
    }
    certified = set(
        session.scalars(
            select(Certificate.user_id).where(
                Certificate.course_id == course.id, Certificate.status == CertificateStatus.ACTIVE
            )
        )
    )

    result = []
    for enrolment, learner in enrolments:
        seen = progress.get(learner.id, {})
        moments = [enrolment.enrolled_at, *(p.last_seen_at for p in seen.values())]
        moments += [last_attempt[learner.id]] if learner.id in last_attempt else []
        row = LearnerRow(learner, "done", "Completed", max(moments))
        current: Quiz | None = None
        if enrolment.disclosures_acknowledged_at is None:
            row.step, row.step_label = "disclosures", "Course disclosures"
        else:
            for m in modules:
                quiz = module_quiz.get(m.id)
                passed = attempts[(learner.id, quiz.id)].passed if quiz else False
                read = m.id in seen and seen[m.id].read_at is not None
                if not (passed if quiz else read):
                    row.step, row.step_label, current = f"module-{m.position}", f"Module {m.position}", quiz
                    break
            else:
                if final is not None and not attempts[(learner.id, final.id)].passed:
                    row.step, row.step_label, current = "final", "Final assessment", final
                elif learner.id not in done_steps[Evaluation]:
                    row.step, row.step_label = "evaluation", "Course evaluation"
                elif learner.id not in done_steps[Attestation]:
                    row.step, row.step_label = "attestation", "Attestation"
                elif learner.id not in certified:
                    row.step, row.step_label = "certificate", "Certificate awaiting approval"
        if current is not None:
            _quiz_figures(row, current, attempts[(learner.id, current.id)], extra.get((learner.id, current.id), 0), now)
        result.append(row)
    return result


def _extra_attempts(session: Session, quiz_ids: list[int], in_course: Select[int]) -> dict[tuple[int, int], int]:
    rows = session.execute(
        select(Accommodation.user_id, Accommodation.quiz_id, Accommodation.extra_attempts).where(
            Accommodation.quiz_id.in_(quiz_ids),
            Accommodation.user_id.in_(in_course),
            Accommodation.withdrawn_at.is_(None),
        )
    )
    return {(u, q): n for u, q, n in rows}


def _quiz_figures(row: LearnerRow, quiz: Quiz, a: _Attempts, extra: int, now: dt.datetime) -> None:
    """Attempts used in the learner's current block, and whether they failed all of them."""
    row.quiz = quiz
    row.attempts_allowed = quiz.max_attempts + extra
    block = current_block(a.failures or [], quiz.cooldown_hours)
    used = len(block)
    if quiz.cooldown_hours and block:
        until = block[-1] + dt.timedelta(hours=quiz.cooldown_hours)
        if used >= row.attempts_allowed and now < until:
            row.cooldown_until = until
    row.attempts_used = used
    row.stuck = used >= row.attempts_allowed


def filter_rows(rows: list[LearnerRow], stuck_only: bool, step: str) -> list[LearnerRow]:
    """The rows left by the filters (step "" means any)."""
    return [r for r in rows if (not stuck_only or r.stuck) and (not step or r.step == step)]
