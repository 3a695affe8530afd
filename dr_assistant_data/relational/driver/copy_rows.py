"""``COPY ... FROM STDIN`` of validated rows, in PostgreSQL's text format.

Each value first goes through its column type's bind processing, as in any statement
(encrypted identifiers are sealed, JSON serialized, timestamps made UTC); what remains
(strings, numbers, booleans, dates, datetimes, UUIDs) is written as text, escaped as the
format requires (backslash, tab, newline, carriage return), ``None`` as ``\\N``. The
encoding of a row is worked out once per table and set of columns (:func:`_encoder`). Driver
errors become the contract's errors (``translate.py``), as for any statement; a refused
COPY names no row. :func:`insert_rows` picks COPY or a multi-row ``INSERT`` for a batch.
"""

from __future__ import annotations

import functools
import io
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg2
from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    Insert,
    Table,
    UniqueConstraint,
    insert,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import iterate

from .round_trips import deferred, transactional
from .translate import contract_error, translated

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts keyed by the same columns of ``table``; the others take their
    defaults) in the session's transaction: by one COPY when there are several on
    PostgreSQL, else one ``INSERT``."""
    if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
        copy_rows(session, table, rows)
    else:
        session.execute(insert(table), rows)


DEFERRED_ROWS = 20
"""At most this many rows go with the COMMIT (``deferred_rows``); more go by COPY."""


def deferred_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> bool:
    """Have ``rows`` (dicts keyed by the same columns of ``table``) inserted with the
    session's COMMIT, in its transaction (``round_trips.deferred``), when there are at
    most ``DEFERRED_ROWS`` and the transaction allows; ``False``: insert them now."""
    if len(rows) > DEFERRED_ROWS:
        return False
    connection = primary_connection(session, table)
    statement = _insert_of(connection.dialect, table, tuple(rows[0]))
    return deferred(connection, [(statement.sql, statement.bound(row)) for row in rows])


def primary_connection(session: Session, table: Table) -> Connection:
    """The session's connection for a write into ``table``: asked for as the INSERT it is,
    so that a session routing reads to a replica writes on the primary
    (``connection/replicas.py``)."""
    return session.connection(bind_arguments={"clause": insert_into(table)})


@functools.cache
def insert_into(table: Table) -> Insert:
    """``table.insert()``, built once per table: what a session routes a write by."""
    return table.insert()


def insert_row(
    session: Session,
    table: Table,
    row: dict[str, Any],
    sending: Callable[[Session], AbstractContextManager[object]],
) -> None:
    """Insert ``row`` (a value for every column of ``table`` it sets, its primary key new)
    in the session's transaction, by its INSERT compiled once per table and set of columns:
    no statement is built, compiled or looked up in a cache per call. Bound as any
    statement's values (sealed, serialized).

    When no other row can refuse it (:func:`checked_against_others` is false), it goes with
    the connection's next statement or its COMMIT (``round_trips.deferred``, ``seen``), if
    the transaction allows: later statements see it, and a refusal (a CHECK the validation
    let through) is the contract's error from the COMMIT, with nothing committed. Otherwise,
    or behind a transaction pooler, it is sent now, in the block ``sending(session)``,
    through the engine's events (``round_trips.py`` begins the transaction with it, the
    query log times it), and a refusal is the contract's error from this call."""
    connection = primary_connection(session, table)
    statement = _insert_of(connection.dialect, table, tuple(row))
    if not checked_against_others(table, row) and deferred(
        connection, [(statement.sql, statement.bound(row))], seen=True
    ):
        return
    with sending(session):
        _send_now(connection, statement.sql, statement.driver_parameters(row))


def checked_against_others(table: Table, row: Mapping[str, Any]) -> bool:
    """Whether the database checks new ``row`` of ``table`` against other rows: a value set
    in a column of a foreign key, a unique constraint or index (one that includes the
    primary key aside: a new key makes it unique), or a table with an exclusion
    constraint or a unique index whose NULLs are not distinct."""
    compared = _compared_columns(table)
    return compared is None or any(row.get(key) is not None for key in compared)


