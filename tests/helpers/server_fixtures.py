"""The fixtures of the servers tests start of their own (``dr_assistant_data.testing.servers``):
a throwaway PostgreSQL for the run, a primary with a replica and a PgBouncer per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dr_assistant_data.testing.servers.pgbouncer_servers import PgBouncer, pgbouncer_server
from dr_assistant_data.testing.servers.throwaway_postgres import (
    ThrowawayPostgres,
    postgres_server,
    primary_with_replica,
)
from tests.helpers.layers import ADMIN_URL


@pytest.fixture(scope="session")
def throwaway_postgres_server() -> Iterator[ThrowawayPostgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def throwaway_postgres(throwaway_postgres_server: ThrowawayPostgres) -> ThrowawayPostgres:
    """The throwaway server, running at the start of the test (a test may have stopped it)."""
    if not throwaway_postgres_server.running:
        throwaway_postgres_server.start()
    return throwaway_postgres_server


@pytest.fixture(scope="module")
def primary_and_replica() -> Iterator[tuple[ThrowawayPostgres, ThrowawayPostgres]]:
    """A primary and a hot-standby streaming replica of it, each on a port of its own."""
    with primary_with_replica() as servers:
        yield servers


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[PgBouncer]:
    """A PgBouncer in front of the server of ``TEST_DATABASE_ADMIN_URL``."""
    with pgbouncer_server(ADMIN_URL) as bouncer:
        yield bouncer
