"""Steps for revisions that run on a live database without blocking it (PostgreSQL).

See "Migrations on a live database" in docs/how-to/schema-changes.md for the patterns these serve.
"""

from __future__ import annotations

from collections.abc import Callable

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


def create_index_concurrently(name: str, table: str, definition: str) -> None:
    """``CREATE INDEX CONCURRENTLY name ON table definition`` (e.g. ``USING gin (...)``).

    A concurrent build cannot run in a transaction, so when the table has rows (and in
    offline SQL) what ran before is committed and the build runs on its own, letting reads
    and writes go on; an empty table (a new database) is indexed in place, keeping the
    upgrade one transaction. A build that failed half-way leaves an INVALID index: it is
    dropped first, so running the revision again builds it afresh.
    """
    quoted = op.get_bind().dialect.identifier_preparer.quote
    index, on = quoted(name), f"ON {quoted(table)} {definition}"

    def build(concurrently: str) -> None:
        op.execute(f"DROP INDEX {concurrently}IF EXISTS {index}")
        op.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS {index} {on}")

    _online(table, build)


def drop_index_concurrently(name: str, table: str) -> None:
    """``DROP INDEX CONCURRENTLY IF EXISTS`` of an index of ``table``, by the same rule as
    :func:`create_index_concurrently`."""
    index = op.get_bind().dialect.identifier_preparer.quote(name)
    _online(table, lambda concurrently: op.execute(f"DROP INDEX {concurrently}IF EXISTS {index}"))


def _online(table: str, steps: Callable[[str], None]) -> None:
    """``steps("CONCURRENTLY ")`` outside the migration's transaction when ``table`` has
    rows (or in offline SQL); ``steps("")`` in place on an empty table."""
    context = op.get_context()
    if not context.as_sql and not _has_rows(table):
        steps("")
        return
    with context.autocommit_block():
        steps("CONCURRENTLY ")
