"""A transaction's cache invalidations in its own outbox row (``cache/outbox.py`` says why).

* ``before_commit`` inserts the keys the transaction owes into ``cache_invalidations``, in
  the transaction: the row exists exactly when the write committed. Its id is known
  beforehand (:class:`OutboxIds`, values of the table's sequence taken ``ID_BLOCK`` at a
  time), so the INSERT goes with the COMMIT in one round trip (``round_trips.deferred``);
* after the commit the writer delivers them itself, marking the row delivered
  (:func:`deliver`); a failed delivery is announced once the transaction has ended;
* a writer whose COMMIT raised (its answer lost) asks PostgreSQL whether the row committed
  (``commit_outcome.py``) and, if it did, delivers the keys as the commit would have.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, SessionTransaction

from ...cache.outbox import OutboxListener
from ...cache.store import CacheStore
from ...session_context import context_of
from ...settings import Settings
from ..commit_outcome import Outcome, outbox_outcome
from ..connection.engine import dedicated_connection
from ..driver.copy_rows import deferred_rows, insert_rows, primary_connection
from ..models import CacheInvalidation


class Outbox:
    """The outbox of one primary and cache store: its listeners write each transaction's
    pending keys into ``cache_invalidations`` and announce failed deliveries
    (``commit.py`` registers them); ``listener`` is the process's ``OutboxListener``
    (started now and on each transaction's begin, restarted in a fork)."""

    def __init__(self, engine: Engine, store: CacheStore, settings: Settings) -> None:
        self.listener = OutboxListener(engine, store, lambda: dedicated_connection(settings))
        store.trusted = self.listener.ready
        self._engine = engine
        self._store = store
        self._ids = OutboxIds()
        self.listener.ensure_running()

    def record(self, session: Session) -> None:
        """``before_commit``: insert the transaction's pending keys into its outbox row,
        sent with the COMMIT (``round_trips.deferred``)."""
        session.flush()  # the final flush's keys are owed too
        context = context_of(session)
        if context.owed:
            table = CacheInvalidation.__table__
            connection = primary_connection(session, table)
            row_id = self._ids.take(connection)
            row = {"id": row_id, "keys": sorted(context.owed)}
            if not deferred_rows(session, table, [row]):
                insert_rows(session, table, [row])
            context.outbox_row = row_id

    def announce(self, session: Session, transaction: SessionTransaction) -> None:
        """``after_transaction_end``: settle a row whose COMMIT raised (:func:`_settle`),
        and announce a row whose delivery failed."""
        if transaction.parent is None:
            context = context_of(session)
            unanswered, context.outbox_row = context.outbox_row, None  # its COMMIT raised
            if unanswered is not None:
                _settle(self.listener, self._engine, self._store, unanswered)
            row, context.undelivered_row = context.undelivered_row, None
            if row is not None:
                self.listener.announce(row)

    def ensure_running(self, *_: object) -> None:
        """``after_begin``: the listener runs in this process (again, after a fork)."""
        self.listener.ensure_running()


ID_BLOCK = 100
"""Outbox ids a process takes from the sequence in one round trip."""


class OutboxIds:
    """Ids for this process's outbox rows, taken from the table's sequence ``ID_BLOCK`` at
    a time: unique across processes as any sequence value is (a forked child takes its
    own, never its parent's); gaps, and an order that is not the commits', are harmless
    (the janitor goes by ``created_at``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._free: list[int] = []

    def take(self, connection: Connection) -> int:
        """The next id; ``connection`` (the primary's) fetches a block when none is left."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._free = os.getpid(), []
            if not self._free:
                block = connection.scalars(_NEXT_IDS).all()
                self._free = sorted(block, reverse=True)
            return self._free.pop()


_NEXT_IDS = select(func.nextval("cache_invalidations_id_seq")).select_from(
    func.generate_series(1, ID_BLOCK)
)


def deliver(session: Session, store: CacheStore, keys: Collection[str]) -> None:
    """After the commit: the writer's own delivery of its keys, marking its outbox row
    delivered; a failed one is announced once the transaction has ended."""
    context = context_of(session)
    row, context.outbox_row = context.outbox_row, None
    if not store.invalidate(keys, row) and row is not None:
        context.undelivered_row = row


def _settle(listener: OutboxListener, engine: Engine, store: CacheStore, row: int) -> None:
    """A COMMIT that raised may have taken effect (its answer was lost): once PostgreSQL
    says the row committed, deliver its keys now, as the commit would have."""
    if outbox_outcome(engine, row) is not Outcome.COMMITTED:
        return  # not committed: nothing to drop; unknown: the janitor decides later
    with engine.connect() as connection:
        keys = connection.scalar(select(CacheInvalidation.keys).where(CacheInvalidation.id == row))
    if keys and not store.invalidate(keys):
        listener.announce(row)
