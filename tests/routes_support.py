"""Support for the route-by-route authorisation walk (tests/test_route_authorization.py): the five actors, what an
answer is expected to be, the objects the URLs point at, and requests that each leave the database as they found it.

Every request runs inside a savepoint of the test's transaction that is rolled back as soon as its answer is read,
and with a copy of its actor's signed-in cookie, so a POST that logs out, revokes or deletes changes nothing that
the next request sees."""

from __future__ import annotations

import enum
import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from PIL import Image
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from kaptrain.accounts import ownership, tokens
from kaptrain.accounts.models import Role, TokenPurpose, User
from kaptrain.authoring import module_editor, uploads
from kaptrain.certificates import signing
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.content import revisions
from kaptrain.content.models import Module
from kaptrain.courses import services as courses
from kaptrain.db import Base, Database, utcnow
from kaptrain.quizzes import accommodations
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Attempt, AttemptItem, AttemptStatus, Quiz
from tests.conftest import sign_in
from tests.factories import certified, correct_answers, enrolled, make_user, quiz, start

SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})  # answered by Werkzeug for every rule, never by a view


class Actor(enum.StrEnum):
    """Who asks: nobody signed in, the owner of the objects in the URLs, another learner, and the two staff roles."""

    ANONYMOUS = "anonymous"
    LEARNER = "learner"
    OTHER_LEARNER = "other_learner"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"


@dataclass(frozen=True)
class Redirect:
    """A 302 to this path, the query string ignored (the login page's ?next= varies with the URL asked for).

    The path may name the world's values ("/attempts/{attempt_id}"), and "*" stands for an id made by the request
    itself (a re-issued certificate's)."""

    path: str

    def __str__(self) -> str:
        return f"302 to {self.path}"


Expected = int | Redirect
Row = Mapping[Actor, Expected]


def each(anonymous: Expected, learner: Expected, other_learner: Expected, instructor: Expected, admin: Expected) -> Row:
    """The expected answer for each actor, in the order anonymous, learner, other learner, instructor, admin."""
    return dict(zip(Actor, (anonymous, learner, other_learner, instructor, admin), strict=True))


def endpoint_pairs(app: Flask) -> set[tuple[str, str]]:
    """Every (endpoint, method) the app answers with a view of its own: HEAD and OPTIONS left out."""
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in SKIPPED_METHODS
    }


def table_problems(app: Flask, table: Mapping[tuple[str, str], Row]) -> list[str]:
    """What is wrong with the table against the app's URL map: routes it lacks, entries for routes that are gone,
    and entries that do not name all five actors."""
    routes = endpoint_pairs(app)
    problems = [f"no entry for {e} {m}: add it to TABLE" for e, m in sorted(routes - set(table))]
    problems += [f"stale entry for {e} {m}: the app has no such route" for e, m in sorted(set(table) - routes)]
    problems += [
        f"entry for {e} {m} lacks {', '.join(a for a in Actor if a not in row)}"
        for (e, m), row in sorted(table.items())
        if set(row) != set(Actor)
    ]
    return problems


# ---------------------------------------------------------------- the objects the URLs point at


@dataclass
class World:
    """The people and the learner's objects; `values` fills URL parameters by name."""

    users: dict[Actor, User]
    values: dict[str, Any] = field(default_factory=dict)


