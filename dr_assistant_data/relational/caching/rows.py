"""Rows as JSON and back: cached column values restored as session-attached entities.

A row is stored as the list of its column values in column order (UUIDs, dates, datetimes
and decimals as strings; the schema tag in the key pins the order and types). Restoring
builds the instance without SQL and attaches it to the session as if loaded
(``attach.py``): the entity can be read, edited and is saved on commit like any loaded
one, its ``version`` guarding the UPDATE. If the session already holds that row, that
object is returned instead.

The whole row is sealed by the store on its way to Redis (``cache/sealing.py``). Secret columns
(``SECRET``: a user's ``password_hash``) are never cached at all: a restored entity has
them expired, so the first access loads them from the database in its unit of work, and an
edit saved from a cached entity leaves them as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import JSON, inspect
from sqlalchemy.orm import Mapper, Session

from ..base import SECRET, Entity
from .attach import attach_as_loaded

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]
Row = list[Any]

UUIDS_REMEMBERED = 8192
"""Decoded ids kept for reuse (immutable, so shared): a doctor's day names its doctor in
every appointment, and the same patients and doctors come back request after request."""

_CODECS: dict[type | None, tuple[Encode, Decode]] = {
    uuid.UUID: (str, lru_cache(maxsize=UUIDS_REMEMBERED)(uuid.UUID)),
    datetime: (datetime.isoformat, datetime.fromisoformat),
    date: (date.isoformat, date.fromisoformat),
    Decimal: (str, Decimal),
}


def _nullable(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else function(value)


class RowCodec:
    """Encode and restore one mapped class."""

    def __init__(self, model: type[Entity]) -> None:
        self.mapper: Mapper[Any] = inspect(model)
        self.keys: list[str] = []
        self.encoders: list[Encode] = []
        self.typed: list[tuple[str, Decode]] = []  # the columns JSON cannot carry as they are
        self.withheld: list[str] = []  # secret: never cached
        self.documents: list[str] = []  # JSON: mutable in place once decoded
        for attribute in self.mapper.column_attrs:
            if attribute.columns[0].info.get(SECRET):
                self.withheld.append(attribute.key)
                continue
            encode, decode = _CODECS.get(_python_type(attribute.columns[0])) or (None, None)
            self.keys.append(attribute.key)
            if isinstance(attribute.columns[0].type, JSON):
                self.documents.append(attribute.key)
            self.encoders.append(_nullable(encode) if encode else _identity)
            if decode is not None:
                self.typed.append((attribute.key, decode))

    def encode(self, row: Entity) -> Row:
        return [
            encode(getattr(row, key)) for key, encode in zip(self.keys, self.encoders, strict=True)
        ]

    def decode(self, values: Row) -> dict[str, Any]:
        """The column values of an encoded row, by attribute name."""
        decoded = dict(zip(self.keys, values, strict=True))
        for key, decode in self.typed:
            if decoded[key] is not None:
                decoded[key] = decode(decoded[key])
        return decoded

    def restore(self, session: Session, values: Row) -> Any:
        decoded = self.decode(values)
        identity = self.mapper.identity_key_from_primary_key((decoded["id"],))
        existing = session.identity_map.get(identity)
        if existing is not None:
            return existing
        row = attach_as_loaded(session, self.mapper, identity, decoded)
        if self.withheld:
            session.expire(row, self.withheld)
        return row


@cache
def codec_for(model: type[Entity]) -> RowCodec:
    return RowCodec(model)


def _identity(value: Any) -> Any:
    return value


def _python_type(column: Any) -> type | None:
    kind = getattr(column.type, "impl_instance", column.type)  # a TypeDecorator's own type
    try:
        python_type: type = kind.python_type
        return python_type
    except NotImplementedError:
        return None
