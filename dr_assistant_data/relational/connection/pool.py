"""The connection pool of the relational store, and a description of its state.

The state (size, connections checked out and idle, overflow) is what an operator needs
when the pool runs dry, so it appears in the pool-timeout error, in ``dl.health()`` and in
the slow-query log lines. It holds counts only, never data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import ConnectionPoolEntry, Pool, QueuePool


class ReportingQueuePool(QueuePool):
    """A ``QueuePool`` whose timeout error states how the pool stood when it gave up."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            state = describe(pool_state(self))
        # raised outside the except block: the bare queue timeout adds nothing
        raise sa_exc.TimeoutError(
            f"pool exhausted after waiting {self.timeout():.2f}s ({state})", code="3o7r"
        )


def pool_state(pool: Pool) -> dict[str, Any]:
    """Counts of a ``QueuePool``; other pools (SQLite's) report their class only."""
    if not isinstance(pool, QueuePool):
        return {"pool": type(pool).__name__}
    return {
        "size": pool.size(),
        "checked_out": pool.checkedout(),
        "idle": pool.checkedin(),
        "overflow": max(0, pool.overflow()),
    }


def describe(state: dict[str, Any]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in state.items())
