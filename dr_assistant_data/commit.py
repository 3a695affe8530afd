"""The commit of a unit of work, phase by phase, and every listener of the layer's sessions.

A unit of work commits in these phases (:func:`commit`), each done by the module named:

1. flush and validate — ``session.flush()``: the ``before_flush`` rules (actor, row
   values: ``relational/session.py``, ``relational/rules/validation.py``; chart records:
   ``relational/rules/chart_integrity.py``; allergy lists: ``relational/allergy_list.py``; blind
   indexes: ``relational/encryption.py``); the flushed rows' audit changes and pending
   cache keys are collected (``after_flush``). A ``create`` whose row only its own rules
   apply to is an INSERT compiled once, checked by the same rules and with its audit
   change and keys collected the same way (``relational/repositories/inserted.py``), sent
   when it was made if another row could refuse it, else with the next statement or the
   COMMIT (4);
2. audit events — written, signed, into the transaction (``relational/audit/trail.py``);
   with the unit's ``document_commits`` row when it wrote documents
   (``documents/journal.py``);
3. cache outbox — the pending keys in the transaction's outbox row, sent with the COMMIT
   (``relational/caching/outbox.py``; ``before_commit``);
4. COMMIT;
5. decide an ambiguous outcome — a COMMIT whose answer was lost is asked of PostgreSQL by
   the unit's commit row (``relational/commit_outcome.py``): committed → the phases below
   run as after any COMMIT; not committed or unknown → the error propagates (the outbox row
   is settled the same way when the transaction ends, ``relational/caching/outbox.py``);
6. deliver invalidations — :func:`committed`: the pending keys are dropped from the cache
   (``relational/caching/invalidation.py``); once the transaction has ended, the cached
   days that embed a written patient are looked up again and dropped (``after_transaction_end``);
7. finalize documents — their pending markers removed (``documents/journal.py``);
8. record the commit position for replicas — the writer's reads stick to the primary and
   the commit's WAL position becomes ``uow.commit_lsn`` (``relational/connection/replicas.py``).

Phases 3 and 6 run for any session of the layer (a caller's own, a factory's), so they are
SQLAlchemy listeners: :func:`listeners` declares every listener, with who takes part
(:class:`Participants`), in the one order they are registered (:func:`session_factory`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from .cache.store import CacheStore
from .documents.journal import DocumentJournal
from .errors import BackendUnavailableError
from .relational.allergy_list import keep_allergy_lists
from .relational.caching import invalidation as cache_invalidation
from .relational.caching.outbox import Outbox
from .relational.commit_outcome import Outcome, unit_outcome
from .relational.connection import replicas
from .relational.connection.replicas import ReplicaRouter
from .relational.driver.round_trips import read_outside_transaction
from .relational.encryption import fill_blind_indexes
from .relational.rules.chart_integrity import check_chart_records
from .relational.session import (
    build_session_factory,
    collect_audit,
    hide_deleted,
    hold,
    tag_correlation,
    validate_rows,
)
from .relational.unit_of_work import trail, untouched
from .session_context import configure


@dataclass(frozen=True)
class Participants:
    """Who takes part in the commits of one session factory, beyond the rules every
    session keeps. ``None``: that part is not configured."""

    cache_store: CacheStore | None = None
    """Pending keys collected and delivered (``relational/caching/invalidation.py``)."""
    outbox: Outbox | None = None
    """Each transaction's keys in its outbox row (PostgreSQL with a shared cache)."""
    router: ReplicaRouter | None = None
    """Reads routed to replicas; commits make the writer's reads sticky."""


