"""Make the audit trail append-only in the database; record erasure reasons.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Triggers refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of ``audit_events`` for every
role, the owner included; only a superuser who disables them (or sets
``session_replication_role``) gets past, and the hash chain then shows where
(``dr-assistant-data verify-audit``). The error message is the marker the layer maps to
``ImmutableRecordError``. ``reason`` holds the reason code of an erasure.

The downgrade refuses once an event holds a reason: dropping the column would break those
events' hashes, and the trail would report tampering that never happened.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dr_assistant_data.migrations.refusals import Refusal

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARKER = "audit_events_append_only"

_POSTGRES = [
    f"""
    CREATE FUNCTION {MARKER}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MARKER}';
    END
    $$
    """,
    f"""
    CREATE TRIGGER {MARKER}_rows BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION {MARKER}()
    """,
    f"""
    CREATE TRIGGER {MARKER}_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION {MARKER}()
    """,
]
_POSTGRES_DOWN = [
    f"DROP TRIGGER {MARKER}_truncate ON audit_events",
    f"DROP TRIGGER {MARKER}_rows ON audit_events",
    f"DROP FUNCTION {MARKER}()",
]
_SQLITE = [
    f"""
    CREATE TRIGGER {MARKER}_{event.lower()} BEFORE {event} ON audit_events
    BEGIN
        SELECT RAISE(ABORT, '{MARKER}');
    END
    """
    for event in ("UPDATE", "DELETE")
]
_SQLITE_DOWN = [f"DROP TRIGGER {MARKER}_{event}" for event in ("update", "delete")]


downgrade_refusal = Refusal(
    "SELECT 1 FROM audit_events WHERE reason IS NOT NULL",
    "revision 0004 cannot be downgraded: audit events record erasure reasons, and their "
    "hashes cover them",
)
"""Checked before any step of a downgrade runs (``migrations/refusals.py``)."""


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("reason", sa.String(length=64), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    downgrade_refusal.enforce()
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_DOWN if postgres else _SQLITE_DOWN:
        op.execute(statement)
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("reason")
