"""Read-replica benchmark: ``python -m bench.replicas``.

Needs a PostgreSQL primary and a streaming replica of it: ``BENCH_PRIMARY_URL`` and
``BENCH_REPLICA_URL`` (superuser URLs of each server's ``postgres`` database). Creates a
scratch database on the primary (it reaches the replica by replication), fills it, then
counts read-only units of work per second — each lists a page of patients, a read the cache
does not serve — from ``THREADS`` threads, first with the primary alone, then with reads
sent to the replica, and prints both with their ratio. Drops the database at the end.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer, Settings

THREADS = 8
SECONDS = 5.0
PATIENTS = 2000


def _on(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


@contextmanager
def scratch_database(primary: str) -> Iterator[str]:
    name = f"dr_assistant_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(primary, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(layer: DataLayer) -> None:
    layer.migrate()
    with layer.unit_of_work(actor="bench") as uow:
        for number in range(PATIENTS):
            uow.patients.create(
                first_name=f"Bench{number}",
                last_name="Patient",
                date_of_birth=date(1980, 1, 1),
                gender="other",
            )


def wait_for_replay(primary: str, replica: str) -> None:
    engines = create_engine(primary), create_engine(replica)
    with engines[0].connect() as connection:
        target = connection.execute(text("SELECT pg_current_wal_lsn()")).scalar()
    with engines[1].connect() as connection:
        while not connection.execute(
            text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": target}
        ).scalar():
            time.sleep(0.05)
    for engine in engines:
        engine.dispose()


def reads_per_second(layer: DataLayer) -> float:
    done = [0] * THREADS
    stop = time.monotonic() + SECONDS

    def reader(slot: int) -> None:
        while time.monotonic() < stop:
            with layer.unit_of_work(actor=f"reader-{slot}", read_only=True) as uow:
                uow.patients.list(order_by="-created_at", limit=20, offset=(slot * 20) % 1000)
            done[slot] += 1

    threads = [threading.Thread(target=reader, args=(slot,)) for slot in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / SECONDS


def main() -> int:
    primary, replica = os.environ.get("BENCH_PRIMARY_URL"), os.environ.get("BENCH_REPLICA_URL")
    if not primary or not replica:
        print("set BENCH_PRIMARY_URL and BENCH_REPLICA_URL (a primary and its replica)")
        return 2
    with scratch_database(primary) as name:
        common = {
            "environment": "test",
            "redis_url": "memory://",
            "mongodb_uri": "mongomock://localhost/bench",
            "db_pool_size": THREADS,
        }
        alone = DataLayer(Settings(database_url=_on(primary, name), **common))  # type: ignore[arg-type]
        fill(alone)
        wait_for_replay(primary, replica)
        spread = DataLayer(
            Settings(
                database_url=_on(primary, name),
                database_replica_urls=(_on(replica, name),),
                **common,  # type: ignore[arg-type]
            )
        )
        try:
            reads_per_second(alone)  # warm both servers' caches and pools
            reads_per_second(spread)
            primary_only = reads_per_second(alone)
            with_replica = reads_per_second(spread)
        finally:
            alone.close()
            spread.close()
    print(f"{THREADS} threads, read-only units of work listing 20 patients, {SECONDS:.0f} s each")
    print(f"primary alone:          {primary_only:8.0f} reads/s")
    print(
        f"reads on the replica:   {with_replica:8.0f} reads/s  ({with_replica / primary_only:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
