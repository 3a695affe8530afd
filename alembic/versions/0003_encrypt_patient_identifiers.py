"""Encrypt the patients' ABHA number, phone and email; look them up by blind index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

The three columns become TEXT holding ``v1:<key id>:<AES-GCM sealed value>``; each gets a
``<name>_index`` column (HMAC-SHA256 under ``BLIND_INDEX_KEY``) that carries the lookups
and, for the ABHA number, the uniqueness. Existing rows are sealed here with the keys of
the engine running the migration (the layer's settings), in the migration's transaction.
The downgrade refuses while any patient has one of them: it would write them back in
plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dr_assistant_data.migrations.refusals import Refusal
from dr_assistant_data.migrations.sealed_columns import seal

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "changing-column-type": (
        "VARCHAR(n) to TEXT is binary-coercible: PostgreSQL changes the catalog, no rewrite"
    ),
    "require-concurrent-index-creation": (
        "the revision seals every patient row in its transaction, which holds their row "
        "locks to the end anyway; a concurrent build cannot run inside it"
    ),
    "require-concurrent-index-deletion": "as for require-concurrent-index-creation",
}
"""Linter rules this revision breaks, with the reason (``migrations/lint.py``)."""

PLAIN_LENGTHS = {"abha_id": 17, "phone": 20, "email": 254}
"""The columns encrypted here, with their length before."""

_INDEXES = {
    "uq_patients_abha_id_index": ("abha_id_index", True),
    "ix_patients_phone_index": ("phone_index", False),
    "ix_patients_email_index": ("email_index", False),
}


def _partial_index(name: str, column: str, unique: bool) -> None:
    condition = sa.text(f"{column} IS NOT NULL")
    op.create_index(
        name,
        "patients",
        [column],
        unique=unique,
        postgresql_where=condition,
        sqlite_where=condition,
    )


downgrade_refusal = Refusal(
    "SELECT 1 FROM patients WHERE abha_id IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL",
    "revision 0003 cannot be downgraded while patients have identifiers: they would be "
    "written back in plaintext (erase or export them first)",
)
"""Checked before any step of a downgrade runs (``migrations/refusals.py``)."""


def upgrade() -> None:
    condition = sa.text("abha_id IS NOT NULL")
    op.drop_index(
        "uq_patients_abha_id", "patients", postgresql_where=condition, sqlite_where=condition
    )
    with op.batch_alter_table("patients") as batch:
        for name, length in PLAIN_LENGTHS.items():
            batch.alter_column(
                name, existing_type=sa.String(length), type_=sa.Text(), existing_nullable=True
            )
            batch.add_column(sa.Column(f"{name}_index", sa.String(64), nullable=True))
    seal("patients", list(PLAIN_LENGTHS), revision)
    for name, (column, unique) in _INDEXES.items():
        _partial_index(name, column, unique)


def downgrade() -> None:
    downgrade_refusal.enforce()
    for name, (column, _unique) in _INDEXES.items():
        condition = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, "patients", postgresql_where=condition, sqlite_where=condition)
    with op.batch_alter_table("patients") as batch:
        for name, length in PLAIN_LENGTHS.items():
            batch.drop_column(f"{name}_index")
            batch.alter_column(
                name, existing_type=sa.Text(), type_=sa.String(length), existing_nullable=True
            )
    _partial_index("uq_patients_abha_id", "abha_id", True)
