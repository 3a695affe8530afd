"""OpenTelemetry spans and metrics whose attributes never carry patient data.

With ``opentelemetry-api`` installed (the ``otel`` extra), the layer reports through the
providers the application configured (no SDK is needed at run time; without a provider no
span is started at all, so a cache hit pays one type check):

* spans ``dr_assistant_data.unit_of_work`` (``dr.read_only``; ``dr.outcome`` = committed,
  rolled_back or failed; ``error.type``, a class name), ``dr_assistant_data.migrate``, and,
  as its children, ``dr_assistant_data.repository`` / ``dr_assistant_data.document`` per
  repository call (:func:`trace_methods`: table or collection, operation, outcome, rows)
  and ``dr_assistant_data.cache`` per cached read and invalidation (region, hit or miss,
  delivered or owed);
* metrics observed at collection time from every open ``DataLayer``, never pushed:
  ``dr_assistant_data.cache.events`` (``dr.cache.region``, ``dr.cache.event``: hit, miss,
  load, invalidation, error), ``dr_assistant_data.cache.hit_ratio`` per region,
  ``dr_assistant_data.db.pool.connections`` (``dr.pool.state``: checked_out, idle), and
  the gauges of the circuit breaker, owed invalidations, replica lag, the last sealed
  audit batch and the audit checkpoints the store refused in a row.

Every attribute is a name or a number the layer writes itself: never a value a caller
gave, never an error's message. Without the package every call here is a no-op.
:func:`instrument_drivers` turns on the upstream redis and pymongo instrumentations.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

try:
    from opentelemetry import context, metrics, trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import StatusCode
except ImportError:  # the otel extra is not installed
    # None marks the optional module absent; every use checks for it first
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .layer import DataLayer

NAME = "dr_assistant_data"
_layers: weakref.WeakSet[DataLayer] = weakref.WeakSet()
_tracer = trace.get_tracer(NAME) if trace is not None else None
"""A proxy: it follows the provider the application sets later."""

Attribute = str | bool | int | float
F = TypeVar("F", bound=Callable[..., Any])


class Activity(Protocol):
    def end(
        self, outcome: str, error: BaseException | None = None, **attributes: Attribute
    ) -> None: ...


class _Nothing:
    def end(
        self, outcome: str, error: BaseException | None = None, **attributes: Attribute
    ) -> None:
        return None


_NOTHING = _Nothing()
_NO_OP_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider) if trace else ()
"""No provider set yet, or the API's no-op: nothing would be recorded."""


class _Span:
    """A span made current until :meth:`end` (which must run in the same context)."""

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self._span = _tracer.start_span(f"{NAME}.{name}", attributes=attributes)
        self._token = context.attach(trace.set_span_in_context(self._span))

    def end(
        self, outcome: str, error: BaseException | None = None, **attributes: Attribute
    ) -> None:
        self._span.set_attribute("dr.outcome", outcome)
        for key, value in attributes.items():
            self._span.set_attribute(f"dr.{key}", value)
        if error is not None:  # its class only: a message may quote a caller's value
            self._span.set_attribute("error.type", type(error).__name__)
            self._span.set_status(StatusCode.ERROR)
        context.detach(self._token)
        self._span.end()


def start(name: str, **attributes: Attribute) -> Activity:
    """A span named ``dr_assistant_data.<name>``, current until ``end(outcome, error,
    **more)``; each attribute is reported as ``dr.<key>``."""
    if trace is None or isinstance(trace.get_tracer_provider(), _NO_OP_PROVIDERS):
        return _NOTHING  # the hot paths (a cache hit) pay one type check, no span
    return _Span(name, {f"dr.{key}": value for key, value in attributes.items()})


class Span:
    """``with Span(name, **attributes) as span:`` a span (see :func:`start`) whose outcome
    is ``span.outcome`` (set by the block; ``ok`` by default) with ``span.attributes``,
    or ``failed`` with the class of the exception that left the block."""

    __slots__ = ("_activity", "attributes", "outcome")

    def __init__(self, name: str, **attributes: Attribute) -> None:
        self._activity = start(name, **attributes)
        self.outcome = "ok"
        self.attributes: dict[str, Attribute] = {}

    def __enter__(self) -> Span:
        return self

    def __exit__(self, _kind: object, error: BaseException | None, _trace: object) -> None:
        if error is None:
            self._activity.end(self.outcome, None, **self.attributes)
        else:
            self._activity.end("failed", error)


