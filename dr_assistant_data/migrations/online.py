"""Steps for revisions that run on a live database without blocking it (PostgreSQL).

See the README's "Migrations on a live database" for the patterns these serve.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text


def validate_constraint(table: str, constraint: str) -> None:
    """``VALIDATE CONSTRAINT`` of a constraint added ``NOT VALID`` earlier in the revision.

    Validation scans the table under SHARE UPDATE EXCLUSIVE, which lets reads and writes
    go on, but the migration's transaction still holds the ACCESS EXCLUSIVE lock the
    ``ADD CONSTRAINT`` took. So when the table has rows (and in offline SQL), what ran
    before is committed first and the validation runs on its own; an empty table (a new
    database) is validated in place, keeping the upgrade one transaction. A row that
    breaks the constraint fails the validation: the constraint stays ``NOT VALID``.
    """
    context = op.get_context()
    quoted = op.get_bind().dialect.identifier_preparer.quote
    statement = f"ALTER TABLE {quoted(table)} VALIDATE CONSTRAINT {quoted(constraint)}"
    if not context.as_sql and not _has_rows(table):
        op.execute(statement)
        return
    with context.autocommit_block():
        op.execute(statement)


def _has_rows(table: str) -> bool:
    quoted = op.get_bind().dialect.identifier_preparer.quote(table)
    return bool(op.get_bind().scalar(text(f"SELECT EXISTS (SELECT FROM {quoted})")))  # noqa: S608
