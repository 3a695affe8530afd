"""The cache invalidations a transaction owes, written in that transaction (an outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base
from ..types import json_document


class CacheInvalidation(Base):
    """One committed transaction's cache keys (ids only, never patient data).

    The row commits exactly when the write does, so the keys outlive the writing process:
    a process that dies after its COMMIT, or whose Redis delivery failed, leaves them here
    for every other process to deliver (``cache/outbox.py``). Rows are deleted once a
    janitor has delivered them, a fraction of a second after their commit (each process's
    janitor looks every 0.2 s for rows 0.2 s old); a row whose delivery fails stays."""

    __tablename__ = "cache_invalidations"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    keys: Mapped[list[Any]] = mapped_column(json_document())
    created_at: Mapped[datetime] = mapped_column(
        server_default=func.current_timestamp(), index=True
    )
