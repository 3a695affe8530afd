"""One pooled engine per ``DataLayer``, configured from :class:`Settings`."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ...settings import Settings
from .. import encryption
from ..driver import round_trips
from . import fork_safety, query_log, row_logging
from .pool import ReportingQueuePool

APPLICATION_NAME = "dr-assistant-data"


def build_engine(settings: Settings) -> Engine:
    """PostgreSQL: a ``QueuePool`` of ``db_pool_size`` connections (no overflow, so the
    size is the ceiling the old ``DB_POOL_MAX`` promised), checked before use without a
    round trip and units of work reading without BEGIN and COMMIT (``driver/round_trips.py``),
    recycled after ``db_pool_recycle`` seconds, with a server-side statement timeout: a
    startup option of each connection, or, behind a transaction pooler
    (``db_transaction_pooler``: PgBouncer refuses startup options and hands each transaction
    any server connection), ``SET LOCAL`` at the start of every transaction.
    SQLite (embedded mode): foreign keys switched on.

    Query parameters are patient data, so they are hidden from SQLAlchemy's log lines and
    exception messages (``hide_parameters``), and result rows are never logged, whatever
    the echo setting or logger level (``row_logging.py``). Slow and failed statements are
    logged (``query_log.py``); a forked child never uses the parent's connections
    (``fork_safety.py``). Encrypted columns use the settings' keyring (``encryption.py``).
    """
    engine = row_logging.never_log_rows(_create(settings))
    encryption.attach(engine, settings.keyring)
    query_log.install(engine, settings.db_slow_query_ms)
    return fork_safety.protect(engine)


def _create(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": settings.db_connect_timeout},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        poolclass=ReportingQueuePool,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        hide_parameters=True,
        connect_args=_connect_args(settings),
    )
    round_trips.install(engine, reads_outside_transactions=not settings.db_transaction_pooler)
    if settings.db_transaction_pooler and settings.db_statement_timeout_ms:
        event.listen(engine, "begin", _local_statement_timeout(settings.db_statement_timeout_ms))
    return engine


def _local_statement_timeout(millis: int) -> Any:
    def set_local(connection: Connection) -> None:
        # on the DBAPI cursor: one more statement per transaction that query logs and
        # query counts need not see (psycopg2 sends the BEGIN first)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(f"SET LOCAL statement_timeout = {int(millis)}")
        finally:
            cursor.close()

    return set_local


def dedicated_connection(settings: Settings) -> Any:
    """A PostgreSQL DBAPI connection of its own, outside the pool, made with the pool's
    options (for a long-lived ``LISTEN``, which must not hold one of the pool's places);
    behind a transaction pooler, straight to the server (``Settings.direct``): a pooler in
    transaction mode does not deliver notifications to a session it does not keep."""
    settings = settings.direct
    engine = create_engine(
        make_url(settings.database_url),
        poolclass=NullPool,
        hide_parameters=True,
        connect_args=_connect_args(settings),
    )
    connection = engine.raw_connection()
    connection.detach()
    engine.dispose()
    return connection.dbapi_connection


def _connect_args(settings: Settings) -> dict[str, Any]:
    connect_args: dict[str, Any] = {
        "connect_timeout": max(1, math.ceil(settings.db_connect_timeout)),
        "application_name": APPLICATION_NAME,
    }
    if settings.db_statement_timeout_ms and not settings.db_transaction_pooler:
        connect_args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    if settings.db_ssl:
        connect_args["sslmode"] = (
            "verify-full" if settings.db_ssl_reject_unauthorized else "require"
        )
        if settings.db_ssl_root_cert:
            connect_args["sslrootcert"] = settings.db_ssl_root_cert
    return connect_args


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
