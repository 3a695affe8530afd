"""OpenTelemetry spans whose attributes never carry patient data.

With ``opentelemetry-api`` installed (the ``otel`` extra), the layer reports through the
providers the application configured (no SDK is needed at run time; without a provider no
span is started at all, so a cache hit pays one type check):

* spans ``dr_assistant_data.unit_of_work`` (``dr.read_only``; ``dr.outcome`` = committed,
  rolled_back or failed; ``error.type``, a class name), ``dr_assistant_data.migrate``, and,
  as its children, ``dr_assistant_data.repository`` / ``dr_assistant_data.document`` per
  repository call (:func:`trace_methods`: table or collection, operation, outcome, rows)
  and ``dr_assistant_data.cache`` per cached read and invalidation (region, hit or miss,
  delivered or owed);
* the metrics of every open ``DataLayer`` are ``metrics.py``'s, which reads the facade;
  this module stays below the cache and the repositories that start its spans.

Every attribute is a name or a number the layer writes itself: never a value a caller
gave, never an error's message. Without the package every call here is a no-op.
:func:`instrument_drivers` turns on the upstream redis and pymongo instrumentations.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

try:
    from opentelemetry import context, trace
    from opentelemetry.trace import StatusCode
except ImportError:  # the otel extra is not installed
    # None marks the optional module absent; every use checks for it first
    trace = None  # type: ignore[assignment]

NAME = "dr_assistant_data"
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
    if not active():
        return _NOTHING  # the hot paths (a cache hit) pay one type check, no span
    return _Span(name, {f"dr.{key}": value for key, value in attributes.items()})


def active() -> bool:
    """Whether a span would be recorded: a provider other than the API's no-op is set.
    A hot path asks first, and runs bare when not (no span object, no attributes)."""
    return trace is not None and not isinstance(trace.get_tracer_provider(), _NO_OP_PROVIDERS)


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
        if not active():
            return method(self, *args, **kwargs)
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
