"""Whether a transaction committed, asked of PostgreSQL when the answer to its COMMIT was lost.

A transaction that inserted a row with a known key (a unit's ``document_commits`` row, its
``cache_invalidations`` row) committed exactly when that row exists. A plain read could miss
a transaction still finishing on the server (its COMMIT arrived, the reply never did), so
the question is asked by inserting the same key on a fresh connection, then rolling back:

* the key is taken → the unit committed;
* the insert goes through → the unit's transaction has ended without committing, and never
  will (PostgreSQL makes an insert wait for a transaction holding the same key to finish);
* anything else — PostgreSQL unreachable, or the old transaction still open after
  ``OUTCOME_WAIT`` (its server process has not yet noticed the lost client) → unknown.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from sqlalchemy import Engine, Insert, func, insert, select
from sqlalchemy import exc as sa_exc

from .models import CacheInvalidation, DocumentCommit

OUTCOME_WAIT = timedelta(seconds=5)
"""How long the question waits for the unit's transaction to end on the server."""


class Outcome(enum.Enum):
    COMMITTED = "committed"
    NOT_COMMITTED = "not committed"
    UNKNOWN = "unknown"


def unit_outcome(engine: Engine, unit_id: str) -> Outcome:
    """The outcome of the transaction of the unit of work ``unit_id`` (documents)."""
    return _outcome(engine, insert(DocumentCommit.__table__).values(unit_id=unit_id))


def outbox_outcome(engine: Engine, row: int) -> Outcome:
    """The outcome of the transaction that inserted ``cache_invalidations`` row ``row``."""
    return _outcome(engine, insert(CacheInvalidation.__table__).values(id=row, keys=[]))


def _outcome(engine: Engine, same_key: Insert) -> Outcome:
    """Insert ``same_key`` and roll back, waiting at most ``OUTCOME_WAIT`` for the
    transaction holding that key to end; never raises for a database failure (that is
    ``UNKNOWN``)."""
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            if connection.dialect.name == "postgresql":  # SET LOCAL, as a bound value
                lock_timeout = f"{int(OUTCOME_WAIT.total_seconds() * 1000)}ms"
                connection.execute(select(func.set_config("lock_timeout", lock_timeout, True)))
            connection.execute(same_key)
            transaction.rollback()
    except sa_exc.IntegrityError:
        return Outcome.COMMITTED
    except (sa_exc.DBAPIError, sa_exc.TimeoutError):
        return Outcome.UNKNOWN
    return Outcome.NOT_COMMITTED
