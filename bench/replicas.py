"""Read-replica benchmark: ``python -m bench.replicas``.

Needs a PostgreSQL primary and a streaming replica of it: ``BENCH_DATABASE_ADMIN_URL`` and
``BENCH_REPLICA_URL`` (superuser URLs of each server's ``postgres`` database). Creates a
scratch database on the primary (it reaches the replica by replication), fills it, then
counts read-only units of work per second — each lists a page of patients, a read the cache
does not serve — from ``THREADS`` threads, first with the primary alone, then with reads
sent to the replica, and prints both with their ratio. Drops the database at the end.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from datetime import date

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer

from .scratch import ADMIN_URL, scratch_layer

THREADS = 8
SECONDS = 5.0
PATIENTS = 2000


def fill(layer: DataLayer) -> None:
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
    replica = os.environ.get("BENCH_REPLICA_URL")
    if not replica:
        print("set BENCH_DATABASE_ADMIN_URL to a primary and BENCH_REPLICA_URL to its replica")
        return 2
    with scratch_layer(pool_size=THREADS) as alone:
        fill(alone)
        database = make_url(alone.settings.database_url).database
        replica_url = make_url(replica).set(database=database)
        wait_for_replay(ADMIN_URL, replica)
        spread = DataLayer(
            dataclasses.replace(
                alone.settings,
                database_replica_urls=(replica_url.render_as_string(hide_password=False),),
            )
        )
        try:
            reads_per_second(alone)  # warm both servers' caches and pools
            reads_per_second(spread)
            primary_only = reads_per_second(alone)
            with_replica = reads_per_second(spread)
        finally:
            spread.close()
    print(f"{THREADS} threads, read-only units of work listing 20 patients, {SECONDS:.0f} s each")
    print(f"primary alone:          {primary_only:8.0f} reads/s")
    ratio = with_replica / primary_only
    print(f"reads on the replica:   {with_replica:8.0f} reads/s  ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
