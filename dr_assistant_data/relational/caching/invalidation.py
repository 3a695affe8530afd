"""Where cached reads are dropped: session listeners (registered by ``commit.py``), so every
write counts however it is made (a repository call, a plain attribute change, a factory, a
caller's own session).

* ``after_flush`` collects the keys each flushed insert, update or delete affects, as the
  policy declares them (``policy.py``: an updated or deleted row's own key, the doctor's
  day of an appointment, the old and the new doctor and day when it moves, the days that
  embed an edited patient, ...) into the session's context; from then until the transaction ends
  the session reads past the shared cache (``caching.shared_store``);
* after the commit (``commit.committed``), :func:`deliver` delivers them (generation bump
  and delete, ``CacheStore.invalidate``): only once the data is committed, so no reader
  can reload the old row after the drop; on PostgreSQL they were also written into the
  transaction's outbox row, and a failed delivery is announced to every process
  (``outbox.py``); once the transaction has ended, :func:`deliver_embedding` looks the
  entries that embed its written rows up again, as the commit left them;
* the end of a transaction that did not commit (a rollback, a closed session) discards
  them: nothing changed, nothing is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.orm.instrumentation import ClassManager

from ...cache.store import CacheStore
from ...session_context import context_of
from ..driver.copy_rows import insert_into
from . import outbox as cache_outbox
from .policy import CachedList, lists_embedding, reads_written_by

logger = logging.getLogger(__name__)


def affected_keys(store: CacheStore, row: object, *, inserted: bool = False) -> Iterator[str]:
    """The keys whose cached value may change when ``row`` is written (``inserted``: but
    not its own, see ``note_written``)."""
    for read in reads_written_by(type(row)):
        if not (inserted and read.names_its_row):
            yield from read.keys_written(store, row)


def collect(session: Session, _context: Any) -> None:
    """``after_flush``: the flushed rows' keys are pending (``note_written``)."""
    note_written(session, chain(session.new, session.dirty, session.deleted))


def note_written(session: Session, rows: Iterable[object], *, inserted: bool = False) -> None:
    """Owe the keys ``rows`` affect, delivered after the commit like a flush's: the entry
    point for writes that bypass the flush (bulk inserts, ``bulk.py``; a create's INSERT,
    ``repositories/inserted.py``).

    ``inserted``: the rows were just inserted (as is a new row in the flush, known by
    ``session.new``), so no read holds them yet: not their own key (a read by id caches
    only a row it found, ``policy.CachedEntity``), nor a cached list's entry that embeds
    them. Only the reads they join — a doctor's day, a timeline, an unread count — are
    owed.
    """
    context = context_of(session)
    store = context.cache_store
    if store is None:
        return
    if context.owed is None:
        context.owed = set()
    embedded: dict[CachedList, set[Any]] = {}
    new = session.new
    for row in rows:
        just_inserted = inserted or row in new
        context.owed.update(affected_keys(store, row, inserted=just_inserted))
        if not just_inserted:
            for read in lists_embedding(type(row)):
                embedded.setdefault(read, set()).add(row.id)  # type: ignore[attr-defined]
    for read, ids in embedded.items():
        context.owed.update(read.keys_embedding(store, session.connection(), ids))
        context.embedded = context.embedded or {}
        context.embedded.setdefault(read, set()).update(ids)


def note_inserted(session: Session, model: type, rows: Sequence[Mapping[str, Any]]) -> None:
    """``note_written(inserted=True)`` for rows of ``model`` inserted without entities (bulk
    inserts, ``bulk.py``), given as their column values: entities are built for the
    policy's key parts only when a read other than the row's own can hold them."""
    entities = []
    if inserted_values_needed(model):
        manager: ClassManager[Any] = inspect(model).class_manager
        for values in rows:
            entity = manager.new_instance()
            entity.__dict__.update(values)
            entities.append(entity)
    note_written(session, entities, inserted=True)


def inserted_values_needed(model: type) -> bool:
    """Whether ``note_inserted`` reads the values of rows of ``model`` (else it is given
    none): when a read other than the row's own can hold them."""
    return any(not read.names_its_row for read in reads_written_by(model))


def deliver(session: Session) -> None:
    """After the commit: deliver the pending keys (``cache_outbox.deliver``); the written
    rows that cached lists embed are kept for :func:`deliver_embedding`."""
    context = context_of(session)
    owed, context.owed = context.owed, None
    context.embedded_committed, context.embedded = context.embedded, None
    if owed and context.cache_store is not None:
        cache_outbox.deliver(session, context.cache_store, owed)


def deliver_embedding(session: Session, transaction: SessionTransaction) -> None:
    """Once a committed transaction has ended (its connection back in the pool), before
    the commit returns: drop the entries that embed the rows it wrote as the primary sees
    them now. The lookup in the transaction could not see a row a concurrent transaction
    committed meanwhile (an appointment booked or moved onto a day of a written patient),
    whose day a read may have cached with the patient as they were before this commit.
    If PostgreSQL cannot answer now, the entries found in the transaction (in the outbox
    row, delivered) are all that is dropped."""
    context = context_of(session)
    embedded, context.embedded_committed = context.embedded_committed, None
    store = context.cache_store
    if transaction.parent is not None or not embedded or store is None:
        return
    keys: set[str] = set()
    try:
        for read, ids in embedded.items():
            primary = session.get_bind(clause=insert_into(read.model.__table__)).engine
            with primary.connect() as connection:
                keys |= read.keys_embedding(store, connection, ids)
    except SQLAlchemyError:
        logger.warning("the entries embedding written rows were not looked up after the commit")
    if keys:
        store.invalidate(keys)


def note_bulk_write(state: ORMExecuteState) -> None:
    """A bulk UPDATE or DELETE names no rows: the session stops using the shared cache, but
    only writes through entities (repositories, attribute changes) invalidate keys."""
    context = context_of(state.session)
    if (state.is_update or state.is_delete) and context.owed is None:
        context.owed = set()


def discard(session: Session, transaction: SessionTransaction) -> None:
    """The transaction ended without a commit (rolled back, or the session closed): what
    it wrote never happened. After a commit ``deliver`` has already taken the keys."""
    if transaction.parent is None:
        context = context_of(session)
        context.owed = context.embedded = None
