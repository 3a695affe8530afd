"""Read-through of JSON values that cannot store a stale one.

A miss claims the key before loading: one script takes its lock (a Redis lock shared by
every process, expiring after ``CACHE_LOCK_TIMEOUT``) and captures its generation
(``backends.py``: no stale set); the guarded write releases the lock. Concurrent misses of
one key therefore cause one load: the others wait for its value, and load themselves only
if the lock is released or expires without one. Absence is never cached: a load that finds
nothing (``None``) releases the lock and stores nothing, so the next read loads again, and a
row inserted later under that key is read as soon as it is committed. What is read this
way, under which key, and when the shared cache must be bypassed is the caller's policy
(``relational/caching/policy.py``). Values go straight through the region's backend
(``backends.py``: one GET, one open, one JSON parse per hit), not dogpile's value envelope.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from dogpile.cache.api import NO_VALUE

from .. import telemetry
from .backends import FILLED, TAKEN, Generations, GuardedRedisBackend, expecting
from .store import CacheStore

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
WAIT = 0.01
"""Seconds between claims while another reader loads the key (as redis-py's lock polls)."""


def read_through(store: CacheStore, region_name: str, key: str, create: Callable[[], T]) -> T:
    """The cached value of ``key``, or ``create()``'s, stored only if the key was not
    invalidated between the capture of its generation and the store (and ``None``, nothing
    found, never)."""
    backend = store.backend(region_name)
    if not telemetry.active():
        return _read_through(store, backend, region_name, key, create)[0]
    with telemetry.Span("cache", **{"cache.region": region_name, "operation": "read"}) as span:
        value, span.outcome = _read_through(store, backend, region_name, key, create)
    return value


def _read_through(
    store: CacheStore,
    backend: GuardedRedisBackend,
    region_name: str,
    key: str,
    create: Callable[[], T],
) -> tuple[T, str]:
    unusable = False  # a value is stored that does not open or parse
    while True:
        cached = backend.get_value(key)  # the hit path: one GET, no lock
        if cached is not NO_VALUE:
            store.stats.count(region_name, "hit")
            return cached, "hit"
        claimed = backend.claim(key, replace=unusable)
        if claimed is TAKEN:
            time.sleep(WAIT)
        elif claimed is FILLED:
            unusable = True  # read it again: stored meanwhile, or stored and unusable
        else:
            break
    assert isinstance(claimed, Generations)
    store.stats.count(region_name, "load")
    try:
        value = create()
    except BaseException:
        backend.release(claimed)
        raise
    if value is None:  # absence is not cached
        backend.release(claimed)
        store.stats.count(region_name, "miss")
        return value, "miss"
    with expecting(claimed):
        backend.set_values({key: value})  # releases the lock
    store.stats.count(region_name, "miss")
    return value, "miss"


def read_many(
    store: CacheStore,
    region_name: str,
    keys: Mapping[K, str],
    load: Callable[[list[K]], Mapping[K, Any]],
) -> dict[K, Any]:
    """The value of each of ``keys`` that has one: one multi-get, then one ``load`` of the
    misses, whose values are stored under their captured generations; a key ``load`` does
    not return is left out, and nothing is stored for it (absence is not cached)."""
    with telemetry.Span("cache", **{"cache.region": region_name, "operation": "read_many"}) as span:
        cached, misses = _read_many(store, region_name, keys, load)
        span.outcome = "miss" if misses else "hit"
        span.attributes = {"cache.hits": len(cached) - misses, "cache.misses": misses}
    return cached


def _read_many(
    store: CacheStore,
    region_name: str,
    keys: Mapping[K, str],
    load: Callable[[list[K]], Mapping[K, Any]],
) -> tuple[dict[K, Any], int]:
    backend = store.backend(region_name)
    names: Sequence[str] = list(keys.values())
    cached = dict(zip(keys, backend.get_values(names), strict=True))
    missing = [id for id, value in cached.items() if value is NO_VALUE]
    store.stats.count(region_name, "hit", len(keys) - len(missing))
    if missing:
        store.stats.count(region_name, "miss", len(missing))
        store.stats.count(region_name, "load")
        generations = store.generations(region_name, [keys[id] for id in missing])
        loaded = {id: value for id, value in load(missing).items() if value is not None}
        with expecting(generations):
            backend.set_values({keys[id]: value for id, value in loaded.items()})
        for id in missing:
            del cached[id]
        cached.update(loaded)
    return cached, len(missing)
