"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL), an app,
a session whose work is rolled back after each test, a client and a login helper."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import Engine, MetaData, text, update
from sqlalchemy.orm import Session

from kaptrain import create_app
from kaptrain.accounts import services as account_services
from kaptrain.accounts.models import User
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.db import Database, utcnow
from kaptrain.extensions import limiter
from kaptrain.migrate import upgrade
from tests.credentials.node_support import node  # noqa: F401 - a fixture: Node.js for the verifier tests
from tests.redis_support import TEST_KEY_DIR, redis_database
from tests.smtp_support import Inbox, start_smtp

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_MODULES = FIXTURES / "content" / "modules"
FIXTURE_QUIZZES = FIXTURES / "content" / "quizzes"
PASSWORD = "correct horse battery staple"


def reset_database(engine: Engine) -> None:
    """Drop every table (including Alembic's) so that migrations run from nothing."""
    meta = MetaData()
    meta.reflect(bind=engine)
    # Modules and their revisions point at each other, so there is no order to drop them in: drop each table
    # regardless (CASCADE on PostgreSQL; foreign keys off on SQLite).
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for name in meta.tables:
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
            # The trigger functions of migration 0011 outlive their tables.
            functions = conn.scalars(text("SELECT proname FROM pg_proc WHERE proname LIKE 'pages\\_%'")).all()
            for function in functions:
                conn.execute(text(f'DROP FUNCTION IF EXISTS "{function}"() CASCADE'))
        else:
            conn.execute(text("PRAGMA foreign_keys = OFF"))
            for name in meta.tables:
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            conn.execute(text("PRAGMA foreign_keys = ON"))


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """argon2's production cost (64 MiB, t=3) would make the suite slow; tests use a cheap one."""
    original = account_services._hasher
    account_services._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    account_services._hasher = original


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """TEST_DATABASE_URL when set (CI sets it to a fresh PostgreSQL database), else a temp SQLite file."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


def make_test_app(database_url: str, **extra: object) -> Flask:
    """An app configured for tests (CSRF, rate limits and the review of large claims off unless a test turns them
    on)."""
    config = {
        "ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        # Factories complete the course in no measured time; tests/certificates/test_claim_review.py turns it on.
        "CLAIM_REVIEW_FACTOR": 0,
        "MODULES_DIR": str(FIXTURE_MODULES),
        "QUIZZES_DIR": str(FIXTURE_QUIZZES),
        "CREDENTIAL_KEY_DIR": TEST_KEY_DIR,
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture
def extra_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build extra apps with their own settings; their connections are closed afterwards."""
    made: list[Flask] = []

    def _make(**settings: object) -> Flask:
        made.append(make_test_app(database_url, **settings))
        return made[-1]

    yield _make
    for application in made:
        application.extensions["kaptrain.db"].engine.dispose()
    if any(application.config["RATELIMIT_ENABLED"] for application in made):
        # Flask-Limiter's one Limiter keeps the last app's switch and its counts: later tests start unlimited.
        limiter.enabled = False
        limiter.reset()


def load_fixture_course(application: Flask) -> None:
    """Migrate the app's (empty) database and import the fixture course, committed."""
    database: Database = application.extensions["kaptrain.db"]
    upgrade(database.engine)
    session = database.new_session()
    import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
    session.commit()
    session.close()


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    """One app for the session, on a database migrated from empty with the fixture course loaded."""
    application = make_test_app(database_url)
    database: Database = application.extensions["kaptrain.db"]
    reset_database(database.engine)
    load_fixture_course(application)
    yield application
    database.engine.dispose()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test; views share it."""
    database: Database = app.extensions["kaptrain.db"]
    connection = database.engine.connect()
    transaction = connection.begin()
    if connection.dialect.name == "postgresql":
        # The page-version triggers wait for COMMIT, which a test's transaction never reaches: here they run at once.
        connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    database.bind = connection
    pages = app.extensions.get("kaptrain.pages")
    if pages is not None:
        pages.clear()  # rolling back the last test took the page versions back with it (kaptrain.pagecache)
    session = database.new_session()
    # No app context is held here: each request and CLI call pushes its own, as in production.
    yield session
    session.close()
    transaction.rollback()
    connection.close()
    database.bind = database.engine


@pytest.fixture
def client(app: Flask, db: Session) -> FlaskClient:
    """A test client whose requests run inside the test's transaction."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask, db: Session) -> FlaskCliRunner:
    """A CLI runner whose commands run inside the test's transaction."""
    return app.test_cli_runner()


def sign_in(client: FlaskClient, db: Session, user: object, password: str = PASSWORD) -> object:
    """Log a test client in as a user through the real login: the password, then the code when the account
    has two-factor sign-in.

    Instructors and administrators must have two-factor sign-in, so one who has none gets it here, as if
    enrolled long before the test (set on the row, so the test's audit log stays its own). Several logins in
    one test can fall in the same 30-second step, which the replay rule refuses; the step last used is
    cleared before each login (the rule itself is tested in tests/accounts/test_two_factor.py)."""
    account = db.get(User, user.id)  # type: ignore[attr-defined]
    assert account is not None
    if account.must_use_two_factor and not account.has_two_factor:
        account.totp_secret = pyotp.random_base32()
        account.totp_enabled_at = utcnow()
    if account.has_two_factor:
        db.execute(update(User).where(User.id == account.id).values(totp_last_counter=None))
    db.commit()
    response = client.post("/login", data={"email": account.email, "password": password})
    assert response.status_code == 302, response.data
    if response.location.startswith("/login/code"):  # not when this client is logged in already
        assert account.totp_secret is not None
        response = client.post(response.location, data={"code": pyotp.TOTP(account.totp_secret).now()})
        assert response.status_code == 302, response.data
    return user


@pytest.fixture
def login(client: FlaskClient, db: Session) -> Callable[..., object]:
    """Log the test client in as a user (with the second step for staff; see sign_in)."""

    def _login(user: object, password: str = PASSWORD) -> object:
        return sign_in(client, db, user, password)

    return _login


@pytest.fixture
def learner(db: Session, login: Callable[..., object]) -> object:
    """A logged-in learner enrolled in the fixture course with its disclosures acknowledged."""
    from tests.factories import enrolled, make_user  # noqa: PLC0415 - factories import this module

    user = make_user(db)
    enrolled(db, user)
    db.commit()
    return login(user)


@pytest.fixture
def csrf_on(app: Flask) -> Iterator[None]:
    """Turn CSRF protection on for one test."""
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for files a test writes."""
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free loopback port (no TLS, no auth), and what it received."""
    inbox = Inbox()
    controller = start_smtp(inbox)
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def inbox(app: Flask, smtp_server: tuple[Inbox, int]) -> Iterator[Inbox]:
    """The session app sends its mail to a real SMTP server on loopback for this test; what it received."""
    received, port = smtp_server
    saved = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
    yield received
    app.config.update(saved)


@pytest.fixture
def redis_db() -> Iterator[Redis]:
    """The test Redis database (tests/redis_support.py), flushed before and after; skipped when Redis is down."""
    yield from redis_database()
