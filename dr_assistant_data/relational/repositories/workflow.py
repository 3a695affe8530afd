"""Staff tasks and user alerts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import joinedload

from ...values.clock import utcnow
from ...values.fields import as_uuid
from ...values.pages import check_page
from ..caching.policy import UNREAD_ALERTS
from ..models import Alert, Task
from ..vocabulary import ALERT_SEVERITIES, OPEN_TASK_STATUSES, TASK_PRIORITIES
from .base import Repository


def _rank(column: Any, ascending: tuple[str, ...]) -> Any:
    """Most urgent first: rank values by their position in ``ascending``, reversed."""
    return case({value: len(ascending) - i for i, value in enumerate(ascending)}, value=column)


class TaskRepository(Repository[Task]):
    model = Task
    filterable = frozenset(
        {
            "assigned_to",
            "created_by",
            "patient_id",
            "encounter_id",
            "status",
            "priority",
            "task_type",
        }
    )
    sortable = frozenset({"created_at", "updated_at", "due_date", "completed_at"})

    def pending_for(self, user_id: Any, *, limit: int = 50, offset: int = 0) -> list[Task]:
        """Open tasks assigned to the user: most urgent first, then earliest due, with
        ``.patient`` loaded: one query."""
        check_page(limit, offset)
        statement = (
            select(Task)
            .options(joinedload(Task.patient))
            .where(
                Task.assigned_to == as_uuid(user_id, "user_id"),
                Task.status.in_(OPEN_TASK_STATUSES),
            )
            .order_by(
                _rank(Task.priority, TASK_PRIORITIES),
                Task.due_date.asc().nulls_last(),
                Task.id,
            )
            .limit(limit)
            .offset(offset)
        )
        return list(self.session.scalars(statement))


class AlertRepository(Repository[Alert]):
    model = Alert
    filterable = frozenset({"user_id", "patient_id", "alert_type", "severity", "is_read"})
    sortable = frozenset({"created_at", "updated_at", "read_at"})

    def unread_for(self, user_id: Any, *, limit: int = 50, offset: int = 0) -> list[Alert]:
        """The user's unread alerts: most severe first, then newest, with ``.patient``
        loaded: one query."""
        check_page(limit, offset)
        statement = (
            select(Alert)
            .options(joinedload(Alert.patient))
            .where(Alert.user_id == as_uuid(user_id, "user_id"), Alert.is_read.is_(False))
            .order_by(_rank(Alert.severity, ALERT_SEVERITIES), Alert.created_at.desc(), Alert.id)
            .limit(limit)
            .offset(offset)
        )
        return list(self.session.scalars(statement))

    def unread_count(self, user_id: Any) -> int:
        """How many alerts the user has not read (cached, ``caching.UNREAD_ALERTS``)."""
        user = as_uuid(user_id, "user_id")
        statement = select(func.count()).where(Alert.user_id == user, Alert.is_read.is_(False))
        return UNREAD_ALERTS.count(
            self.session, (user,), lambda: int(self.session.scalar(statement) or 0)
        )

    def mark_read(self, id: Any) -> Alert:
        return self.update(id, is_read=True, read_at=utcnow())
