"""Audit events for every write of a unit of work, chained and written in its transaction.

Changes are collected after each flush (while SQLAlchemy still knows which attributes
changed) and written when the unit of work commits, in the same transaction: a rollback
leaves no audit row behind, a commit never lacks one. Only field names are recorded.

Rows are chained: ``row_hash = sha256(prev_hash + canonical row)``, in ``seq`` order. The
writer takes a transaction-scoped advisory lock on PostgreSQL for the few statements that
extend the chain, so concurrent commits cannot fork it. The database refuses to change or
remove a row (revision 0004); :func:`verify` finds the first broken link if someone with
the power to bypass that did.

A trail whose ``actor_required`` is set (production) refuses any write without an actor
(``ValidationError("actor")``) before SQL is emitted. With ``audit_reads`` set, reads of a
patient's chart are recorded too (action ``read``), written like the writes at commit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from .base import SoftDeleted
from .copy_rows import insert_rows
from .models import AuditEvent
from .types import utcnow

GENESIS = "0" * 64
CHAIN_LOCK = 0x6472_6173_6175_6474  # any constant shared by every writer
_BOOKKEEPING = frozenset({"version", "updated_at", "created_at"})
ANONYMOUS = "unknown"
"""The actor recorded outside production when none was given."""
AUDIT_KEY = "audit_trail"
"""Where a unit of work's session keeps its trail (``session.info``)."""


@dataclass(frozen=True)
class Change:
    action: str
    entity_type: str
    entity_id: str
    changed_fields: tuple[str, ...]
    occurred_at: datetime
    reason: str | None = None


