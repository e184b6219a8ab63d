"""The learner overview, worked out in SQL, agrees learner for learner with the rule computed in memory.

`in_memory` below is the overview as it was computed before it moved into the database (every learner loaded,
the rule applied in Python); the SQL version must give the same step, last activity, attempts, stuck flag and
cooldown for every learner, and the same counts, under every filter and on every page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.certificates.models import Attestation, Certificate, CertificateStatus, Evaluation, RevocationReason
from kaptrain.content.models import Course, Module
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.instructor import oversight
from kaptrain.quizzes.models import Accommodation, Attempt, AttemptStatus, Quiz, QuizKind
from kaptrain.quizzes.services import current_block
from tests.factories import course, enrolled, make_user, quiz

# A fraction of a second near the next whole second: SQLite's date functions would round it up.
START = dt.datetime(2026, 1, 5, 9, 0, 0, 999_950, tzinfo=dt.UTC)
NOW = START + dt.timedelta(days=4)
DAY = dt.timedelta(hours=24)  # the fixture quizzes' cooldown
GAPS = [dt.timedelta(minutes=5), DAY - dt.timedelta(microseconds=1), DAY, DAY + dt.timedelta(microseconds=1), 2 * DAY]
NAMES = ["Ana Ruiz", "Ben Cole", "Ana Ruiz", "Cy Dahl", "Dee Ek", "Bo Fay"]  # repeated: ties broken by id


@dataclass
class Expected:
    """One learner's row, as the in-memory rule gives it."""

    user_id: int
    step: str
    label: str
    last_activity: dt.datetime
    quiz_id: int | None = None
    used: int = 0
    allowed: int = 0
    stuck: bool = False
    cooldown_until: dt.datetime | None = None


def in_memory(db: Session, c: Course, now: dt.datetime) -> list[Expected]:
    """The overview as computed before it moved into SQL: every learner loaded, the rule applied in Python."""
    enrolments = db.execute(
        select(Enrolment, User).join(User, User.id == Enrolment.user_id).where(Enrolment.course_id == c.id)
        .order_by(User.full_name, User.id)
    ).all()  # fmt: skip
    modules = [m for m in c.modules if m.is_live]
    quizzes = list(db.scalars(select(Quiz).where(Quiz.course_id == c.id, Quiz.is_retired.is_(False))))
    module_quiz = {q.module_id: q for q in quizzes if q.kind == QuizKind.MODULE}
    final = next((q for q in quizzes if q.kind == QuizKind.FINAL), None)
    progress: dict[int, dict[int, ModuleProgress]] = defaultdict(dict)
    for p in db.scalars(select(ModuleProgress).where(ModuleProgress.module_id.in_([m.id for m in modules]))):
        progress[p.user_id][p.module_id] = p
    passed: set[tuple[int, int]] = set()
    failures: dict[tuple[int, int], list[dt.datetime]] = defaultdict(list)
    last_attempt: dict[int, dt.datetime] = {}
    for a in db.scalars(select(Attempt).where(Attempt.quiz_id.in_([q.id for q in quizzes])).order_by(Attempt.number)):
        if a.passed:
            passed.add((a.user_id, a.quiz_id))
        last_attempt[a.user_id] = max(filter(None, [last_attempt.get(a.user_id), a.started_at, a.submitted_at]))
        if a.status == AttemptStatus.SUBMITTED and not a.passed:
            failures[(a.user_id, a.quiz_id)].append(a.submitted_at or a.started_at)
    extra = {
        (g.user_id, g.quiz_id): g.extra_attempts
        for g in db.scalars(select(Accommodation).where(Accommodation.withdrawn_at.is_(None)))
    }
    evaluated = set(db.scalars(select(Evaluation.user_id).where(Evaluation.course_id == c.id)))
    attested = set(db.scalars(select(Attestation.user_id).where(Attestation.course_id == c.id)))

    def holders(status: CertificateStatus) -> set[int]:
        return set(db.scalars(select(Certificate.user_id).where(
            Certificate.course_id == c.id, Certificate.status == status)))  # fmt: skip

    certified = holders(CertificateStatus.ACTIVE)
    revoked, waiting = holders(CertificateStatus.REVOKED), holders(CertificateStatus.PENDING)
    rows = []
    for enrolment, learner in enrolments:
        seen = progress.get(learner.id, {})
        moments = [enrolment.enrolled_at, *(p.last_seen_at for p in seen.values())]
        moments += [last_attempt[learner.id]] if learner.id in last_attempt else []
        row = Expected(learner.id, "done", "Completed", max(moments))
        current = None
        if enrolment.disclosures_acknowledged_at is None:
            row.step, row.label = "disclosures", "Course disclosures"
        else:
            for m in modules:
                q = module_quiz.get(m.id)
                done = (learner.id, q.id) in passed if q else (m.id in seen and seen[m.id].read_at is not None)
                if not done:
                    row.step, row.label, current = f"module-{m.position}", f"Module {m.position}", q
                    break
            else:
                if final is not None and (learner.id, final.id) not in passed:
                    row.step, row.label, current = "final", "Final assessment", final
                elif learner.id not in evaluated:
                    row.step, row.label = "evaluation", "Course evaluation"
                elif learner.id not in attested:
                    row.step, row.label = "attestation", "Attestation"
                elif learner.id not in certified and learner.id in revoked and learner.id not in waiting:
                    row.step, row.label = "revoked", "Certificate revoked"
                elif learner.id not in certified:
                    row.step, row.label = "certificate", "Certificate awaiting approval"
        if current is not None:
            row.quiz_id = current.id
            row.allowed = current.max_attempts + extra.get((learner.id, current.id), 0)
            block = current_block(failures[(learner.id, current.id)], current.cooldown_hours)
            row.used = len(block)
            row.stuck = row.used >= row.allowed
            if current.cooldown_hours and block:
                until = block[-1] + dt.timedelta(hours=current.cooldown_hours)
                if row.stuck and now < until:
                    row.cooldown_until = until
        rows.append(row)
    return rows


