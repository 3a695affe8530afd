"""Encrypted columns: identifiers stored sealed, found through a keyed blind index.

``EncryptedText("patients.phone")`` seals values on the way to the database and opens
them on the way back, with the keyring of the engine the statement runs on (attached by
``build_engine``), so two layers with different keys never mix them. Comparing such a
column in SQL can never match (every seal uses a fresh nonce): look values up through
their blind index column, declared with ``blind_index(...)`` and kept in step by a
``before_flush`` listener. :func:`encrypted_columns` lists them (with their contexts) for
rotation and revisions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, String, Text, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import MappedColumn, Mapper, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from ..errors import DataLayerError
from ..progress import ProgressCallback, Tally
from ..protection.keyring import Keyring
from .base import Base

_KEYRING_ATTR = "dr_assistant_keyring"
INDEX_LENGTH = 64


class EncryptedText(TypeDecorator[str]):
    """Text sealed with AES-GCM under the engine's active key; ``context`` is bound to it."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).seal(value, self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).open(value, self.context)


def blind_index(of: str) -> MappedColumn[Any]:
    """The blind index column of the encrypted attribute ``of`` (a hex HMAC)."""
    return mapped_column(String(INDEX_LENGTH), info={"blind_index_of": of})


def attach(engine: Engine, keyring: Keyring) -> None:
    """Make ``keyring`` the one every encrypted column of ``engine`` uses."""
    setattr(engine.dialect, _KEYRING_ATTR, keyring)


def keyring_of(dialect: Dialect) -> Keyring:
    keyring: Keyring | None = getattr(dialect, _KEYRING_ATTR, None)
    if keyring is None:
        raise DataLayerError("encrypted columns need an engine built by the data layer")
    return keyring


def session_keyring(session: Session | None) -> Keyring:
    """The keyring of the engine ``session`` is bound to (for stores that must seal values
    the same way: ``keyring.seal(value, context)`` / ``keyring.open(token, context)``)."""
    if session is None:
        raise DataLayerError("sealing a value needs a session bound to the layer's engine")
    return keyring_of(session.get_bind().dialect)


@functools.cache
def encrypted_columns(model: type) -> dict[str, str]:
    """Encrypted attributes of ``model``, each mapped to its encryption context."""
    mapper: Mapper[Any] = sa_inspect(model)
    return {
        attr.key: attr.columns[0].type.context
        for attr in mapper.column_attrs
        if isinstance(attr.columns[0].type, EncryptedText)
    }


@functools.cache
def blind_indexes(model: type) -> dict[str, str]:
    """Encrypted attributes of ``model`` that have a blind index, mapped to its attribute."""
    mapper: Mapper[Any] = sa_inspect(model)
    return {
        attr.columns[0].info["blind_index_of"]: attr.key
        for attr in mapper.column_attrs
        if "blind_index_of" in attr.columns[0].info
    }


def index_value(keyring: Keyring, model: type, key: str, value: str | None) -> str | None:
    """The blind index of ``value`` bound for ``model.key`` (``None`` stays ``None``)."""
    if value is None:
        return None
    return keyring.blind_index(value, encrypted_columns(model)[key])


def fill_blind_indexes(session: Session, _context: Any, _instances: Any) -> None:
    """``before_flush``: recompute the blind index of every new or changed encrypted value
    (after validation has normalized it, so any formatting of a value finds it)."""
    rows = [*session.new, *session.dirty]
    if not rows:
        return
    keyring = session_keyring(session)
    for row in rows:
        model: type = type(row)
        state = sa_inspect(row)
        for key, index_key in blind_indexes(model).items():
            if row in session.new or state.attrs[key].history.has_changes():
                setattr(row, index_key, index_value(keyring, model, key, getattr(row, key)))


def encrypted_models() -> list[type[Base]]:
    """Every mapped class with an encrypted column."""
    models: list[type[Base]] = [mapper.class_ for mapper in Base.registry.mappers]
    return [model for model in models if encrypted_columns(model)]


def rotate(engine: Engine, batch_size: int = 500, progress: ProgressCallback | None = None) -> int:
    """Re-seal every encrypted value not sealed under the active key and recompute blind
    indexes, ``batch_size`` rows per transaction; returns the rows rewritten. ``progress``
    hears of the rows examined after each batch, out of every row of the encrypted tables.

    Values are rewritten unchanged (no version bump, no audit event: the data is the same).
    An unknown key id stops the run with ``DecryptionError``; rows done so far stay done.
    """
    keyring = keyring_of(engine.dialect)
    models = encrypted_models()
    tally = Tally(progress, _row_count(engine, models) if progress is not None else None)
    rewritten = 0
    for model in models:
        for batch in _batches(engine, model, batch_size):
            with engine.begin() as connection:
                rewritten += _reseal(connection, keyring, model, batch)
            tally.advance(len(batch))
    tally.finish()
    return rewritten


def _row_count(engine: Engine, models: list[type[Base]]) -> int:
    with engine.connect() as connection:
        return sum(
            connection.scalar(select(func.count()).select_from(model.__table__)) or 0
            for model in models
        )


def _batches(engine: Engine, model: type[Base], size: int) -> Iterator[Sequence[Row[Any]]]:
    """Rows of ``model`` as (id, {column: stored text}), keyset-paginated by id."""
    table = model.__table__
    names = [*encrypted_columns(model), *blind_indexes(model).values()]
    stored = [table.c[name].cast(Text).label(name) for name in names]
    after = None
    while True:
        statement = select(table.c.id, *stored).order_by(table.c.id).limit(size)
        if after is not None:
            statement = statement.where(table.c.id > after)
        with engine.connect() as connection:
            rows = connection.execute(statement).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _reseal(
    connection: Connection, keyring: Keyring, model: type[Base], rows: Sequence[Row[Any]]
) -> int:
    table = model.__table__
    indexes = blind_indexes(model)
    count = 0
    for row in rows:
        stored = row._mapping
        values: dict[str, Any] = {}
        for key, context in encrypted_columns(model).items():
            token = stored[key]
            if token is None:
                continue
            plain = keyring.open(token, context)
            if keyring.needs_rotation(token):
                values[key] = plain  # the column type seals it under the active key
            index = keyring.blind_index(plain, context)
            if key in indexes and stored[indexes[key]] != index:
                values[indexes[key]] = index
        if values:
            connection.execute(update(table).where(table.c.id == row.id).values(**values))
            count += 1
    return count
