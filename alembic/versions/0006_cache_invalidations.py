"""Cache invalidations owed by committed transactions (an outbox).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Each transaction that writes cached data inserts the keys it invalidates into
``cache_invalidations`` in the same transaction, so they survive a Redis outage and the
death of the writing process: every process of the deployment delivers what a writer could
not (``dr_assistant_data/cache/outbox.py``). Keys hold ids only, never patient data. On
PostgreSQL the table follows the role layout of revision 0005.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "prefer-identity": "BIGSERIAL on PostgreSQL, INTEGER on SQLite; the sequence is granted "
    "to the application role explicitly below",
}

OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"


def upgrade() -> None:
    op.create_table(
        "cache_invalidations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("keys", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_invalidations")),
    )
    op.create_index(
        "ix_cache_invalidations_created_at", "cache_invalidations", ["created_at"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE cache_invalidations OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON cache_invalidations TO {APP}")
        op.execute(f"GRANT USAGE, SELECT ON SEQUENCE cache_invalidations_id_seq TO {APP}")


def downgrade() -> None:
    op.drop_table("cache_invalidations")