def tiny_png() -> bytes:
    """A real 8x8 PNG image."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


def open_attempt_after_pass(session: Session, user: User, q: Quiz) -> Attempt:
    """An open attempt at a quiz the learner has already passed, with every published question drawn.

    The app opens no attempt after a pass (start_attempt refuses), but the attempt pages need an open attempt of
    the same learner who holds the certificate, so the rows start_attempt would write are written here."""
    number = 1 + max(a.number for a in quizzes.attempts_in_course(session, user.id, q.course_id) if a.quiz_id == q.id)
    attempt = Attempt(
        user_id=user.id,
        quiz_id=q.id,
        number=number,
        started_at=utcnow(),
        passing_score=q.passing_score,
        settings_id=q.published_revision_id,
    )
    session.add(attempt)
    session.flush()
    for position, (_question, revision) in enumerate(revisions.published_questions(session, q.id)[: q.draw]):
        session.add(
            AttemptItem(
                attempt_id=attempt.id,
                position=position,
                question_revision_id=revision.id,
                option_order=[o["id"] for o in revision.options],
            )
        )
    session.flush()
    session.refresh(attempt)
    assert attempt.status == AttemptStatus.OPEN
    return attempt


def _failed_attempt(session: Session, user: User, q: Quiz) -> Attempt:
    """Open the quiz's module, start an attempt and answer it all wrongly: a graded, failed attempt."""
    assert q.module is not None
    courses.open_module(session, user.id, q.module)
    attempt = start(session, user, q)
    return quizzes.submit_attempt(session, attempt, correct_answers(attempt, right=False))


def _module_draft(session: Session, module: Module, author: User) -> None:
    """A draft of the module in the editor, waiting to be published."""
    data = module_editor.published_data(session, module)
    current = revisions.published(session, module)
    assert current is not None
    module_editor.save(session, module, {**data, "title": data["title"] + " (revised)"}, author, (None, current.number))


def build_world(app: Flask, session: Session, upload_dir: Path) -> World:
    """The five actors and the learner's objects, committed to the test's transaction (a savepoint).

    The learner failed the alpha quiz once, then passed every quiz, evaluated and attested: an issued certificate
    with its signed credential. They also have an open attempt, an accommodation, a password-reset link and a
    pending change of address. An instructor has a module draft in the editor and an uploaded image."""
    learner = make_user(session, full_name="Lee Owner")
    other = make_user(session, full_name="Oli Other")
    instructor = make_user(session, Role.INSTRUCTOR, full_name="Ines Instructor")
    admin = make_user(session, Role.ADMIN, full_name="Ada Admin")
    enrolled(session, learner)
    enrolled(session, other)
    alpha = quiz(session, "alpha-quiz")
    with app.app_context():  # issuing reads the app's settings
        failed = _failed_attempt(session, learner, alpha)
        certificate: Certificate = certified(session, learner)
        session.flush()
        session.refresh(certificate)
        assert certificate.status == CertificateStatus.ACTIVE and certificate.credential is not None, certificate
        in_progress = open_attempt_after_pass(session, learner, alpha)
        grant = accommodations.grant_accommodation(
            session, learner.id, quiz(session, "beta-quiz"), 15, 0, "Reads with a screen reader.", admin.id
        )
        reset = tokens.issue(session, learner, TokenPurpose.RESET_PASSWORD, learner.email, ownership.reset_lifetime())
        change = tokens.issue(
            session, learner, TokenPurpose.CHANGE_EMAIL, "lee.new@example.org", ownership.confirm_lifetime()
        )
        assert alpha.module is not None
        _module_draft(session, alpha.module, instructor)
        upload = uploads.store_upload(session, tiny_png(), "diagram.png", instructor, upload_dir, 2_000_000).upload
        session.commit()  # in the app context: the jobs it queued (the certificate's PDF and credential) run now
    values: dict[str, Any] = {
        "slug": "demo-course",
        "course_slug": "demo-course",
        "module_slug": "alpha",
        "quiz_slug": "alpha-quiz",
        "attempt_id": in_progress.id,
        "graded_attempt_id": failed.id,
        "certificate_id": certificate.id,
        "code": certificate.code,
        "number": 1,  # the first revision of a module, question, case or quiz's rules (restore routes)
        "status_list": signing.status_position(certificate)[0],
        "acc_id": grant.id,
        "user_id": learner.id,
        "reset_token": reset,
        "confirm_token": change,
        "question_key": "alpha-q1",
        "case_key": "case-a",
        "name": upload.stored_name,
        "filename": "favicon.svg",
    }
    users = {
        Actor.LEARNER: learner,
        Actor.OTHER_LEARNER: other,
        Actor.INSTRUCTOR: instructor,
        Actor.ADMIN: admin,
    }
    return World(users, values)


