"""random status-list slots: a certificate's place in the revocation lists no longer follows its number

Revision ID: 0014_random_status_slots
Revises: 0013_certificate_time_zone
Create Date: 2026-11-27

A certificate's bit in the public revocation status list was at the position of its id, which is also the end of
its printed number (KAP-2026-000042 at index 42): anyone with a number could watch that certificate's revocation
without its verification link, and count the revocations by number. New certificates draw their slot at random
when their credential is first signed (the W3C Bitstring Status List's herd privacy). Certificates from before
keep the slot of their id, which their signed credentials already name. Added as a plain column with a unique
index (no table rebuild, which on SQLite would drop the page-version triggers).

A downgrade would forget the random slots that signed credentials name, and an upgrade after it would put their
revocation bits in the wrong places: it is refused while any certificate's slot differs from its id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kaptrain.migrate import MigrationError

revision: str = "0014_random_status_slots"
down_revision: str | None = "0013_certificate_time_zone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Earlier migrations in this transaction updated certificates, whose page-version triggers are deferred to
        # the commit; PostgreSQL refuses to alter a table with such events pending, so they run now.
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.add_column("certificates", sa.Column("status_slot", sa.Integer(), nullable=True))
    op.create_index("uq_certificates_status_slot", "certificates", ["status_slot"], unique=True)
    op.execute("UPDATE certificates SET status_slot = id")


def downgrade() -> None:
    moved = op.get_bind().execute(sa.text("SELECT count(*) FROM certificates WHERE status_slot <> id")).scalar_one()
    if moved:
        raise MigrationError(
            f"0014_random_status_slots cannot be undone: {moved} certificates have signed credentials that name a "
            "random status-list slot, which the schema before it cannot keep; nothing was changed."
        )
    op.drop_index("uq_certificates_status_slot", table_name="certificates")
    # Plain ALTER (SQLite 3.35 and later, PostgreSQL): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE certificates DROP COLUMN status_slot")
