"""Read replicas: which engine a session's statements go to.

PostgreSQL streaming replicas answer reads; the primary takes every write. The rules:

* a session not marked read-only (``dl.unit_of_work(...)``) uses the primary only;
* a read-only session (``dl.unit_of_work(..., read_only=True)``) reads from one usable
  replica, chosen when it first needs a connection; once it flushes or writes, the flush
  and every later statement go to the primary, as does everything when ``uow.use_primary()``
  marked it as needing fresh data;
* read-your-writes: for ``DB_REPLICA_STICKY`` seconds after an actor's unit of work
  committed a write, that actor's read-only units of work read from the primary (in this
  process: another process of the same deployment does not know of the write). Across
  processes, pass the writer's ``uow.commit_lsn`` (the primary's WAL position after the
  commit) as ``after_lsn`` of the read-only unit of work: it reads from a replica only if
  that replica has replayed past it (``pg_last_wal_replay_lsn()``), else from the primary;
* a replica is usable when it answers and its replay lag is at most ``DB_REPLICA_MAX_LAG``
  seconds; the check (one query) is cached for ``DB_REPLICA_CHECK_INTERVAL`` seconds, so a
  replica that dies or falls behind is skipped at the next check. None usable: the primary.

Routing is SQLAlchemy's documented ``Session.get_bind`` override (``session.py``); failover
of the primary itself is PostgreSQL's business (a promoted replica behind the primary's
address), not this module's.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.dml import UpdateBase

from ...session_context import context_of
from ...settings import Settings
from ..audit.trail import trail_of
from ..models import AuditEvent
from .pool import pool_state

AUDIT_EVENTS = AuditEvent.__table__
"""Audit events (of audited reads too) go to the primary without pinning the session to it
or making its actor sticky: recording a read is not a write the reader must then see."""

REPLAYED_PAST = text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)")

LAG_QUERY = text(
    "SELECT pg_is_in_recovery(), CASE"
    " WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)
"""Seconds the replica's replay is behind: 0 when it has replayed all it received, else
the age of the last replayed transaction (``NULL``: nothing replayed yet, unusable)."""


@dataclasses.dataclass
class ReplicaState:
    engine: Engine
    checked_at: float = float("-inf")
    usable: bool = False
    lag: float | None = None
    error: str | None = None


class ReplicaRouter:
    """The replicas of one ``DataLayer``, their last known state and the sticky actors."""

    def __init__(
        self,
        settings: Settings,
        build: Callable[[Settings], Engine],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._sticky: dict[str, float] = {}
        self.replicas = [
            ReplicaState(
                build(dataclasses.replace(settings, database_url=url, database_replica_urls=()))
            )
            for url in settings.database_replica_urls
        ]

    def route(self, session: Session, clause: Any) -> Engine | None:
        """The replica engine for this statement of ``session``; ``None``: the primary."""
        context = context_of(session)
        if isinstance(clause, UpdateBase) and clause.table is AUDIT_EVENTS:
            return None  # appended on the primary; the session's reads stay where they are
        if session._flushing or isinstance(clause, UpdateBase):
            context.needs_primary = context.wrote = True
        if not context.read_only or context.needs_primary:
            return None
        if not context.replica_chosen:
            replica = None if self._is_sticky(_actor(session)) else self.pick()
            after = context.after_lsn
            if replica is not None and after is not None and not _replayed(replica, after):
                replica = None
            context.replica, context.replica_chosen = replica, True
        return context.replica

    def pick(self) -> Engine | None:
        """A usable replica at random, or ``None`` when none is usable."""
        usable = [state.engine for state in self.replicas if self._check(state).usable]
        return random.choice(usable) if usable else None  # noqa: S311 - load spreading

    def wrote(self, actor: str | None) -> None:
        """``actor`` committed a write: its reads go to the primary for the sticky window."""
        if actor is None or self.settings.db_replica_sticky <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._sticky) > 10_000:  # forget the expired ones now and then
                self._sticky = {a: t for a, t in self._sticky.items() if t > now}
            self._sticky[actor] = now + self.settings.db_replica_sticky

    def primary_lsn(self, session: Session) -> str | None:
        """The primary's WAL position now (after a commit: at or past its record); ``None``
        if the primary cannot say (the commit stands: raising would report it failed)."""
        # the session is pinned there; its binds are engines, never connections
        primary = cast(Engine, session.get_bind(clause=text("SELECT 1")))
        try:
            with primary.connect() as connection:
                return str(connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())
        except SQLAlchemyError:
            return None

    def _is_sticky(self, actor: str | None) -> bool:
        return actor is not None and self._sticky.get(actor, float("-inf")) > self._clock()

    def _check(self, state: ReplicaState) -> ReplicaState:
        now = self._clock()
        if now - state.checked_at < self.settings.db_replica_check_interval:
            return state
        state.checked_at = now  # other threads keep the last verdict while this one checks
        try:
            with state.engine.connect() as connection:
                _in_recovery, lag = connection.execute(LAG_QUERY).one()
        except SQLAlchemyError as error:
            cause = error.orig if isinstance(error, DBAPIError) else error
            state.usable, state.lag, state.error = False, None, type(cause).__name__
            return state
        state.lag = None if lag is None else float(lag)
        state.usable = state.lag is not None and state.lag <= self.settings.db_replica_max_lag
        state.error = None
        return state

    def lags(self) -> list[float | None]:
        """Each replica's lag at its last check, without checking again."""
        return [state.lag for state in self.replicas]

    def health(self) -> list[dict[str, Any]]:
        """Each replica (password hidden), checked now: reachable, lag, used or skipped."""
        report = []
        for state in self.replicas:
            state.checked_at = float("-inf")
            self._check(state)
            entry: dict[str, Any] = {
                "url": state.engine.url.render_as_string(hide_password=True),
                "ok": state.error is None,
                "usable": state.usable,
                "lag_s": None if state.lag is None else round(state.lag, 3),
                "pool": pool_state(state.engine.pool),
            }
            if state.error is not None:
                entry["error"] = state.error
            report.append(entry)
        return report

    def close(self) -> None:
        for state in self.replicas:
            state.engine.dispose()


