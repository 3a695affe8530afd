"""Every Redis call of the layer goes through one :class:`RedisGuard`.

A failing call is counted, feeds the circuit breaker and returns the caller's fallback
(a miss, a skipped write): the databases answer instead. Invalidations that could not be
delivered are kept, and delivered before any other call is let through, so a value
cached before an outage is never served after Redis returns. If more keys are owed than
``MAX_OWED`` the whole namespace is dropped instead (the ``flush`` callback).

Before each call the guard has ``prepare`` check that the namespace belongs to this
database (``namespace.py``, ``store.py``: cheap once checked); if it does not, the guard
refuses every call from then on (the fallback, no Redis command), and ``require`` raises
``ConfigurationError``.

``epoch`` counts the moments this process learnt that cached values may have survived their
invalidation (a Redis restart, a failover, an overflow): a load that captured its key's
generation in an earlier epoch stores nothing (``backends.py``), since the generation it
captured may have been lost with the server that held it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any, TypeVar, cast

from redis.exceptions import RedisClusterException, RedisError

from ..errors import BackendUnavailableError, ConfigurationError
from .breaker import CircuitBreaker
from .metrics import CacheStats

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_OWED = 100_000
RECENT_WINDOW = 2.0
"""Seconds of delivered invalidations kept to deliver again after a failover: the old
master may have taken them after the new one was promoted."""
FAILURES = (RedisError, RedisClusterException, OSError)
"""What a Redis call raises when Redis (a server, a sentinel, a cluster node) fails."""
_FAILED: Any = object()


class RedisGuard:
    def __init__(
        self,
        breaker: CircuitBreaker,
        stats: CacheStats,
        deliver: Callable[[Collection[str]], None],
        flush: Callable[[], None],
        prepare: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``prepare``: run before each call goes through; returns why the namespace must
        not be used, or ``None``."""
        self.breaker = breaker
        self.stats = stats
        self._deliver = deliver
        self._flush = flush
        self._prepare = prepare
        self.refusal: str | None = None
        """Why this namespace is not used (it belongs to another database), if so."""
        self._lock = threading.Lock()
        self._owed: set[str] = set()
        self._marks: set[str] = set()  # written with the next delivery; not invalidations
        self._overflowed = False
        self._recent: deque[tuple[float, Collection[str]]] = deque()
        self.epoch = 0

    @property
    def owed(self) -> int:
        """Invalidations not yet delivered."""
        return len(self._owed) + (MAX_OWED if self._overflowed else 0)

    def call(self, region: str, operation: Callable[[], T], fallback: T) -> T:
        """``operation()``, or ``fallback`` when Redis fails, the breaker is open or the
        namespace is refused."""
        if self.refusal is not None or not self.breaker.allows():
            return fallback
        try:
            self._settle()
            if self.refusal is not None:
                return fallback
            result = operation()
        except FAILURES:
            self.breaker.failure()
            self.stats.count(region, "error")
            return fallback
        self.breaker.success()
        return result

    def require(self, region: str, operation: Callable[[], T]) -> T:
        """``operation()``; raises ``BackendUnavailableError`` when Redis cannot answer,
        ``ConfigurationError`` when the namespace is refused."""
        result = self.call(region, operation, _FAILED)
        if self.refusal is not None:
            raise ConfigurationError("REDIS_KEY_PREFIX", self.refusal)
        if result is _FAILED:
            raise BackendUnavailableError("redis", "the cache server is unavailable")
        return cast(T, result)

    def invalidate(self, region: str, keys: Collection[str], mark: str | None = None) -> bool:
        """Owe ``keys`` and try to deliver now; never raises. True if delivered. ``mark``
        is delivered with them (a key the delivery sets, see ``backends.py``)."""
        self._owe(keys)
        if mark is not None:
            with self._lock:
                self._marks.add(mark)
        self.stats.count(region, "invalidation", len(keys))
        return self.call(region, lambda: True, False)

    def owe_flush(self) -> None:
        """Cached reads may have survived their invalidation (a restart or failover lost
        it): drop them all, and deliver again what was delivered in the last
        ``RECENT_WINDOW`` seconds, before the next call is let through."""
        with self._lock:
            self._overflowed = True
            recent = [key for _, keys in self._recent for key in keys]
        self.new_epoch()
        self._owe(recent)

    def new_epoch(self) -> None:
        """Generations captured until now may be lost: loads in flight store nothing."""
        with self._lock:
            self.epoch += 1

    def _owe(self, keys: Collection[str]) -> None:
        with self._lock:
            if len(self._owed) + len(keys) > MAX_OWED:
                self._overflowed = True
                self._owed.clear()
            else:
                self._owed.update(keys)

    def _settle(self) -> None:
        """Prepare, then deliver what is owed; raises (and keeps owing) if Redis fails."""
        self.refusal = self._prepare()
        if self.refusal is not None:
            logger.error("cache refused: %s", self.refusal)
            return
        if not self._owed and not self._overflowed and not self._marks:
            return
        with self._lock:
            owed, marks, overflowed = set(self._owed), set(self._marks), self._overflowed
        if overflowed:
            self._flush()
        if owed or marks:
            self._deliver(owed | marks)
        now = time.monotonic()
        with self._lock:
            self._owed -= owed
            self._marks -= marks
            self._overflowed = self._overflowed and not overflowed
            self._recent.append((now, owed))
            while self._recent and self._recent[0][0] < now - RECENT_WINDOW:
                self._recent.popleft()
