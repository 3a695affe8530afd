"""Reads by primary key without the ORM's query machinery: one Core statement per model,
compiled once, its row made an entity straight away.

``Session.get`` builds an ORM query, compiles its state, runs the session's execute
events, loads the row through the loader and books it in the identity map: most of the
cost of a read by id, and none of it needed to build one entity from one row. A read here:

* returns the entity the session already holds under that id, as it is (read-your-writes;
  a soft-deleted one is for the caller to hide; an expired one goes to ``Session.get``,
  which refreshes it);
* flushes first when the session holds unflushed changes, as ``Session.get`` would;
* runs one SELECT of the model's columns (``deleted_at IS NULL`` for soft-deleted tables,
  as every top-level read of the layer), built once per model and compiled once per
  dialect (SQLAlchemy's compiled cache), on the engine the session routes it to
  (``Session.get_bind``: a read replica for a read-only unit of work). When the session
  holds no transaction and that engine reads outside transactions
  (``driver/round_trips.py``), the SELECT runs alone on a pooled connection, as the
  session's first SELECT would, the session's ``after_begin`` listeners applied to that
  connection (there is no ``SessionTransaction``: they are given ``None``); the session
  begins no transaction, so a unit of work that only read has nothing to commit.
  Otherwise (a transaction pooler, SQLite, a session that has written) it runs on the
  session's own connection and sees the unit's uncommitted writes;
* attaches the row to the session as a loaded entity (``caching/attach.py``): persistent,
  clean, its JSON columns tracking in-place changes, its lazy loads working, kept alive
  with its session; an edit is saved on commit, guarded by its version and audited, as
  for any loaded entity. Attaching costs a few dozen calls against some four hundred for
  the SELECT; an entity attached only on its first edit would meanwhile be detached (its
  lazy loads refused, a second read of the id a second object), so it is attached at once.

The session's ``do_orm_execute`` listeners do not see these reads (there is no ORM
statement); failures are the contract's errors, and a read that ran alone or began the
session's transaction, on a connection found dead, is run once more on a fresh one
(nothing of it can have taken effect), as ``LayerSession.execute`` does.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, Select, bindparam, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state

from ..base import Entity, SoftDeleted
from ..caching.attach import attach_as_loaded
from ..driver.round_trips import READS_OUTSIDE
from ..driver.translate import translated

E = TypeVar("E", bound=Entity)


class ByIdRead:
    """The statement and the attribute names of one model's read by id."""

    def __init__(self, model: type[Entity]) -> None:
        self.mapper: Mapper[Any] = inspect(model)
        attributes = list(self.mapper.column_attrs)
        self.keys = [attribute.key for attribute in attributes]
        (key_column,) = self.mapper.primary_key
        statement = select(*(attribute.columns[0] for attribute in attributes)).where(
            key_column == bindparam("id", type_=key_column.type)
        )
        if issubclass(model, SoftDeleted):
            statement = statement.where(model.deleted_at.is_(None))
        self.statement: Select[Any] = statement


@cache
def by_id_read(model: type[Entity]) -> ByIdRead:
    return ByIdRead(model)


def read_by_id(session: Session, model: type[E], key: uuid.UUID) -> E | None:
    """The entity of ``model`` with primary key ``key``, attached to ``session``, or
    ``None`` when there is no such row (or it is soft-deleted)."""
    read = by_id_read(model)
    identity = read.mapper.identity_key_from_primary_key((key,))
    held = session.identity_map.get(identity)
    if held is not None:
        if instance_state(held).expired:  # refreshed, or None if gone, as Session.get does
            return session.get(model, key)
        found: E = held
        return found
    if session.autoflush and (session.new or session.deleted or session.dirty):
        session.flush()
    row = _fetch(session, read, key)
    if row is None:
        return None
    entity: E = attach_as_loaded(
        session, read.mapper, identity, dict(zip(read.keys, row, strict=True))
    )
    return entity


@translated
def _fetch(session: Session, read: ByIdRead, key: uuid.UUID) -> Row[Any] | None:
    """The row, read as ``LayerSession.execute`` reads: a read that began the session's
    transaction (or ran alone) on a connection found dead is run once more."""
    began = not session.in_transaction()
    try:
        return _select(session, read, key)
    except sa_exc.DBAPIError as error:
        if not (began and error.connection_invalidated) or (
            session.new or session.dirty or session.deleted
        ):
            raise
    session.rollback()
    return _select(session, read, key)


def _select(session: Session, read: ByIdRead, key: uuid.UUID) -> Row[Any] | None:
    parameters = {"id": key}
    if not session.in_transaction():
        bind = session.get_bind(read.mapper, clause=read.statement)
        if isinstance(bind, Engine) and getattr(bind.dialect, READS_OUTSIDE, False):
            with bind.connect() as alone:
                session.dispatch.after_begin(session, None, alone)
                return alone.execute(read.statement, parameters).first()
    connection = session.connection(
        bind_arguments={"mapper": read.mapper, "clause": read.statement}
    )
    return connection.execute(read.statement, parameters).first()