def commit(
    session: Session, journal: DocumentJournal, primary: Engine, lsn: str | None
) -> str | None:
    """Commit the unit of work's transaction, then make its document writes final; returns
    the commit position for replicas (``lsn``, the previous one, when nothing was written).

    A COMMIT whose answer is lost raises ``BackendUnavailableError`` unless the unit's
    commit row proves it committed; then the commit completes as if its answer had arrived
    (raising would invite a duplicate retry). When PostgreSQL cannot say, the documents stay
    marked for the sweep and the error propagates.
    """
    journal.before_commit(session)  # 2. the unit's commit row, if it wrote documents
    if not untouched(session):  # a unit served from the cache: nothing to end
        session.flush()  # 1. flush and validate
        trail(session).write(session)  # 2. audit events (reads made stay where they were)
        try:
            session.commit()  # 3. cache outbox, 4. COMMIT, 6. and 8. (:func:`committed`)
        except BackendUnavailableError as error:
            if not committed_after_all(error, journal, primary):  # 5. decide
                raise
            committed(session)  # 6. and 8., as after a COMMIT that answered
    journal.after_commit()  # 7. finalize documents
    return replicas.commit_lsn(session, lsn)  # 8. the commit position


def committed(session: Session) -> None:
    """What follows a COMMIT that took effect (SQLAlchemy's ``after_commit``, or a lost
    answer decided as committed): the pending invalidations are delivered (6) and the
    writer's reads stick to the primary, its commit position due (8)."""
    cache_invalidation.deliver(session)
    replicas.committed(session)


def committed_after_all(
    error: BackendUnavailableError, journal: DocumentJournal, primary: Engine
) -> bool:
    """Whether the COMMIT that raised ``error`` took effect after all, by the unit's commit
    row; when PostgreSQL cannot say, the documents are left to the sweep rather than undone.
    Without a commit row (no documents written) the unit cannot tell: False."""
    if error.backend != "postgres" or not journal.written:
        return False
    outcome = unit_outcome(primary, journal.unit_id)
    if outcome is Outcome.UNKNOWN:
        journal.abandon()
    return outcome is Outcome.COMMITTED


Listener = tuple[str, Callable[..., Any]]


def listeners(participants: Participants) -> Iterator[Listener]:
    """Every listener of the layer's sessions, in registration order: SQLAlchemy runs the
    listeners of one event in this order."""
    cache, outbox, router = participants.cache_store, participants.outbox, participants.router
    # every flush, before any SQL: refuse what is invalid, then derive from valid values
    yield "before_flush", validate_rows  # relational/session.py, relational/rules/validation.py
    yield "before_flush", check_chart_records  # relational/rules/chart_integrity.py
    yield "before_flush", keep_allergy_lists  # relational/allergy_list.py
    yield "before_flush", fill_blind_indexes  # relational/encryption.py
    # every flush, after its SQL: what it wrote is owed to the audit, the cache, the router
    yield "after_flush", collect_audit  # relational/audit/trail.py
    if cache is not None:
        yield "after_flush", cache_invalidation.collect
    if router is not None:
        yield "after_flush", replicas.mark_written
    # every transaction's first connection, and the one a read by id runs alone on
    # (relational/repositories/by_id.py)
    yield "after_begin", tag_correlation  # relational/connection/query_log.py
    yield "after_begin", read_outside_transaction  # relational/driver/round_trips.py
    if outbox is not None:
        yield "after_begin", outbox.ensure_running
    # every ORM statement and loaded row
    yield "do_orm_execute", hide_deleted  # soft-deleted rows hidden
    if cache is not None:
        yield "do_orm_execute", cache_invalidation.note_bulk_write
    yield "loaded_as_persistent", hold
    # the commit: 3. before it, 6. and 8. after it
    if outbox is not None:
        yield "before_commit", outbox.record
    yield "after_commit", committed
    # the end of every transaction, committed or not
    if cache is not None:
        yield "after_transaction_end", cache_invalidation.discard
        yield "after_transaction_end", cache_invalidation.deliver_embedding
    if outbox is not None:
        yield "after_transaction_end", outbox.announce  # a lost COMMIT's outbox row settled
    if router is not None:
        yield "after_transaction_end", replicas.forget_write


def session_factory(engine: Engine, participants: Participants) -> sessionmaker[Session]:
    """The layer's sessions on ``engine``: every listener of :func:`listeners` registered,
    in order, with ``participants``' cache store and replica router in each session."""
    factory = build_session_factory(engine)
    configure(factory, cache_store=participants.cache_store, router=participants.router)
    for name, listener in listeners(participants):
        event.listen(factory, name, listener)
    return factory