def as_expected(row: oversight.LearnerRow) -> Expected:
    """A row of the SQL overview in the reference's terms."""
    return Expected(
        row.user.id, row.step, row.step_label, row.last_activity, row.quiz.id if row.quiz else None,
        row.attempts_used, row.attempts_allowed, row.stuck, row.cooldown_until,
    )  # fmt: skip


class Population:
    """Learners at every step, written straight to the tables with chosen times."""

    def __init__(self, db: Session, seed: int) -> None:
        self.db = db
        self.rng = random.Random(seed)
        self.course = course(db)
        self.quizzes = {q.slug: q for q in db.scalars(select(Quiz).where(Quiz.course_id == self.course.id))}
        self.n = 0
        self.finishes = False

    def learner(self, finishes: bool = False) -> None:
        """One learner who got somewhere in the course and stopped, or finished it (`finishes`)."""
        self.finishes = finishes
        rng, db = self.rng, self.db
        self.n += 1
        at = START + dt.timedelta(minutes=rng.randint(-6000, 3000), microseconds=rng.choice([0, 999_950, 123_456]))
        user = User(email=f"overview{self.n}@example.org", full_name=rng.choice(NAMES), profession="Nurse",
                    password_hash="x", role=Role.LEARNER, created_at=at)  # fmt: skip
        db.add(user)
        db.flush()
        acknowledged = finishes or rng.random() < 0.9
        db.add(Enrolment(user_id=user.id, course_id=self.course.id, enrolled_at=at,
                         disclosures_acknowledged_at=at if acknowledged else None))  # fmt: skip
        if acknowledged and self.modules(user, at) and (finishes or rng.random() < 0.8):
            self.completion(user, at + dt.timedelta(days=3))
        db.flush()

    def stuck_on_alpha(self, last_failure: dt.datetime) -> User:
        """A learner who failed both attempts of alpha-quiz, the last at the given moment."""
        user = User(email=f"stuck{self.n}@example.org", full_name="Stuck Learner", profession="Nurse",
                    password_hash="x", role=Role.LEARNER, created_at=START)  # fmt: skip
        self.n += 1
        self.db.add(user)
        self.db.flush()
        self.db.add(Enrolment(user_id=user.id, course_id=self.course.id, enrolled_at=START,
                              disclosures_acknowledged_at=START))  # fmt: skip
        alpha = self.quizzes["alpha-quiz"]
        self.attempt(user, alpha, 1, last_failure - dt.timedelta(hours=1), passed=False)
        self.attempt(user, alpha, 2, last_failure, passed=False)
        self.db.flush()
        return user

    def modules(self, user: User, at: dt.datetime) -> bool:
        """Progress and attempts module by module, then the final; False where the learner stopped."""
        rng = self.rng
        for m in self.course.modules:
            at += dt.timedelta(hours=rng.randint(1, 30))
            if not self.finishes and rng.random() < 0.05:
                return False
            read = self.finishes or rng.random() < 0.9
            self.db.add(ModuleProgress(user_id=user.id, module_id=m.id, first_opened_at=at, last_seen_at=at,
                                       read_at=at if read else None))  # fmt: skip
            q = next((q for q in self.quizzes.values() if q.module_id == m.id and not q.is_retired), None)
            if q is None and not read:
                return False
            if q is not None and not self.attempts(user, q, at):
                return False
        return self.attempts(user, self.quizzes["demo-final"], at + dt.timedelta(hours=1))

    def attempts(self, user: User, q: Quiz, at: dt.datetime) -> bool:
        """Some failures with gaps around the cooldown, then a pass, an open attempt, or nothing more."""
        rng = self.rng
        number = 0
        for _ in range(rng.choice([0, 0, 1, 2, 2, 3, 4])):
            number += 1
            at += rng.choice(GAPS)
            self.attempt(user, q, number, at, passed=False)
        ending = "pass" if self.finishes else rng.choice(["pass", "pass", "pass", "pass", "open", "stop"])
        if rng.random() < 0.3:
            self.db.add(Accommodation(user_id=user.id, quiz_id=q.id, extra_attempts=rng.randint(0, 2), note="n",
                                      withdrawn_at=at if rng.random() < 0.3 else None))  # fmt: skip
        if ending == "stop":
            return False
        number += 1
        self.attempt(user, q, number, at + rng.choice(GAPS), passed=None if ending == "open" else True)
        return ending == "pass"

    def attempt(self, user: User, q: Quiz, number: int, at: dt.datetime, passed: bool | None) -> None:
        """One attempt at a given moment (submitted a little later unless still open)."""
        is_open = passed is None
        self.db.add(Attempt(
            user_id=user.id, quiz_id=q.id, number=number,
            status=AttemptStatus.OPEN if is_open else AttemptStatus.SUBMITTED, started_at=at - dt.timedelta(minutes=3),
            submitted_at=None if is_open else at, score=None if is_open else (90.0 if passed else 10.0),
            passed=passed, passing_score=80, settings_id=q.published_revision_id,
        ))  # fmt: skip

    def completion(self, user: User, at: dt.datetime) -> None:
        """Evaluation, attestation and a certificate in some status, each only for some learners."""
        rng, db = self.rng, self.db
        if not self.finishes and rng.random() < 0.2:
            return
        db.add(Evaluation(user_id=user.id, course_id=self.course.id, objectives_met={}, relevance=4, quality=4,
                          overall=4, free_of_bias=True, submitted_at=at))  # fmt: skip
        if not self.finishes and rng.random() < 0.2:
            return
        db.add(Attestation(user_id=user.id, course_id=self.course.id, statement="s", hours_claimed=Decimal(1),
                           active_seconds=60, attested_at=at))  # fmt: skip
        status = rng.choice([CertificateStatus.ACTIVE] * 2 + [CertificateStatus.PENDING, CertificateStatus.REVOKED])
        status = CertificateStatus.ACTIVE if self.finishes else status
        issued = status != CertificateStatus.PENDING
        revoked = status == CertificateStatus.REVOKED
        db.add(Certificate(
            code=f"overview{self.n:027d}", user_id=user.id, course_id=self.course.id, status=status,
            holder_name=user.full_name, course_title="t", hours=Decimal(1), max_hours=Decimal(1), designations=[],
            delivery_format="d", provider="p", signatory_name="s", signatory_title="t", completed_at=at,
            number=f"OV-{self.n:06d}" if issued else None, issued_at=at if issued else None,
            revoked_at=at if revoked else None, revocation_reason=RevocationReason.OTHER if revoked else None,
        ))  # fmt: skip


