"""Invalidations that no single process can lose: an outbox in PostgreSQL.

A writer delivers its invalidations to Redis right after its COMMIT
(``relational/caching/invalidation.py``).
That alone is not enough across processes: if Redis is briefly unreachable from the writer,
or the writer dies between its COMMIT and the delivery, other processes would go on serving
the value from before the write. So, on PostgreSQL with a shared Redis:

* the keys a transaction owes are inserted into ``cache_invalidations`` *in that
  transaction*: they exist exactly when the write committed; a writer whose COMMIT raised
  (its answer lost) asks PostgreSQL whether the row committed and, if it did, delivers
  the keys as the commit would have (``relational/caching/outbox.py``, which maps the table);
* if the writer's delivery fails, the writer sends ``NOTIFY`` with the row's id before its
  commit returns to the caller; every process LISTENs on a connection of its own
  (:class:`OutboxListener`), reads the keys and owes them: its guard delivers them before
  it uses Redis again, so it never serves the old value (the window is the notification's
  latency, milliseconds);
* a janitor in every process, every ``JANITOR_INTERVAL`` whatever the notifications,
  claims rows older than ``JANITOR_GRACE`` (``SKIP LOCKED``: one process per row),
  delivers those whose delivery mark Redis lacks (the writer's delivery sets it in the
  same MULTI) and deletes them; a row whose delivery fails stays. This covers a writer
  killed between COMMIT and delivery, and a lost notification: other processes serve the
  old value for at most ``JANITOR_GRACE + JANITOR_INTERVAL`` (plus a round trip) after such
  a death. Looking costs one indexed query while no row is old enough;
* while its listener is not connected (starting, or reconnecting after PostgreSQL dropped
  it) a process reads past the shared cache, since a notification could be missed; a
  listener that reconnects first owes every row still present that Redis has no delivery
  mark for. It reconnects after a pause doubling from ``RECONNECT_DELAY`` to
  ``MAX_RECONNECT_DELAY``, and logs an outage twice: when it begins and when it ends.

Delivering a key twice costs a cache miss, never a wrong value. This module is the
listener and the janitor: they read the table with plain SQL on a connection of their own.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Engine, text

from .store import CacheStore

logger = logging.getLogger(__name__)

CHANNEL = "dr_assistant_cache_invalidations"
JANITOR_INTERVAL = 0.2
JANITOR_GRACE = 0.2
"""Seconds: how often each process's janitor looks, and how old a row must be (its writer
delivers it within milliseconds when Redis answers; a row delivered twice costs one miss)."""
JANITOR_BATCH = 500
RECONNECT_DELAY = 0.1
MAX_RECONNECT_DELAY = 2.0
"""Seconds: the listener's first and longest pause between two connection attempts."""
STARTUP_WAIT = 2.0

_ANY_OLD = """
    SELECT EXISTS (
        SELECT FROM cache_invalidations
        WHERE created_at < CURRENT_TIMESTAMP - make_interval(secs => %(grace)s)
    )
"""
_CLAIM = """
    DELETE FROM cache_invalidations WHERE id IN (
        SELECT id FROM cache_invalidations
        WHERE created_at < CURRENT_TIMESTAMP - make_interval(secs => %(grace)s)
        ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED
    ) RETURNING id, keys
"""


class _Outage:
    """The listener's time without a connection: its back-off, and one log line when it
    begins and one when it ends (not one per attempt)."""

    def __init__(self) -> None:
        self.began: float | None = None
        self.attempts = 0

    def failed(self, error: Exception) -> float:
        """Seconds to wait before the next attempt."""
        if self.began is None:
            self.began = time.monotonic()
            logger.warning(
                "cache outbox listener lost its connection (%s); reconnecting, waiting "
                "%.1f s doubling to %.1f s between attempts",
                type(error).__name__,
                RECONNECT_DELAY,
                MAX_RECONNECT_DELAY,
            )
        self.attempts += 1
        return float(min(MAX_RECONNECT_DELAY, RECONNECT_DELAY * 2 ** (self.attempts - 1)))

    def ended(self) -> None:
        if self.began is not None:
            logger.warning(
                "cache outbox listener reconnected after %d attempts (%.1f s)",
                self.attempts,
                time.monotonic() - self.began,
            )
        self.began, self.attempts = None, 0


