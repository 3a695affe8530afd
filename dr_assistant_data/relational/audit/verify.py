"""Verification of the audit log against its latest checkpoint, and inclusion proofs.

:func:`verify` walks every seal in batch order and, for each, its events in ``seq``
order, and reports the first problem found:

* an event whose HMAC does not verify (forged without the key, or edited), or an event
  chained before revision 0008 whose SHA-256 link is broken;
* a batch whose events no longer give its count and root (an event removed, added or
  moved), a seal whose head does not verify or does not follow the previous one (a seal
  forged, edited, removed or re-ordered);
* a latest checkpoint that was not signed with the key, or whose batch is missing or
  differs (seals and events truncated or deleted wholesale, the log rewritten);
* a latest checkpoint older than the seals the database holds, once the first seal it
  does not cover is ``checkpoint_lag`` old (the sealer writes a checkpoint right after
  each seal): the store was replaced by an older copy (which would then let the log's
  tail be removed unseen), or checkpoints are not being written.

Events are checked in chunks of a power of two events, a keyset range of ``seq`` each
(their first events found by one streamed query per batch): a chunk's HMACs, its links
before revision 0008 (a chunk carries its first predecessor: the link before it is read
when it holds such events) and the Merkle subtrees of its leaves. With :class:`Parallel`
the chunks are checked in worker processes, a few chunks ahead of the walk, whose
results are taken in the walk's order, so the report is the one a single process makes;
memory stays flat however many events there are (one page of seals, a few chunks). The
Merkle subtrees of a batch's chunks give its root (``merkle.py``).

Events not sealed yet are checked one by one (their HMAC) and counted as ``unsealed``.
:func:`prove` answers an auditor's "was this event recorded, and is it intact?" with the
event's Merkle path in its batch and the chain of heads from that batch to the checkpoint;
:func:`check_proof` checks such a proof with the key alone, without the database.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import typing
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, Row, String, cast, func, select

from ...errors import NotFoundError
from ...progress import ProgressCallback, Tally
from ...protection.audit_key import AuditKey
from ...values.clock import utcnow
from ..models import AuditEvent, AuditSeal
from .checkpoints import Checkpoint
from .merkle import RootBuilder, audit_path, root_from_path
from .seal import event_leaf, seal_content
from .trail import GENESIS, chain_hash, event_content

EVENTS = AuditEvent.__table__
CHECKPOINT_LAG = timedelta(minutes=1)
"""How long a seal may wait for its checkpoint before the store is reported behind."""
PAGE = 8192
"""Events per chunk (and seals per page, events per progress report) by default."""
BATCH_CHANGED = "the events of a sealed batch were removed, added or changed"


@dataclass(frozen=True)
class AuditReport:
    """The outcome of :func:`verify`; ``problem`` is ``None`` when ``ok``."""

    ok: bool
    rows_checked: int
    batches_checked: int = 0
    unsealed: int = 0
    checkpoint_batch: int | None = None
    first_broken_seq: int | None = None
    first_broken_batch: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Parallel:
    """Check chunks of events in ``processes`` worker processes (started only once the log
    shows more than one chunk of events), each on its own connection from ``engine``: a
    picklable callable that builds an engine on the same database, called once in each
    worker."""

    processes: int
    engine: Callable[[], Engine]


class _Broken(Exception):
    def __init__(self, problem: str, *, seq: int | None = None, batch: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.seq, self.batch = problem, seq, batch


@dataclass(frozen=True)
class _Chunk:
    """The events of ``xid`` in ``[low, high)`` (no upper bound for ``None``) and ``seq``
    in ``[first, end)``: one keyset range of a batch or of the unsealed tail, ``full`` when
    it is not the last of its batch (it holds exactly a chunk's events then)."""

    low: int
    high: int | None
    first: int
    end: int
    full: bool


@dataclass(frozen=True)
class _Checked:
    """What a chunk's check found: the events that verified (all of them, or those before
    the first ``problem`` at ``seq``) and the Merkle subtrees of their leaves."""

    events: int
    subtrees: list[tuple[int, bytes]] = field(default_factory=list)
    problem: str | None = None
    seq: int | None = None


def _check_chunk(connection: Connection, key: AuditKey, chunk: _Chunk) -> _Checked:
    # By seq alone, the xid range checked here: given the xid range too, the server may walk
    # the (xid, seq) index over the whole batch for each chunk. The id as the server writes
    # it on PostgreSQL, the text the MACs cover, without the driver's UUID object in between
    # (an embedded SQLite file stores it as bare hex: there the UUID is made).
    text_id = connection.dialect.name == "postgresql"
    columns = [cast(c, String).label("id") if text_id and c.key == "id" else c for c in EVENTS.c]
    statement = (
        select(*columns)
        .where(EVENTS.c.seq >= chunk.first, EVENTS.c.seq < chunk.end)
        .order_by(EVENTS.c.seq)
    )
    builder = RootBuilder()
    previous: str | None = None  # the last link chained before 0008, read once needed
    rows = connection.execute(statement).mappings()
    # iterated, a row's mapping yields its column names: str keys
    for row in typing.cast("Iterator[Mapping[str, Any]]", rows):
        if row["xid"] < chunk.low or (chunk.high is not None and row["xid"] >= chunk.high):
            continue  # another batch's, among this one's in seq order
        if row["xid"] == 0 and row["prev_hash"] is not None:  # chained before 0008
            if previous is None:
                previous = _predecessor(connection, chunk.first)
            if row["prev_hash"] != previous or row["row_hash"] != chain_hash(row):
                problem = "an event chained before revision 0008 was changed"
                return _Checked(builder.size, problem=problem, seq=row["seq"])
            previous = row["row_hash"]
        elif not key.verifies("event", event_content(row), row["row_hash"]):
            problem = "an event was forged or changed (its HMAC does not verify)"
            return _Checked(builder.size, problem=problem, seq=row["seq"])
        builder.add(event_leaf(row["seq"], row["row_hash"]))
    return _Checked(builder.size, builder.subtrees)


def _predecessor(connection: Connection, seq: int) -> str:
    """The hash of the last event chained before revision 0008 that comes before ``seq``
    (they all have ``xid`` 0, so they are all in the first batch, or all unsealed)."""
    before = connection.scalar(
        select(EVENTS.c.row_hash)
        .where(EVENTS.c.xid == 0, EVENTS.c.prev_hash.is_not(None), EVENTS.c.seq < seq)
        .order_by(EVENTS.c.seq.desc())
        .limit(1)
    )
    return GENESIS if before is None else str(before)


@dataclass
class _Walk:
    """The walk's state, advanced step by step in the log's order."""

    key: AuditKey
    checkpoint: Checkpoint | None
    checkpoint_lag: timedelta
    tally: Tally
    events: int = 0
    batches: int = 0
    sealed_events: int = 0
    total: int = 0
    low: int = 0
    previous_head: str = GENESIS
    anchored: bool = False
    uncovered: Row[Any] | None = None
    seal: Row[Any] | None = None
    builder: RootBuilder = field(default_factory=RootBuilder)

    def steps(self, connection: Connection, page: int) -> Iterator[_Chunk | Callable[[], None]]:
        """What to check, in order: a seal, the chunks of its batch, the batch's totals;
        then the checkpoint, and the chunks of the unsealed tail."""
        chunk, low = 1 << (page.bit_length() - 1), 0
        for seal in _seals(connection, page):
            yield partial(self.begin_batch, seal)
            yield from _chunks(connection, seal.xid_low, seal.xid_high, chunk, page)
            yield partial(self.end_batch, seal)
            low = seal.xid_high
        yield self.end_sealed
        yield from _chunks(connection, low, None, chunk, page)

    def begin_batch(self, seal: Row[Any]) -> None:
        _check_seal(seal, self.batches + 1, self.low, self.previous_head, self.key)
        self.seal, self.builder = seal, RootBuilder()

    def take(self, chunk: _Chunk, checked: _Checked, size: int) -> None:
        self.events += checked.events
        self.tally.advance(checked.events)
        if checked.problem is not None:
            raise _Broken(checked.problem, seq=checked.seq)
        if chunk.high is None:  # the unsealed tail: no root to give
            return
        assert self.seal is not None
        if chunk.full and checked.events != size:  # changed while walked
            raise _Broken(BATCH_CHANGED, batch=self.seal.batch)
        for leaves, digest in checked.subtrees:
            self.builder.add_subtree(leaves, digest)

    def end_batch(self, seal: Row[Any]) -> None:
        self.total += self.builder.size
        if (self.builder.size, self.total, self.builder.root()) != (
            seal.event_count,
            seal.total,
            seal.root,
        ):
            raise _Broken(BATCH_CHANGED, batch=seal.batch)
        checkpoint = self.checkpoint
        if checkpoint is not None and seal.batch == checkpoint.batch:
            if (seal.head, seal.total) != (checkpoint.head, checkpoint.total):
                raise _Broken("the log differs from the latest checkpoint", batch=seal.batch)
            self.anchored = True
        if checkpoint is not None and seal.batch == checkpoint.batch + 1:
            self.uncovered = seal
        self.batches += 1
        self.previous_head, self.low = seal.head, seal.xid_high

    def end_sealed(self) -> None:
        if not self.anchored:
            raise _Broken("batches covered by the latest checkpoint are missing (truncated)")
        uncovered = self.uncovered
        if uncovered is not None and uncovered.sealed_at < utcnow() - self.checkpoint_lag:
            raise _Broken(
                "the checkpoint store is behind the log: sealed batches are newer than its "
                "latest checkpoint (the store was restored from an older copy, or "
                "checkpoints are not being written)",
                batch=uncovered.batch,
            )
        self.sealed_events = self.events

    def run(self, connection: Connection, page: int, parallel: Parallel | None) -> None:
        """Every step in order; with ``parallel``, once the log shows more than one chunk of
        events (a full chunk, or a chunk's worth walked), chunks are checked in worker
        processes, up to two per process ahead of the walk."""
        size = 1 << (page.bit_length() - 1)
        processes = parallel.processes if parallel is not None else 1
        pending: deque[tuple[_Chunk | Callable[[], None], Future[_Checked] | None]] = deque()
        pool: ProcessPoolExecutor | None = None
        try:
            for step in self.steps(connection, page):
                future = None
                if isinstance(step, _Chunk):
                    if pool is None and processes > 1 and (step.full or self.events >= size):
                        assert parallel is not None
                        pool = _pool(parallel, self.key)
                    if pool is not None:
                        future = pool.submit(_check_in_worker, step)
                pending.append((step, future))
                while pending and (pool is None or len(pending) > 2 * processes):
                    self._apply(connection, size, *pending.popleft())
            while pending:
                self._apply(connection, size, *pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _apply(
        self,
        connection: Connection,
        size: int,
        step: _Chunk | Callable[[], None],
        future: Future[_Checked] | None,
    ) -> None:
        if not isinstance(step, _Chunk):
            step()
        elif future is not None:
            self.take(step, future.result(), size)
        else:
            self.take(step, _check_chunk(connection, self.key, step), size)


def verify(
    connection: Connection,
    key: AuditKey,
    checkpoint: Checkpoint | None,
    page: int = PAGE,
    *,
    anchored_store: bool = False,
    progress: ProgressCallback | None = None,
    checkpoint_lag: timedelta = CHECKPOINT_LAG,
    parallel: Parallel | None = None,
) -> AuditReport:
    """Check every sealed batch, every event and the latest ``checkpoint``. Without one the
    log is checked on its own (truncation of its tail cannot be seen), unless
    ``anchored_store`` says checkpoints are exported: then a sealed log without any is
    reported (the store was emptied, or points elsewhere). A checkpoint that seals older
    than ``checkpoint_lag`` have gone past is reported too. Events are checked in chunks of
    the largest power of two up to ``page``, in worker processes with ``parallel``.
    ``progress`` hears of the events checked every ``page`` events or so, out of the
    events the log held when the check began."""
    total = connection.scalar(select(func.count()).select_from(EVENTS)) if progress else None
    walk = _Walk(key, checkpoint, checkpoint_lag, Tally(progress, total, every=page))
    walk.anchored = checkpoint is None
    try:
        if anchored_store and checkpoint is None and connection.scalar(select(AuditSeal.batch)):
            raise _Broken("the log is sealed but the checkpoint store holds no checkpoint")
        if checkpoint is not None and not checkpoint.signed_by(key):
            raise _Broken("the latest checkpoint was not signed with the audit key")
        walk.run(connection, page, parallel)
        walk.tally.finish()
    except _Broken as broken:
        return AuditReport(
            False,
            walk.events,
            walk.batches,
            checkpoint_batch=checkpoint.batch if checkpoint else None,
            first_broken_seq=broken.seq,
            first_broken_batch=broken.batch,
            problem=broken.problem,
        )
    return AuditReport(
        True,
        walk.events,
        walk.batches,
        unsealed=walk.events - walk.sealed_events,
        checkpoint_batch=checkpoint.batch if checkpoint else None,
    )


def _check_seal(seal: Row[Any], batch: int, low: int, previous_head: str, key: AuditKey) -> None:
    if seal.batch != batch or seal.xid_low != low:
        raise _Broken("a sealed batch is missing", batch=batch)
    if seal.prev_head != previous_head or not key.verifies("seal", seal_content(seal), seal.head):
        raise _Broken("a seal was forged or changed", batch=seal.batch)


def _seals(connection: Connection, page: int) -> Iterator[Row[Any]]:
    after = 0
    while True:
        rows = connection.execute(
            select(AuditSeal).where(AuditSeal.batch > after).order_by(AuditSeal.batch).limit(page)
        ).all()
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].batch


def _chunks(
    connection: Connection, low: int, high: int | None, size: int, page: int
) -> Iterator[_Chunk]:
    """The chunks of ``size`` events of ``xid`` in ``[low, high)``: the ``seq`` of every
    ``size``-th event, numbered by the server and streamed through a server-side cursor,
    with the last ``seq`` of the range."""
    in_range = [EVENTS.c.xid >= low] + ([EVENTS.c.xid < high] if high is not None else [])
    numbered = (
        select(
            EVENTS.c.seq,
            func.row_number().over(order_by=EVENTS.c.seq).label("n"),
            func.max(EVENTS.c.seq).over().label("last"),
        )
        .where(*in_range)
        .subquery()
    )
    firsts = (
        select(numbered.c.seq, numbered.c.last)
        .where((numbered.c.n - 1) % size == 0)
        .order_by(numbered.c.seq)
    )
    previous: tuple[int, int] | None = None  # the first seq of a chunk, the range's last
    for seq, last in connection.execute(firsts, execution_options={"yield_per": page}):
        if previous is not None:
            yield _Chunk(low, high, previous[0], seq, full=True)
        previous = (seq, last)
    if previous is not None:
        yield _Chunk(low, high, previous[0], previous[1] + 1, full=False)


# --- worker processes --------------------------------------------------------------------


@dataclass
class _Worker:
    engine: Engine
    key: AuditKey


_worker: list[_Worker] = []
"""This worker process's engine and key, set once when it starts."""


def _pool(parallel: Parallel, key: AuditKey) -> ProcessPoolExecutor:
    """Fresh interpreters (not forks of one holding connections and threads)."""
    return ProcessPoolExecutor(
        parallel.processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(parallel.engine, key),
    )


def _start_worker(engine: Callable[[], Engine], key: AuditKey) -> None:
    # Ctrl-C is the walk's to handle: it cancels what is queued and waits for these
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = _Worker(engine(), key)
    atexit.register(worker.engine.dispose)
    _worker.append(worker)


def _check_in_worker(chunk: _Chunk) -> _Checked:
    [worker] = _worker
    with worker.engine.connect() as connection:
        return _check_chunk(connection, worker.key, chunk)


# --- inclusion proofs ------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """An event, where it sits in its batch, and what links that batch to a checkpoint."""

    event: dict[str, Any]
    leaf_index: int
    path: list[str]
    seals: list[dict[str, Any]] = field(default_factory=list)
    """The event's seal, then every later one up to the checkpoint's batch."""
    checkpoint: dict[str, Any] | None = None


def prove(
    connection: Connection, key: AuditKey, event_id: object, checkpoint: Checkpoint | None
) -> InclusionProof:
    """The proof that event ``event_id`` is in the log under ``checkpoint``.
    ``NotFoundError`` if there is no such event, or it is not sealed (and checkpointed)
    yet."""
    row = connection.execute(select(EVENTS).where(EVENTS.c.id == event_id)).mappings().first()
    if row is None:
        raise NotFoundError("audit event not found")
    seal = connection.execute(
        select(AuditSeal).where(AuditSeal.xid_low <= row["xid"], AuditSeal.xid_high > row["xid"])
    ).first()
    if seal is None or (checkpoint is not None and seal.batch > checkpoint.batch):
        raise NotFoundError("audit event not sealed under a checkpoint yet")
    leaves = [
        event_leaf(seq, row_hash)
        for seq, row_hash in connection.execute(
            select(EVENTS.c.seq, EVENTS.c.row_hash)
            .where(EVENTS.c.xid >= seal.xid_low, EVENTS.c.xid < seal.xid_high)
            .order_by(EVENTS.c.seq)
        )
    ]
    index = leaves.index(event_leaf(row["seq"], row["row_hash"]))
    last = checkpoint.batch if checkpoint is not None else seal.batch
    chain = connection.execute(
        select(AuditSeal)
        .where(AuditSeal.batch >= seal.batch, AuditSeal.batch <= last)
        .order_by(AuditSeal.batch)
    ).all()
    return InclusionProof(
        event=dict(row),
        leaf_index=index,
        path=audit_path(leaves, index),
        seals=[{**seal_content(s), "head": s.head} for s in chain],
        checkpoint=None if checkpoint is None else vars(checkpoint).copy(),
    )


def check_proof(proof: InclusionProof, key: AuditKey) -> bool:
    """Whether ``proof`` shows its event, intact, in a batch chained to its checkpoint."""
    event = proof.event
    if not key.verifies("event", event_content(event), event["row_hash"]) or not proof.seals:
        return False
    first = proof.seals[0]
    leaf = event_leaf(event["seq"], event["row_hash"])
    if root_from_path(leaf, proof.leaf_index, first["event_count"], proof.path) != first["root"]:
        return False
    previous = first["prev_head"]
    for seal in proof.seals:
        content = {k: v for k, v in seal.items() if k != "head"}
        if seal["prev_head"] != previous or not key.verifies("seal", content, seal["head"]):
            return False
        previous = seal["head"]
    if proof.checkpoint is None:
        return True
    checkpoint = Checkpoint(**proof.checkpoint)
    return checkpoint.signed_by(key) and checkpoint.head == previous
