"""Read-through of JSON values that cannot store a stale one.

A miss captures the key's generation before loading (``backends.py``: no stale set) and
goes through dogpile's lock, so concurrent misses of one key cause one load. What is read
this way, under which key, and when the shared cache must be bypassed is the caller's
policy (``relational/caching.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from dogpile.cache.api import NO_VALUE
from dogpile.cache.region import CacheRegion

from .. import telemetry
from .backends import Generations, expecting
from .store import CacheStore

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def read_through(store: CacheStore, region_name: str, key: str, create: Callable[[], T]) -> T:
    """The cached value of ``key``, or ``create()``'s, stored only if the key was not
    invalidated between the capture of its generation and the store."""
    region = store.region(region_name)
    with telemetry.Span("cache", **{"cache.region": region_name, "operation": "read"}) as span:
        value, span.outcome = _read_through(store, region, region_name, key, create)
    return value


def _read_through(
    store: CacheStore, region: CacheRegion, region_name: str, key: str, create: Callable[[], T]
) -> tuple[T, str]:
    cached = region.get(key)  # the hit path: one GET, no lock
    if cached is not NO_VALUE:
        store.stats.count(region_name, "hit")
        return cached, "hit"
    generations = Generations()
    loaded = False

    def creator() -> T:
        nonlocal loaded
        captured = store.generations(region_name, [key])
        generations.update(captured)
        generations.epoch = captured.epoch
        loaded = True
        store.stats.count(region_name, "load")
        return create()

    with expecting(generations):
        value: T = region.get_or_create(key, creator)
    outcome = "miss" if loaded else "hit"
    store.stats.count(region_name, outcome)
    return value, outcome


def read_many(
    store: CacheStore,
    region_name: str,
    keys: Mapping[K, str],
    load: Callable[[list[K]], Mapping[K, Any]],
) -> dict[K, Any]:
    """The cached value of each of ``keys``: one multi-get, then one ``load`` of the
    misses (``None`` for each it does not return), stored under their captured
    generations."""
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
    region = store.region(region_name)
    names: Sequence[str] = list(keys.values())
    cached = dict(zip(keys, region.get_multi(names), strict=True))
    missing = [id for id, value in cached.items() if value is NO_VALUE]
    store.stats.count(region_name, "hit", len(keys) - len(missing))
    if missing:
        store.stats.count(region_name, "miss", len(missing))
        store.stats.count(region_name, "load")
        generations = store.generations(region_name, [keys[id] for id in missing])
        loaded = load(missing)
        fresh = {id: loaded.get(id) for id in missing}
        with expecting(generations):
            region.set_multi({keys[id]: value for id, value in fresh.items()})
        cached.update(fresh)
    return cached, len(missing)
