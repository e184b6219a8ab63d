"""Real objects for the route fuzz tests: people of every role signed in on their own clients, and the course's
modules, quizzes, attempts, accommodations, certificates and emailed links, so that a route's URL can name things
that exist (one's own, someone else's) as well as things that do not.

A probe request finds the field names a route reads: it records every key the view looks up in the form or query
string and every form it builds (with the names of their nested rows), so no list of fields is kept by hand."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyotp
from flask import Flask, Request
from flask.testing import FlaskClient
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.datastructures import ImmutableMultiDict
from wtforms import Field, FieldList, FormField

from kaptrain.accounts import tokens, twofactor
from kaptrain.accounts.models import Role, TokenPurpose, User
from kaptrain.certificates import services as certificates
from kaptrain.content import revisions
from kaptrain.courses import services as courses
from kaptrain.db import utcnow
from kaptrain.quizzes import services as quiz_services
from tests.conftest import PASSWORD, sign_in
from tests.factories import certified, complete_learning, enrolled, evaluation_answers, make_user, quiz, start
from tests.fuzz.discovery import Route

# Who may be sending: nobody, a learner, staff, or someone who gave a staff password and now owes the code.
ANONYMOUS, LEARNER, INSTRUCTOR, ADMIN, PENDING = "anonymous", "learner", "instructor", "admin", "pending"
# Learners further along: two-factor sign-in on; the course's learning done; and its evaluation sent too.
TWO_FACTOR, FINISHED, EVALUATED = "learner with two-factor sign-in", "learner who finished", "learner who evaluated"
# Routes whose form only appears in a state beyond a role: the code step of a login needs the password step first,
# recovery codes need two-factor sign-in on, the evaluation needs the learning done, the attestation the evaluation.
# test_every_form_is_reached_by_a_fuzzed_route says when a new form needs an entry here.
STATE_NEEDED = {
    "accounts.login_code": PENDING,
    "accounts.recovery_codes": TWO_FACTOR,
    "accounts.disable_two_factor": TWO_FACTOR,
    "certificates.evaluation": FINISHED,
    "certificates.attestation": EVALUATED,
}
# Fields no form has, sent to see that none of them is taken up (a forged role above all).
FORGED_NAMES = (
    "role",
    "is_admin",
    "is_staff",
    "user_id",
    "id",
    "email_confirmed_at",
    "totp_secret",
    "session_version",
    "password_hash",
    "created_by_id",
    "next",
)


def allowed_identity(route: Route) -> str:
    """Who is meant to use the route: the role its view requires, a signed-in learner, or anyone."""
    if route.endpoint in STATE_NEEDED:
        return STATE_NEEDED[route.endpoint]
    if route.roles:
        return INSTRUCTOR if Role.INSTRUCTOR in route.roles else ADMIN
    return LEARNER if route.needs_login else ANONYMOUS


def identities(route: Route) -> list[str]:
    """The senders an example is drawn from: mostly the allowed one, and always anonymous and a learner."""
    allowed = allowed_identity(route)
    others = [i for i in (ANONYMOUS, LEARNER) if i != allowed]
    return [allowed, allowed, allowed, *others]


# ---------------------------------------------------------------- recording what a view reads

_read_keys: list[str] | None = None
_built_forms: list[FlaskForm] | None = None


class RecordingArgs(ImmutableMultiDict[str, Any]):
    """The request's form and query string, noting every key the view asks for."""

    def _note(self, key: object) -> None:
        if _read_keys is not None and isinstance(key, str):
            _read_keys.append(key)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:
        self._note(key)
        return super().get(key, default, type)

    def getlist(self, key: str, type: Any = None) -> list[Any]:
        self._note(key)
        return super().getlist(key, type)


