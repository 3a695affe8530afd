"""The shape of every store's error boundary: only contract errors leave a wrapped call.

The mapped error is raised outside the ``except`` block, so it carries neither
``__cause__`` nor ``__context__``: a driver's message (which may quote a value) cannot
reach a log through a chained traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from .errors import DataLayerError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def boundary(
    catch: tuple[type[BaseException], ...], convert: Callable[[Any], DataLayerError]
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A decorator turning the exceptions in ``catch`` into ``convert(error)``."""

    def translated(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(*args, **kwargs)
            except DataLayerError:
                raise
            except catch as error:
                mapped = convert(error)
            raise mapped

        return wrapper

    return translated
