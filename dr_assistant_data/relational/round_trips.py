"""Fewer round trips to PostgreSQL, with the same guarantees.

**No ping before each checkout.** A pooled connection is checked without a round trip: if
its socket has something to read while it sits idle, the server has closed it (a restart,
``pg_terminate_backend``, an idle timeout: PostgreSQL says so before closing) and the pool
replaces it (``DisconnectionError`` at checkout: SQLAlchemy's documented way to discard a
connection and take another). A connection that dies while in use fails its statement;
SQLAlchemy then invalidates it and every pooled connection older than the failure
(``is_disconnect``), and the session retries a read that began its transaction once
(``session.py``): nothing of that transaction can have taken effect.

**No BEGIN or COMMIT for reads.** A unit of work's connection starts in autocommit: its
SELECTs run alone (a streamed one, on a server-side cursor, excepted), seeing what each
statement of a READ COMMITTED transaction would see. The first statement that is not a
plain SELECT (a flush, ``FOR UPDATE``, a savepoint, a caller's own SQL, a COPY through
:func:`transactional`) turns autocommit off first, so psycopg2 opens the transaction with
it and the unit's writes, locks and audit events commit or roll back together. A unit
that only read sends neither BEGIN nor COMMIT. Not behind a transaction pooler, whose
``SET LOCAL`` statement timeout needs a transaction around every statement.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE as IDLE
from sqlalchemy import CompoundSelect, Connection, Engine, Select, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, SessionTransaction

READS_OUTSIDE = "reads_outside_transaction"
"""On a dialect: its engine's units of work read in autocommit. In a pooled connection's
``info``: this checkout does, until its first write."""


def install(engine: Engine, *, reads_outside_transactions: bool) -> None:
    """Check pooled connections without a ping; with ``reads_outside_transactions``, let
    units of work read without a transaction (see the module docstring)."""
    event.listen(engine, "checkout", _discard_if_closed_by_server)
    if reads_outside_transactions:
        setattr(engine.dialect, READS_OUTSIDE, True)
        event.listen(engine, "before_cursor_execute", _transaction_before_write)
        event.listen(engine, "checkin", _transactional_again)


def read_outside_transaction(
    _session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    """``after_begin`` of a session: its connection reads in autocommit until it writes
    (unless something already opened a transaction on it)."""
    pooled = connection.connection
    driver: Any = pooled.dbapi_connection
    if getattr(connection.dialect, READS_OUTSIDE, False) and driver.info.transaction_status == IDLE:
        driver.autocommit = True
        pooled.info[READS_OUTSIDE] = True


def transactional(connection: Connection) -> None:
    """Open the transaction now if the connection still reads in autocommit: before SQL
    sent on its DBAPI connection directly (a COPY), which no engine event sees."""
    pooled = connection.connection
    if pooled.info.pop(READS_OUTSIDE, False):
        pooled.dbapi_connection.autocommit = False  # type: ignore[union-attr]


def _transaction_before_write(
    connection: Connection,
    _cursor: Any,
    _statement: str,
    _parameters: Any,
    context: Any,
    _many: bool,
) -> None:
    if READS_OUTSIDE in connection.connection.info and not _plain_read(context):
        transactional(connection)


def _plain_read(context: Any) -> bool:
    """A SELECT that locks nothing, on a client-side cursor (a server-side cursor lives in
    a transaction)."""
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    return (
        isinstance(statement, Select | CompoundSelect)
        and statement._for_update_arg is None
        and not context._is_server_side
    )


def _transactional_again(dbapi_connection: Any, record: Any) -> None:
    reading = record.info.pop(READS_OUTSIDE, False)
    if reading and dbapi_connection is not None and not dbapi_connection.closed:
        dbapi_connection.autocommit = False


def _discard_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if getattr(dbapi_connection, "closed", 0) or _readable(dbapi_connection):
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def _readable(dbapi_connection: Any) -> bool:
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:  # not a socket (SQLite)
        return False
    readable, _, _ = select.select([fileno()], [], [], 0)
    return bool(readable)