@contextmanager
def recording() -> Iterator[tuple[list[str], list[FlaskForm]]]:
    """Record the keys read from every request's form or query string, and the forms built from them."""
    global _read_keys, _built_forms  # a probe runs one request at a time
    original_storage = Request.parameter_storage_class
    original_init = FlaskForm.__init__
    keys: list[str] = []
    forms: list[FlaskForm] = []

    def init(self: FlaskForm, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        submitted = kwargs.get("formdata", True) is not None and (not args or args[0] is not None)
        if submitted and _built_forms is not None:
            _built_forms.append(self)

    _read_keys, _built_forms = keys, forms
    Request.parameter_storage_class = RecordingArgs  # type: ignore[assignment]
    FlaskForm.__init__ = init  # type: ignore[method-assign]
    try:
        yield keys, forms
    finally:
        Request.parameter_storage_class = original_storage  # type: ignore[assignment]
        FlaskForm.__init__ = original_init  # type: ignore[method-assign]
        _read_keys, _built_forms = None, None


def field_names(fields: Any) -> set[str]:
    """Every name a form's fields read, rows of a list included (its first rows, by index)."""
    names: set[str] = set()
    for f in fields:
        if isinstance(f, FieldList):
            if not f.entries:
                f.append_entry()
            entry = f.entries[0]
            inner = field_names(entry) if isinstance(entry, FormField) else {entry.name}
            prefix = re.escape(f"{entry.name}")
            for i in range(3):
                names |= {re.sub(f"^{prefix}", f"{f.name}-{i}", n) for n in inner}
        elif isinstance(f, FormField):
            names |= field_names(f)
        elif isinstance(f, Field):
            names.add(f.name)
    return names


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """The people, their clients, and real values for URL parameters and form fields."""

    app: Flask
    db: Session
    users: dict[str, User]
    clients: dict[str, FlaskClient]
    url_values: dict[str, list[Any]] = field(default_factory=dict)
    field_values: list[str] = field(default_factory=list)
    extra_names: list[str] = field(default_factory=list)

    def client(self, identity: str) -> FlaskClient:
        """The client signed in as this identity (built on first use)."""
        if identity not in self.clients:
            client = self.app.test_client()
            if identity == PENDING:
                person = self.users[PENDING]
                sign_in(self.app.test_client(), self.db, person)  # gives the account its two-factor secret
                response = client.post("/login", data={"email": person.email, "password": PASSWORD})
                assert response.status_code == 302 and response.location.startswith("/login/code"), response.data
            elif identity != ANONYMOUS:
                sign_in(client, self.db, self.users[identity])
            self.clients[identity] = client
        return self.clients[identity]

    def values_for(self, route: Route, name: str) -> list[Any]:
        """Real values for one URL parameter of this route (the first is the one the allowed user owns)."""
        key = name
        if name == "slug" and "course_slug" in dict(route.params):
            key = "quiz_slug"  # /courses/<course_slug>/quizzes/<slug>
        elif name == "slug":
            key = "course_slug"
        elif name == "key" and "/cases/" in route.rule:
            key = "case_key"
        elif name == "key":
            key = "question_key"
        elif name == "token":
            key = "confirm_token" if route.rule.startswith("/confirm/") else "reset_token"
        values = self.url_values.get(key)
        assert values, f"the fuzz world has no real value for <{name}> of {route}: add one in tests/fuzz/world.py"
        return values


def build_world(app: Flask, db: Session, route: Route) -> World:
    """Make the people and the objects the route's URL can name, committed for the views to see."""
    learner = make_user(db)
    enrolled(db, learner)
    alpha = quiz(db, "alpha-quiz")
    assert alpha.module is not None
    courses.open_module(db, learner.id, alpha.module)  # the heartbeat and the quiz need the module opened
    other = make_user(db)
    enrolled(db, other)
    users = {
        LEARNER: learner,
        "other": other,
        INSTRUCTOR: make_user(db, role=Role.INSTRUCTOR),
        ADMIN: make_user(db, role=Role.ADMIN),
        PENDING: make_user(db, role=Role.ADMIN),
        "unconfirmed": make_user(db, confirmed=False),
    }
    world = World(app, db, users, {})
    params = dict(route.params)
    world.url_values.update(
        course_slug=["demo-course"],
        module_slug=["alpha", "beta", "gamma"],
        quiz_slug=["alpha-quiz", "beta-quiz", "demo-final"],
        question_key=["alpha-q1", "alpha-q2"],
        case_key=["case-a"],
        number=[1, 2],
        user_id=[other.id, learner.id, users[ADMIN].id, users[INSTRUCTOR].id],
    )
    if route.endpoint.startswith("authoring.") and "module_slug" in params:
        # A second revision of module alpha, so that its history has two to compare and one to restore.
        old = revisions.published(db, alpha.module)
        assert old is not None
        data = {**revisions.revision_data(revisions.MODULE, old), "title": "Module Alpha, revised"}
        revisions.publish(
            alpha.module,
            revisions.add_revision(
                db, alpha.module, revisions.revision_values(revisions.MODULE, data), users[INSTRUCTOR].id
            ),
        )
    if "attempt_id" in params:
        mine = start(db, learner, alpha)
        courses.open_module(db, other.id, alpha.module)
        theirs = start(db, other, alpha)
        world.url_values["attempt_id"] = [mine.id, theirs.id]
        world.extra_names += [f"q-{item.id}" for item in mine.items + theirs.items]
        world.field_values += [o["id"] for item in mine.items for o in item.revision.options]
    if "acc_id" in params:
        acc = quiz_services.grant_accommodation(db, learner.id, alpha, 10, 1, "Dyslexia", users[ADMIN].id)
        world.url_values["acc_id"] = [acc.id]
    if "token" in params:
        reset, confirm, *spent = _links(db, learner, users["unconfirmed"])
        world.url_values.update(reset_token=[reset, confirm, *spent], confirm_token=[confirm, reset, *spent])
    if allowed_identity(route) == TWO_FACTOR:
        users[TWO_FACTOR] = make_user(db)
        users[TWO_FACTOR].totp_secret = pyotp.random_base32()
        users[TWO_FACTOR].totp_enabled_at = utcnow()
        twofactor.new_recovery_codes(db, users[TWO_FACTOR])
    # Issuing reads the app's settings and renders the PDF; the emails it holds go out at the commit.
    with app.app_context():
        if "certificate_id" in params:
            world.url_values["certificate_id"] = [certified(db, other).id]
        if allowed_identity(route) in (FINISHED, EVALUATED):
            graduate = users[allowed_identity(route)] = make_user(db)
            enrolled(db, graduate)
            done = complete_learning(db, graduate)
            if allowed_identity(route) == EVALUATED:
                certificates.submit_evaluation(db, done, evaluation_answers(done.course))
        db.commit()  # a savepoint: the test's transaction still rolls everything back
    world.field_values += [str(v) for values in world.url_values.values() for v in values]
    world.field_values += [u.email for u in users.values()] + [str(alpha.id), "nobody@example.org"]
    return world


def _links(db: Session, learner: User, unconfirmed: User) -> list[str]:
    """Emailed links that work, and links that expired or were used already."""
    hour = dt.timedelta(hours=1)
    reset = tokens.issue(db, learner, TokenPurpose.RESET_PASSWORD, learner.email, hour)
    confirm = tokens.issue(db, unconfirmed, TokenPurpose.CONFIRM_EMAIL, unconfirmed.email, hour)
    expired = tokens.issue(db, unconfirmed, TokenPurpose.CHANGE_EMAIL, "new@example.org", -hour)
    used_secret = tokens.issue(db, learner, TokenPurpose.CONFIRM_EMAIL, learner.email, hour)
    used, _ = tokens.find(db, used_secret, (TokenPurpose.CONFIRM_EMAIL,))
    tokens.use(db, used)
    return [reset, confirm, expired, used_secret]