def compare_everything(db: Session, c: Course, per_page: int = 7) -> None:
    """Every filter, every page: the SQL overview equals the in-memory rule."""
    expected = in_memory(db, c, NOW)
    steps = sorted({(r.step, r.label) for r in expected}, key=lambda s: oversight.step_order(s[0]))
    for stuck_only in (False, True):
        for step in ["", "no-such-step", *(s for s, _l in steps)]:
            known = step in dict(steps)
            wanted = [r for r in expected if (not stuck_only or r.stuck) and (not known or r.step == step)]
            got: list[Expected] = []
            page = 1
            while True:
                found = oversight.overview(db, c, stuck_only, step, page, per_page, now=NOW)
                assert (found.total, found.stuck_total) == (len(expected), sum(r.stuck for r in expected))
                assert found.steps == steps and found.matching == len(wanted)
                assert found.page == page
                got += [as_expected(r) for r in found.rows]
                if page >= found.pages:
                    break
                page += 1
            assert got == wanted, (stuck_only, step)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_sql_overview_equals_the_in_memory_rule(db, seed):
    population = Population(db, seed)
    for n in range(60):
        population.learner(finishes=n % 20 == 0)
    population.stuck_on_alpha(NOW - dt.timedelta(hours=2))  # waits out the cooldown
    population.stuck_on_alpha(NOW - 3 * DAY)  # cooldown over, has not come back
    expected = in_memory(db, population.course, NOW)
    # The population reaches every step, and some learners are stuck with and without a cooldown to wait.
    assert {r.step for r in expected} >= {"disclosures", "module-1", "module-2", "final", "done"}
    assert any(r.cooldown_until for r in expected) and any(r.stuck and not r.cooldown_until for r in expected)
    compare_everything(db, population.course)


