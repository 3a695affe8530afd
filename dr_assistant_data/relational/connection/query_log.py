"""Structured log lines for slow and failed statements, with no patient data in them.

Logger ``dr_assistant_data.sql``. A statement slower than ``db_slow_query_ms`` logs a
WARNING ``slow query``; a failed one ``query failed``, a failed connection attempt
``connect failed``. A constraint the statement broke (a duplicate, an overlapping
appointment: a conflict the caller receives as a contract error and is expected to handle)
is logged at INFO, so an application that never configured logging does not print it.

Each line carries a JSON object (also attached to the record as ``record.query``): the
duration, the pool's state, the unit of work's correlation id, the server (host, port,
database: never the password) and the statement text with its placeholders. Never the
bound parameters, never the driver's message (PostgreSQL's ``DETAIL`` lines quote values);
a failure is named by its class and SQLSTATE only.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext

from .pool import pool_state

logger = logging.getLogger("dr_assistant_data.sql")

CORRELATION_KEY = "correlation_id"
_STARTED_KEY = "query_started"
STATEMENT_LIMIT = 1000
"""Characters of statement text kept in a log line."""


def install(engine: Engine, slow_query_ms: int) -> None:
    """Time every statement of ``engine``; log those over ``slow_query_ms`` and failures."""

    def started(conn: Connection, *_args: object) -> None:
        conn.info.setdefault(_STARTED_KEY, []).append(time.perf_counter())

    def finished(conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        duration_ms = _elapsed_ms(conn)
        if duration_ms is not None and duration_ms >= slow_query_ms:
            _log(logging.WARNING, "slow query", conn, engine, statement, duration_ms=duration_ms)

    def failed(context: ExceptionContext) -> None:
        conn = context.connection
        original = context.original_exception
        url = engine.url
        expected = isinstance(context.sqlalchemy_exception, sa_exc.IntegrityError)
        _log(
            logging.INFO if expected else logging.WARNING,
            "query failed" if conn is not None else "connect failed",
            conn,
            engine,
            context.statement,
            target=f"{url.host}:{url.port or 5432}/{url.database}",
            duration_ms=_elapsed_ms(conn),
            error=type(original).__name__,
            sqlstate=getattr(original, "pgcode", None),
            disconnect=context.is_disconnect,
        )

    event.listen(engine, "before_cursor_execute", started)
    event.listen(engine, "after_cursor_execute", finished)
    event.listen(engine, "handle_error", failed)
    event.listen(engine.pool, "checkin", _forget_correlation)


def _forget_correlation(_dbapi_connection: object, record: Any) -> None:
    if record is not None:
        record.info.pop(CORRELATION_KEY, None)


def _info(conn: Connection | None) -> dict[str, Any]:
    """The connection's info, or nothing once the failure has invalidated it."""
    if conn is None or conn.invalidated or conn.closed:
        return {}
    return conn.info


def _elapsed_ms(conn: Connection | None) -> float | None:
    starts: list[float] | None = _info(conn).get(_STARTED_KEY)
    if not starts:
        return None
    return round((time.perf_counter() - starts.pop()) * 1000, 2)


def _log(
    level: int,
    message: str,
    conn: Connection | None,
    engine: Engine,
    statement: str | None,
    **fields: Any,
) -> None:
    record = {
        **fields,
        "statement": (statement or "")[:STATEMENT_LIMIT],
        "correlation_id": _info(conn).get(CORRELATION_KEY),
        "pool": pool_state(engine.pool),
    }
    logger.log(level, "%s %s", message, json.dumps(record, default=str), extra={"query": record})
