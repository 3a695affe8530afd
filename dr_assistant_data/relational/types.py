"""Column types that behave the same on PostgreSQL and on the embedded SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..errors import ValidationError


def json_document() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


class TrackedDict(MutableDict[str, Any]):
    """A JSON object whose in-place changes are saved; anything else is refused on assignment
    (SQLAlchemy must wrap the value at that moment, before validation could run)."""

    @classmethod
    def coerce(cls, key: str, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValidationError(key, "must be an object")
        return super().coerce(key, value)


class TrackedList(MutableList[Any]):
    """A JSON list whose in-place changes (``append``...) are saved."""

    @classmethod
    def coerce(cls, key: str, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise ValidationError(key, "must be a list")
        return super().coerce(key, value)


# Separate type instances: ``as_mutable`` binds its tracker to the instance it is given.
MutableJSONDict = TrackedDict.as_mutable(json_document())
MutableJSONList = TrackedList.as_mutable(json_document())


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE``; values are always timezone-aware UTC in Python.

    Naive datetimes, and moments that fall outside the years 1 to 9999 once in UTC (which
    Python cannot hold: ``0001-01-01T00:00:00+14:00``), are refused (validation rejects
    them before they get here; this is the last line). SQLite has no time zone type, so
    UTC is stored naive there and re-attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use a timezone-aware value")
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp outside the years 1 to 9999 in UTC refused") from None
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)
