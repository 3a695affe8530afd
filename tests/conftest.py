"""Shared fixtures: a real PostgreSQL database of the test run's own, migrated once.

The server comes from ``TEST_DATABASE_ADMIN_URL`` (default: the local ``postgres``
database over TCP with trust auth). If it cannot be reached the run stops with an error:
database tests are never skipped. The functions these fixtures are built on are in
``tests.helpers.layers``; the servers tests start of their own in
``dr_assistant_data.testing.servers``, their fixtures in ``tests.helpers.server_fixtures``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import text

from dr_assistant_data import DataLayer
from dr_assistant_data.cache.store import delete_matching
from dr_assistant_data.relational.base import Base
from dr_assistant_data.testing.queries import counting_queries
from tests.helpers.layers import (
    CACHE_PREFIX,
    REDIS_URL,
    Visit,
    layer_with,
    new_visit,
    scratch_database,
    settings_for,
)

pytest_plugins = (
    "tests.helpers.server_fixtures",
    "pytester",
)


@pytest.fixture(scope="session", autouse=True)
def _own_redis_keys_removed() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(REDIS_URL)
    delete_matching(client, CACHE_PREFIX + "*")
    client.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_layer(database_url: str) -> Iterator[DataLayer]:
    layer = DataLayer(settings_for(database_url))
    layer.migrate()
    yield layer
    layer.close()


@pytest.fixture
def dl(migrated_layer: DataLayer) -> Iterator[DataLayer]:
    """The migrated layer; every table is emptied after the test."""
    yield migrated_layer
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with migrated_layer.engine.begin() as connection:
        # as a superuser may: the audit trail's append-only triggers stay out of the way
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
def layer(dl: DataLayer, database_url: str) -> Iterator[DataLayer]:
    """A layer on the test database with a fresh, migrated in-memory document store."""
    fresh = DataLayer(settings_for(database_url))
    fresh.migrate()
    yield fresh
    fresh.close()


@pytest.fixture(params=["redis", "memory"])
def cache_layer(request: pytest.FixtureRequest, dl: DataLayer) -> Iterator[DataLayer]:
    """The test layer on Redis, then a layer on the in-process cache (``memory://``): what
    holds on one must hold on the other."""
    if request.param == "redis":
        yield dl
        return
    with layer_with(dl, redis_url="memory://") as layer:
        yield layer


@pytest.fixture
def visit(layer: DataLayer) -> Visit:
    return new_visit(layer)


@pytest.fixture
def count_queries(dl: DataLayer):
    """``with count_queries() as log:`` records the statements sent by the test's layer."""
    return lambda: counting_queries(dl.engine)
