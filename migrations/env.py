"""Alembic environment: runs on the connection kaptrain hands over, or on KAPTRAIN_DATABASE_URL."""

from alembic import context

from kaptrain.config import load_config
from kaptrain.db import make_engine
from kaptrain.migrate import migration_connection
from kaptrain.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Migrate using the caller's connection when given, else one from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(load_config()["DATABASE_URL"])
    with migration_connection(engine) as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite has almost no ALTER TABLE: copy-and-move instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
