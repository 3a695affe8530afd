"""What the packages of the layer tell each other about one SQLAlchemy session, typed.

One :class:`SessionContext` per session, kept in ``session.info`` under one key and read
only through :func:`context_of`. A session factory's services (the cache store, the replica
router) are set once on the factory (:func:`configure`) and copied into each new session's
context; the rest is the session's own state, from its unit of work and its listeners.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .cache.store import CacheStore


class Trail(Protocol):
    """The audit trail of the unit of work owning a session (``relational/audit/trail.py``,
    which reads it back as its own class)."""

    actor: str | None


class Router(Protocol):
    """Where a session's reads go (``relational/connection/replicas.py``)."""

    def route(self, session: Session, clause: Any) -> Engine | None:
        """The replica for this statement of ``session``, or ``None``: the primary."""

    def wrote(self, actor: str | None) -> None:
        """``actor`` just committed a write: its reads go to the primary for a while."""

    def primary_lsn(self, session: Session) -> str | None:
        """The primary's WAL position, read through ``session``."""


INFO_KEY = "dr_assistant"
"""The one key of ``session.info`` the layer uses."""


@dataclass
class SessionContext:
    # the factory's services
    cache_store: CacheStore | None = None
    """Where the session's cached reads live and its invalidations go."""
    router: Router | None = None
    """Routes the session's reads to a replica (when replicas are configured)."""

    # set by the unit of work that owns the session
    audit: Trail | None = None
    read_only: bool = False
    after_lsn: str | None = None
    """The primary's WAL position a replica must have replayed to serve the reads."""

    # kept by the listeners
    owed: set[str] | None = None
    """Cache keys owed since the last commit; not ``None`` once the session has written
    (it then reads past the shared cache until the transaction ends)."""
    embedded: dict[Any, set[Any]] | None = None
    """The ids of rows written since the last commit that cached lists embed, by list."""
    embedded_committed: dict[Any, set[Any]] | None = None
    """Those of the transaction just committed: the entries that hold them are looked up
    again once it has ended."""
    outbox_row: int | None = None
    """The transaction's ``cache_invalidations`` row."""
    undelivered_row: int | None = None
    """That row once its delivery failed (announced when the transaction has ended)."""
    needs_primary: bool = False
    """Reads go to the primary from now on (the session wrote, or the caller asked)."""
    replica_chosen: bool = False
    replica: Engine | None = None
    """The replica the session reads from once chosen (``None``: the primary)."""
    wrote: bool = False
    """The current transaction wrote (its commit makes the actor's reads sticky)."""
    commit_lsn_due: bool = False
    """The last commit wrote: its WAL position is still to be read."""
    held: dict[int, Any] = dataclasses.field(default_factory=dict)
    """Every entity the session loaded (by ``id()``), held strongly: the identity map
    holds clean entities weakly, so one edited in place without a reference
    (``get(id).allergies.append(...)``) would be collected, and its edit lost, before the
    flush. A streamed read (``iterate``) lets go of its rows, to keep memory flat."""

    def let_go(self, rows: Iterable[object]) -> None:
        """Stop holding ``rows``: a streamed read's, so memory stays flat (``held``)."""
        for row in rows:
            self.held.pop(id(row), None)


def context_of(session: Session) -> SessionContext:
    """The session's context, made on first use from its factory's services (an empty one
    for a session no factory of the layer made)."""
    found: SessionContext | _Services | None = session.info.get(INFO_KEY)
    if isinstance(found, SessionContext):
        return found
    services = found or _Services()
    context = SessionContext(cache_store=services.cache_store, router=services.router)
    session.info[INFO_KEY] = context
    return context


def configure(
    factory: sessionmaker[Any],
    *,
    cache_store: CacheStore | None = None,
    router: Router | None = None,
) -> None:
    """Give every new session of ``factory`` this cache store or this replica router."""
    info = factory.kw.get("info", {})
    current: _Services = info.get(INFO_KEY) or _Services()
    services = _Services(cache_store or current.cache_store, router or current.router)
    factory.configure(info={**info, INFO_KEY: services})


@dataclass(frozen=True)
class _Services:
    """A factory's services, in its ``info`` (which each new session copies)."""

    cache_store: CacheStore | None = None
    router: Router | None = None
