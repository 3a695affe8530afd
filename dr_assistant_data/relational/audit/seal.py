"""The sealer: orders committed audit events into batches, hashes and anchors them.

Writers append events without a lock (``trail.py``), so the log gets its order
afterwards, from one sealer at a time. Each round, in one transaction on PostgreSQL:

1. the horizon ``H = pg_snapshot_xmin(pg_current_snapshot())``: every transaction with an
   id below ``H`` has ended, so the events with ``xid`` below it are final (none can still
   commit or roll back);
2. the batch is every event with ``xid`` in ``[previous batch's H, H)``, in ``seq`` order,
   hashed into an RFC 6962 Merkle root (``merkle.py``) while streamed;
3. a row of ``audit_seals``: batch number, the ``xid`` range, event count, running total,
   root, the previous head, and ``head`` = HMAC of all of these (a keyed chain of batches);
4. after COMMIT, a signed checkpoint of (batch, head, total) in the checkpoint store.

A checkpoint the store refuses (a full or unmounted disk) does not stop sealing: the
sealer keeps it and tries again at later rounds, waiting twice as long after each failure
(up to ``STORE_RETRY_MAX``), until it is written or a newer batch's checkpoint replaces
it; the failures are reported (:meth:`Sealer.health`, the layer's ``health`` and metrics,
a warning naming the kind of error, never the path).

Batches are a pure function of the events, so a sealer killed at any point loses nothing:
the next one (any process) recomputes the same batch from where the last committed seal
stopped, and a second sealer racing it fails on the batch's primary key. Leadership is a
session advisory lock held on the sealer's own connection: the server releases it when the
process dies or its connection drops. A round that finds nothing new writes nothing.

The time from an event's commit to its checkpoint is at most the seal interval, plus the
round's own time, plus the age of the oldest transaction running at commit (``H`` does not
pass a transaction still open); ``bench/audit.py`` measures it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from ...errors import DataLayerError
from ...protection.audit_key import AuditKey
from ...values.clock import utcnow
from ..models import AuditEvent, AuditSeal
from .checkpoints import Checkpoint, CheckpointStore, CheckpointStoreError, described
from .merkle import RootBuilder, leaf_hash
from .trail import GENESIS

SEALER_LOCK = 0x6472_6173_7365_616C
"""The session advisory lock of the sealer's role (any constant shared by every sealer)."""
HORIZON = text("SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")
SEAL_FIELDS = ("batch", "xid_low", "xid_high", "event_count", "total", "root", "prev_head")
STORE_RETRY_MAX = 300.0
"""The longest wait, in seconds, between two attempts to write a refused checkpoint."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sealed:
    """A batch just sealed: its number, how many events it holds, the total so far, and
    its head (what its checkpoint signs)."""

    batch: int
    events: int
    total: int
    head: str


def event_leaf(seq: int, row_hash: str) -> bytes:
    """The Merkle leaf of an event: its place and its HMAC (which covers its content)."""
    return leaf_hash(f"{seq}:{row_hash}".encode())


def seal_content(seal: object) -> dict[str, object]:
    """What a seal's ``head`` is the HMAC of (with ``sealed_at``)."""
    content = {name: getattr(seal, name) for name in SEAL_FIELDS}
    content["sealed_at"] = getattr(seal, "sealed_at")  # noqa: B009 - one name among many
    return content


def seal_once(connection: Connection, key: AuditKey) -> Sealed | None:
    """Seal the events whose transactions have all ended since the last batch; ``None``
    when there were none. Raises ``IntegrityError`` if another sealer sealed the batch
    first (nothing is written then)."""
    with connection.begin():
        horizon = connection.scalar(HORIZON)
        last = connection.execute(
            select(AuditSeal).order_by(AuditSeal.batch.desc()).limit(1)
        ).first()
        low = last.xid_high if last else 0
        if horizon <= low:
            return None
        builder = RootBuilder()
        events = connection.execute(
            select(AuditEvent.seq, AuditEvent.row_hash)
            .where(AuditEvent.xid >= low, AuditEvent.xid < horizon)
            .order_by(AuditEvent.seq),
            execution_options={"yield_per": 10_000},
        )
        for seq, row_hash in events:
            builder.add(event_leaf(seq, row_hash))
        if builder.size == 0:
            return None
        seal = {
            "batch": last.batch + 1 if last else 1,
            "xid_low": low,
            "xid_high": horizon,
            "event_count": builder.size,
            "total": (last.total if last else 0) + builder.size,
            "root": builder.root(),
            "prev_head": last.head if last else GENESIS,
            "sealed_at": utcnow(),
        }
        seal["head"] = key.mac("seal", seal)
        connection.execute(insert(AuditSeal), seal)
    return Sealed(seal["batch"], builder.size, seal["total"], seal["head"])


