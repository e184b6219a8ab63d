"""The users CLI."""

from __future__ import annotations

from sqlalchemy import select

from kaptrain.accounts.models import Role, User


def test_users_create_admin_with_password_stdin(runner, db):
    result = runner.invoke(
        args=["users", "create", "boss@example.org", "--role", "admin", "--name", "Pat Boss", "--password-stdin"],
        input="a long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.org" in result.output
    user = db.scalar(select(User).where(User.email == "boss@example.org"))
    assert user.role == Role.ADMIN and user.password_hash.startswith("$argon2id$")


def test_users_create_prompts_for_password(runner, db):
    result = runner.invoke(
        args=["users", "create", "p@example.org", "--name", "P"], input="prompted password 1\nprompted password 1\n"
    )
    assert result.exit_code == 0, result.output
    assert db.scalar(select(User).where(User.email == "p@example.org")) is not None


def test_users_create_duplicate_and_weak_password_say_which_field(runner, db):
    ok = runner.invoke(
        args=["users", "create", "dup@example.org", "--name", "D", "--password-stdin"], input="a long admin password\n"
    )
    assert ok.exit_code == 0
    dup = runner.invoke(
        args=["users", "create", "dup@example.org", "--name", "D", "--password-stdin"], input="a long admin password\n"
    )
    assert dup.exit_code == 1 and "email: An account with this email already exists" in dup.output
    weak = runner.invoke(args=["users", "create", "w@example.org", "--name", "W", "--password-stdin"], input="short\n")
    assert weak.exit_code == 1 and "password: Use at least 12 characters" in weak.output
    assert db.scalar(select(User).where(User.email == "w@example.org")) is None


def test_set_role_and_demo_accounts_are_idempotent(runner, db):
    first = runner.invoke(args=["demo", "create"])
    second = runner.invoke(args=["demo", "create"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert "(created)" in first.output and "(created)" not in second.output
    emails = db.scalars(select(User.email).where(User.email.like("%@example.com"))).all()
    assert sorted(emails) == ["admin@example.com", "instructor@example.com", "learner@example.com"]
    result = runner.invoke(args=["users", "set-role", "learner@example.com", "instructor"])
    assert result.exit_code == 0
    assert db.scalar(select(User.role).where(User.email == "learner@example.com")) == Role.INSTRUCTOR
    missing = runner.invoke(args=["users", "set-role", "ghost@example.com", "admin"])
    assert missing.exit_code == 1 and "No account with email ghost@example.com" in missing.output


def test_demo_accounts_are_refused_in_production(app, runner, db):
    app.config["ENV"] = "production"
    try:
        result = runner.invoke(args=["demo", "create"])
    finally:
        app.config["ENV"] = "testing"
    assert result.exit_code == 1 and "never created in production" in result.output
    assert db.scalar(select(User).where(User.email == "admin@example.com")) is None
