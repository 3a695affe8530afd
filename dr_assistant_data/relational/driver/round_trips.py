"""Fewer round trips to PostgreSQL, with the same guarantees.

**No ping before each checkout.** A pooled connection is checked without a round trip: if
its socket has something to read while it sits idle, the server has closed it (a restart,
``pg_terminate_backend``, an idle timeout: PostgreSQL says so before closing) and the pool
replaces it (``DisconnectionError`` at checkout: SQLAlchemy's documented way to discard a
connection and take another). A connection that dies while in use fails its statement;
SQLAlchemy then invalidates it and every pooled connection older than the failure
(``is_disconnect``), and the session retries a read that began its transaction once
(``session.py``): nothing of that transaction can have taken effect.

**No BEGIN or COMMIT for reads, none of their own for writes.** A unit of work's
connection starts in autocommit: its SELECTs run alone (a streamed one, on a server-side
cursor, excepted), seeing what each statement of a READ COMMITTED transaction would see.
The first statement that is not a plain SELECT (a flush, ``FOR UPDATE``, a savepoint, a
caller's own SQL) opens the transaction in the same round trip (``BEGIN; <statement>``);
a streamed read leaves the transaction to psycopg2, whose server-side cursors need one;
SQL sent on the DBAPI connection directly (a COPY) opens it first (:func:`transactional`).
Statements the transaction only has to contain by its end (the audit events) are
:func:`deferred` and sent with its ``COMMIT`` (``INSERT ...; COMMIT``): PostgreSQL runs a
query string in order and stops at the first error, so a refused event commits nothing,
and a ``ROLLBACK`` drops them unsent. The unit's writes, locks and audit events commit or
roll back together; a unit that only read sends neither BEGIN nor COMMIT, and a create is
its INSERT and its COMMIT. Not behind a transaction pooler, whose ``SET LOCAL`` statement
timeout needs a transaction around every statement.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE as IDLE
from sqlalchemy import CompoundSelect, Connection, Dialect, Engine, Select, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, SessionTransaction

READS_OUTSIDE = "reads_outside_transaction"
"""On a dialect: its engine's units of work read in autocommit. In a pooled connection's
``info``: this checkout does, and this module begins and ends its transaction."""
OPEN = "transaction_open"
DEFERRED = "deferred_statements"
"""In a pooled connection's ``info``: the transaction this module began, and the SQL it
sends with its COMMIT."""


def install(engine: Engine, *, reads_outside_transactions: bool) -> None:
    """Check pooled connections without a ping; with ``reads_outside_transactions``, let
    units of work read without a transaction (see the module docstring)."""
    event.listen(engine, "checkout", _discard_if_closed_by_server)
    if reads_outside_transactions:
        setattr(engine.dialect, READS_OUTSIDE, True)
        event.listen(engine, "before_cursor_execute", _begin_with_first_write, retval=True)
        event.listen(engine, "checkin", _transactional_again)
        _end_own_transactions(engine.dialect)


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
    """Open the transaction now if this module has yet to: before SQL sent on the DBAPI
    connection directly (a COPY), which no engine event sees."""
    info = connection.connection.info
    if info.get(READS_OUTSIDE) and not info.get(OPEN):
        _send(connection.connection, ["BEGIN"])
        info[OPEN] = True


def deferred(connection: Connection, statements: Sequence[tuple[str, dict[str, Any]]]) -> bool:
    """Send ``statements`` (SQL and its parameters, bound as any statement's) with the
    transaction's COMMIT; ``False`` when this connection's transaction is not this module's
    (the caller executes them)."""
    pooled = connection.connection
    info = pooled.info
    if not info.get(READS_OUTSIDE):
        return False
    cursor: Any = pooled.cursor()
    try:
        sql = [
            cursor.mogrify(statement, parameters).decode() for statement, parameters in statements
        ]
    finally:
        cursor.close()
    if not info.get(OPEN):
        info[OPEN] = True
        sql.insert(0, "BEGIN")
    info.setdefault(DEFERRED, []).extend(sql)
    return True


def is_open(connection: Any) -> bool:
    """Whether this module began a transaction on ``connection`` (a pooled connection) that
    it has yet to end."""
    return bool(connection.info.get(OPEN))


def _begin_with_first_write(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    pooled = connection.connection
    info = pooled.info
    if not info.get(READS_OUTSIDE) or _plain_read(context):
        return statement, parameters
    if getattr(context, "_is_server_side", False):
        _hand_to_driver(pooled)
    elif not info.get(OPEN):
        info[OPEN] = True
        if executemany:  # the statement runs once per set of parameters
            cursor.execute("BEGIN")
        else:
            statement = "BEGIN; " + statement
    return statement, parameters


def _hand_to_driver(pooled: Any) -> None:
    """Let psycopg2 run the rest of the transaction (a server-side cursor must be declared
    in a transaction psycopg2 knows of): deferred SQL sent now, autocommit off. Should this
    module have begun the transaction, PostgreSQL answers psycopg2's BEGIN with a warning."""
    info = pooled.info
    info.pop(READS_OUTSIDE)
    pending = info.pop(DEFERRED, None)
    if info.pop(OPEN, False) and pending:
        _send(pooled, pending)
    pooled.dbapi_connection.autocommit = False


def _plain_read(context: Any) -> bool:
    """A SELECT that locks nothing, on a client-side cursor (a server-side cursor lives in
    a transaction)."""
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    return (
        isinstance(statement, Select | CompoundSelect)
        and statement._for_update_arg is None
        and not getattr(context, "_is_server_side", False)
    )


def _end_own_transactions(dialect: Dialect) -> None:
    """The dialect's COMMIT and ROLLBACK, sent by this module for the transactions it began
    (psycopg2 in autocommit sends neither); errors are the driver's, as SQLAlchemy expects
    of these methods."""
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(connection: Any) -> None:
        info = _info(connection)
        if not info.get(OPEN):
            commit(connection)
            return
        _send(connection, [*info.get(DEFERRED, ()), "COMMIT"])  # on failure: still open
        info.pop(OPEN)
        info.pop(DEFERRED, None)

    def do_rollback(connection: Any) -> None:
        info = _info(connection)
        info.pop(DEFERRED, None)
        if info.pop(OPEN, False):
            _send(connection, ["ROLLBACK"])
        else:
            rollback(connection)

    # the dialect has no hook for how COMMIT and ROLLBACK are sent: this engine's own dialect
    # instance gets these in place of its methods
    dialect.do_commit = do_commit  # type: ignore[assignment]
    dialect.do_rollback = do_rollback  # type: ignore[assignment]


def _info(connection: Any) -> dict[str, Any]:
    """A pooled connection's ``info``; an empty one for the connection SQLAlchemy examines
    when the engine first connects, which has none."""
    try:
        info: dict[str, Any] = connection.info
        return info
    except NotImplementedError:
        return {}


def _send(connection: Any, statements: list[str]) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("; ".join(statements))
    finally:
        cursor.close()


def _transactional_again(dbapi_connection: Any, record: Any) -> None:
    for key in (OPEN, DEFERRED):
        record.info.pop(key, None)
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
