"""Audit events for every write of a unit of work, written in its transaction.

Changes are collected after each flush (while SQLAlchemy still knows which attributes
changed) and written when the unit of work commits, in the same transaction: a rollback
leaves no audit row behind, a commit never lacks one. Only field names are recorded.

Each event carries its HMAC under the audit key (``row_hash``), so a login of the
application role that inserts an event without the key (crediting another actor, say) is
found by :func:`~.audit_verify.verify`. Writers take no lock and read nothing: ``seq``
comes from a sequence and ``xid`` (the transaction) from its column default; the sealer
(``seal.py``) orders and anchors events after their transactions have ended. The
database refuses to change or remove a row (revision 0004).

A trail whose ``actor_required`` is set (production) refuses any write without an actor
(``ValidationError("actor")``) before SQL is emitted. With ``audit_reads`` set, reads of a
patient's chart are recorded too (action ``read``), written like the writes at commit.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from ...errors import ValidationError
from ...protection.audit_key import AuditKey, audit_key_from, canonical
from ...session_context import context_of
from ...values.clock import utcnow
from ..base import SoftDeleted
from ..driver.copy_rows import copy_lines, deferred_rows, insert_into, insert_rows, line_encoder
from ..models import AuditEvent

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event chained before revision 0008."""
EVENT_FIELDS = (
    "id",
    "occurred_at",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "changed_fields",
    "correlation_id",
    "reason",
)
"""What an event's HMAC covers (``seq`` and ``xid`` are the database's; the seal covers
them)."""
EVENT_COLUMNS = (*EVENT_FIELDS, "row_hash", "prev_hash")
"""The columns an event is written with (``seq`` and ``xid`` are the database's)."""
_BOOKKEEPING = frozenset({"version", "updated_at", "created_at"})
ANONYMOUS = "unknown"
"""The actor recorded outside production when none was given."""


@dataclass(frozen=True)
class Change:
    action: str
    entity_type: str
    entity_id: str
    changed_fields: tuple[str, ...]
    occurred_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class ReadyEvent:
    """An event made before the commit (a bulk import's, in its worker processes,
    ``bulk.py``): its line of a COPY of ``EVENT_COLUMNS`` on PostgreSQL, else its row,
    HMAC included (``event_row``)."""

    row: dict[str, object] | None
    line: str | None


@dataclass
class AuditTrail:
    """The pending audit events of one unit of work."""

    actor: str | None
    correlation_id: str
    actor_required: bool = False
    audit_reads: bool = False
    key: AuditKey = field(default_factory=lambda: audit_key_from("", production=False))
    changes: list[Change | ReadyEvent] = field(default_factory=list)
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

    def _add(self, action: str, row: Any, fields: list[str], now: datetime) -> None:
        if isinstance(row, AuditEvent):
            return
        entity_type = type(row).__tablename__
        entity_id = str(row.id)
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
        """Append the collected events, each with its HMAC, in the session's transaction.

        No lock and no read on PostgreSQL: ``seq`` and ``xid`` are column defaults, and a
        unit's few events go with its COMMIT (``copy_rows.deferred_rows``). The embedded
        SQLite file (one writer at a time) numbers them here."""
        if not self.changes:
            return
        table = AuditEvent.__table__
        if session.get_bind(clause=insert_into(table)).dialect.name != "postgresql":
            rows = [
                change.row or {} if isinstance(change, ReadyEvent) else self.event_row(change)
                for change in self.changes
            ]
            last = session.scalar(select(func.max(AuditEvent.seq))) or 0
            for seq, row in enumerate(rows, start=last + 1):
                row.update(seq=seq, xid=0)
            insert_rows(session, table, rows)
        elif any(isinstance(change, ReadyEvent) for change in self.changes):
            # a bulk import's thousands: one COPY, their lines made with their rows
            encode = line_encoder(session.get_bind().dialect, table, EVENT_COLUMNS)
            lines = [
                change.line or ""
                if isinstance(change, ReadyEvent)
                else encode(self.event_row(change))
                for change in self.changes
            ]
            copy_lines(session, table, EVENT_COLUMNS, lines)
        else:
            rows = [self.event_row(change) for change in self.changes if isinstance(change, Change)]
            if not deferred_rows(session, table, rows):  # else sent with the COMMIT
                insert_rows(session, table, rows)
        self.changes.clear()

    def event_row(self, change: Change) -> dict[str, object]:
        """The row of ``change``'s event (``EVENT_COLUMNS``), with its HMAC."""
        row: dict[str, object] = {
            "id": uuid.uuid4(),
            "occurred_at": change.occurred_at,
            "actor": self.actor or ANONYMOUS,
            "action": change.action,
            "entity_type": change.entity_type,
            "entity_id": change.entity_id,
            "changed_fields": list(change.changed_fields),
            "correlation_id": self.correlation_id,
            "reason": change.reason,
        }
        row["row_hash"] = self.key.mac("event", row)
        row["prev_hash"] = None
        return row


def written_fields(values: Mapping[str, object]) -> tuple[str, ...]:
    """The fields a new row's audit event names: those given a value, bookkeeping aside."""
    return tuple(sorted(k for k, v in values.items() if k not in _BOOKKEEPING and v is not None))


def trail_of(session: Session) -> AuditTrail | None:
    """The audit trail of the unit of work owning ``session``, if any."""
    trail = context_of(session).audit
    return trail if isinstance(trail, AuditTrail) else None


def event_content(row: Mapping[str, object]) -> dict[str, object]:
    """What the HMAC of an event written since revision 0008 covers."""
    return {name: row[name] for name in EVENT_FIELDS}


def chain_hash(row: Mapping[str, object]) -> str:
    """The hash of an event chained before revision 0008: SHA-256 over the previous hash
    and the row's canonical JSON (without its hash, ``seq`` included, ``xid`` not).

    A ``None`` reason is left out, so rows written before reasons existed keep their hash."""
    content = {
        k: v
        for k, v in row.items()
        if k not in ("row_hash", "xid") and not (k == "reason" and v is None)
    }
    return hashlib.sha256(canonical(content)).hexdigest()
