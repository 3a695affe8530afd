"""Round trips per operation: PostgreSQL's counted with engine and pool events (each
statement, the BEGIN psycopg2 sends before one, the COMMIT or ROLLBACK that ends a
transaction, each pool ping and new connection; a BEGIN or deferred SQL sent in the same
query string as a statement or the COMMIT is no round trip of its own; a create's deferred
INSERT sent ahead of a later statement is one, which this count misses: no figure's
operation makes one), Redis's with a hook on the client connection's sending of commands
(a pipeline or a script is one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from redis.connection import AbstractConnection
from sqlalchemy import Engine, event

from dr_assistant_data.relational.driver.round_trips import is_open


@dataclass
class Trips:
    postgres: int = 0
    redis: int = 0

    def __str__(self) -> str:
        return f"{self.postgres} pg + {self.redis} redis"


class Counter:
    """Counts the round trips of the engines watched, and of every Redis client, while
    :meth:`counting` is open."""

    def __init__(self) -> None:
        self._trips: Trips | None = None
        send = AbstractConnection.send_packed_command

        def counted(connection: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            if self._trips is not None:
                self._trips.redis += 1
            send(connection, *args, **kwargs)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

    def watch(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._ending)
        event.listen(engine, "rollback", self._ending)
        event.listen(engine.pool, "connect", self._connected)
        self._count_pings(engine)

    @contextmanager
    def counting(self) -> Iterator[Trips]:
        self._trips = trips = Trips()
        try:
            yield trips
        finally:
            self._trips = None

    def _add(self, count: int = 1) -> None:
        if self._trips is not None:
            self._trips.postgres += count

    def _statement(self, connection: Any, *_args: Any) -> None:
        dbapi = connection.connection.dbapi_connection
        idle = dbapi.info.transaction_status == TRANSACTION_STATUS_IDLE
        self._add(2 if idle and not dbapi.autocommit else 1)  # psycopg2 sends BEGIN first

    def _ending(self, connection: Any) -> None:
        dbapi = connection.connection.dbapi_connection
        if is_open(connection.connection) or (
            not dbapi.autocommit and dbapi.info.transaction_status != TRANSACTION_STATUS_IDLE
        ):
            self._add()

    def _connected(self, *_args: Any) -> None:
        self._add()

    def _count_pings(self, engine: Engine) -> None:
        dialect = engine.dialect
        ping = dialect.do_ping

        def counted(dbapi_connection: Any) -> bool:
            self._add()
            return ping(dbapi_connection)

        dialect.do_ping = counted  # type: ignore[method-assign]


RAW_POSTGRES = {"raw_psycopg2_select": 1, "raw_miss": 1, "raw_insert_commit": 3}
"""The raw drivers' PostgreSQL round trips, which no engine sees: an autocommit SELECT;
psycopg2 outside autocommit sends BEGIN, the INSERT, then COMMIT."""


def trips_of(counter: Counter, name: str, call: Any) -> Trips:
    """The round trips of one call of contender ``name``."""
    with counter.counting() as trips:
        call()
    trips.postgres += RAW_POSTGRES.get(name, 0)
    return trips