def reads_from_replica(session: Session) -> bool:
    """True when ``session``'s reads may come from a replica (and so may lag)."""
    context = context_of(session)
    return context.router is not None and context.read_only and not context.needs_primary


def mark_written(session: Session, _context: Any) -> None:
    """``after_flush``: the transaction wrote."""
    context_of(session).wrote = True


def committed(session: Session) -> None:
    """After a commit that wrote: the actor's reads stick to the primary, and the
    commit's WAL position is due (:func:`commit_lsn`)."""
    context = context_of(session)
    if context.wrote and context.router is not None:
        context.wrote = False
        context.router.wrote(_actor(session))
        context.commit_lsn_due = True  # read once the connection is back in the pool


def commit_lsn(session: Session, previous: str | None) -> str | None:
    """After a commit that wrote, the primary's WAL position (for ``after_lsn``), ``None``
    if the primary could not be asked; ``previous`` after a commit that wrote nothing.
    Costs one query, on a pooled primary connection, when replicas are set."""
    context = context_of(session)
    if not context.commit_lsn_due or context.router is None:
        return previous
    context.commit_lsn_due = False
    return context.router.primary_lsn(session)


def _replayed(replica: Engine, lsn: str) -> bool:
    """Whether ``replica`` has replayed the primary's WAL up to ``lsn`` (False if it
    cannot say: the caller then reads the primary)."""
    try:
        with replica.connect() as connection:
            return bool(connection.execute(REPLAYED_PAST, {"lsn": lsn}).scalar())
    except SQLAlchemyError:
        return False


def forget_write(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        context_of(session).wrote = False


def _actor(session: Session) -> str | None:
    return getattr(trail_of(session), "actor", None)
