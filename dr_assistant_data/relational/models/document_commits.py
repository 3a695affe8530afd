"""Which units of work that wrote documents have committed: the sweep's source of truth."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ...values.clock import utcnow
from ..base import Base


class DocumentCommit(Base):
    """Written in the same transaction as a unit of work's relational changes, so it exists
    exactly when they committed. Deleted once the unit's documents are final."""

    __tablename__ = "document_commits"

    unit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    committed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
