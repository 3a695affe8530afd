"""OpenTelemetry metrics of every open ``DataLayer``, observed at collection time, never pushed.

``dr_assistant_data.cache.events`` (``dr.cache.region``, ``dr.cache.event``: hit, miss,
load, invalidation, error), ``dr_assistant_data.cache.hit_ratio`` per region,
``dr_assistant_data.db.pool.connections`` (``dr.pool.state``: checked_out, idle), and the
gauges of the circuit breaker, owed invalidations, replica lag, the last sealed audit batch
and the audit checkpoints the store refused in a row. Every attribute is a name or a number
the layer writes itself. The facade is read through :class:`Observed`, the part of its API
these metrics need, so this module sits below ``layer.py`` with no import of it. Without
``opentelemetry-api`` every call here is a no-op.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .telemetry import NAME

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ImportError:  # the otel extra is not installed
    # None marks the optional module absent; every use checks for it first
    metrics = None  # type: ignore[assignment]


class Sealed(Protocol):
    """The last audit batch a layer sealed: its number and the events sealed up to it."""

    @property
    def batch(self) -> int: ...
    @property
    def total(self) -> int: ...


class Observed(Protocol):
    """What the metrics read of a ``DataLayer``."""

    @property
    def closed(self) -> bool: ...
    @property
    def database_name(self) -> str: ...
    @property
    def last_sealed(self) -> Sealed | None: ...
    def pool_state(self) -> dict[str, Any]: ...
    def cache_guard_state(self) -> dict[str, int]: ...
    def replica_lags(self) -> list[float | None]: ...
    def cache_stats(self) -> dict[str, dict[str, int]]: ...
    def audit_sealer_health(self) -> dict[str, Any] | None: ...


_layers: weakref.WeakSet[Observed] = weakref.WeakSet()


def observe(layer: Observed) -> None:
    """Report ``layer``'s cache and pool metrics while it is open (held weakly)."""
    if metrics is not None:
        _instruments()
        _layers.add(layer)


def _open_layers() -> Iterator[Observed]:
    yield from (layer for layer in list(_layers) if not layer.closed)


Reading = tuple[dict[str, Any], float]
"""A layer's value for one set of attributes (``db.name`` is added)."""
Combine = Callable[[list[float]], float]
"""How the readings of layers of one database become one point (``sum``, ``max``)."""


def _cache_events(layer: Observed) -> Iterable[Reading]:
    return [
        ({"dr.cache.region": region, "dr.cache.event": event}, count)
        for region, counts in layer.cache_stats().items()
        for event, count in counts.items()
    ]


def _hit_ratio(_options: CallbackOptions) -> Iterable[Observation]:
    """Hits over lookups per region, over every open layer of each database."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for layer in _open_layers():
        for region, counts in layer.cache_stats().items():
            hits, lookups = totals.get((region, layer.database_name), (0, 0))
            lookups += counts["hit"] + counts["miss"]
            totals[region, layer.database_name] = (hits + counts["hit"], lookups)
    for (region, database), (hits, lookups) in totals.items():
        if lookups:
            yield Observation(hits / lookups, {"dr.cache.region": region, "db.name": database})


def _pool(layer: Observed) -> Iterable[Reading]:
    state = layer.pool_state()
    return [
        ({"dr.pool.state": name}, state[name]) for name in ("checked_out", "idle") if name in state
    ]


def _combined(
    read: Callable[[Observed], Iterable[Reading]], combine: Combine
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    """A callback observing ``read(layer)`` for every open layer; the readings of layers of
    one database (same attributes) are combined into one point: an SDK keeps one value per
    attribute set, so reporting each would let the last layer hide the others."""

    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        grouped: dict[tuple[tuple[str, Any], ...], list[float]] = {}
        for layer in _open_layers():
            for attributes, value in read(layer):
                key = tuple(sorted({**attributes, **_database(layer)}.items()))
                grouped.setdefault(key, []).append(value)
        return [Observation(combine(values), dict(key)) for key, values in grouped.items()]

    return callback


def _guard(key: str) -> Callable[[Observed], Iterable[Reading]]:
    def read(layer: Observed) -> Iterable[Reading]:
        state = layer.cache_guard_state()
        return [({}, state[key])] if key in state else []

    return read


def _replica_lags(layer: Observed) -> Iterable[Reading]:
    lags = enumerate(layer.replica_lags())
    return [({"dr.replica": index}, lag) for index, lag in lags if lag is not None]


def _sealed(field: str) -> Callable[[Observed], Iterable[Reading]]:
    def read(layer: Observed) -> Iterable[Reading]:
        sealed = layer.last_sealed
        return [] if sealed is None else [({}, getattr(sealed, field))]

    return read


def _checkpoint_failures(layer: Observed) -> Iterable[Reading]:
    health = layer.audit_sealer_health()
    return [] if health is None else [({}, health["checkpoint_failures"])]


def _database(layer: Observed) -> dict[str, str]:
    return {"db.name": layer.database_name}


_registered = False


def _instruments() -> None:
    """Create the observable instruments once per process (an SDK keeps the first of a
    name); they report every open layer."""
    global _registered
    if _registered:
        return
    _registered = True
    meter = metrics.get_meter(NAME)
    meter.create_observable_counter(
        f"{NAME}.cache.events",
        callbacks=[_combined(_cache_events, sum)],
        description="cache events",
    )
    meter.create_observable_gauge(
        f"{NAME}.cache.hit_ratio", callbacks=[_hit_ratio], description="hits / lookups"
    )
    meter.create_observable_gauge(
        f"{NAME}.db.pool.connections",
        callbacks=[_combined(_pool, sum)],
        description="pooled connections",
    )
    gauges: dict[str, tuple[Callable[[Observed], Iterable[Reading]], Combine, str]] = {
        "cache.breaker.open": (_guard("breaker_open"), max, "1 while Redis calls are skipped"),
        "cache.invalidations.owed": (_guard("owed"), sum, "invalidations not yet delivered"),
        "db.replica.lag": (_replica_lags, max, "seconds of replay lag at the last check"),
        "audit.sealed_batch": (_sealed("batch"), max, "the last audit batch sealed here"),
        "audit.events_sealed": (_sealed("total"), max, "audit events sealed up to it"),
        "audit.checkpoint_failures": (
            _checkpoint_failures,
            max,
            "checkpoint writes the store refused in a row (0: checkpoints are written)",
        ),
    }
    for name, (read, combine, description) in gauges.items():
        meter.create_observable_gauge(
            f"{NAME}.{name}",
            callbacks=[_combined(read, combine)],
            description=description,
            unit="s" if name == "db.replica.lag" else "1",
        )
