"""Keyset (cursor) pages: each page starts after the last row of the one before, by its
sort values, so page 1,000 costs what page 1 does and rows written meanwhile never shift
a page (an offset re-counts every row before it).

The cursor is opaque to callers: URL-safe base64 of JSON holding the sort terms and the
last row's values. Decoding checks its shape, that it was made for the same ordering, and
each value against its column's type; the values only ever reach SQL as bound parameters.
Anything else — garbled, truncated, forged or from another listing — is a
``ValidationError`` on ``cursor``. A well-formed forged cursor can only choose where a
page starts: filters and soft-delete rules apply as to any read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, or_

from ...errors import ValidationError
from ...values import fields

T = TypeVar("T")

PARSED: dict[type, fields.Field] = {
    uuid.UUID: fields.UUIDField(),
    datetime: fields.Timestamp(),
    date: fields.Day(),
}
"""Sort values a cursor holds as text, read back with the checks of their columns."""

Term = tuple[Any, bool]
"""A sort column (an ORM attribute) and whether it is descending."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page and the cursor of the next (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None


def order(terms: Sequence[Term]) -> list[Any]:
    """The ORDER BY clauses of ``terms``."""
    return [column.desc() if descending else column.asc() for column, descending in terms]


def after(terms: Sequence[Term], cursor: str) -> ColumnElement[bool]:
    """The condition selecting the rows that sort after ``cursor`` under ``terms``."""
    values = decode(terms, cursor)
    clauses = []
    for position, (column, descending) in enumerate(terms):
        equal = [terms[i][0] == values[i] for i in range(position)]
        beyond = column < values[position] if descending else column > values[position]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def page(terms: Sequence[Term], rows: list[T], limit: int) -> Page[T]:
    """``rows`` holds up to ``limit + 1`` rows: the extra one only says a next page exists."""
    if len(rows) <= limit:
        return Page(rows, None)
    items = rows[:limit]
    return Page(items, encode(terms, items[-1]))


def encode(terms: Sequence[Term], row: object) -> str:
    values = [_plain(getattr(row, column.key)) for column, _ in terms]
    content = json.dumps({"o": _signature(terms), "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(content.encode()).decode().rstrip("=")


def decode(terms: Sequence[Term], cursor: str) -> list[Any]:
    if not isinstance(cursor, str) or len(cursor) > 2048:
        raise _garbled()
    content = _content(cursor)
    if not isinstance(content, dict) or set(content) != {"o", "v"}:
        raise _garbled()
    if content["o"] != _signature(terms):
        raise ValidationError("cursor", "belongs to another ordering; start from the first page")
    values = content["v"]
    if not isinstance(values, list) or len(values) != len(terms):
        raise _garbled()
    return [_typed(column, value) for (column, _), value in zip(terms, values, strict=True)]


def _content(cursor: str) -> Any:
    """The JSON inside ``cursor``, or ``None``. The decoder's error (which holds the decoded
    text) is dropped here, so the ``ValidationError`` raised instead chains nothing."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: deep nesting
        return None


def _signature(terms: Sequence[Term]) -> list[str]:
    return [("-" if descending else "") + column.key for column, descending in terms]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _typed(column: Any, value: Any) -> Any:
    """``value`` as a bound parameter of ``column``: of its type, and nothing the database
    would refuse (text with NUL or a lone surrogate, an integer beyond 64 bits, NaN)."""
    kind = getattr(column.type, "impl_instance", column.type).python_type  # a decorator's own
    parsed = PARSED.get(kind)
    if parsed is not None:
        return parsed.convert(value, "cursor")
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise _garbled()
    if isinstance(value, str):
        fields.check_text(value, "cursor")
    if _unstorable(value):
        raise _garbled()
    return value


def _unstorable(value: Any) -> bool:
    """NaN, an infinity, or an integer beyond PostgreSQL's 64 bits."""
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, int) and not -(2**63) <= value < 2**63


def _garbled() -> ValidationError:
    return ValidationError("cursor", "is not a valid page cursor")
