"""What an exception carries along: every exception reachable from it through
``__cause__``, ``__context__`` and exceptions in ``args``, and their texts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dr_assistant_data.errors import DataLayerError


def chained(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception reachable from it, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def texts(error: BaseException) -> str:
    """Everything a traceback printer or a debugger shows of the chain: each exception's
    ``repr``, ``str``, ``args`` and attributes (a ``JSONDecodeError`` keeps its ``doc``)."""
    return "\n".join(f"{item!r} {item} {item.args!r} {vars(item)!r}" for item in chained(error))


def assert_carries_no_caller_value(error: BaseException, *values: Any) -> None:
    """``error`` chains only the layer's own errors, and no text of ``values`` (those of
    at least 8 characters: shorter ones may be words of the layer's messages) appears in
    any of them."""
    foreign = [
        type(item).__name__ for item in chained(error) if not isinstance(item, DataLayerError)
    ]
    assert not foreign, foreign
    shown = texts(error)
    for value in values:
        if isinstance(value, str) and len(value) >= 8:
            assert value not in shown, value
            assert repr(value)[1:-1] not in shown, value
