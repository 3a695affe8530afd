"""Encounters: ``(id, patient_id)`` unique, so chart records can reference both.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

The problem list, allergies and vital signs (revisions 0015-0017) reference their
encounter by ``(encounter_id, patient_id)``: the database itself then refuses a record
that joins another patient's encounter, and an encounter moved to another patient while
records of its patient point at it, whatever wrote them (a bulk insert, plain SQL). A
foreign key needs a unique index on the columns it references: built ``CONCURRENTLY``
outside the migration's transaction when the table has rows, so writes go on meanwhile
(``migrations/online.py``'s rule). A build that failed half-way leaves an INVALID index:
it is dropped first, so running the revision again builds it afresh.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_encounters_id_patient_id"


def _build(concurrently: str) -> None:
    op.execute(f"DROP INDEX {concurrently}IF EXISTS {INDEX}")
    op.execute(
        f"CREATE UNIQUE INDEX {concurrently}IF NOT EXISTS {INDEX} ON encounters (id, patient_id)"
    )


def upgrade() -> None:
    context = op.get_context()
    postgres = op.get_bind().dialect.name == "postgresql"
    if not postgres or (not context.as_sql and not _has_encounters()):
        op.create_index(INDEX, "encounters", ["id", "patient_id"], unique=True)
        return
    with context.autocommit_block():
        _build("CONCURRENTLY ")


def _has_encounters() -> bool:
    return bool(op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT FROM encounters)")))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="encounters")
