"""Audit events for every write of a unit of work, chained and written in its transaction.

Changes are collected after each flush (while SQLAlchemy still knows which attributes
changed) and written when the unit of work commits, in the same transaction: a rollback
leaves no audit row behind, a commit never lacks one. Only field names are recorded.

Rows are chained: ``row_hash = sha256(prev_hash + canonical row)``, in ``seq`` order. The
writer takes a transaction-scoped advisory lock on PostgreSQL for the few statements that
extend the chain, so concurrent commits cannot fork it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, inspect, select
from sqlalchemy.orm import Session

from .base import SoftDeleted
from .copy_rows import copy_rows
from .models import AuditEvent
from .types import utcnow

GENESIS = "0" * 64
CHAIN_LOCK = 0x6472_6173_6175_6474  # any constant shared by every writer
_BOOKKEEPING = frozenset({"version", "updated_at", "created_at"})


@dataclass(frozen=True)
class Change:
    action: str
    entity_type: str
    entity_id: str
    changed_fields: tuple[str, ...]
    occurred_at: datetime


@dataclass
class AuditTrail:
    """The pending audit events of one unit of work."""

    actor: str
    correlation_id: str
    changes: list[Change] = field(default_factory=list)

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
        self.changes.append(Change(action, entity_type, entity_id, tuple(sorted(fields)), utcnow()))

    def _add(self, action: str, row: object, fields: list[str], now: datetime) -> None:
        if isinstance(row, AuditEvent):
            return
        self.changes.append(
            Change(
                action=action,
                entity_type=type(row).__tablename__,  # type: ignore[attr-defined]
                entity_id=str(row.id),  # type: ignore[attr-defined]
                changed_fields=tuple(fields),
                occurred_at=now,
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
                "actor": self.actor,
                "action": change.action,
                "entity_type": change.entity_type,
                "entity_id": change.entity_id,
                "changed_fields": list(change.changed_fields),
                "correlation_id": self.correlation_id,
                "prev_hash": prev_hash,
            }
            row["row_hash"] = prev_hash = chain_hash(row)
            rows.append(row)
        if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
            copy_rows(session, AuditEvent.__table__, rows)  # a bulk import's thousands
        else:
            session.execute(insert(AuditEvent), rows)
        self.changes.clear()


def written_fields(values: Mapping[str, object]) -> tuple[str, ...]:
    """The fields a new row's audit event names: those given a value, bookkeeping aside."""
    return tuple(sorted(k for k, v in values.items() if k not in _BOOKKEEPING and v is not None))


def chain_hash(row: dict[str, object]) -> str:
    """SHA-256 over the previous hash and this row's canonical JSON (without its hash)."""
    content = {k: v for k, v in row.items() if k != "row_hash"}
    canonical = json.dumps(content, sort_keys=True, default=_canonical, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)
