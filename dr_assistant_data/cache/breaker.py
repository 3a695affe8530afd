"""A circuit breaker: after a few Redis failures in a row, stop trying for a short back-off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Open after ``threshold`` consecutive failures; while open, ``allows()`` is False for
    ``backoff`` seconds, so a dead Redis costs one timeout per back-off, not one per call.
    After the back-off the next call is a trial: success closes, failure re-opens."""

    def __init__(
        self, threshold: int, backoff: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.backoff = backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0

    def allows(self) -> bool:
        return self._clock() >= self._open_until

    @property
    def is_open(self) -> bool:
        return not self.allows()

    def success(self) -> None:
        if not self._failures and not self._open_until:  # the hot path: nothing to reset
            return
        with self._lock:
            self._failures = 0
            self._open_until = 0.0

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = self._clock() + self.backoff