def _listed(db, login, seed: int, learners: int):  # type: ignore[no-untyped-def]
    """`learners` seeded learners, an instructor signed in, and the standings the list must show."""
    population = Population(db, seed)
    for _ in range(learners):
        population.learner()
    login(make_user(db, role=Role.INSTRUCTOR))
    db.commit()
    return in_memory(db, course(db), NOW)


def test_a_retired_module_drops_out_of_the_steps(db):
    population = Population(db, 3)
    for _ in range(30):
        population.learner()
    beta = db.scalar(select(Module).where(Module.slug == "beta"))
    assert beta is not None
    beta.is_retired = True
    db.flush()
    db.expire_all()
    compare_everything(db, course(db))


def test_failures_exactly_one_cooldown_apart_start_a_new_block(db):
    population = Population(db, 4)
    population.learner()
    c, alpha = course(db), quiz(db, "alpha-quiz")
    first = START + dt.timedelta(hours=1)
    user = population.stuck_on_alpha(first + dt.timedelta(hours=1))  # attempts 1 and 2: `first` and an hour later
    population.attempt(user, alpha, 3, first + DAY + dt.timedelta(hours=1), passed=False)  # exactly the cooldown
    population.attempt(user, alpha, 4, first + 2 * DAY + dt.timedelta(hours=1, microseconds=-1), passed=False)
    db.flush()
    row = next(r for r in oversight.overview(db, c, step="module-1", now=NOW).rows if r.user.id == user.id)
    assert (row.attempts_used, row.attempts_allowed, row.stuck) == (2, 2, True)
    assert row.cooldown_until is None  # the last failure was more than a day before NOW
    soon = first + 2 * DAY + dt.timedelta(hours=2)
    row = next(r for r in oversight.overview(db, c, step="module-1", now=soon).rows if r.user.id == user.id)
    assert row.cooldown_until == first + 3 * DAY + dt.timedelta(hours=1, microseconds=-1)


def test_the_page_costs_the_same_statements_for_any_number_of_learners(db, app):
    population = Population(db, 5)
    c = course(db)

    def statements() -> int:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        engine = app.extensions["kaptrain.db"].engine
        event.listen(engine, "before_cursor_execute", listener)
        try:
            db.expire_all()
            oversight.overview(db, c, per_page=50, now=NOW)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    population.learner()
    few = statements()
    for _ in range(40):
        population.learner()
    # The course, its modules, its quizzes, the counts, the page: whatever the number of learners.
    assert statements() == few <= 5, few


