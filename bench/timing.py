"""Timing: medians of many calls, the two sides of a comparison alternated so that noise
from other processes falls on both alike; several runs, each with its own medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

Call = tuple[Callable[[], object], Callable[[], object]]
"""A call to time, and one to run untimed before each call (e.g. emptying the session)."""


@dataclass(frozen=True)
class Pair:
    """Median microseconds of two calls over runs (each run's median, then their median)."""

    first_us: float
    second_us: float

    @property
    def ratio(self) -> float:
        return self.first_us / self.second_us


def compare(first: Call, second: Call, *, calls: int, runs: int) -> Pair:
    firsts, seconds = [], []
    for _ in range(runs):
        samples: tuple[list[float], list[float]] = ([], [])
        for _ in range(calls):
            for (call, before), timings in zip((first, second), samples, strict=True):
                before()
                started = time.perf_counter()
                call()
                timings.append(time.perf_counter() - started)
        firsts.append(statistics.median(samples[0]) * 1e6)
        seconds.append(statistics.median(samples[1]) * 1e6)
    return Pair(statistics.median(firsts), statistics.median(seconds))


def median_us(call: Callable[[], object], before: Callable[[], object], *, calls: int) -> float:
    samples = []
    for _ in range(calls):
        before()
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def nothing() -> None:
    return None
