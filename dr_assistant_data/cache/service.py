"""``dl.cache``: the general cache service application code uses (the old layer's API).

Values are JSON (never pickle), sealed with the data keys like every cached value
(``sealing.py``: one that no key of this process opens is a miss), except counters, which
Redis must see as integers. Keys live under ``<prefix>kv:`` and must not carry patient
data. Redis trouble never raises out of reads and writes whose caller can go on without the
cache: ``get`` is then a miss, ``set`` is skipped (False), ``exists`` is False, ``get_or_set``
calls the producer; ``delete`` and ``delete_many`` are remembered and delivered before Redis
is used again, so a deleted value is never served afterwards. ``set_if_absent``,
``incr``/``decr`` and ``delete_pattern`` raise ``BackendUnavailableError``: their callers
(a once-only action, a counter, a purge) cannot go on as if they had succeeded. On
``memory://`` the same code runs on the cache store's in-process Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .store import CacheStore, delete_matching, dumps
from .topology import Client

T = TypeVar("T")

REGION = "general"


class CacheService:
    def __init__(self, store: CacheStore) -> None:
        self._store = store

    def get(self, key: str) -> Any:
        """The value, or ``None`` (absent, or Redis unavailable)."""
        name = self._key(key)
        stored = self._call(lambda client: client.get(name), None)
        raw = None if stored is None else self._store.sealer.open_or_count(name, stored)
        self._store.stats.count(REGION, "miss" if raw is None else "hit")
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` (expiring after ``ttl`` seconds); False if Redis is unavailable."""
        name = self._key(key)
        payload = self._store.sealer.seal(name, dumps(value))
        return bool(self._call(lambda client: client.set(name, payload, px=_ms(ttl)), False))

    def delete(self, key: str) -> None:
        """Remove ``key``; if Redis is unavailable the delete is delivered when it returns."""
        self.delete_many([key])

    def delete_many(self, keys: Iterable[str]) -> None:
        names = [self._key(key) for key in keys]
        if names:
            self._store.guard.invalidate(REGION, names)

    def exists(self, key: str) -> bool:
        return bool(self._call(lambda client: client.exists(self._key(key)), 0))

    def set_if_absent(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """True if this call stored the value. Raises ``BackendUnavailableError`` when Redis
        is unavailable (nobody can tell whether the key is absent)."""
        name = self._key(key)
        payload = self._store.sealer.seal(name, dumps(value))
        return bool(self._require(lambda client: client.set(name, payload, px=_ms(ttl), nx=True)))

    def incr(self, key: str, by: int = 1) -> int:
        """The counter after adding ``by``. Raises ``BackendUnavailableError`` when Redis is
        unavailable (there is no count to return)."""
        return int(self._require(lambda client: client.incrby(self._key(key), by)))

    def decr(self, key: str, by: int = 1) -> int:
        """As ``incr``, subtracting."""
        return self.incr(key, -by)

    def get_or_set(self, key: str, producer: Callable[[], Any], ttl: float | None = None) -> Any:
        """The cached value, or ``producer()``'s, stored. Concurrent misses of one key wait
        for a single producer call (a Redis lock, expiring after ``CACHE_LOCK_TIMEOUT``;
        a process-local lock if Redis fails). A stored ``None`` counts as a miss."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock(key):
            value = self.get(key)
            if value is None:
                self._store.stats.count(REGION, "load")
                value = producer()
                self.set(key, value, ttl)
        return value

    def delete_pattern(self, pattern: str) -> int:
        """Delete the keys matching the glob ``pattern`` with SCAN in batches (never
        ``KEYS``); returns how many. Raises ``BackendUnavailableError`` when Redis is
        unavailable (the caller would believe the purge done)."""
        return self._require(lambda client: delete_matching(client, self._key(pattern)))

    def _lock(self, key: str) -> Any:
        backend = self._store.region("entities").backend
        lock = backend.get_mutex(self._key(key))
        return _Held(lock)

    def _key(self, key: str) -> str:
        return self._store.keys.general(key)

    def _call(self, operation: Callable[[Any], Any], fallback: Any) -> Any:
        return self._store.call(REGION, operation, fallback)

    def _require(self, operation: Callable[[Client], T]) -> T:
        return self._store.require(REGION, operation)


class _Held:
    """A dogpile mutex as a context manager."""

    def __init__(self, mutex: Any) -> None:
        self._mutex = mutex

    def __enter__(self) -> None:
        self._mutex.acquire()

    def __exit__(self, *_exc: object) -> None:
        self._mutex.release()


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, int(ttl * 1000))
