"""The one place where pymongo failures become the contract's errors.

As on the relational side, the driver's message is never copied (a duplicate-key error
quotes the key's value) and the new error is raised outside the ``except`` block, so no
traceback carries the driver exception along.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pymongo import errors as mongo_errors

from ..errors import BackendUnavailableError, DataLayerError, DuplicateError

_P = ParamSpec("_P")
_R = TypeVar("_R")

UNAVAILABLE = (
    mongo_errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelection
    mongo_errors.ExecutionTimeout,
    mongo_errors.WaitQueueTimeoutError,
)


def translated(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap ``fn`` so that only contract errors leave it."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except DataLayerError:
            raise
        except mongo_errors.PyMongoError as error:
            mapped = contract_error(error)
        raise mapped

    return wrapper


def contract_error(error: mongo_errors.PyMongoError) -> DataLayerError:
    """The contract error for a pymongo exception; its text holds no values."""
    if isinstance(error, UNAVAILABLE):
        return BackendUnavailableError("mongodb", type(error).__name__)
    if isinstance(error, mongo_errors.DuplicateKeyError):
        key = (error.details or {}).get("keyPattern") or {}
        return DuplicateError(next(iter(key), "id"))
    return DataLayerError(f"document store error ({type(error).__name__})")
