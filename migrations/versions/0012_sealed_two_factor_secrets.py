"""sealed two-factor secrets: TOTP secrets stored plain are sealed with a key derived from SECRET_KEY

Revision ID: 0012_sealed_two_factor_secrets
Revises: 0011_page_versions
Create Date: 2026-11-27

The column keeps its type and length (a sealed secret is 51 characters, kaptrain.accounts.sealing); only the values
change. Sealing needs the site's SECRET_KEY, which the app's engine carries (`flask --app kaptrain db upgrade`, and
`make run`, migrate through it). On an engine without it (Alembic's own, from KAPTRAIN_DATABASE_URL) the values are
left as they are: a plain secret is still read, and is sealed at its owner's next accepted code. The downgrade
opens them again for the code before sealing, with the same need for the key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kaptrain.accounts import sealing

revision: str = "0012_sealed_two_factor_secrets"
down_revision: str | None = "0011_page_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rewrite(change, plain: bool) -> None:  # type: ignore[no-untyped-def]
    bind = op.get_bind()
    keys = sealing.keys_of(bind.dialect)
    if not keys:
        if not plain and bind.execute(sa.text("SELECT 1 FROM users WHERE totp_secret LIKE 's1.%'")).first():
            # The code before sealing would read a sealed value as a secret and fail every code: stop instead.
            raise RuntimeError(
                "Two-factor secrets are sealed and this engine has no SECRET_KEY to open them: downgrade with "
                "`flask --app kaptrain db downgrade`, which runs with the site's key."
            )
        print("No SECRET_KEY on this engine: two-factor secrets are left as they are")  # noqa: T201
        return
    prefix = sa.literal(sealing.PREFIX + "%")
    stored = sa.column("totp_secret")
    rows = bind.execute(
        sa.select(sa.column("id"), stored)
        .select_from(sa.table("users"))
        .where(stored.is_not(None), stored.not_like(prefix) if plain else stored.like(prefix))
    ).all()
    for user_id, value in rows:
        bind.execute(
            sa.text("UPDATE users SET totp_secret = :value WHERE id = :id"),
            {"value": change(value, keys), "id": user_id},
        )


def upgrade() -> None:
    _rewrite(sealing.seal, plain=True)


def downgrade() -> None:
    _rewrite(sealing.unseal, plain=False)