@dataclass
class AuditTrail:
    """The pending audit events of one unit of work."""

    actor: str | None
    correlation_id: str
    actor_required: bool = False
    audit_reads: bool = False
    changes: list[Change] = field(default_factory=list)
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)
    """Erasure reason codes by (entity type, id): their change is a ``delete``."""
    _reads: set[tuple[str, str, str]] = field(default_factory=set)

    def check_actor(self) -> None:
        """Refuse to record anything without an actor when one is required."""
        if self.actor_required and self.actor in (None, "", ANONYMOUS):
            raise ValidationError("actor", "is required: name who makes this change")

    def record_read(self, entity_type: str, entity_id: object, part: str) -> None:
        """Record that ``part`` of a record was read, once per unit of work, if reads are
        audited."""
        if not self.audit_reads or (entity_type, str(entity_id), part) in self._reads:
            return
        self.check_actor()
        self._reads.add((entity_type, str(entity_id), part))
        self.changes.append(Change("read", entity_type, str(entity_id), (part,), utcnow()))

    def mark_erasure(self, entity_type: str, entity_id: object, reason: str) -> None:
        """The next change of this record is an erasure for ``reason`` (a code, not text)."""
        self.reasons[(entity_type, str(entity_id))] = reason

    def collect(self, session: Session) -> None:
        """Record what the flush in progress writes; call from ``after_flush``."""
        now = utcnow()
        for row in session.new:
            columns = inspect(row).mapper.column_attrs
            written = written_fields({attr.key: getattr(row, attr.key) for attr in columns})
            self._add("create", row, list(written), now)
        for row in session.dirty:
            state = inspect(row)
            changed = sorted(
                attr.key
                for attr in state.attrs
                if attr.key in state.mapper.column_attrs
                and attr.key not in _BOOKKEEPING
                and attr.history.has_changes()
            )
            if not changed:
                continue
            deleted = isinstance(row, SoftDeleted) and "deleted_at" in changed
            self._add("delete" if deleted else "update", row, changed, now)
        for row in session.deleted:
            self._add("delete", row, [], now)

    def record(
        self, action: str, entity_type: str, entity_id: str, fields: tuple[str, ...]
    ) -> None:
        """Add an event for a write the session does not flush (a document, say)."""
        self.check_actor()
        self.changes.append(Change(action, entity_type, entity_id, tuple(sorted(fields)), utcnow()))

    def _add(self, action: str, row: object, fields: list[str], now: datetime) -> None:
        if isinstance(row, AuditEvent):
            return
        entity_type = type(row).__tablename__  # type: ignore[attr-defined]
        entity_id = str(row.id)  # type: ignore[attr-defined]
        reason = self.reasons.pop((entity_type, entity_id), None)
        self.changes.append(
            Change(
                action="delete" if reason else action,
                entity_type=entity_type,
                entity_id=entity_id,
                changed_fields=tuple(fields),
                occurred_at=now,
                reason=reason,
            )
        )

    def write(self, session: Session) -> None:
        """Append the collected events to the chain, in the session's transaction."""
        if not self.changes:
            return
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
        last = session.execute(
            select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        seq, prev_hash = (last.seq, last.row_hash) if last else (0, GENESIS)
        rows = []
        for change in self.changes:
            seq += 1
            row = {
                "id": uuid.uuid4(),
                "seq": seq,
                "occurred_at": change.occurred_at,
                "actor": self.actor or ANONYMOUS,
                "action": change.action,
                "entity_type": change.entity_type,
                "entity_id": change.entity_id,
                "changed_fields": list(change.changed_fields),
                "correlation_id": self.correlation_id,
                "prev_hash": prev_hash,
                "reason": change.reason,
            }
            row["row_hash"] = prev_hash = chain_hash(row)
            rows.append(row)
        insert_rows(session, AuditEvent.__table__, rows)  # a bulk import's thousands: COPY
        self.changes.clear()


def written_fields(values: Mapping[str, object]) -> tuple[str, ...]:
    """The fields a new row's audit event names: those given a value, bookkeeping aside."""
    return tuple(sorted(k for k, v in values.items() if k not in _BOOKKEEPING and v is not None))


def trail_of(session: Session) -> AuditTrail | None:
    """The audit trail of the unit of work owning ``session``, if any."""
    return session.info.get(AUDIT_KEY)


def chain_hash(row: dict[str, object]) -> str:
    """SHA-256 over the previous hash and this row's canonical JSON (without its hash).

    A ``None`` reason is left out, so rows written before reasons existed keep their hash."""
    content = {
        k: v for k, v in row.items() if k != "row_hash" and not (k == "reason" and v is None)
    }
    canonical = json.dumps(content, sort_keys=True, default=_canonical, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify`: ``first_broken_seq`` is ``None`` when ``ok``."""

    ok: bool
    rows_checked: int
    first_broken_seq: int | None = None
    problem: str | None = None


def verify(connection: Connection, batch_size: int = 1000) -> ChainReport:
    """Walk the chain in ``seq`` order and report its first broken link: a missing ``seq``
    (a removed row), a ``prev_hash`` that is not the previous row's hash (a removed or
    inserted row) or a ``row_hash`` that does not match the row (an edited row).

    Reads in batches of ``batch_size`` rows, so memory stays flat on a long trail.
    """
    table = AuditEvent.__table__
    expected_seq, previous, checked = 1, GENESIS, 0
    while True:
        statement = (
            select(table).where(table.c.seq >= expected_seq).order_by(table.c.seq).limit(batch_size)
        )
        rows = connection.execute(statement).mappings().all()
        if not rows:
            return ChainReport(ok=True, rows_checked=checked)
        for row in rows:
            problem = _link_problem(dict(row), expected_seq, previous)
            if problem:
                return ChainReport(False, checked, expected_seq, problem)
            checked += 1
            expected_seq, previous = row["seq"] + 1, row["row_hash"]


def _link_problem(row: dict[str, object], expected_seq: int, previous: str) -> str | None:
    if row["seq"] != expected_seq:
        return "a row is missing"
    if row["prev_hash"] != previous:
        return "the link to the previous row is broken"
    if row["row_hash"] != chain_hash(row):
        return "the row was changed after it was written"
    return None
