"""Audit events written without a lock, sealed afterwards into a keyed, anchored log.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-28

``audit_events`` gains ``xid`` (the writing transaction, ``pg_current_xact_id()``; 0 for
the rows already there) and takes ``seq`` from a sequence, so writers no longer read the
last row under a lock; ``prev_hash`` is kept for the rows chained before this revision and
is empty for later ones. ``audit_seals`` holds the sealer's batches (``relational/audit/seal.py``);
it is append-only like the events (the same trigger function) and the application role may
only read and append to it.

The downgrade refuses (the transaction rolls back, nothing changes) once an event was
written or a batch sealed under this revision: the earlier chain cannot take those events
back, and dropping the seals would make the trail report tampering against its checkpoints
after the next upgrade. Embedded SQLite gets the columns and the table; its writers are
serialized by SQLite itself and its events stay unsealed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dr_assistant_data.migrations.refusals import Refusal

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

squawk_exceptions = {
    "require-concurrent-index-creation": (
        "the index on audit_events (xid, seq) is built with the columns it covers, in the "
        "revision's transaction, so that no sealer finds the column without its index"
    ),
    "ban-drop-not-null": (
        "prev_hash becomes optional: events written since this revision carry an HMAC instead, "
        "and the layer is the only client that reads the column"
    ),
}
"""Linter rules this revision breaks, with the reason (``migrations/lint.py``)."""

APPEND_ONLY = "audit_events_append_only"
APP = "dr_assistant_app"
OWNER = "dr_assistant_owner"
XID_DEFAULT = "(pg_current_xact_id()::text)::bigint"
WRITTEN_UNDER_0008 = (
    "SELECT 1 FROM audit_seals UNION ALL SELECT 1 FROM audit_events WHERE prev_hash IS NULL"
)


def _sqlite_append_only(table: str, prefix: str) -> None:
    """SQLite's guard (revision 0004's form): a table it rebuilds loses its triggers."""
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {prefix}_{event.lower()} BEFORE {event} "
            f"ON {table} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )


downgrade_refusal = Refusal(
    WRITTEN_UNDER_0008,
    "revision 0008 cannot be downgraded: audit events were written or sealed under it, "
    "and the earlier chain cannot hold them",
)
"""Checked before any step of a downgrade runs (``migrations/refusals.py``)."""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"))
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
    if not postgres:
        _sqlite_append_only("audit_events", APPEND_ONLY)
    op.create_index("ix_audit_events_xid_seq", "audit_events", ["xid", "seq"])
    op.create_table(
        "audit_seals",
        sa.Column("batch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("xid_low", sa.BigInteger(), nullable=False),
        sa.Column("xid_high", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("prev_head", sa.String(length=64), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch", name=op.f("pk_audit_seals")),
        sa.UniqueConstraint("head", name=op.f("uq_audit_seals_head")),
    )
    if not postgres:
        _sqlite_append_only("audit_seals", "audit_seals_append_only")
        return
    op.execute("CREATE SEQUENCE audit_events_seq AS bigint")
    op.execute(
        "SELECT setval('audit_events_seq', max(seq)) FROM audit_events HAVING max(seq) IS NOT NULL"
    )
    op.execute("ALTER TABLE audit_events ALTER COLUMN seq SET DEFAULT nextval('audit_events_seq')")
    op.execute(f"ALTER TABLE audit_events ALTER COLUMN xid SET DEFAULT {XID_DEFAULT}")
    op.execute(
        f"CREATE TRIGGER audit_seals_append_only_rows BEFORE UPDATE OR DELETE ON audit_seals "
        f"FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY}()"
    )
    op.execute(
        f"CREATE TRIGGER audit_seals_append_only_truncate BEFORE TRUNCATE ON audit_seals "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY}()"
    )
    op.execute(
        f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP}') THEN
                ALTER TABLE audit_seals OWNER TO {OWNER};
                ALTER SEQUENCE audit_events_seq OWNER TO {OWNER};
                REVOKE ALL ON audit_seals FROM {APP};
                GRANT SELECT, INSERT ON audit_seals TO {APP};
                GRANT USAGE, SELECT ON SEQUENCE audit_events_seq TO {APP};
            END IF;
        END $$
        """  # noqa: S608 - the role names are constants
    )


def downgrade() -> None:
    downgrade_refusal.enforce()
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER audit_seals_append_only_truncate ON audit_seals")
        op.execute("DROP TRIGGER audit_seals_append_only_rows ON audit_seals")
        op.execute("ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_events_seq")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_seals_append_only_{event}")
    op.drop_table("audit_seals")
    op.drop_index("ix_audit_events_xid_seq", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.drop_column("xid")
    if not postgres:
        _sqlite_append_only("audit_events", APPEND_ONLY)
