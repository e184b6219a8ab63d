"""Alembic driven from the app: upgrade, downgrade and the models-versus-migrations check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from kaptrain.config import PROJECT_ROOT
from kaptrain.models import Base

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at migrations/, optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class MigrationError(RuntimeError):
    """A migration cannot be applied to the rows as they are (they would point at nothing, or break a new
    constraint); it was rolled back."""


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for migrations; on SQLite, with foreign keys off while it runs.

    SQLite's batch mode rebuilds a table by copying it and dropping the original, and with foreign keys on,
    DROP TABLE first deletes every row, firing ON DELETE actions: a CASCADE would wipe learners' records and
    a RESTRICT would stop the migration (sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
    Changes"). The pragma only takes effect outside a transaction, so it is set on the raw connection before
    the migration's transaction begins, and the keys are checked before it commits."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise MigrationError(f"rows would point at missing rows: {broken[:5]}")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to a revision (default: the newest)."""
    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the database to a revision ("base" empties it)."""
    with migration_connection(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration from the difference between models and database."""
    with migration_connection(engine) as conn:
        command.revision(alembic_config(conn), message=message, autogenerate=True)


def pending_model_changes(engine: Engine) -> list[Any]:
    """Differences between the models and the migrated database; empty when they agree."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))