class OutboxListener:
    """The process's LISTEN connection and janitor, in one daemon thread."""

    def __init__(self, engine: Engine, store: CacheStore, connect: Callable[[], Any]) -> None:
        self._engine = engine
        self._store = store
        self._connect = connect
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._started = 0.0
        self._stop = threading.Event()
        self.connected = threading.Event()
        """Set while the LISTEN connection is up and caught up (for tests and health)."""

    def ensure_running(self) -> None:
        """Start the thread in this process (also in a forked child)."""
        if self._pid == os.getpid() or self._stop.is_set():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._started = time.monotonic()
            self.connected.clear()
            threading.Thread(target=self._run, name="cache-outbox", daemon=True).start()

    def ready(self) -> bool:
        """Whether this process hears other processes' invalidations, so may use the
        shared cache. In the first ``STARTUP_WAIT`` seconds of its listener it waits for
        it; later, while the listener reconnects, the answer is no at once."""
        if self._pid == os.getpid() and self.connected.is_set():
            return True
        self.ensure_running()
        remaining = self._started + STARTUP_WAIT - time.monotonic()
        return remaining > 0 and self.connected.wait(remaining)

    def close(self) -> None:
        """Stop the thread (it closes its connection within ``JANITOR_INTERVAL``)."""
        self._stop.set()

    def announce(self, row: int) -> None:
        """Tell every process that the keys of outbox ``row`` may still be cached."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": str(row)})
                connection.commit()
        except Exception as error:  # the janitors deliver it within a fraction of a second
            logger.warning("cache invalidation notice not sent (%s)", type(error).__name__)

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        pid = os.getpid()
        reconnecting = False
        outage = _Outage()
        while not self._stop.is_set() and self._pid == pid:
            try:
                self._listen(pid, catch_up=reconnecting, outage=outage)
            except Exception as error:
                reconnecting = True
                self.connected.clear()
                self._stop.wait(outage.failed(error))

    def _listen(self, pid: int, catch_up: bool, outage: _Outage) -> None:
        connection = self._connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
                if catch_up:
                    cursor.execute("SELECT id, keys FROM cache_invalidations")
                    self._owe(self._unmarked_keys(dict(cursor.fetchall())))
            self.connected.set()
            outage.ended()
            sweep_at = time.monotonic() + JANITOR_INTERVAL
            while not self._stop.is_set() and self._pid == pid:
                wait = max(0.0, sweep_at - time.monotonic())
                readable, _, _ = select.select([connection], [], [], wait)
                if readable:
                    connection.poll()
                    notified = [int(notice.payload) for notice in connection.notifies]
                    connection.notifies.clear()
                    if notified:
                        self._owe_rows(connection, notified)
                if time.monotonic() >= sweep_at:  # also while notifications keep coming
                    self._sweep(connection)
                    sweep_at = time.monotonic() + JANITOR_INTERVAL
        finally:
            self.connected.clear()
            connection.close()

    def _owe_rows(self, connection: Any, rows: list[int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT keys FROM cache_invalidations WHERE id = ANY(%s)", (rows,))
            self._owe([key for (keys,) in cursor.fetchall() for key in keys])

    def _owe(self, keys: Collection[str]) -> None:
        if keys and not self._stop.is_set():  # after close() the store is gone
            self._store.guard.invalidate("invalidation", keys)

    def _unmarked_keys(self, rows: dict[int, list[str]]) -> set[str]:
        """The keys of those outbox ``rows`` (id → keys) that Redis holds no delivery mark
        for: what their writers may not have delivered."""
        undelivered = self._store.undelivered(list(rows)) if rows else []
        return {key for row in undelivered for key in rows[row]}

    def _sweep(self, connection: Any) -> None:
        """Deliver and delete the rows old enough that their writer had its chance (on
        the listener's own connection: the janitor never waits for the pool)."""
        with connection.cursor() as cursor:
            cursor.execute(_ANY_OLD, {"grace": JANITOR_GRACE})
            if not cursor.fetchone()[0]:
                return
            cursor.execute("BEGIN")
            cursor.execute(_CLAIM, {"grace": JANITOR_GRACE, "batch": JANITOR_BATCH})
            keys = self._unmarked_keys(dict(cursor.fetchall()))
            delivered = not keys or self._store.deliver(keys)
            cursor.execute("COMMIT" if delivered else "ROLLBACK")  # refused: the rows stay
