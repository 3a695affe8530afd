"""Patients: trigram indexes on first and last name, for the front desk's name search.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28

``uow.patients.search_by_name`` matches name prefixes and, on PostgreSQL, names that
resemble the query (``pg_trgm`` similarity: a typo or two). Each name column gets a GIN
trigram index, built ``CONCURRENTLY`` on a live table (``migrations/online.py``): reads and
writes go on while it builds. ``pg_trgm`` is a trusted extension (PostgreSQL 13+): the
migrating role needs ``CREATE`` on the database, not superuser. On SQLite the indexes are
plain ones and the search matches prefixes only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from dr_assistant_data.migrations.online import create_index_concurrently, drop_index_concurrently

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {"ix_patients_first_name_trgm": "first_name", "ix_patients_last_name_trgm": "last_name"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name, column in INDEXES.items():
            op.create_index(name, "patients", [column])
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES.items():
        create_index_concurrently(name, "patients", f"USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name in INDEXES:
            op.drop_index(name, "patients")
        return
    for name in INDEXES:
        drop_index_concurrently(name, "patients")
