"""Migration 0008: accounts that existed before it count as confirmed; it upgrades and downgrades cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from kaptrain.db import make_engine
from kaptrain.migrate import downgrade, upgrade

NOW = "2026-11-01 10:00:00.000000"


def test_existing_accounts_are_confirmed_and_nobody_has_two_factor_yet(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'at7.sqlite3'}")
    try:
        upgrade(engine, "0007_authoring")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, full_name, profession, credential, licence_number, jurisdiction,"
                    " time_zone, password_hash, role, is_active, session_version, created_at)"
                    " VALUES (1, 'old@example.org', 'Old', 'x', '', '', '', '', 'h', 'admin', 1, 1, :now)"
                ),
                {"now": NOW},
            )
        upgrade(engine, "0008_account_security")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT email_confirmed_at, totp_secret, totp_enabled_at FROM users")).one()
        assert str(row.email_confirmed_at).startswith("2026-11-01 10:00:00") and row.totp_secret is None
        assert row.totp_enabled_at is None
        downgrade(engine, "0007_authoring")
        tables = inspect(engine).get_table_names()
        assert "account_tokens" not in tables and "recovery_codes" not in tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT email FROM users")).scalar_one() == "old@example.org"
    finally:
        engine.dispose()
