"""Which row a record imported from another system became (the FHIR import's mapping)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ...values.clock import utcnow
from ..base import Base


class SourceIdentifier(Base):
    """One identifier a source system gave a record, and the row it was imported as.

    ``source_key`` is a SHA-256 digest of the resource type, the identifier's system and
    its value (``fhir/identity.py``): the table holds no identifier in clear (an MRN or a
    source id may be patient data), yet the same identifier always finds the same row,
    so an import seen again updates that row instead of duplicating it."""

    __tablename__ = "source_identifiers"

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