def build_url(app: Flask, rule: Rule, world: World, sources: Mapping[str, str]) -> str:
    """The rule's URL with each parameter taken from the world: by its own name, or by the value named in
    `sources` (e.g. "key" -> "question_key")."""
    missing = [name for name in rule.arguments if sources.get(name, name) not in world.values]
    assert not missing, f"{rule.endpoint}: no value for the URL parameter(s) {missing}; add them to World.values"
    args = {name: world.values[sources.get(name, name)] for name in rule.arguments}
    with app.test_request_context():
        return rule.build(args, append_unknown=False)[1]  # type: ignore[index]


# ---------------------------------------------------------------- requests that leave no trace


@dataclass(frozen=True)
class Answer:
    """What a request got: its status and where it redirects (path only)."""

    status: int
    location: str | None

    def matches(self, expected: Expected, values: Mapping[str, Any]) -> bool:
        """Whether this is the expected answer (a redirect's path filled from the world's values)."""
        if isinstance(expected, Redirect):
            path = expected.path.format(**values)
            return self.status == 302 and self.location is not None and fnmatchcase(self.location, path)
        return self.status == expected

    def __str__(self) -> str:
        return f"{self.status} to {self.location}" if self.location else str(self.status)


class Visitor:
    """Makes requests as each actor, each in a fresh client holding a copy of the actor's signed-in cookie and
    inside a savepoint rolled back afterwards."""

    def __init__(self, app: Flask, session: Session, world: World, actors: Iterable[Actor] = Actor) -> None:
        self.app = app
        database: Database = app.extensions["kaptrain.db"]
        assert isinstance(database.bind, Connection), "use the db fixture: requests must share its transaction"
        self.connection = database.bind
        self.cookies: dict[Actor, str | None] = {Actor.ANONYMOUS: None}
        for actor in actors:
            if actor == Actor.ANONYMOUS:
                continue
            account = world.users[actor]
            client = app.test_client()
            sign_in(client, session, account)
            cookie = client.get_cookie("session")
            assert cookie is not None, f"{actor} has no session cookie after signing in"
            self.cookies[actor] = cookie.value

    @contextmanager
    def _untouched(self) -> Iterator[None]:
        savepoint = self.connection.begin_nested()
        try:
            yield
        finally:
            savepoint.rollback()

    def response(self, actor: Actor, method: str, url: str, keep: bool = False, **kwargs: Any) -> TestResponse:
        """Ask as the actor (unsafe methods send an empty form unless data is given), the body read and closed.

        What the request writes is rolled back at once, unless keep is true (it then stays in the test's
        transaction, for a test that checks that nothing was written)."""
        client = self.app.test_client()
        cookie = self.cookies[actor]
        if cookie is not None:
            client.set_cookie("session", cookie)
        if method not in ("GET", "HEAD"):
            kwargs.setdefault("data", {})
        with nullcontext() if keep else self._untouched():
            response = client.open(url, method=method, **kwargs)
            response.get_data()  # a streamed body (the CSV exports) runs its queries now, inside the savepoint
            response.close()
        return response

    def request(self, actor: Actor, method: str, url: str, **kwargs: Any) -> Answer:
        """Ask as the actor; nothing the request does is kept. The answer: status, and a redirect's path."""
        response = self.response(actor, method, url, **kwargs)
        location = urlsplit(response.location).path if response.status_code in (301, 302, 303) else None
        return Answer(response.status_code, location)


def snapshot(session: Session) -> dict[str, list[str]]:
    """Every row of every table the app maps, as text: equal snapshots mean nothing was written."""
    connection = session.connection()
    return {
        table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
        for table in Base.metadata.sorted_tables
    }
