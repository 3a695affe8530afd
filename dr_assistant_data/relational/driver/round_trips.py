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
Statements the transaction only has to contain by its end (the audit events, the outbox
row) are :func:`deferred` and sent with its ``COMMIT`` (``INSERT ...; COMMIT``): PostgreSQL
runs a query string in order and stops at the first error, so a refused event commits
nothing (the transaction is then rolled back at once: SQLAlchemy rolls back no transaction
whose commit raised), and a ``ROLLBACK`` drops them unsent. Rows later statements may read
or refer to (a create's INSERT that no other row can refuse, ``copy_rows.insert_row``) are
deferred as ``seen``: sent, with the BEGIN if it is still to go, before whatever reaches
the connection next — any statement, a plain autocommit SELECT included (it then runs in
the transaction and sees them), SQL sent on the DBAPI connection (:func:`transactional`),
a server-side cursor — in a round trip of their own, or else with the COMMIT; a refusal is
then the error of that statement or of the commit. The unit's writes, locks and audit
events commit or roll back together; a unit that only read sends neither BEGIN nor COMMIT,
and a create is its INSERT and its COMMIT, in one round trip when nothing can refuse it.
SQL sent this way is not an engine statement: query counting (``testing/queries.py``) and
the slow-query log do not see it. Not behind a transaction pooler, whose ``SET LOCAL``
statement timeout needs a transaction around every statement.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Sequence
from typing import Any

import psycopg2
from psycopg2.extensions import TRANSACTION_STATUS_IDLE as IDLE
from sqlalchemy import CompoundSelect, Connection, Dialect, Engine, Select, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, SessionTransaction

READS_OUTSIDE = "reads_outside_transaction"
"""On a dialect: its engine's units of work read in autocommit. In a pooled connection's
``info``: this checkout does, and this module begins and ends its transaction."""
OPEN = "transaction_open"
UNSENT_BEGIN = "begin_unsent"
AHEAD = "statements_ahead"
DEFERRED = "deferred_statements"
"""In a pooled connection's ``info``: the transaction this module began, whether its BEGIN
is yet to be sent, the SQL it sends before the next statement or with the COMMIT, and the
SQL it sends with the COMMIT."""


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
    """Open the transaction now if this module has yet to, and send what must precede any
    later statement: before SQL sent on the DBAPI connection directly (a COPY), which no
    engine event sees."""
    pooled = connection.connection
    info = pooled.info
    if not info.get(READS_OUTSIDE):
        return
    if not info.get(OPEN):
        info[OPEN] = True
        info[UNSENT_BEGIN] = True
    _send_ahead(pooled, _ahead(info))


def deferred(
    connection: Connection,
    statements: Sequence[tuple[str, dict[str, Any]]],
    *,
    seen: bool = False,
) -> bool:
    """Send ``statements`` (SQL and its parameters, bound as any statement's) with the
    transaction's COMMIT, or, when ``seen`` (rows later statements of the transaction may
    read, or refer to), before the next statement sent on this connection if one comes
    first; ``False`` when this connection's transaction is not this module's (the caller
    executes them)."""
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
        info[UNSENT_BEGIN] = True
    info.setdefault(AHEAD if seen else DEFERRED, []).extend(sql)
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
    if not info.get(READS_OUTSIDE):
        return statement, parameters
    if AHEAD in info:  # rows this statement may read or refer to: in the transaction first
        _send_ahead(pooled, _ahead(info))
    if _plain_read(context):
        return statement, parameters
    if getattr(context, "_is_server_side", False):
        _hand_to_driver(pooled)
    elif not info.get(OPEN) or info.pop(UNSENT_BEGIN, False):
        info[OPEN] = True
        if executemany:  # the statement runs once per set of parameters
            cursor.execute("BEGIN")
        else:
            statement = "BEGIN; " + statement
    return statement, parameters


def _ahead(info: dict[str, Any]) -> list[str]:
    """The SQL to send before anything else of the transaction (its BEGIN if unsent, the
    rows deferred as seen), taken from ``info``: once sent, nothing of it is pending."""
    rows: list[str] = info.pop(AHEAD, [])
    return ["BEGIN", *rows] if info.pop(UNSENT_BEGIN, False) else rows


def _send_ahead(pooled: Any, statements: list[str]) -> None:
    """Send ``statements`` before the statement about to run; a refusal is a SQLAlchemy
    error, as that statement's would be (the caller's translation makes it the contract's),
    and it names no statement: their text holds the rows' values."""
    if not statements:
        return
    try:
        _send(pooled, statements)
    except psycopg2.Error as error:
        raise sa_exc.DBAPIError.instance(None, None, error, psycopg2.Error) from None


def _hand_to_driver(pooled: Any) -> None:
    """Let psycopg2 run the rest of the transaction (a server-side cursor must be declared
    in a transaction psycopg2 knows of): deferred SQL sent now, autocommit off. Should this
    module have begun the transaction, PostgreSQL answers psycopg2's BEGIN with a warning."""
    info = pooled.info
    info.pop(READS_OUTSIDE)
    pending = [*_ahead(info), *info.pop(DEFERRED, ())]
    if info.pop(OPEN, False) and pending:
        _send_ahead(pooled, pending)
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
        try:
            _send(connection, [*_ahead(info), *info.pop(DEFERRED, ()), "COMMIT"])
        except psycopg2.Error:
            # a statement refused before the COMMIT leaves the transaction aborted, and
            # SQLAlchemy rolls back no transaction whose commit raised: it ends here
            with contextlib.suppress(psycopg2.Error):
                _send(connection, ["ROLLBACK"])
            raise
        finally:
            info.pop(OPEN, None)

    def do_rollback(connection: Any) -> None:
        info = _info(connection)
        info.pop(DEFERRED, None)
        info.pop(AHEAD, None)
        unsent = info.pop(UNSENT_BEGIN, False)  # then nothing of it reached the server
        if info.pop(OPEN, False):
            if not unsent:
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
    for key in (OPEN, UNSENT_BEGIN, AHEAD, DEFERRED):
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