class Sealer:
    """Seals every ``interval`` seconds while it holds the sealer's role; any number of
    processes may run one, one of them seals. ``run_once`` does one round (for the
    command line and tests); ``start`` runs rounds in a daemon thread until ``stop``."""

    def __init__(
        self,
        engine: Engine,
        key: AuditKey,
        store: CheckpointStore | None,
        interval: float,
        on_sealed: Callable[[Sealed], None] | None = None,
    ) -> None:
        self._engine, self._key, self._store, self.interval = engine, key, store, interval
        self._on_sealed = on_sealed
        self._connection: Connection | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unexported: Sealed | None = None
        self._store_failures = 0
        self._store_error: str | None = None
        self._retry_at = 0.0

    @property
    def leader(self) -> bool:
        return self._connection is not None

    def run_once(self) -> Sealed | None:
        """One round if this sealer holds (or can take) the role, else ``None``. When the
        store refuses the checkpoint, raises :class:`CheckpointStoreError` after the seal
        committed; the checkpoint is tried again at a later round."""
        if not self._lead():
            return None
        assert self._connection is not None
        try:
            sealed = seal_once(self._connection, self._key)
        except SQLAlchemyError:
            self.resign()  # connection lost or a rival sealed first: start afresh
            raise
        if sealed is not None:
            self._unexported = sealed if self._store is not None else None
            if self._on_sealed is not None:
                self._on_sealed(sealed)
        self._export()
        return sealed

    def attempt(self) -> str | None:
        """One round that never raises for a database or store fault: what failed (its
        kind, no data, no path), or ``None``."""
        try:
            self.run_once()
        except CheckpointStoreError as error:
            return str(error)
        except (SQLAlchemyError, DataLayerError, OSError) as error:
            return type(error).__name__
        return None

    def health(self) -> dict[str, Any]:
        """Whether checkpoints are being written: ``ok`` is false while the store refuses
        them, with the failures in a row, the kind of the last one and the sealed batch
        whose checkpoint is still to be written."""
        return {
            "ok": self._store_failures == 0,
            "leader": self.leader,
            "checkpoint_failures": self._store_failures,
            "error": self._store_error,
            "unexported_batch": self._unexported.batch if self._unexported else None,
        }

    def _export(self) -> None:
        pending = self._unexported
        if pending is None or self._store is None or time.monotonic() < self._retry_at:
            return
        try:
            self._store.append(
                Checkpoint.sign(self._key, pending.batch, pending.head, pending.total)
            )
        except OSError as error:
            self._store_failures += 1
            self._store_error = described(error)
            backoff = self.interval * 2 ** min(self._store_failures, 16)
            self._retry_at = time.monotonic() + min(backoff, STORE_RETRY_MAX)
            raise CheckpointStoreError(
                f"the checkpoint of audit batch {pending.batch} could not be written "
                f"({self._store_error}); the batch is sealed, and the next checkpoint "
                "written covers it"
            ) from None
        self._unexported, self._store_failures, self._store_error = None, 0, None

    def _lead(self) -> bool:
        if self._connection is None:
            connection = self._engine.connect()
            taken = connection.scalar(select(func.pg_try_advisory_lock(SEALER_LOCK)))
            connection.commit()
            if not taken:
                connection.close()
                return False
            self._connection = connection
        return True

    def resign(self) -> None:
        """Give the role up: the connection is closed, not pooled, so its lock goes too."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()
            connection.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="audit-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.resign()

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            failure = self.attempt()
            if failure is not None:
                log.warning("audit sealing round failed: %s", failure)
