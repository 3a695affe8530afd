"""The session factory and the rules every session of the layer keeps.

The listeners defined here hold for every write however it is made (a repository call, a
plain attribute change, a factory in a test); ``dr_assistant_data/commit.py`` registers
them, with every other listener of the layer's sessions, in one documented order:

* ``before_flush`` (:func:`validate_rows`) refuses writes without a required actor
  (production) and validates every new and changed row before any SQL is emitted;
* ``after_flush`` (:func:`collect_audit`) hands the flushed changes to the unit of work's
  audit trail;
* ``after_begin`` (:func:`tag_correlation`) tags the connection with the unit of work's
  correlation id for the slow-query and failure log lines (``query_log.py``);
* ``do_orm_execute`` (:func:`hide_deleted`) hides soft-deleted rows from every top-level
  read, unless the statement carries ``execution_options(include_deleted=True)``;
* ``loaded_as_persistent`` (:func:`hold`) keeps each loaded entity alive with its session.

Every statement, whoever sends it (a repository, a caller's own query through
``uow.session``, a lazy load, the flush at commit), passes through :class:`LayerSession`,
the one place where database failures become the contract's errors; a repository's read
by id, which skips the ORM query (``repositories/by_id.py``), translates and retries its
SELECT the same way and applies the soft-delete rule in its own WHERE.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    SessionTransaction,
    sessionmaker,
    with_loader_criteria,
)

from ..session_context import context_of
from .audit.trail import trail_of
from .base import SoftDeleted
from .connection.query_log import CORRELATION_KEY
from .driver.translate import translated
from .rules import validation as rules

F = TypeVar("F", bound=Callable[..., Any])


def retried_once(method: F) -> F:
    """``method`` run again once when its statement began the session's transaction, on a
    connection found dead as it ran (``driver/round_trips.py``), with nothing pending to flush:
    no part of that transaction can have taken effect, and a fresh connection replaces
    the dead one."""

    @functools.wraps(method)
    def run(session: Session, *args: Any, **kwargs: Any) -> Any:
        first = not session.in_transaction() and not (
            session.new or session.dirty or session.deleted
        )
        try:
            return method(session, *args, **kwargs)
        except sa_exc.DBAPIError as error:
            if not (first and error.connection_invalidated):
                raise
        session.rollback()
        return method(session, *args, **kwargs)

    return cast(F, run)


class LayerSession(Session):
    """A session whose failures are the contract's errors (see ``driver/translate.py``).

    SQLAlchemy routes ``get``, ``refresh``, lazy and eager loads through ``execute``, and
    autoflush through ``flush``, so these five methods are the whole boundary.
    """

    execute = translated(retried_once(Session.execute))
    # SQLAlchemy 2.1's first overload of scalar (TypedReturnsRows[Never]) does not match
    # itself once wrapped (2.0's does); execute and scalars check
    scalar = translated(retried_once(Session.scalar))  # type: ignore[assignment, unused-ignore]
    scalars = translated(retried_once(Session.scalars))
    flush = translated(Session.flush)
    commit = translated(Session.commit)

    def get_bind(self, mapper: Any = None, *, clause: Any = None, **kw: Any) -> Any:
        """A read replica when ``connection/replicas.py`` routes the statement there, else the
        primary (SQLAlchemy's documented routing-session recipe)."""
        router = context_of(self).router
        replica = None if router is None else router.route(self, clause)
        if replica is not None:
            return replica
        return super().get_bind(mapper, clause=clause, **kw)


def build_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose loaded attributes stay readable after commit (``expire_on_commit``
    off), so entities returned by a unit of work can be used once it has ended. Without
    listeners: ``commit.session_factory`` is the one that registers them."""
    factory: sessionmaker[Session] = sessionmaker(
        bind=engine, class_=LayerSession, expire_on_commit=False
    )
    return factory


def hold(session: Session, instance: object) -> None:
    """Keep a loaded entity alive as long as its session (``SessionContext.held``)."""
    context_of(session).held[id(instance)] = instance


def validate_rows(session: Session, _context: Any, _instances: Any) -> None:
    """The actor is present when required; every new and changed row is valid."""
    trail = trail_of(session)
    if trail is not None and (session.new or session.dirty or session.deleted):
        trail.check_actor()
    for row in session.new:
        rules.validate(row, changed=None)
    for row in session.dirty:
        state = inspect(row)
        changed = {
            attr.key
            for attr in state.attrs
            if attr.key in state.mapper.column_attrs and attr.history.has_changes()
        }
        if changed:
            rules.validate(row, changed=changed)


def collect_audit(session: Session, _context: Any) -> None:
    """The flushed changes go to the unit of work's audit trail."""
    trail = trail_of(session)
    if trail is not None:
        trail.collect(session)


def tag_correlation(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """The connection carries the unit of work's correlation id for the log lines."""
    trail = trail_of(session)
    if trail is not None:
        connection.info[CORRELATION_KEY] = trail.correlation_id


def _not_deleted(cls: type[SoftDeleted]) -> Any:
    return cls.deleted_at.is_(None)


def hide_deleted(state: ORMExecuteState) -> None:
    """Soft-deleted rows are left out of top-level reads unless ``include_deleted``."""
    if (
        state.is_select
        and not state.is_column_load
        and not state.is_relationship_load
        and not state.execution_options.get("include_deleted", False)
    ):
        state.statement = state.statement.options(
            with_loader_criteria(SoftDeleted, _not_deleted, include_aliases=True)
        )
