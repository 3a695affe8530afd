"""The append-only audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base, choice
from ..types import MutableJSONList, utcnow
from ..vocabulary import AUDIT_ACTIONS


class AuditEvent(Base):
    """Who did what to which record, and when: field names only, never their values.

    ``seq`` orders the trail; ``row_hash`` is SHA-256 over ``prev_hash`` and this row's
    content, so editing or removing any row breaks every later link.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity_type_entity_id_seq", "entity_type", "entity_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(choice("audit_action", AUDIT_ACTIONS))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(64))
    changed_fields: Mapped[list[str]] = mapped_column(MutableJSONList, default=list)
    correlation_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    """The reason code of an erasure (``patients.purge``); never free text."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)
