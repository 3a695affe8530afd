"""``COPY ... FROM STDIN`` of validated rows, in PostgreSQL's text format.

Values arrive already cleaned by ``rules.validate`` (strings, numbers, booleans, dates,
aware datetimes, UUIDs, JSON lists and objects), so encoding is a type dispatch; text is
escaped as the format requires (backslash, tab, newline, carriage return), ``None`` is
``\\N``. Driver errors become the contract's errors (``translate.py``), as for any
statement; a refused COPY names no row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg2
from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from .translate import contract_error

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts keyed by every column of ``table``) in one COPY, in the
    session's transaction."""
    names = [column.key for column in table.columns]
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join([_text(row[name]) for name in names]))
        buffer.write("\n")
    buffer.seek(0)
    columns = ", ".join(f'"{column.name}"' for column in table.columns)
    statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
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
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, datetime | date):
        value = value.isoformat()
    return str(value).translate(_ESCAPES)
