"""``COPY ... FROM STDIN`` of validated rows, in PostgreSQL's text format.

Each value first goes through its column type's bind processing, as in any statement
(encrypted identifiers are sealed, JSON serialized, timestamps made UTC); what remains
(strings, numbers, booleans, dates, datetimes, UUIDs) is written as text, escaped as the
format requires (backslash, tab, newline, carriage return), ``None`` as ``\\N``. Driver
errors become the contract's errors (``translate.py``), as for any statement; a refused
COPY names no row. :func:`insert_rows` picks COPY or a multi-row ``INSERT`` for a batch.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import psycopg2
from sqlalchemy import Dialect, Table, insert
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from .round_trips import deferred, transactional
from .translate import contract_error

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
    connection = session.connection(bind_arguments={"clause": table.insert()})
    statement, processors = _insert_of(connection.dialect, table, tuple(rows[0]))
    bound = [
        {
            key: value if (bind := processors.get(key)) is None else bind(value)
            for key, value in row.items()
        }
        for row in rows
    ]
    return deferred(connection, [(statement, values) for values in bound])


@functools.cache
def _insert_of(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[str, Mapping[str, Any]]:
    """The INSERT of one row of ``keys``, compiled once, and its bind processors."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    return compiled.string, compiled._bind_processors


def copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts keyed by the same columns of ``table``; the others take their
    server defaults) in one COPY, in the session's transaction."""
    dialect = session.get_bind().dialect
    given = [column for column in table.columns if column.key in rows[0]]
    columns = [(column.key, column.type.bind_processor(dialect)) for column in given]
    buffer = io.StringIO()
    for row in rows:
        values = [row[key] if bind is None else bind(row[key]) for key, bind in columns]
        buffer.write("\t".join([_text(value) for value in values]))
        buffer.write("\n")
    buffer.seek(0)
    names = ", ".join(f'"{column.name}"' for column in given)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    # described as the INSERT it is, so a session that routes reads to a replica writes here
    # on the primary (``replicas.py``)
    connection = session.connection(bind_arguments={"clause": table.insert()})
    transactional(connection)  # the COPY belongs to the unit's transaction
    cursor = connection.connection.cursor()
    try:
        cursor.copy_expert(statement, buffer)
        return
    except psycopg2.Error as error:
        failure = contract_error(sa_exc.DBAPIError.instance(statement, None, error, psycopg2.Error))
    finally:
        cursor.close()
    raise failure


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        value = value.isoformat()
    return str(value).translate(_ESCAPES)
