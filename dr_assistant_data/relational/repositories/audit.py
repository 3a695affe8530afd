"""Reading the audit trail (it is written by the unit of work, never by callers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import ValidationError
from ...values.fields import Text
from ...values.pages import check_page
from ..models import AuditEvent

ENTITY_TYPE = Text(max_length=50, strip=True, nullable=False)
ENTITY_ID = Text(max_length=64, strip=True, nullable=False)


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_entity(
        self, entity_type: Any, entity_id: Any, *, limit: int = 200, offset: int = 0
    ) -> list[AuditEvent]:
        """Every recorded event of one record, oldest first.

        ``entity_type`` is the table (or collection) name, e.g. ``"patients"``.
        """
        check_page(limit, offset)
        kind = ENTITY_TYPE.clean(entity_type, "entity_type")
        if not isinstance(entity_id, str):
            entity_id = str(entity_id) if entity_id is not None else None
        if entity_id is None:
            raise ValidationError("entity_id", "is required")
        statement = (
            select(AuditEvent)
            .where(
                AuditEvent.entity_type == kind,
                AuditEvent.entity_id == ENTITY_ID.clean(entity_id, "entity_id"),
            )
            .order_by(AuditEvent.seq)
            .limit(limit)
            .offset(offset)
        )
        return list(self.session.scalars(statement))
