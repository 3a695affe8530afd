"""The one place where pymongo failures become the contract's errors.

As on the relational side, the driver's message is never copied (a duplicate-key error
quotes the key's value) and the new error is raised outside the ``except`` block, so no
traceback carries the driver exception along.
"""

from __future__ import annotations

import re

from pymongo import errors as mongo_errors

from ..boundary import boundary
from ..errors import BackendUnavailableError, DataLayerError, DuplicateError

UNAVAILABLE = (
    mongo_errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelection
    mongo_errors.ExecutionTimeout,
    mongo_errors.WaitQueueTimeoutError,
)


_DRIVER_TIMEOUTS = re.compile(r" \(configured timeouts: [^)]*\)")


def contract_error(error: mongo_errors.PyMongoError) -> DataLayerError:
    """The contract error for a pymongo exception; its text holds no values."""
    if isinstance(error, mongo_errors.ServerSelectionTimeoutError):
        return BackendUnavailableError("mongodb", _unreachable_servers(error))
    if isinstance(error, UNAVAILABLE):
        return BackendUnavailableError("mongodb", type(error).__name__)
    if isinstance(error, mongo_errors.DuplicateKeyError):
        key = (error.details or {}).get("keyPattern") or {}
        return DuplicateError(next(iter(key), "id"))
    return DataLayerError(f"document store error ({type(error).__name__})")


translated = boundary((mongo_errors.PyMongoError,), contract_error)
"""Wrap a function so that only contract errors leave it."""


def _unreachable_servers(error: mongo_errors.ServerSelectionTimeoutError) -> str:
    """Each server tried and why it failed (``127.0.0.1:1: [Errno 111] Connection
    refused``), as PostgreSQL's errors name host and port: the driver's text before its
    topology dump, which names servers and socket errors only."""
    servers, found, _ = str(error).partition(", Timeout: ")
    if not found or not servers.strip():
        return "ServerSelectionTimeoutError: no server answered"
    return f"no server answered ({_DRIVER_TIMEOUTS.sub('', servers).strip()})"
