"""Verification of the audit log against its latest checkpoint, and inclusion proofs.

:func:`verify` streams every seal in batch order and, for each, its events in ``seq``
order (bounded memory: one page of seals, one cursor of events, one Merkle level per
doubling), and reports the first problem found:

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

Events not sealed yet are checked one by one (their HMAC) and counted as ``unsealed``.
:func:`prove` answers an auditor's "was this event recorded, and is it intact?" with the
event's Merkle path in its batch and the chain of heads from that batch to the checkpoint;
:func:`check_proof` checks such a proof with the key alone, without the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, Row, func, select

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


class _Broken(Exception):
    def __init__(self, problem: str, *, seq: int | None = None, batch: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.seq, self.batch = problem, seq, batch


@dataclass
class _Walk:
    key: AuditKey
    tally: Tally
    events: int = 0
    batches: int = 0
    legacy_previous: str = GENESIS

    def check_event(self, row: Mapping[str, Any]) -> None:
        if row["xid"] == 0 and row["prev_hash"] is not None:  # chained before 0008
            if row["prev_hash"] != self.legacy_previous or row["row_hash"] != chain_hash(row):
                raise _Broken("an event chained before revision 0008 was changed", seq=row["seq"])
            self.legacy_previous = row["row_hash"]
        elif not self.key.verifies("event", event_content(row), row["row_hash"]):
            raise _Broken(
                "an event was forged or changed (its HMAC does not verify)", seq=row["seq"]
            )
        self.events += 1
        self.tally.advance()


def verify(
    connection: Connection,
    key: AuditKey,
    checkpoint: Checkpoint | None,
    page: int = 1000,
    *,
    anchored_store: bool = False,
    progress: ProgressCallback | None = None,
    checkpoint_lag: timedelta = CHECKPOINT_LAG,
) -> AuditReport:
    """Check every sealed batch, every event and the latest ``checkpoint``. Without one the
    log is checked on its own (truncation of its tail cannot be seen), unless
    ``anchored_store`` says checkpoints are exported: then a sealed log without any is
    reported (the store was emptied, or points elsewhere). A checkpoint that seals older
    than ``checkpoint_lag`` have gone past is reported too. ``progress`` hears of the
    events checked every ``page`` events, out of the events the log held when the check
    began."""
    total = connection.scalar(select(func.count()).select_from(EVENTS)) if progress else None
    walk = _Walk(key, Tally(progress, total, every=page))
    anchored = checkpoint is None
    try:
        if anchored_store and checkpoint is None and connection.scalar(select(AuditSeal.batch)):
            raise _Broken("the log is sealed but the checkpoint store holds no checkpoint")
        if checkpoint is not None and not checkpoint.signed_by(key):
            raise _Broken("the latest checkpoint was not signed with the audit key")
        previous_head, total, low = GENESIS, 0, 0
        uncovered: Row[Any] | None = None
        for seal in _seals(connection, page):
            _check_seal(seal, walk.batches + 1, low, previous_head, key)
            builder = RootBuilder()
            for row in _events(connection, seal.xid_low, seal.xid_high):
                walk.check_event(row)
                builder.add(event_leaf(row["seq"], row["row_hash"]))
            total += builder.size
            if (builder.size, total, builder.root()) != (seal.event_count, seal.total, seal.root):
                raise _Broken(
                    "the events of a sealed batch were removed, added or changed",
                    batch=seal.batch,
                )
            if checkpoint is not None and seal.batch == checkpoint.batch:
                if (seal.head, seal.total) != (checkpoint.head, checkpoint.total):
                    raise _Broken("the log differs from the latest checkpoint", batch=seal.batch)
                anchored = True
            if checkpoint is not None and seal.batch == checkpoint.batch + 1:
                uncovered = seal
            walk.batches += 1
            previous_head, low = seal.head, seal.xid_high
        if not anchored:
            raise _Broken("batches covered by the latest checkpoint are missing (truncated)")
        if uncovered is not None and uncovered.sealed_at < utcnow() - checkpoint_lag:
            raise _Broken(
                "the checkpoint store is behind the log: sealed batches are newer than its "
                "latest checkpoint (the store was restored from an older copy, or "
                "checkpoints are not being written)",
                batch=uncovered.batch,
            )
        sealed_events = walk.events
        for row in _events(connection, low, None):
            walk.check_event(row)
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
        unsealed=walk.events - sealed_events,
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


def _events(connection: Connection, low: int, high: int | None) -> Iterator[Mapping[str, Any]]:
    """The events of ``xid`` in ``[low, high)`` in ``seq`` order, through a server-side
    cursor (memory stays flat however many there are)."""
    statement = select(EVENTS).where(EVENTS.c.xid >= low).order_by(EVENTS.c.seq)
    if high is not None:
        statement = statement.where(EVENTS.c.xid < high)
    result = connection.execute(statement, execution_options={"yield_per": 5000})
    # iterated, a row's mapping yields its column names: str keys
    yield from cast("Iterator[Mapping[str, Any]]", result.mappings())


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
