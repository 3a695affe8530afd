"""OpenTelemetry spans and metrics whose attributes never carry patient data.

With ``opentelemetry-api`` installed (the ``otel`` extra), the layer reports through the
providers the application configured (no SDK is needed at run time; without providers the
API's own no-ops answer):

* spans ``dr_assistant_data.unit_of_work`` (``dr.read_only``; ``dr.outcome`` = committed,
  rolled_back or failed; ``error.type``, a class name) and ``dr_assistant_data.migrate``;
  statements inside are children of the unit's span when the upstream SQLAlchemy
  instrumentation is on (its ``db.statement`` holds placeholders, never values);
* metrics observed from every open ``DataLayer``: ``dr_assistant_data.cache.events``
  (``dr.cache.region``, ``dr.cache.event``: hit, miss, load, invalidation, error),
  ``dr_assistant_data.cache.hit_ratio`` per region and
  ``dr_assistant_data.db.pool.connections`` (``dr.pool.state``: checked_out, idle).

Every attribute is a name or a number the layer writes itself: never a value a caller
gave, never an error's message. Without the package every call here is a no-op.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

try:
    from opentelemetry import context, metrics, trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import StatusCode
except ImportError:  # the otel extra is not installed
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .layer import DataLayer

NAME = "dr_assistant_data"
_layers: weakref.WeakSet[DataLayer] = weakref.WeakSet()


class Activity(Protocol):
    def end(self, outcome: str, error: BaseException | None = None) -> None: ...


class _Nothing:
    def end(self, outcome: str, error: BaseException | None = None) -> None:
        return None


class _Span:
    """A span made current until :meth:`end` (which must run in the same context)."""

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self._span = trace.get_tracer(NAME).start_span(f"{NAME}.{name}", attributes=attributes)
        self._token = context.attach(trace.set_span_in_context(self._span))

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        self._span.set_attribute("dr.outcome", outcome)
        if error is not None:  # its class only: a message may quote a caller's value
            self._span.set_attribute("error.type", type(error).__name__)
            self._span.set_status(StatusCode.ERROR)
        context.detach(self._token)
        self._span.end()


def start(name: str, **attributes: str | bool | int) -> Activity:
    """A span named ``dr_assistant_data.<name>``, current until ``end(outcome, error)``."""
    if trace is None:
        return _Nothing()
    return _Span(name, {f"dr.{key}": value for key, value in attributes.items()})


def observe(layer: DataLayer) -> None:
    """Report ``layer``'s cache and pool metrics while it is open (held weakly)."""
    if trace is not None:
        _instruments()
        _layers.add(layer)


def _open_layers() -> Iterator[DataLayer]:
    yield from (layer for layer in list(_layers) if not layer.closed)


def _cache_events(_options: CallbackOptions) -> Iterable[Observation]:
    for layer in _open_layers():
        for region, counts in layer.cache_stats().items():
            for event, count in counts.items():
                attributes = {"dr.cache.region": region, "dr.cache.event": event}
                yield Observation(count, {**attributes, **_database(layer)})


def _hit_ratio(_options: CallbackOptions) -> Iterable[Observation]:
    for layer in _open_layers():
        for region, counts in layer.cache_stats().items():
            looked_up = counts["hit"] + counts["miss"]
            if looked_up:
                attributes = {"dr.cache.region": region, **_database(layer)}
                yield Observation(counts["hit"] / looked_up, attributes)


def _pool(_options: CallbackOptions) -> Iterable[Observation]:
    for layer in _open_layers():
        state = layer.pool_state()
        for name in ("checked_out", "idle"):
            if name in state:
                yield Observation(state[name], {"dr.pool.state": name, **_database(layer)})


def _database(layer: DataLayer) -> dict[str, str]:
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
        f"{NAME}.cache.events", callbacks=[_cache_events], description="cache events"
    )
    meter.create_observable_gauge(
        f"{NAME}.cache.hit_ratio", callbacks=[_hit_ratio], description="hits / lookups"
    )
    meter.create_observable_gauge(
        f"{NAME}.db.pool.connections", callbacks=[_pool], description="pooled connections"
    )
