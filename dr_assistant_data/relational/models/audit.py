"""The append-only audit trail and the seals that anchor it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ...values.clock import utcnow
from ..base import Base, choice
from ..types import MutableJSONList
from ..vocabulary import AUDIT_ACTIONS


class AuditEvent(Base):
    """Who did what to which record, and when: field names only, never their values.

    ``row_hash`` is the event's HMAC under the audit key (``protection/audit_key.py``),
    written with it by the unit of work; ``seq`` (a sequence, gaps allowed) orders events
    within a seal and ``xid`` is the writing transaction (``pg_current_xact_id()``), which
    decides the seal that covers the event (``audit/seal.py``). Rows written before
    revision 0008 keep their SHA-256 chain (``prev_hash``) and ``xid`` 0.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity_type_entity_id_seq", "entity_type", "entity_id", "seq"),
        Index("ix_audit_events_xid_seq", "xid", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    xid: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(choice("audit_action", AUDIT_ACTIONS))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(64))
    changed_fields: Mapped[list[str]] = mapped_column(MutableJSONList, default=list)
    correlation_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    """The reason code of an erasure (``patients.purge``); never free text."""
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditSeal(Base):
    """One sealed batch: every event whose ``xid`` is in ``[xid_low, xid_high)``, in ``seq``
    order, under the Merkle ``root``; ``head`` is the HMAC of this row and the previous
    seal's head, so the seals form a keyed chain that checkpoints anchor."""

    __tablename__ = "audit_seals"

    batch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    xid_low: Mapped[int] = mapped_column(BigInteger)
    xid_high: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    """Events sealed up to and including this batch."""
    root: Mapped[str] = mapped_column(String(64))
    prev_head: Mapped[str] = mapped_column(String(64))
    head: Mapped[str] = mapped_column(String(64), unique=True)
    sealed_at: Mapped[datetime] = mapped_column(default=utcnow)
