"""The scale data set (`flask --app kaptrain demo seed`): thousands of learners with realistic progress through one
course, their graded quiz attempts, evaluations, attestations and certificates, written with bulk inserts.

Made for benchmarks and for trying staff pages at scale, never for production (the command refuses there). Every
seeded account has the one documented password SEED_PASSWORD, hashed once (argon2id, the site's own parameters)
and the hash reused, and an address under SEED_DOMAIN; a database that already holds seeded accounts is refused.

What the learners did is planned in pure functions (`plan.py`), then written here a chunk of learners at a time
with executemany Core inserts (`session.execute(insert(table), rows)`), so the per-row services, their checks and
their audit entries are not run for the bulk. The plans follow the site's rules, so the completion rule
(kaptrain.courses.completion) reads them as the site would have recorded them: modules in order after the
disclosures, a quiz only after its module was opened and read for the course's minimum, attempts drawn from the
published question revisions and graded with the real graders (score and pass flag from the items' credits), at
most `max_attempts` failures before a pause of the quiz's cooldown, and the evaluation and attestation only after
the final assessment.

Certificates: the first `real_certificates` certified learners go through the real services (evaluation,
attestation, issuance: a signed credential and a rendered PDF). Every other certificate is a row written in bulk
whose stored PDF is a copy of the first real one's bytes. Those PDFs are placeholders for download benchmarks:
they print another holder's name and carry another certificate's credential, so they do not verify; their
`credential` is empty and their `issue_reason` says they are placeholders."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from sqlalchemy import JSON, Table, Text, bindparam, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import PROFESSIONS, Role, User
from kaptrain.activity import ActivityClock
from kaptrain.admin.settings import certificate_settings
from kaptrain.certificates import services as certificates
from kaptrain.certificates.models import Attestation, Certificate, CertificateFile, CertificateStatus, Evaluation
from kaptrain.content.models import Course
from kaptrain.courses import completion
from kaptrain.courses import services as courses
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import utcnow
from kaptrain.demo_seed.plan import (
    SEED_DOMAIN,
    STAGE_SHARES,
    AttemptPlan,
    CourseShape,
    LearnerPlan,
    ModuleShape,
    QuestionShape,
    QuizShape,
    SeedError,
    Stage,
    course_shape,
    find_course,
    plan_learner,
    stage_list,
)
from kaptrain.quizzes.models import Attempt, AttemptItem, AttemptStatus

__all__ = [
    "PLACEHOLDER_REASON",
    "SEED_DOMAIN",
    "SEED_PASSWORD",
    "STAGE_SHARES",
    "CourseShape",
    "LearnerPlan",
    "ModuleShape",
    "QuestionShape",
    "QuizShape",
    "SeedError",
    "SeedReport",
    "Stage",
    "course_shape",
    "find_course",
    "hours_claimed",
    "plan_learner",
    "seed",
    "seeded_learners",
    "stage_list",
]

SEED_PASSWORD = "kaptrain-scale-2026"  # noqa: S105 - documented credential of seeded demo accounts, never production
CHUNK = 500  # learners planned and written per round of inserts
PLACEHOLDER_REASON = "Demo seed: bulk certificate; its stored PDF is a placeholder copied from another certificate"

FIRST_NAMES = (
    "Amara", "Ben", "Carmen", "Dev", "Elena", "Farah", "Gabriel", "Hana", "Isaac", "Jada", "Kofi", "Lena", "Mateo",
    "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Samir", "Tess", "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Baptiste", "Chen", "Delgado", "Eriksen", "Fischer", "Garcia", "Haddad", "Ibrahim", "Jensen", "Kim",
    "Lindqvist", "Mensah", "Nakamura", "Okafor", "Patel", "Quintero", "Rossi", "Silva", "Tanaka", "Ueda",
    "Varga", "Whitfield", "Xu", "Yilmaz", "Zielinski",
)  # fmt: skip
CREDENTIALS = ("LCSW", "LPC", "LMFT", "PsyD", "PhD", "MD", "DO", "NP", "RN", "LMHC", "")
JURISDICTIONS = ("California", "New York", "Texas", "Colorado", "Oregon", "Washington", "Illinois", "Florida")
TIME_ZONES = ("", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London")


# ---------------------------------------------------------------- writing


@dataclass
class SeedReport:
    """What the seed wrote."""

    learners: int = 0
    enrolments: int = 0
    progress: int = 0
    attempts: int = 0
    attempt_items: int = 0
    evaluations: int = 0
    attestations: int = 0
    certificates: int = 0
    rendered: int = 0
    stages: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The report as lines for the terminal."""
        stages = ", ".join(f"{n} {s}" for s, n in self.stages.items())
        return [
            f"{self.learners} learners ({stages}), {self.enrolments} enrolments, {self.progress} module progress rows",
            f"{self.attempts} graded attempts with {self.attempt_items} answers",
            f"{self.evaluations} evaluations, {self.attestations} attestations, {self.certificates} certificates "
            f"({self.rendered} rendered through the issuance service; the others store a copy of its PDF)",
            f"Every seeded account: <learner#####>@{SEED_DOMAIN}, password {SEED_PASSWORD}",
        ]


