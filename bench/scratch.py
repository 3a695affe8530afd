"""The benchmark's own data: a scratch database and a Redis key prefix, removed at the end,
and the raw drivers on the same servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.cache.store import delete_matching

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def scratch_layer(pool_size: int = 10) -> Iterator[DataLayer]:
    """A migrated layer on a database and key prefix of its own, both dropped after."""
    name = f"dr_assistant_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    prefix = f"dr_assistant_bench:{uuid.uuid4().hex[:10]}:"
    settings = Settings(
        database_url=url,
        redis_url=REDIS_URL,
        cache_prefix=prefix,
        mongodb_uri=f"mongomock://localhost/{name}",
        db_pool_size=pool_size,
    )
    dl = DataLayer(settings)
    try:
        dl.migrate()
        yield dl
    finally:
        dl.close()
        client = redis.Redis.from_url(REDIS_URL)
        delete_matching(client, prefix + "*")
        client.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def raw_postgres(dl: DataLayer) -> psycopg2.extensions.connection:
    """A plain psycopg2 connection to the layer's database."""
    url = make_url(dl.settings.database_url).set(drivername="postgresql")
    return psycopg2.connect(url.render_as_string(hide_password=False))


def raw_redis() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)