def test_the_page_shows_one_page_and_the_counts_for_all(client, db, login):
    expected = _listed(db, login, 6, 60)
    page = client.get("/instructor/courses/demo-course/learners?page=2").get_data(as_text=True)
    assert f"<dt>Enrolled</dt><dd>{len(expected)}</dd>" in page
    assert "Page 2 of 2" in page and 'rel="prev"' in page and 'rel="next"' not in page
    last = client.get("/instructor/courses/demo-course/learners?page=999").get_data(as_text=True)
    assert "Page 2 of 2" in last  # past the end: the last page
    stuck = sum(r.stuck for r in expected)
    only = client.get("/instructor/courses/demo-course/learners?stuck=1").get_data(as_text=True)
    assert f"<h2>{stuck} learner{'s' if stuck != 1 else ''}</h2>" in only


def test_the_list_finds_learners_by_a_part_of_their_name(client, db, login):
    expected = _listed(db, login, 6, 12)
    names = {u.id: u.full_name.lower() for u in db.scalars(select(User))}
    url = "/instructor/courses/demo-course/learners"
    anas = sum(1 for r in expected if "ana" in names[r.user_id])
    found = client.get(url, query_string={"name": "  aNa  "}).text
    assert anas and f"<h2>{anas} learner{'s' if anas != 1 else ''}</h2>" in found
    assert "Ben Cole" not in found.split("<h2>")[1] and 'value="aNa"' in found
    assert "<h2>0 learners</h2>" in client.get(url, query_string={"name": "%"}).text  # a wildcard is a character
    offered = re.findall(r'<option value="([a-z0-9-]+)"', found.split('id="step"')[1].split("</select>")[0])
    assert len(offered) > 2 and offered == sorted(offered, key=oversight.step_order)  # in the course's order
    stuck_anas = sum(1 for r in expected if "ana" in names[r.user_id] and r.stuck)
    both = client.get(url, query_string={"name": "ana", "stuck": "1"}).text
    assert f"<h2>{stuck_anas} learner{'s' if stuck_anas != 1 else ''}</h2>" in both


def test_the_list_finds_a_learner_by_a_part_of_their_email_address(client, db, login):
    _listed(db, login, 7, 6)
    one = db.scalars(select(User).where(User.email.like("overview%"))).first()
    assert one is not None
    url = "/instructor/courses/demo-course/learners"
    found = client.get(url, query_string={"name": one.email.upper()}).text
    assert "<h2>1 learner</h2>" in found and one.email in found
    many = client.get(url, query_string={"name": "@example.org"}).text
    assert "<h2>6 learners</h2>" in many and "Name or email" in many


def test_the_list_downloads_as_csv_with_its_filters_every_page(client, db, login):
    expected = _listed(db, login, 8, 7)
    url = "/instructor/courses/demo-course/learners"
    assert f'href="{url}.csv"' in client.get(url).text
    response = client.get(f"{url}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert len(rows) == len(expected) and {r["Email"] for r in rows} >= {"overview1@example.org"}
    assert sum(r["Stuck"] == "yes" for r in rows) == sum(r.stuck for r in expected)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", r["Last activity (UTC)"]) for r in rows)
    stuck = list(csv.DictReader(io.StringIO(client.get(f"{url}.csv?stuck=1").data.decode("utf-8-sig"))))
    assert stuck and all(r["Stuck"] == "yes" for r in stuck)
    assert f'href="{url}.csv?stuck=1"' in client.get(f"{url}?stuck=1").text


def test_the_list_marks_a_deactivated_learner_and_one_who_became_staff(client, db, login):
    """The walk-through: a deactivated learner was listed like any other, with an address that no longer reaches
    anyone who can log in, and a learner made an instructor showed no sign of it."""
    gone, promoted, plain = (make_user(db, full_name=name) for name in ("Gone Away", "Now Staff", "Still Learning"))
    for person in (gone, promoted, plain):
        enrolled(db, person)
    gone.is_active, promoted.role = False, Role.INSTRUCTOR
    login(make_user(db, role=Role.INSTRUCTOR))
    db.commit()
    page = client.get("/instructor/courses/demo-course/learners").text
    rows = {name: page.split(name)[1].split("</td>")[0] for name in ("Gone Away", "Now Staff", "Still Learning")}
    assert "Deactivated: cannot log in" in rows["Gone Away"] and gone.email not in rows["Gone Away"]
    assert "Now an instructor" in rows["Now Staff"] and promoted.email in rows["Now Staff"]
    assert "badge" not in rows["Still Learning"] and plain.email in rows["Still Learning"]
