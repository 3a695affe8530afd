"""Timing: contenders alternated call by call (the one going first rotates), so that noise
from other processes falls on all alike; medians of every call, and the ratio of two
contenders as the median (p10, p90) of their per-block ratios of medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

Call = tuple[Callable[[], object], Callable[[], object]]
"""A call to time, and one to run untimed before each call (e.g. emptying a cache key)."""

BLOCK = 50
"""Calls per contender in one block of the per-block ratios."""


@dataclass(frozen=True)
class Ratio:
    """The median and the 10th and 90th percentiles of per-block ratios."""

    median: float
    p10: float
    p90: float

    def __str__(self) -> str:
        return f"x{self.median:.2f} ({self.p10:.2f}-{self.p90:.2f})"


@dataclass(frozen=True)
class Race:
    """Every call's duration (seconds) per contender, in the order they ran."""

    samples: dict[str, list[float]]

    def us(self, name: str) -> float:
        """The median microseconds of one contender."""
        return statistics.median(self.samples[name]) * 1e6

    def ratio(self, first: str, second: str) -> Ratio:
        """``first`` over ``second``: each block's median over the other's median."""
        a, b = self.samples[first], self.samples[second]
        size = min(BLOCK, len(a))
        ratios = sorted(
            statistics.median(a[start : start + size]) / statistics.median(b[start : start + size])
            for start in range(0, len(a) - size + 1, size)
        )
        if len(ratios) == 1:
            return Ratio(ratios[0], ratios[0], ratios[0])
        deciles = statistics.quantiles(ratios, n=10, method="inclusive")
        return Ratio(statistics.median(ratios), deciles[0], deciles[-1])


def race(contenders: dict[str, Call], *, calls: int, runs: int, warmup: int = 20) -> Race:
    """``calls`` x ``runs`` timed calls of each contender, after ``warmup`` untimed ones."""
    entries = list(contenders.items())
    for _ in range(warmup):
        for _, (call, before) in entries:
            before()
            call()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for turn in range(calls * runs):
        shift = turn % len(entries)
        for name, (call, before) in entries[shift:] + entries[:shift]:
            before()
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return Race(samples)


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