@functools.cache
def _compared_columns(table: Table) -> frozenset[str] | None:
    """The keys of ``table``'s columns a new row is checked against other rows by (see
    :func:`checked_against_others`), worked out once per table; ``None``: every column."""
    if any(isinstance(constraint, ExcludeConstraint) for constraint in table.constraints):
        return None
    primary = set(table.primary_key.columns)
    compared = {key.parent.key for key in table.foreign_keys}
    uniques: list[tuple[Sequence[Any], Any]] = [
        (list(constraint.columns), constraint)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    uniques += [(index.expressions, index) for index in table.indexes if index.unique]
    for expressions, unique in uniques:
        columns = {
            column for each in expressions for column in iterate(each) if isinstance(column, Column)
        }
        if columns & primary:
            continue
        if unique.dialect_options["postgresql"]["nulls_not_distinct"]:
            return None
        compared |= {column.key for column in columns}
    return frozenset(compared)


_send_now = translated(Connection.exec_driver_sql)


@dataclass(frozen=True)
class _Insert:
    """The INSERT of one row of given columns, compiled, with its bind processors."""

    sql: str
    processors: Mapping[str, Any]
    positions: tuple[str, ...] | None
    """The order of the values of a positional paramstyle (SQLite's ``?``)."""

    def bound(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``row``'s values as the statement binds them."""
        processors = self.processors
        return {
            key: value if (bind := processors.get(key)) is None else bind(value)
            for key, value in row.items()
        }

    def driver_parameters(self, row: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        """``bound(row)`` in the form the driver's paramstyle takes."""
        bound = self.bound(row)
        if self.positions is None:
            return bound
        return tuple(bound[name] for name in self.positions)


@functools.cache
def _insert_of(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Insert:
    """The INSERT of one row of ``keys``, compiled once, and its bind processors."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    positions = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Insert(compiled.string, compiled._bind_processors, positions)


def copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts keyed by the same columns of ``table``; the others take their
    server defaults) in one COPY, in the session's transaction."""
    keys = tuple(rows[0])
    encode = line_encoder(session.get_bind().dialect, table, keys)
    copy_lines(session, table, keys, [encode(row) for row in rows])


def line_encoder(
    dialect: Dialect, table: Table, keys: Sequence[str]
) -> Callable[[dict[str, Any]], str]:
    """The function that makes a row's line of a COPY of ``keys`` into ``table``: what
    ``copy_rows`` sends, made beforehand (in a worker process, ``bulk.py``) if need be."""
    return _encoder(dialect, table, tuple(keys))[1]


def copy_lines(session: Session, table: Table, keys: Sequence[str], lines: Sequence[str]) -> None:
    """Write rows made into COPY lines by ``line_encoder`` for ``keys`` in one COPY, in the
    session's transaction."""
    statement, _ = _encoder(session.get_bind().dialect, table, tuple(keys))
    connection = primary_connection(session, table)
    transactional(connection)  # the COPY belongs to the unit's transaction
    send_copy(connection, statement, "".join(lines))


def send_copy(connection: Connection, statement: str, data: str) -> None:
    """Send ``data`` (rows in COPY's text format) by ``statement`` on ``connection``."""
    cursor = connection.connection.cursor()
    try:
        cursor.copy_expert(statement, io.StringIO(data), size=COPY_CHUNK)
        return
    except psycopg2.Error as error:
        failure = contract_error(sa_exc.DBAPIError.instance(statement, None, error, psycopg2.Error))
    finally:
        cursor.close()
    raise failure


COPY_CHUNK = 1 << 20
"""Characters handed to the driver at a time."""


@functools.cache
def _encoder(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[str, Callable[[dict[str, Any]], str]]:
    """The COPY of ``keys`` (in the table's column order) into ``table``, and the
    function that makes one row's line of it."""
    given = [column for column in table.columns if column.key in keys]
    values = operator.itemgetter(*(column.key for column in given))
    texts = [_text_after(column.type.bind_processor(dialect)) for column in given]
    if len(given) == 1:
        only = texts[0]

        def encode(row: dict[str, Any]) -> str:
            return only(values(row)) + "\n"
    else:

        def encode(row: dict[str, Any]) -> str:
            return (
                "\t".join([text(value) for text, value in zip(texts, values(row), strict=True)])
                + "\n"
            )

    names = ", ".join(f'"{column.name}"' for column in given)
    return f'COPY "{table.name}" ({names}) FROM STDIN', encode


def _text_after(bind: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    """A column's text: its bind processing (if any), then the value's own text."""
    if bind is None:
        return _text

    def text(value: Any) -> str:
        return _text(bind(value))

    return text


def _text(value: Any) -> str:
    write = _TEXT_OF.get(type(value))
    return write(value) if write is not None else _escaped(str(value))


def _escaped(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


_TEXT_OF: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "\\N",
    str: _escaped,
    bool: lambda value: "t" if value else "f",
    int: str,
    float: str,
    Decimal: str,
    uuid.UUID: str,
    date: date.isoformat,
    datetime: datetime.isoformat,
}
"""The text of each kind of value, by its exact type (others: ``str``, escaped)."""
