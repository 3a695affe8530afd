"""Per-region counters of what the cache did: hits, misses, loads, invalidations, errors."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

EVENTS = ("hit", "miss", "load", "invalidation", "error")


class CacheStats:
    """Thread-safe counters; ``snapshot()`` is what ``dl.cache_stats()`` and health show."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def count(self, region: str, event: str, by: int = 1) -> None:
        with self._lock:
            self._counts[region][event] += by  # a Counter made once per region, not per call

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                region: {event: counts[event] for event in EVENTS}
                for region, counts in sorted(self._counts.items())
            }
