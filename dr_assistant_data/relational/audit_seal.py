"""The sealer: orders committed audit events into batches, hashes and anchors them.

Writers append events without a lock (``audit_trail.py``), so the log gets its order
afterwards, from one sealer at a time. Each round, in one transaction on PostgreSQL:

1. the horizon ``H = pg_snapshot_xmin(pg_current_snapshot())``: every transaction with an
   id below ``H`` has ended, so the events with ``xid`` below it are final (none can still
   commit or roll back);
2. the batch is every event with ``xid`` in ``[previous batch's H, H)``, in ``seq`` order,
   hashed into an RFC 6962 Merkle root (``merkle.py``) while streamed;
3. a row of ``audit_seals``: batch number, the ``xid`` range, event count, running total,
   root, the previous head, and ``head`` = HMAC of all of these (a keyed chain of batches);
4. after COMMIT, a signed checkpoint of (batch, head, total) in the checkpoint store.

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
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..protection.audit_key import AuditKey
from ..values.clock import utcnow
from .audit_checkpoints import Checkpoint, CheckpointStore
from .audit_trail import GENESIS
from .merkle import RootBuilder, leaf_hash
from .models import AuditEvent, AuditSeal

SEALER_LOCK = 0x6472_6173_7365_616C
"""The session advisory lock of the sealer's role (any constant shared by every sealer)."""
HORIZON = text("SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")
SEAL_FIELDS = ("batch", "xid_low", "xid_high", "event_count", "total", "root", "prev_head")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sealed:
    """A batch just sealed: its number, how many events it holds, the total so far."""

    batch: int
    events: int
    total: int


def event_leaf(seq: int, row_hash: str) -> bytes:
    """The Merkle leaf of an event: its place and its HMAC (which covers its content)."""
    return leaf_hash(f"{seq}:{row_hash}".encode())


def seal_content(seal: object) -> dict[str, object]:
    """What a seal's ``head`` is the HMAC of (with ``sealed_at``)."""
    content = {name: getattr(seal, name) for name in SEAL_FIELDS}
    content["sealed_at"] = getattr(seal, "sealed_at")  # noqa: B009 - one name among many
    return content


def seal_once(
    connection: Connection, key: AuditKey, store: CheckpointStore | None
) -> Sealed | None:
    """Seal the events whose transactions have all ended since the last batch; ``None``
    when there were none. Raises ``IntegrityError`` if another sealer sealed the batch
    first (nothing is written then); a checkpoint the store refuses raises ``OSError``
    after the seal committed (the next round's checkpoint covers it)."""
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
    if store is not None:
        store.append(Checkpoint.sign(key, seal["batch"], seal["head"], seal["total"]))
    return Sealed(seal["batch"], builder.size, seal["total"])


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

    @property
    def leader(self) -> bool:
        return self._connection is not None

    def run_once(self) -> Sealed | None:
        """One round if this sealer holds (or can take) the role, else ``None``."""
        if not self._lead():
            return None
        assert self._connection is not None
        try:
            sealed = seal_once(self._connection, self._key, self._store)
        except SQLAlchemyError:
            self.resign()  # connection lost or a rival sealed first: start afresh
            raise
        if sealed is not None and self._on_sealed is not None:
            self._on_sealed(sealed)
        return sealed

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
            try:
                self.run_once()
            except (SQLAlchemyError, OSError) as error:
                log.warning("audit sealing round failed: %s", type(error).__name__)
