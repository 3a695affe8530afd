"""The one place where pymongo failures become the contract's errors.

As on the relational side, the driver's message is never copied (a duplicate-key error
quotes the key's value) and the new error is raised outside the ``except`` block, so no
traceback carries the driver exception along.
"""

from __future__ import annotations

from pymongo import errors as mongo_errors

from ..boundary import boundary
from ..errors import BackendUnavailableError, DataLayerError, DuplicateError

UNAVAILABLE = (
    mongo_errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelection
    mongo_errors.ExecutionTimeout,
    mongo_errors.WaitQueueTimeoutError,
)


def contract_error(error: mongo_errors.PyMongoError) -> DataLayerError:
    """The contract error for a pymongo exception; its text holds no values."""
    if isinstance(error, UNAVAILABLE):
        return BackendUnavailableError("mongodb", type(error).__name__)
    if isinstance(error, mongo_errors.DuplicateKeyError):
        key = (error.details or {}).get("keyPattern") or {}
        return DuplicateError(next(iter(key), "id"))
    return DataLayerError(f"document store error ({type(error).__name__})")


translated = boundary((mongo_errors.PyMongoError,), contract_error)
"""Wrap a function so that only contract errors leave it."""
