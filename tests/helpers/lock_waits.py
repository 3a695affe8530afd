"""The longest lock wait PostgreSQL saw in a database, sampled while a test runs.

Read from the server (``pg_locks.waitstart``), not from a client's clock: on a loaded
machine a request's wall time also holds scheduler delays and the interpreter lock, which
are not what a migration's lock timeout controls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, text

SAMPLE_EVERY = 0.02
"""Seconds between two samples."""
SAMPLING_SLACK = 0.25
"""Seconds a measured wait may exceed the real one: a sampling period and the monitor's
own delays on a loaded machine."""

LONGEST_LOCK_WAIT = text(
    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)), 0) "
    "FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
    "WHERE NOT l.granted AND a.datname = current_database() "
    "AND a.pid <> pg_backend_pid()"
)


@dataclass
class LockWaits:
    longest: float = 0.0
    """Seconds, the longest any other backend of the database was seen waiting on a lock."""
    samples: int = 0


@contextmanager
def lock_waits(engine: Engine) -> Iterator[LockWaits]:
    """Sample the database's lock waits from a thread of its own until the block ends."""
    seen = LockWaits()
    stop = threading.Event()

    def watch() -> None:
        with engine.connect() as connection:
            while not stop.is_set():
                wait = float(connection.scalar(LONGEST_LOCK_WAIT) or 0)
                connection.rollback()
                seen.longest = max(seen.longest, wait)
                seen.samples += 1
                time.sleep(SAMPLE_EVERY)

    monitor = threading.Thread(target=watch, name="lock-monitor")
    monitor.start()
    try:
        yield seen
    finally:
        stop.set()
        monitor.join(timeout=60)
