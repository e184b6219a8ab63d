"""Configuration, database behaviour, migrations, security headers, CSRF and error pages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from flask import Flask, session
from sqlalchemy import func, select, text

from kaptrain.accounts import sealing
from kaptrain.accounts.models import Role, User
from kaptrain.config import LEGACY_DEV_SECRET, ConfigError, load_config
from kaptrain.courses.models import Enrolment
from kaptrain.db import get_session
from kaptrain.migrate import pending_model_changes
from tests.conftest import make_test_app
from tests.factories import make_user


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigError, match="KAPTRAIN_SECRET_KEY is not set"):
        load_config(environ={"KAPTRAIN_ENV": "production"})


def test_without_a_secret_key_each_installation_makes_its_own(tmp_path: Path) -> None:
    key_file = tmp_path / "instance" / "secret_key"
    first = load_config(environ={"KAPTRAIN_SECRET_KEY_FILE": str(key_file)})["SECRET_KEY"]
    assert len(first) == 64 and first != LEGACY_DEV_SECRET
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_config(environ={"KAPTRAIN_SECRET_KEY_FILE": str(key_file)})["SECRET_KEY"] == first  # kept
    other = load_config(environ={"KAPTRAIN_SECRET_KEY_FILE": str(tmp_path / "other")})["SECRET_KEY"]
    assert other != first
    assert [p.name for p in key_file.parent.iterdir()] == ["secret_key"]  # no temporary file left behind
    key_file.write_text("\n")
    with pytest.raises(ConfigError, match=f"{key_file}: the secret key in this file is empty or too short"):
        load_config(environ={"KAPTRAIN_SECRET_KEY_FILE": str(key_file)})
    # A key file others may write, or a link to one, could be someone else's: refused, as ssh refuses such keys.
    key_file.write_text("k" * 64)
    key_file.chmod(0o666)
    with pytest.raises(ConfigError, match="must be a plain file owned by this user and writable by no one else"):
        load_config(environ={"KAPTRAIN_SECRET_KEY_FILE": str(key_file)})
    key_file.chmod(0o600)
    link = tmp_path / "linked_key"
    link.symlink_to(key_file)
    with pytest.raises(ConfigError, match="must be a plain file"):
        load_config(environ={"KAPTRAIN_SECRET_KEY_FILE": str(link)})


def test_a_session_signed_with_the_old_development_key_is_refused(database_url: str, tmp_path: Path) -> None:
    app = make_test_app(database_url, SECRET_KEY=None, SECRET_KEY_FILE=str(tmp_path / "secret_key"))
    try:
        forger = Flask("forger")
        forger.secret_key = LEGACY_DEV_SECRET
        serializer = forger.session_interface.get_signing_serializer(forger)  # type: ignore[attr-defined]
        forged = serializer.dumps({"_user_id": "1:1", "_fresh": True})
        with app.test_request_context("/", headers={"Cookie": f"session={forged}"}):
            assert dict(session) == {}
        # Two-factor secrets sealed under the old key on a development database still open, and are sealed again.
        keys = sealing.keys_of(app.extensions["kaptrain.db"].engine.dialect)
        assert keys is not None and keys[0] == app.secret_key and LEGACY_DEV_SECRET in keys[1:]
        old = sealing.seal("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", (LEGACY_DEV_SECRET,))
        assert sealing.unseal(old, keys) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    finally:
        app.extensions["kaptrain.db"].engine.dispose()


def test_settings_come_from_kaptrain_environment_variables():
    cfg = load_config(
        environ={
            "KAPTRAIN_ENV": "production",
            "KAPTRAIN_SECRET_KEY": "s" * 40,
            "KAPTRAIN_DATABASE_URL": "postgresql+psycopg://db/kaptrain",
            "KAPTRAIN_TRUSTED_PROXIES": "1",
            "KAPTRAIN_RATELIMIT_ENABLED": "false",
            "KAPTRAIN_SECRET_KEY_FALLBACKS": "o" * 40 + " , " + "p" * 40 + ",",
            "KAPTRAIN_PREVIOUS_BASE_URLS": "https://old.example.org, http://older.example.org/",
        }
    )
    assert cfg["PREVIOUS_BASE_URLS"] == ["https://old.example.org", "http://older.example.org/"]
    assert cfg["DATABASE_URL"] == "postgresql+psycopg://db/kaptrain"
    assert cfg["SECRET_KEY_FALLBACKS"] == ["o" * 40, "p" * 40] and load_config(environ={})["SECRET_KEY_FALLBACKS"] == []
    assert cfg["TRUSTED_PROXIES"] == 1 and cfg["RATELIMIT_ENABLED"] is False
    assert cfg["SESSION_COOKIE_SECURE"] is True and cfg["SESSION_COOKIE_HTTPONLY"] is True
    assert cfg["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert load_config(environ={})["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("YES", True), (" On ", True), ("true", True), ("0", False), ("No", False), ("off", False)],
)
def test_a_boolean_setting_accepts_the_usual_spellings(raw: str, expected: bool) -> None:
    assert load_config(environ={"KAPTRAIN_RATELIMIT_ENABLED": raw})["RATELIMIT_ENABLED"] is expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # A typo must stop the start, not quietly switch every login and verification limit off.
        ("KAPTRAIN_RATELIMIT_ENABLED", "flase", "KAPTRAIN_RATELIMIT_ENABLED must be true or false .*'flase'"),
        ("KAPTRAIN_RATELIMIT_ENABLED", "", "KAPTRAIN_RATELIMIT_ENABLED must be true or false .*''"),
        ("KAPTRAIN_SESSION_HOURS", "12h", "KAPTRAIN_SESSION_HOURS must be a whole number, not '12h'"),
        ("KAPTRAIN_SMTP_PORT", "", "KAPTRAIN_SMTP_PORT must be a whole number, not ''"),
        ("KAPTRAIN_CERTIFICATE_PAGE_SIZE", "letter", "KAPTRAIN_CERTIFICATE_PAGE_SIZE must be one of A4, Letter"),
        ("KAPTRAIN_SMTP_SECURITY", "tls", "KAPTRAIN_SMTP_SECURITY must be one of starttls, ssl, none, not 'tls'"),
    ],
)
def test_a_setting_that_does_not_parse_is_refused_at_start(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ={variable: value})


def test_a_setting_out_of_its_choices_is_refused_from_a_mapping_too() -> None:
    with pytest.raises(ConfigError, match="KAPTRAIN_CERTIFICATE_PAGE_SIZE must be one of A4, Letter, not 'B5'"):
        load_config({"CERTIFICATE_PAGE_SIZE": "B5"}, environ={})


def test_models_and_migrations_agree(app):
    assert pending_model_changes(app.extensions["kaptrain.db"].engine) == []


def test_sqlite_runs_with_foreign_keys_and_wal(app, db):
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite pragmas apply only to SQLite")
    assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert db.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_security_headers_on_pages_and_errors(client):
    for url in ("/", "/no-such-page"):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_session_cookie_flags(client, db):
    user = make_user(db)
    db.commit()
    response = client.post("/login", data={"email": user.email, "password": "correct horse battery staple"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/register", {"email": "x@example.org"}),
        ("/login", {"email": "x@example.org", "password": "y"}),
        ("/logout", {}),
        ("/courses/demo-course/enrol", {}),
        ("/courses/demo-course/quizzes/alpha-quiz/start", {}),
    ],
)
def test_posts_without_a_csrf_token_are_refused(client, db, csrf_on, url, data):
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert b"The form expired or was sent from another site" in response.data


def test_csrf_protects_a_logged_in_action(app, db, csrf_on):
    user = make_user(db)
    db.commit()
    client = app.test_client()
    login_page = client.get("/login").data.decode()
    token = login_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert (
        client.post(
            "/login", data={"email": user.email, "password": "correct horse battery staple", "csrf_token": token}
        ).status_code
        == 302
    )
    forged = client.post("/courses/demo-course/enrol", data={})
    assert forged.status_code == 400
    assert db.scalar(select(func.count()).select_from(Enrolment)) == 0


def test_unexpected_errors_show_a_plain_500_page_without_a_traceback(extra_app):
    app = extra_app(PROPAGATE_EXCEPTIONS=False)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.data
    assert b"secret internals" not in response.data and b"Traceback" not in response.data


def test_login_is_rate_limited(extra_app):
    app = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [
        client.post("/login", data={"email": "a@example.org", "password": "wrong password!"}).status_code
        for _ in range(4)
    ]
    assert codes[:3] == [422, 422, 422] and codes[3] == 429
    assert b"Too many attempts" in client.post("/login", data={}).data


def test_login_limit_also_holds_per_account_across_addresses(extra_app):
    app = extra_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    codes = []
    for i in range(4):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i + 1}"
        codes.append(client.post("/login", data={"email": "b@example.org", "password": "wrong password!"}).status_code)
    assert codes == [422, 422, 422, 429]


def test_a_failed_flush_still_gets_the_full_500_page_with_security_headers(app, extra_app):
    # No session protection, so the error page's current_user looks the user up in the failed session.
    broken = extra_app(PROPAGATE_EXCEPTIONS=False, SESSION_PROTECTION=None)

    @broken.route("/flush-fails")
    def flush_fails() -> str:
        session = get_session()
        session.add(User(email="nobody@example.org", full_name=None, profession="x", password_hash="x"))
        session.flush()  # NOT NULL violation
        return "unreachable"

    client = broken.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = "1:1"
    response = client.get("/flush-fails")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.data
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("url", ["/courses/%00", "/courses/demo%0D%0Acourse", "/login?next=/%00", "/?a%00=1"])
def test_addresses_with_control_characters_get_a_plain_400(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert b"invisible control characters" in response.data
    assert "Content-Security-Policy" in response.headers


def test_a_key_directory_others_can_read_stops_the_app_at_start(tmp_path, database_url):
    """Otherwise the site runs and fails the first certificate a learner asks for, at their last step."""
    keys = tmp_path / "keys"
    make_test_app(database_url, CREDENTIAL_KEY_DIR=str(keys)).extensions["kaptrain.db"].engine.dispose()  # none yet
    keys.mkdir(mode=0o755)
    keys.chmod(0o755)
    with pytest.raises(ConfigError, match=r"KAPTRAIN_CREDENTIAL_KEY_DIR: .*chmod 700"):
        make_test_app(database_url, CREDENTIAL_KEY_DIR=str(keys))
    keys.chmod(0o700)
    (keys / "keyring.json").write_text("{}")
    (keys / "keyring.json").chmod(0o644)
    with pytest.raises(ConfigError, match=r"keyring.json is readable by others .*chmod 600"):
        make_test_app(database_url, CREDENTIAL_KEY_DIR=str(keys))
    (keys / "keyring.json").chmod(0o600)
    make_test_app(database_url, CREDENTIAL_KEY_DIR=str(keys)).extensions["kaptrain.db"].engine.dispose()


def test_a_form_part_whose_name_cannot_be_read_is_refused_in_words(client, db, login):
    """The fuzz tests sent a multipart part named by a bare carriage return: Werkzeug files it under None, and the
    module editor's list of references failed with a 500."""
    login(make_user(db, role=Role.INSTRUCTOR))
    body = b'--B\r\nContent-Disposition: form-data; name="\r"; filename="image.png"\r\n\r\n\r\n--B--\r\n'
    answer = client.post(
        "/author/courses/demo-course/modules/alpha", data=body, content_type="multipart/form-data; boundary=B"
    )
    assert answer.status_code == 400 and "could not be read as the form" in answer.text
