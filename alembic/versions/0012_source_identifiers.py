"""Source identifiers: which row each record imported from another system became.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28

The FHIR import (``dr_assistant_data/fhir/``) records, for every identifier a source
system gave a resource (its logical id, an NPI, a prescription's group id), the row it
was written as, so a resource seen again updates that row instead of duplicating it.
Identifiers are stored as SHA-256 digests, never in clear. A new table: nothing locks a
busy one. On PostgreSQL the table follows the role layout of revision 0005.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "dr_assistant_owner"
APP = "dr_assistant_app"


def upgrade() -> None:
    op.create_table(
        "source_identifiers",
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_key", name=op.f("pk_source_identifiers")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE source_identifiers OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON source_identifiers TO {APP}")


def downgrade() -> None:
    op.drop_table("source_identifiers")
