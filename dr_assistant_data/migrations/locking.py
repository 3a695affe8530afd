"""The connection a migration runs on: serialized between deploys, bounded in its lock waits.

A revision that waits for a table lock behind a long transaction also makes every query
that arrives after it wait (PostgreSQL queues lock requests). So on PostgreSQL every
statement of a migration runs under ``lock_timeout``: a lock not granted in time fails the
statement (SQLSTATE 55P03), the transaction rolls back, and :func:`with_lock_retries`
starts the migration again after a growing pause, a bounded number of times. The queries
stuck behind the waiting migration wait at most the timeout.

Deploys are serialized by a session-level advisory lock, taken before the timeout is set
(a deploy may wait as long as it takes for another one to finish) and held across the
commits a revision may make in an ``autocommit_block``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, func, select, text
from sqlalchemy import exc as sa_exc

from ..settings import Settings

_R = TypeVar("_R")

MIGRATION_LOCK = 0x6472_6173_6D69_6772  # shared by every process that migrates
LOCK_NOT_AVAILABLE = "55P03"
MAX_PAUSE = 30.0
"""Seconds: the longest pause between two attempts."""


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration's statement may wait for a lock (seconds), and how many more
    times the migration is attempted after such a wait times out."""

    timeout: float = Settings.migration_lock_timeout
    retries: int = Settings.migration_retries

    @classmethod
    def of(cls, settings: Settings) -> LockPolicy:
        return cls(timeout=settings.migration_lock_timeout, retries=settings.migration_retries)

    @property
    def statement(self) -> str:
        """The ``SET`` that bounds a PostgreSQL session's lock waits by this policy."""
        return f"SET lock_timeout = {round(self.timeout * 1000)}"

    def pause(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: doubling, jittered so deploys
        that failed together do not return together."""
        return min(MAX_PAUSE, self.timeout * 2.0**attempt) * random.uniform(0.5, 1.0)  # noqa: S311


class LockTimeoutError(Exception):
    """Every attempt of a migration timed out waiting for a lock."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"no attempt of {attempts} got its locks in time")
        self.attempts = attempts


def is_lock_timeout(error: BaseException) -> bool:
    return isinstance(error, sa_exc.DBAPIError) and (
        getattr(error.orig, "pgcode", None) == LOCK_NOT_AVAILABLE
    )


def with_lock_retries(policy: LockPolicy, attempt: Callable[[], _R]) -> _R:
    """``attempt()``, run again after a pause each time it fails on a lock timeout; after
    ``policy.retries`` such failures, :class:`LockTimeoutError`. Other errors propagate
    at once."""
    for tries in range(policy.retries + 1):
        try:
            return attempt()
        except sa_exc.DBAPIError as error:
            if not is_lock_timeout(error):
                raise
        if tries < policy.retries:
            time.sleep(policy.pause(tries))
    raise LockTimeoutError(policy.retries + 1)


@contextmanager
def migrating(connection: Connection, policy: LockPolicy) -> Iterator[Connection]:
    """``connection`` (with no transaction open) holding the migration lock, with
    ``lock_timeout`` set, and left with no transaction open: Alembic begins its own, and
    ends it around an ``autocommit_block``. The timeout and the lock are released when
    the block ends, before the connection can return to the pool."""
    if connection.dialect.name != "postgresql":
        yield connection
        return
    connection.execute(select(func.pg_advisory_lock(MIGRATION_LOCK)))
    connection.execute(text(policy.statement))
    connection.commit()
    try:
        yield connection
    finally:
        connection.rollback()
        connection.execute(text("RESET lock_timeout"))
        connection.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK)))
        connection.commit()
