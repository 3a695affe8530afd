"""Document commits: which units of work that wrote MongoDB documents committed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

The document sweep reads this table to decide whether a document still marked pending
belongs to a committed unit of work (finalize it) or to one that never committed (undo it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_commits",
        sa.Column("unit_id", sa.String(length=32), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_document_commits")),
    )
    op.create_index(
        "ix_document_commits_committed_at", "document_commits", ["committed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("document_commits")
