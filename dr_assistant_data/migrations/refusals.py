"""A revision's refusal to run on data it would damage, checked before any step runs.

A revision declares its refusals as module constants, ``downgrade_refusal`` (and, where
applying it could fail on stored rows, ``upgrade_refusal``): a :class:`Refusal`. Before
the first step of a migration runs, :func:`refusals_on_path` asks each revision on the
path whether its refusal holds on the data as it is, and :func:`refuse_path` refuses the
whole migration, naming every revision that refuses and why: a refused migration changes
nothing, even when a revision above the refusing one would commit on its own
(``autocommit_block``, ``online.py``).

The revision also enforces its refusal itself (:meth:`Refusal.enforce`, online and in
offline SQL alike), for a path the layer does not plan (``alembic downgrade`` run by
hand): its transaction then rolls back. On PostgreSQL that check is a ``DO`` block, so
``alembic downgrade --sql`` output refuses too; embedded SQLite is asked directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

from alembic import op
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


def refusals_on_path(
    connection: Connection, revisions: Iterable[ModuleType], direction: str
) -> list[str]:
    """The messages of the ``"upgrade"`` or ``"downgrade"`` refusals that hold among
    ``revisions`` (the revision modules a migration would run, in order)."""
    refusals = (getattr(module, f"{direction}_refusal", None) for module in revisions)
    return [
        refusal.message
        for refusal in refusals
        if isinstance(refusal, Refusal) and refusal.holds(connection)
    ]


def refuse_path(messages: list[str], direction: str, target: str) -> None:
    """Refuse the whole migration when any revision on its path refuses."""
    if messages:
        raise RefusedMigration(
            f"{direction} to {target} refused, nothing was changed: " + "; ".join(messages)
        )
