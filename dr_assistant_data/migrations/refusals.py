"""A revision's refusal to run on data it would damage, online and in offline SQL alike.

:func:`refuse_if` stops the revision (its transaction rolls back: nothing changes) when a
query finds rows, with a message naming the revision and why, never a value. On PostgreSQL
the check is a ``DO`` block, so ``alembic downgrade --sql`` output refuses too; embedded
SQLite is asked directly.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from ..errors import DataLayerError


class RefusedMigration(DataLayerError):
    """A revision refused to run because of what the database holds."""


def refuse_if(rows_exist: str, message: str) -> None:
    """Refuse with ``message`` when ``SELECT EXISTS (rows_exist)`` is true.

    ``rows_exist`` and ``message`` are the revision's constants, never caller input; the
    message says "cannot be downgraded", by which the error boundary shows it as it is
    (``relational/translate.py``) rather than as a generic database error."""
    if op.get_bind().dialect.name == "postgresql":
        quoted = message.replace("'", "''")
        op.execute(
            f"DO $$ BEGIN IF EXISTS ({rows_exist}) THEN RAISE EXCEPTION '{quoted}'; END IF; END $$"
        )
    elif op.get_bind().scalar(text(f"SELECT EXISTS ({rows_exist})")):
        raise RefusedMigration(message)