def seeded_learners(session: Session) -> int:
    """How many seeded accounts the database holds."""
    return int(session.scalar(select(func.count()).where(User.email.like(f"%@{SEED_DOMAIN}"))) or 0)


def seed(
    session: Session,
    course: Course,
    learners: int,
    *,
    real_certificates: int = 3,
    rng_seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Write `learners` seeded learners and everything they did in `course`; flushes, never commits.

    Refused (SeedError) when the database already holds seeded accounts. Needs an app context (certificate
    numbers, signing keys and the PDF renderer come from the app's configuration)."""
    if real_certificates < 1:
        raise SeedError("At least one certificate is rendered for real: the bulk ones copy its PDF.")
    existing = seeded_learners(session)
    if existing:
        raise SeedError(
            f"This database already holds {existing} seeded learners (addresses @{SEED_DOMAIN}); seed an empty "
            "database instead (the bench script makes one)."
        )
    rng = random.Random(rng_seed)  # noqa: S311 - demo data, not security
    shape = course_shape(session, course)
    password_hash = accounts.hash_password(SEED_PASSWORD)
    now = utcnow()
    stages = stage_list(learners, rng)
    report = SeedReport(stages={s.value: stages.count(s) for s in Stage})
    template: list[bytes] = []  # the first real certificate's PDF, copied by the bulk ones
    real_left = real_certificates
    for start in range(0, learners, CHUNK):
        plans = [plan_learner(i + 1, stages[i], shape, rng, now) for i in range(start, min(start + CHUNK, learners))]
        user_ids = _write_learners(session, plans, password_hash, rng, report)
        _write_learning(session, course, shape, plans, user_ids, report)
        certified = [(p, u) for p, u in zip(plans, user_ids, strict=True) if p.stage == Stage.CERTIFIED]
        for plan, user_id in certified[:real_left]:
            pdf = _issue_for_real(session, course, shape, plan, user_id)
            template = template or [pdf]
            report.rendered += 1
            report.evaluations += 1
            report.attestations += 1
            report.certificates += 1
        bulk = certified[real_left:]
        real_left -= len(certified) - len(bulk)
        _write_post_course(session, course, shape, plans, user_ids, bulk, template, report)
        if progress is not None:
            progress(len(plans))
    audit.record(
        session, "demo.seed", "course", course.id, actor_label=audit.cli_actor(),
        learners=report.learners, attempts=report.attempts, certificates=report.certificates,
    )  # fmt: skip
    session.flush()
    return report


def _insert(session: Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """One executemany INSERT on the model's table (Core: the ORM's bulk mode splits rows by their None values)."""
    if rows:
        session.execute(insert(model.__table__), list(rows))


def _insert_ids(session: Session, model: type[Any], rows: Sequence[dict[str, Any]], key: Sequence[str]) -> list[int]:
    """Insert rows and return their new ids in the order given, found again by a unique key of the rows.

    (INSERT ... RETURNING with rows in parameter order falls back to one row a statement on SQLite.)"""
    _insert(session, model, rows)
    if not rows:
        return []
    table = model.__table__
    columns = [table.c[k] for k in key]
    found: dict[tuple[Any, ...], int] = {}
    for part in range(0, len(rows), 5000):  # IN lists stay well under the databases' parameter limits
        batch = rows[part : part + 5000]
        firsts = sorted({r[key[0]] for r in batch})
        for row in session.execute(select(table.c.id, *columns).where(columns[0].in_(firsts))):
            found[tuple(row[1:])] = row[0]
    return [found[tuple(r[k] for k in key)] for r in rows]


def _write_learners(
    session: Session, plans: list[LearnerPlan], password_hash: str, rng: random.Random, report: SeedReport
) -> list[int]:
    rows = []
    for p in plans:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        credential = rng.choice(CREDENTIALS)
        created = p.origin
        rows.append(
            {
                "email": p.email,
                "full_name": f"{first} {last}",
                "profession": rng.choice(PROFESSIONS),
                "credential": credential,
                "licence_number": f"{credential or 'LIC'}-{rng.randint(10000, 99999)}" if credential else "",
                "jurisdiction": rng.choice(JURISDICTIONS),
                "time_zone": rng.choice(TIME_ZONES),
                "password_hash": password_hash,
                "role": Role.LEARNER,
                "is_active": True,
                "session_version": 1,
                "created_at": created,
                "last_login_at": p.at(p.end),
                "email_confirmed_at": created + dt.timedelta(minutes=5) if p.email_confirmed else None,
                "totp_secret": None,
                "totp_enabled_at": None,
                "totp_last_counter": None,
            }
        )
    report.learners += len(rows)
    return _insert_ids(session, User, rows, ("email",))


def _write_learning(
    session: Session, course: Course, shape: CourseShape, plans: list[LearnerPlan], user_ids: list[int],
    report: SeedReport,
) -> None:  # fmt: skip
    """Enrolments, module progress, activity clocks and graded attempts with their items."""
    enrolments, progress, clocks, attempts = [], [], [], []
    for p, user_id in zip(plans, user_ids, strict=True):
        enrolments.append(
            {
                "user_id": user_id,
                "course_id": course.id,
                "enrolled_at": p.at(p.enrolled),
                "disclosures_acknowledged_at": p.at(p.acknowledged) if p.acknowledged is not None else None,
            }
        )
        for m in p.progress:
            progress.append(
                {
                    "user_id": user_id,
                    "module_id": m.module_id,
                    "first_opened_at": p.at(m.opened),
                    "last_seen_at": p.at(m.last_seen),
                    "read_at": p.at(m.read) if m.read is not None else None,
                    "seat_seconds": m.seat_seconds,
                    "last_heartbeat_at": p.at(m.last_seen),
                }
            )
        credited = [m.last_seen for m in p.progress] + [a.submitted for a in p.attempts]
        if credited:
            clocks.append({"user_id": user_id, "last_credit_at": p.at(max(credited))})
        for a in p.attempts:
            attempts.append((a, _attempt_row(p, user_id, a)))
    _insert(session, Enrolment, enrolments)
    _insert(session, ModuleProgress, progress)
    _insert(session, ActivityClock, clocks)
    attempt_ids = _insert_ids(session, Attempt, [row for _, row in attempts], ("user_id", "quiz_id", "number"))
    items = [
        {
            "attempt_id": attempt_id,
            "position": position,
            "question_revision_id": item.question_revision_id,
            "vignette_revision_id": item.vignette_revision_id,
            "option_order_json": _json(tuple(item.option_order)),
            "selected_json": _json(tuple(item.selected)),
            "credit": item.credit,
        }
        for (a, _), attempt_id in zip(attempts, attempt_ids, strict=True)
        for position, item in enumerate(a.items)
    ]
    if items:
        # A million answers at 10,000 learners: their JSON lists are encoded once per distinct value, not per row.
        table = cast(Table, AttemptItem.__table__)
        as_text: dict[str, Any] = {c: bindparam(f"{c}_json", type_=Text()) for c in ("option_order", "selected")}
        if session.get_bind().dialect.name == "postgresql":  # text into a json column needs a cast there
            as_text = {c: sql_cast(p, JSON) for c, p in as_text.items()}
        session.execute(insert(table).values(**as_text), items)
    report.enrolments += len(enrolments)
    report.progress += len(progress)
    report.attempts += len(attempts)
    report.attempt_items += len(items)


@functools.cache
def _json(values: tuple[str, ...]) -> str:
    return json.dumps(list(values))


def _attempt_row(p: LearnerPlan, user_id: int, a: AttemptPlan) -> dict[str, Any]:
    started = p.at(a.started)
    limit = a.quiz.time_limit_minutes
    return {
        "user_id": user_id,
        "quiz_id": a.quiz.id,
        "number": a.number,
        "status": AttemptStatus.SUBMITTED,
        "started_at": started,
        "deadline_at": started + dt.timedelta(minutes=limit) if limit else None,
        "submitted_at": p.at(a.submitted),
        "late": False,
        "score": a.score,
        "passed": a.passed,
        "passing_score": a.quiz.passing_score,
        "settings_id": a.quiz.settings_id,
        "active_seconds": a.active_seconds,
    }


def _evaluation_row(p: LearnerPlan, user_id: int, course: Course, shape: CourseShape) -> dict[str, Any]:
    assert p.evaluated is not None
    # Derived from the learner's index, so the evaluation does not shift the rest of the random sequence.
    ratings = [3 + (p.index * k) % 3 for k in (1, 2, 5)]
    return {
        "user_id": user_id,
        "course_id": course.id,
        "objectives_met": {o: "met" if (p.index + i) % 7 else "partly" for i, o in enumerate(shape.objective_ids)},
        "relevance": ratings[0],
        "quality": ratings[1],
        "overall": ratings[2],
        "free_of_bias": True,
        "bias_comment": "",
        "evidence_balanced": "yes" if p.index % 9 else "partly",
        "evidence_comment": "" if p.index % 9 else "Say which uses in the dosing module are off-label.",
        # Every third learner leaves the optional question empty; the others say about what they claim, or more.
        "hours_spent": None if p.index % 3 == 0 else Decimal(4 + p.index % 5) + Decimal("0.5") * (p.index % 2),
        "comments": "",
        "submitted_at": p.at(p.evaluated),
    }


def hours_claimed(active_seconds: int, ce_hours: Decimal) -> Decimal:
    """What a learner claims: their active time in quarter hours (at least one), at most the course's hours."""
    quarters = max(1, active_seconds // 900)
    return min(Decimal(quarters) / 4, ce_hours).quantize(Decimal("0.01"))


def _write_post_course(
    session: Session,
    course: Course,
    shape: CourseShape,
    plans: list[LearnerPlan],
    user_ids: list[int],
    bulk: list[tuple[LearnerPlan, int]],
    template: list[bytes],
    report: SeedReport,
) -> None:
    """Evaluations, attestations and (for `bulk`) certificates with a copy of the template PDF."""
    real = {u for p, u in zip(plans, user_ids, strict=True) if p.stage == Stage.CERTIFIED} - {u for _, u in bulk}
    evaluations = [
        _evaluation_row(p, u, course, shape)
        for p, u in zip(plans, user_ids, strict=True)
        if p.evaluated is not None and u not in real
    ]
    _insert(session, Evaluation, evaluations)
    report.evaluations += len(evaluations)
    if not bulk:
        return
    pdf = template[0]
    values = certificate_settings(session, course)
    prefix = current_app.config["CERTIFICATE_NUMBER_PREFIX"]
    holders = {u.id: u for u in session.scalars(select(User).where(User.id.in_([u for _, u in bulk])))}
    attestations, rows, issued = [], [], []
    for p, user_id in bulk:
        assert p.attested is not None
        hours = hours_claimed(p.active_seconds, shape.ce_hours)
        attested = p.at(p.attested)
        attestations.append(
            {
                "user_id": user_id,
                "course_id": course.id,
                "statement": certificates.ATTESTATION_STATEMENT,
                "hours_claimed": hours,
                "active_seconds": p.active_seconds,
                "attested_at": attested,
            }
        )
        holder = holders[user_id]
        months = course.certificate_validity_months
        # Columns left out take their defaults (None, "", []), as issuance leaves them.
        rows.append(
            {
                "code": secrets.token_hex(16),
                "user_id": user_id,
                "course_id": course.id,
                # Pending until numbered below: an issued certificate always has its number (a CHECK says so).
                "status": CertificateStatus.PENDING,
                "holder_name": holder.full_name,
                "holder_credential": holder.credential,
                "licence_number": holder.licence_number,
                "jurisdiction": holder.jurisdiction,
                "course_title": course.title,
                "hours": hours,
                "max_hours": course.ce_hours,
                "designations": list(course.credit_designations),
                "delivery_format": course.delivery_format,
                "provider": values.provider,
                "accreditation_statement": values.accreditation_statement,
                "signatory_name": values.signatory_name,
                "signatory_title": values.signatory_title,
                "completed_at": attested,
                "requested_at": attested,
                "issued_at": attested,
                # Near enough for demo data (issuance adds calendar months).
                "expires_at": attested + dt.timedelta(days=round(months * 30.44)) if months else None,
                "issue_reason": PLACEHOLDER_REASON,
            }
        )
        issued.append(attested)
    _insert(session, Attestation, attestations)
    ids = _insert_ids(session, Certificate, rows, ("code",))
    # The number comes from the row's id, as issuance sets it.
    numbered = [
        {"id": i, "number": f"{prefix}-{at.year}-{i:06d}", "status": CertificateStatus.ACTIVE}
        for i, at in zip(ids, issued, strict=True)
    ]
    session.execute(update(Certificate), numbered)
    digest = hashlib.sha256(pdf).hexdigest()
    files = [
        {"certificate_id": i, "pdf": pdf, "sha256": digest, "rendered_at": at}
        for i, at in zip(ids, issued, strict=True)
    ]
    _insert(session, CertificateFile, files)
    report.attestations += len(attestations)
    report.certificates += len(ids)


def _issue_for_real(session: Session, course: Course, shape: CourseShape, plan: LearnerPlan, user_id: int) -> bytes:
    """Evaluation, attestation and issuance through the certificate services (signed credential, rendered PDF)."""
    user = session.get(User, user_id)
    assert user is not None
    enrolment = courses.get_enrolment(session, user_id, course.id)
    record = completion.course_record(session, user_id, course, enrolment)
    if not record.requirements_met:
        raise SeedError(f"Seeded learner {plan.email} did not meet the course requirements (a planner bug).")
    row = _evaluation_row(plan, user_id, course, shape)
    answers = certificates.EvaluationAnswers(
        row["objectives_met"],
        row["relevance"],
        row["quality"],
        row["overall"],
        True,
        evidence_balanced=row["evidence_balanced"],
        evidence_comment=row["evidence_comment"],
        hours_spent=row["hours_spent"],
    )
    certificates.submit_evaluation(session, record, answers)
    record = completion.course_record(session, user_id, course, enrolment)
    hours = hours_claimed(record.active_seconds, course.ce_hours)
    certificate = certificates.attest(session, record, user, hours)
    if certificate.status == CertificateStatus.PENDING:  # the course asks for approval: approve it as the seed
        certificates.approve(session, certificate, actor_label=audit.cli_actor())
    pdf = certificates.stored_pdf(session, certificate)
    assert pdf is not None  # issuance stores the PDF
    return pdf
