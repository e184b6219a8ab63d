"""Two-factor secrets are sealed at rest (kaptrain.accounts.sealing): a copy of the database does not hold them,
sign-in still works, a secret stored plain or under an earlier key is sealed again at its next code, and a secret
no key opens asks for a recovery code instead of failing."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import text

from kaptrain.accounts import sealing, twofactor
from kaptrain.db import make_engine
from kaptrain.migrate import downgrade, upgrade
from tests.accounts.test_two_factor import enrol, next_step_code, password_step
from tests.conftest import PASSWORD
from tests.factories import make_user


@pytest.fixture
def lee(db, login):  # type: ignore[no-untyped-def]
    user = make_user(db, email="lee@example.org", full_name="Lee Learner")
    db.commit()
    return login(user)


def stored(db, user) -> str:  # type: ignore[no-untyped-def]
    """The column's value as a copy of the database holds it."""
    return str(db.execute(text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user.id}).scalar_one())


def signs_in(app, user, code: str) -> bool:  # type: ignore[no-untyped-def]
    return password_step(app, user).post("/login/code", data={"code": code}).status_code == 302


@pytest.fixture
def rotate(app, monkeypatch):  # type: ignore[no-untyped-def]
    """Give the site's engine other keys for the test: rotate(new, *fallbacks)."""
    dialect = app.extensions["kaptrain.db"].engine.dialect

    def _rotate(*keys: str) -> None:
        monkeypatch.setattr(dialect, "kaptrain_sealing_keys", keys)

    return _rotate


def test_the_database_holds_the_secret_sealed_and_codes_still_work(app, client, db, lee):
    secret, _codes = enrol(client, db, lee)
    raw = stored(db, lee)
    assert raw.startswith("s1.") and len(raw) <= 64
    assert secret not in raw and secret.lower() not in raw.lower()
    db.expire_all()
    assert db.get(type(lee), lee.id).totp_secret == secret  # the app reads it opened
    assert signs_in(app, lee, next_step_code(secret))
    assert stored(db, lee) == raw  # sealed under the current key already: not written again


def test_a_secret_stored_plain_still_works_and_is_sealed_at_its_next_code(app, client, db, lee):
    secret, _codes = enrol(client, db, lee)
    db.execute(text("UPDATE users SET totp_secret = :plain WHERE id = :id"), {"plain": secret, "id": lee.id})
    db.commit()
    assert signs_in(app, lee, next_step_code(secret))
    raw = stored(db, lee)
    assert raw.startswith("s1.") and secret not in raw


def test_after_a_key_rotation_the_fallback_opens_it_and_the_next_code_seals_it_again(app, client, db, lee, rotate):
    secret, _codes = enrol(client, db, lee)
    before = stored(db, lee)
    rotate("a-new-secret-key", "test-secret")
    assert signs_in(app, lee, next_step_code(secret))
    after = stored(db, lee)
    assert after != before and after.startswith("s1.")
    assert sealing.unseal(after, ("a-new-secret-key",)) == secret  # the old key is no longer needed
    assert sealing.unseal(after, ("test-secret",)) == after  # and no longer opens it


def test_a_secret_no_key_opens_asks_for_a_recovery_code(app, client, db, lee, rotate):
    secret, codes = enrol(client, db, lee)
    before = stored(db, lee)
    rotate("a-new-secret-key")  # the old key lost, not kept as a fallback
    browser = password_step(app, lee)
    refused = browser.post("/login/code", data={"code": next_step_code(secret)})
    assert refused.status_code == 422
    assert "secret key was changed" in refused.get_data(as_text=True)
    assert "recovery codes" in refused.get_data(as_text=True)
    assert stored(db, lee) == before  # nothing overwritten: the old key, found again, still opens it
    assert browser.post("/login/code", data={"code": codes[0]}).status_code == 302


def test_enrolment_replaces_a_pending_secret_no_key_opens(client, db, lee, rotate):
    client.get("/account/two-factor")
    pending = stored(db, lee)
    rotate("a-new-secret-key")
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    assert stored(db, lee) != pending
    db.expire_all()
    fresh = db.get(type(lee), lee.id).totp_secret
    assert not sealing.is_sealed(fresh) and pyotp.TOTP(fresh).now().isdigit()
    assert (
        client.post(
            "/account/two-factor", data={"current_password": PASSWORD, "code": pyotp.TOTP(fresh).now()}
        ).status_code
        == 200
    )


def test_sealing_keeps_any_secret_and_refuses_one_too_long_for_the_column():
    keys = ("k1",)
    for secret in (pyotp.random_base32(), "JBSWY3DPEHPK3PXP", pyotp.random_base32().lower()):
        sealed = sealing.seal(secret, keys)
        assert sealing.unseal(sealed, keys) == secret.upper() and sealing.seal(sealed, keys) == sealed
    assert sealing.unseal("s1.not-base64-at-all!", keys) == "s1.not-base64-at-all!"  # unreadable, never a secret
    with pytest.raises(ValueError, match="does not fit"):
        sealing.seal(pyotp.random_base32(length=64), keys)
    assert twofactor.UNREADABLE  # the words the sign-in page shows for an unreadable secret


def an_admin_at_0011_with(engine, plain: str) -> None:  # type: ignore[no-untyped-def]
    """A database at 0011 holding an administrator whose two-factor secret is stored plain, then migrated to 0012."""
    upgrade(engine, "0011_page_versions")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, full_name, profession, credential, licence_number, jurisdiction,"
                " time_zone, password_hash, role, is_active, session_version, created_at, totp_secret,"
                " totp_enabled_at, pages_version)"
                " VALUES (1, 'old@example.org', 'Old', 'x', '', '', '', '', 'h', 'admin', 1, 1,"
                " '2026-11-01 10:00:00', :plain, '2026-11-01 10:00:00', 1)"
            ),
            {"plain": plain},
        )
    upgrade(engine, "0012_sealed_two_factor_secrets")


def test_migration_0012_seals_the_secrets_there_and_its_downgrade_opens_them(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'seal.sqlite3'}")
    sealing.use_keys(engine.dialect, "migration-key")
    plain = pyotp.random_base32()
    try:
        an_admin_at_0011_with(engine, plain)
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT totp_secret FROM users")).scalar_one()
        assert raw.startswith("s1.") and sealing.unseal(raw, ("migration-key",)) == plain
        downgrade(engine, "0011_page_versions")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT totp_secret FROM users")).scalar_one() == plain
    finally:
        engine.dispose()


def test_migration_0012_will_not_go_down_without_the_key_that_opens_the_secrets(tmp_path):
    path = tmp_path / "sealed.sqlite3"
    keyed = make_engine(f"sqlite:///{path}")
    sealing.use_keys(keyed.dialect, "migration-key")
    try:
        an_admin_at_0011_with(keyed, pyotp.random_base32())
    finally:
        keyed.dispose()
    keyless = make_engine(f"sqlite:///{path}")  # Alembic's own engine, made from the URL alone
    try:
        with pytest.raises(RuntimeError, match="no SECRET_KEY to open them"):
            downgrade(keyless, "0011_page_versions")
        with keyless.connect() as conn:
            assert conn.execute(text("SELECT totp_secret FROM users")).scalar_one().startswith("s1.")  # untouched
    finally:
        keyless.dispose()
