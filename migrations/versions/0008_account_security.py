"""account security: emailed single-use links, confirmed addresses, two-factor sign-in

Revision ID: 0008_account_security
Revises: 0007_authoring
Create Date: 2026-11-26

Two new tables: `account_tokens` (password-reset and address-confirmation links, stored as hashes) and
`recovery_codes` (two-factor recovery codes, stored as hashes); both go with their account (CASCADE), as they
are not records anyone must keep. Users gain `email_confirmed_at` and the TOTP columns. Accounts that exist
before this migration were made before addresses were confirmed, so they are taken as confirmed since they
were created: no existing learner loses the right to a certificate. Nobody has two-factor sign-in yet;
instructors and administrators are asked to set it up at their next login.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kaptrain.db

revision: str = "0008_account_security"
down_revision: str | None = "0007_authoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "reset_password", "confirm_email", "change_email", name="tokenpurpose", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_stamp", sa.String(length=64), nullable=False),
        sa.Column("created_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", kaptrain.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", kaptrain.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", kaptrain.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_confirmed_at", kaptrain.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", kaptrain.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_counter", sa.Integer(), nullable=True))

    # Existing accounts count as confirmed since they were created (same stored format on both databases).
    op.execute("UPDATE users SET email_confirmed_at = created_at")


def downgrade() -> None:
    """Revert this migration (links, recovery codes, confirmations and two-factor enrolments are dropped)."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_counter")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("email_confirmed_at")

    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))
    op.drop_table("recovery_codes")

    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_tokens_user_id"))
    op.drop_table("account_tokens")
