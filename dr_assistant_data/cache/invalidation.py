"""Where cached reads are dropped: session listeners, so every write counts however it is
made (a repository call, a plain attribute change, a factory, a caller's own session).

* ``after_flush`` collects the keys each flushed insert, update or delete affects —
  the row's own key, the doctor's day of an appointment (the old and the new doctor and
  day when it moves), the patient's timeline of an encounter, the user's unread count of
  an alert — into ``session.info``; from then until the transaction ends the session reads
  past the shared cache (``reads.shared_store``);
* ``after_commit`` delivers them (generation bump and delete, ``store.invalidate``): only
  once the data is committed, so no reader can reload the old row after the drop; on
  PostgreSQL they were also written into the transaction's outbox row, and a failed
  delivery is announced to every process (``outbox.py``);
* the end of a transaction that did not commit (a rollback, a closed session) discards
  them: nothing changed, nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, product
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.attributes import get_history

from ..relational.models import Alert, Appointment, Encounter, Patient, User
from . import outbox
from .reads import STORE_KEY, WRITTEN_KEY
from .store import CacheStore


def install(factory: sessionmaker[Session], store: CacheStore) -> None:
    """Give every session of ``factory`` the store and its invalidation rules."""
    factory.configure(info={**factory.kw.get("info", {}), STORE_KEY: store})
    event.listen(factory, "after_flush", _collect)
    event.listen(factory, "after_commit", _deliver)
    event.listen(factory, "after_transaction_end", _discard)
    event.listen(factory, "do_orm_execute", _note_bulk_write)


def affected_keys(store: CacheStore, row: object) -> Iterator[str]:
    """The keys whose cached value may change when ``row`` is written."""
    keys = store.keys
    if isinstance(row, Patient | User):
        yield keys.entity(type(row).__table__, row.id)
    elif isinstance(row, Appointment):
        zone = ZoneInfo(store.settings.clinic_timezone)
        for doctor, start in product(_values(row, "doctor_id"), _values(row, "start_time")):
            yield keys.schedule(doctor, _local_day(start, zone))
    elif isinstance(row, Encounter):
        for patient in _values(row, "patient_id"):
            yield keys.timeline(patient)
    elif isinstance(row, Alert):
        for user in _values(row, "user_id"):
            yield keys.unread_alerts(user)


def _collect(session: Session, _context: Any) -> None:
    note_written(session, chain(session.new, session.dirty, session.deleted))


def note_written(session: Session, rows: Iterable[object], *, fresh: bool = False) -> None:
    """Owe the keys ``rows`` affect, delivered after the commit like a flush's: the entry
    point for writes that bypass the flush (bulk inserts, ``relational/bulk.py``).

    ``fresh``: the rows were just inserted under ids generated for them, so no read can
    have cached their own key (not even as absent); only the reads they join — a doctor's
    day, a timeline, an unread count — are owed.
    """
    store: CacheStore | None = session.info.get(STORE_KEY)
    if store is None:
        return
    owed: set[str] = session.info.setdefault(WRITTEN_KEY, set())
    for row in rows:
        if not (fresh and isinstance(row, Patient | User)):
            owed.update(affected_keys(store, row))


def _deliver(session: Session) -> None:
    owed = session.info.pop(WRITTEN_KEY, None)
    if owed:
        outbox.deliver(session, session.info[STORE_KEY], owed)


def _note_bulk_write(state: ORMExecuteState) -> None:
    """A bulk UPDATE or DELETE names no rows: the session stops using the shared cache, but
    only writes through entities (repositories, attribute changes) invalidate keys."""
    if state.is_update or state.is_delete:
        state.session.info.setdefault(WRITTEN_KEY, set())


def _discard(session: Session, transaction: SessionTransaction) -> None:
    """The transaction ended without a commit (rolled back, or the session closed): what
    it wrote never happened. After a commit ``_deliver`` has already taken the keys."""
    if transaction.parent is None:
        session.info.pop(WRITTEN_KEY, None)


def _values(row: object, attribute: str) -> set[Any]:
    """The attribute's value before and after the flush (both, when it changed)."""
    history = get_history(row, attribute)
    return {
        value
        for value in chain(history.added, history.unchanged, history.deleted)
        if value is not None
    }


def _local_day(moment: datetime, zone: ZoneInfo) -> Any:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).date()