def trace_methods(
    cls: type, kind: str, attributes: Callable[[Any], Mapping[str, Attribute]]
) -> None:
    """Make each public method ``cls`` defines (generators aside: they run after the call
    returns) a span ``dr_assistant_data.<kind>`` per call, with ``attributes(self)``,
    ``dr.operation`` (the method's name), ``dr.outcome`` (``ok`` or ``failed`` with
    ``error.type``) and ``dr.rows``, the number of records it returned (see ``_rows``)."""
    for name, value in list(vars(cls).items()):
        public = inspect.isfunction(value) and not name.startswith("_")
        if public and not inspect.isgeneratorfunction(value):
            setattr(cls, name, _traced(kind, value, attributes))


def _traced(kind: str, method: F, attributes: Callable[[Any], Mapping[str, Attribute]]) -> F:
    if trace is None:
        return method
    operation = method.__name__

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with Span(kind, operation=operation, **attributes(self)) as span:
            result = method(self, *args, **kwargs)
            span.attributes = _rows(result)
        return result

    return cast(F, call)


def _rows(result: object) -> dict[str, Attribute]:
    """``rows``: a list's length, a page's items, one record or none; nothing for a count
    or a flag (a number is not a record)."""
    items = getattr(result, "items", result)  # a keyset page
    if isinstance(items, Sequence) and not isinstance(items, str | bytes):
        return {"rows": len(items)}
    if isinstance(result, int | float | str | bytes | dict):
        return {}
    return {"rows": 0 if result is None else 1}


def observe(layer: DataLayer) -> None:
    """Report ``layer``'s cache and pool metrics while it is open (held weakly)."""
    if trace is not None:
        _instruments()
        _layers.add(layer)


def _open_layers() -> Iterator[DataLayer]:
    yield from (layer for layer in list(_layers) if not layer.closed)


Reading = tuple[dict[str, Any], float]
"""A layer's value for one set of attributes (``db.name`` is added)."""
Combine = Callable[[list[float]], float]
"""How the readings of layers of one database become one point (``sum``, ``max``)."""


def _cache_events(layer: DataLayer) -> Iterable[Reading]:
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


def _pool(layer: DataLayer) -> Iterable[Reading]:
    state = layer.pool_state()
    return [
        ({"dr.pool.state": name}, state[name]) for name in ("checked_out", "idle") if name in state
    ]


def _combined(
    read: Callable[[DataLayer], Iterable[Reading]], combine: Combine
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


def _guard(key: str) -> Callable[[DataLayer], Iterable[Reading]]:
    def read(layer: DataLayer) -> Iterable[Reading]:
        state = layer.cache_guard_state()
        return [({}, state[key])] if key in state else []

    return read


def _replica_lags(layer: DataLayer) -> Iterable[Reading]:
    lags = enumerate(layer.replica_lags())
    return [({"dr.replica": index}, lag) for index, lag in lags if lag is not None]


def _sealed(field: str) -> Callable[[DataLayer], Iterable[Reading]]:
    def read(layer: DataLayer) -> Iterable[Reading]:
        sealed = layer.last_sealed
        return [] if sealed is None else [({}, getattr(sealed, field))]

    return read


def _checkpoint_failures(layer: DataLayer) -> Iterable[Reading]:
    health = layer.audit_sealer_health()
    return [] if health is None else [({}, health["checkpoint_failures"])]


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
    gauges: dict[str, tuple[Callable[[DataLayer], Iterable[Reading]], Combine, str]] = {
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


_DRIVERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "redis": ("opentelemetry.instrumentation.redis", "RedisInstrumentor", {}),
    "pymongo": (
        "opentelemetry.instrumentation.pymongo",
        "PymongoInstrumentor",
        {"capture_statement": False},
    ),
}


def instrument_drivers() -> list[str]:
    """Turn on the upstream redis and pymongo instrumentations that are installed (the
    ``otel-drivers`` extra) and return their names; idempotent. Their spans carry the
    command's name, never its arguments: redis' sanitizes them to ``?``, pymongo's is left
    at ``capture_statement=False`` (a filter or document is patient data). Not the
    SQLAlchemy one: its release declares SQLAlchemy < 2.1 (docs/how-to/operations.md,
    "OpenTelemetry")."""
    if trace is None:
        return []
    turned_on = []
    for name, (module, class_name, options) in _DRIVERS.items():
        try:
            instrumentor = getattr(importlib.import_module(module), class_name)()
        except ImportError:
            continue
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**options)
        turned_on.append(name)
    return turned_on
