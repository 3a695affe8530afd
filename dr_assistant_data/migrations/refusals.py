"""A revision's refusal to run on data it would damage, checked before any step runs.

A revision declares its refusals as module constants, ``downgrade_refusal`` (and, where
applying it could fail on stored rows, ``upgrade_refusal``): a :class:`Refusal`. Before
the first step of an online migration runs, whoever started it (``migrate``,
``downgrade``, ``flask data ...`` or ``alembic`` run by hand), ``alembic/env.py`` has
:func:`refuse_before_any_step` ask each revision on the path Alembic is about to run
whether its refusal holds on the data as it is, and refuse the whole migration, naming
every revision that refuses and why: a refused migration changes nothing, although each
revision commits on its own (``transaction_per_migration``, and ``autocommit_block`` in
``online.py``).

The revision also enforces its refusal itself (:meth:`Refusal.enforce`), as the last
guard and for offline SQL: on PostgreSQL that check is a ``DO`` block, so ``alembic
downgrade --sql`` output refuses too; embedded SQLite is asked directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic import op
from alembic.runtime.migration import MigrationContext, RevisionStep
from sqlalchemy import Connection, text

from ..errors import DataLayerError


class RefusedMigration(DataLayerError):
    """A revision refused to run because of what the database holds; nothing was run."""


@dataclass(frozen=True)
class Refusal:
    """``message`` applies when ``SELECT EXISTS (rows_exist)`` is true.

    Both are the revision's constants, never caller input; the message names the revision
    and says "cannot be downgraded" (or "cannot be applied"), by which the error boundary
    shows it as it is (``relational/driver/translate.py``), never a value. ``dialect`` limits
    the refusal to the one database its step runs on."""

    rows_exist: str
    message: str
    dialect: str | None = None

    def holds(self, connection: Connection) -> bool:
        """Whether the rows exist on ``connection`` (on the refusal's dialect)."""
        if self.dialect not in (None, connection.dialect.name):
            return False
        return bool(connection.scalar(text(f"SELECT EXISTS ({self.rows_exist})")))

    def enforce(self) -> None:
        """Inside the revision: stop it (its transaction rolls back) when the refusal
        holds."""
        bind = op.get_bind()
        if bind.dialect.name == "postgresql":
            quoted = self.message.replace("'", "''")
            op.execute(
                f"DO $$ BEGIN IF EXISTS ({self.rows_exist}) "
                f"THEN RAISE EXCEPTION '{quoted}'; END IF; END $$"
            )
        elif self.holds(bind):
            raise RefusedMigration(self.message)


def refuse_before_any_step(migration: MigrationContext) -> None:
    """Refuse the migration ``migration`` is about to run (``RefusedMigration``, before
    any step) when a revision on its path refuses on the data as it is. A transaction the
    check began is rolled back; one the caller holds is left to it."""
    connection = migration.connection
    plan = migration.opts.get("fn")
    if connection is None or plan is None:
        return
    began = not connection.in_transaction()
    heads = migration.get_current_heads()
    # a database with no revision holds no rows a revision could damage
    steps = [s for s in plan(heads, migration) if isinstance(s, RevisionStep)] if heads else []
    refusing = []
    for step in steps:
        refusal = getattr(step.revision.module, f"{_direction(step)}_refusal", None)
        if isinstance(refusal, Refusal) and refusal.holds(connection):
            refusing.append(refusal.message)
    if began:
        connection.rollback()
    if refusing:
        raise RefusedMigration(
            f"{_direction(steps[0])} to {migration.opts['destination_rev']} refused, "
            "nothing was changed: " + "; ".join(refusing)
        )


def _direction(step: RevisionStep) -> str:
    return "upgrade" if step.is_upgrade else "downgrade"
