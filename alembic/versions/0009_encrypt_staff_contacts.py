"""Encrypt the staff's email and phone; look them up, and keep emails unique, by blind index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28

As revision 0003 did for patients: ``users.email`` and ``users.phone`` become TEXT holding
``v1:<key id>:<AES-GCM sealed value>``, each with a ``<name>_index`` column (HMAC-SHA256
under ``BLIND_INDEX_KEY``). Uniqueness of emails moves from the plain column (kept
case-insensitive by a lower-case CHECK, which a ciphertext cannot meet) to a unique index on
the email's blind index, computed from the lower-cased address. Existing rows are sealed
here with the keys of the engine running the migration; the downgrade opens them again
with the same keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dr_assistant_data.migrations.refusals import Refusal
from dr_assistant_data.migrations.sealed_columns import seal

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "changing-column-type": (
        "VARCHAR(n) to TEXT is binary-coercible: PostgreSQL changes the catalog, no rewrite"
    ),
    "require-concurrent-index-creation": (
        "the revision seals every staff row in its transaction, which holds their row "
        "locks to the end anyway; a concurrent build cannot run inside it (and staff "
        "tables are small)"
    ),
    "ban-drop-constraint": (
        "the plain email uniqueness and lower-case check cannot hold on ciphertext: the "
        "unique blind index built in the same transaction replaces them"
    ),
}
"""Linter rules this revision breaks, with the reason (``migrations/lint.py``)."""

PLAIN_LENGTHS = {"email": 254, "phone": 20}
"""The columns encrypted here, with their length before."""

_INDEXES = {
    "uq_users_email_index": ("email_index", True, None),
    "ix_users_phone_index": ("phone_index", False, "phone_index IS NOT NULL"),
}


downgrade_refusal = Refusal(
    "SELECT 1 FROM users WHERE email IS NOT NULL OR phone IS NOT NULL",
    "revision 0009 cannot be downgraded while staff have an email or phone: they would "
    "be written back in plaintext (erase or export them first)",
)
"""Checked before any step of a downgrade runs (``migrations/refusals.py``)."""


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_email"), type_="unique")
        batch.drop_constraint(op.f("ck_users_email_lowercase"), type_="check")
        for name, length in PLAIN_LENGTHS.items():
            batch.alter_column(name, existing_type=sa.String(length), type_=sa.Text())
            batch.add_column(sa.Column(f"{name}_index", sa.String(64), nullable=True))
    seal("users", list(PLAIN_LENGTHS), revision)
    for name, (column, unique, where) in _INDEXES.items():
        condition = None if where is None else sa.text(where)
        op.create_index(
            name,
            "users",
            [column],
            unique=unique,
            postgresql_where=condition,
            sqlite_where=condition,
        )


def downgrade() -> None:
    downgrade_refusal.enforce()
    for name, (_column, _unique, where) in _INDEXES.items():
        condition = None if where is None else sa.text(where)
        op.drop_index(name, "users", postgresql_where=condition, sqlite_where=condition)
    with op.batch_alter_table("users") as batch:
        for name, length in PLAIN_LENGTHS.items():
            batch.drop_column(f"{name}_index")
            batch.alter_column(name, existing_type=sa.Text(), type_=sa.String(length))
        batch.create_unique_constraint(op.f("uq_users_email"), ["email"])
        batch.create_check_constraint(op.f("ck_users_email_lowercase"), "email = lower(email)")
