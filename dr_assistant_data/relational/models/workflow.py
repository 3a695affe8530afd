"""Tasks for staff and alerts for users."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..base import Entity, Versioned, choice, partial_index
from ..vocabulary import (
    ALERT_SEVERITIES,
    ALERT_TYPES,
    TASK_PRIORITIES,
    TASK_STATUSES,
    TASK_TYPES,
)
from .people import Patient, User


class Task(Versioned, Entity):
    __tablename__ = "tasks"
    __table_args__ = (
        partial_index("ix_tasks_assigned_to_status_due_date", "assigned_to", "status", "due_date"),
        Index("ix_tasks_created_by", "created_by"),
        partial_index("ix_tasks_patient_id", "patient_id"),
        partial_index("ix_tasks_encounter_id", "encounter_id"),
        Index("ix_tasks_status", "status"),
    )

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("encounters.id"))
    due_date: Mapped[datetime | None]
    priority: Mapped[str] = mapped_column(
        choice("task_priority", TASK_PRIORITIES), default="medium"
    )
    status: Mapped[str] = mapped_column(choice("task_status", TASK_STATUSES), default="pending")
    task_type: Mapped[str] = mapped_column(choice("task_type", TASK_TYPES), default="other")
    completed_at: Mapped[datetime | None]

    assignee: Mapped[User | None] = relationship(foreign_keys=[assigned_to])
    creator: Mapped[User] = relationship(foreign_keys=[created_by])
    patient: Mapped[Patient | None] = relationship()


class Alert(Entity):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_user_id_is_read_created_at", "user_id", "is_read", "created_at"),
        partial_index("ix_alerts_patient_id", "patient_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))
    alert_type: Mapped[str] = mapped_column(choice("alert_type", ALERT_TYPES))
    severity: Mapped[str] = mapped_column(choice("alert_severity", ALERT_SEVERITIES))
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    is_read: Mapped[bool] = mapped_column(default=False)
    read_at: Mapped[datetime | None]
    source: Mapped[str | None] = mapped_column(String(50))
    source_id: Mapped[str | None] = mapped_column(String(64))
    action_url: Mapped[str | None] = mapped_column(String(2048))

    user: Mapped[User] = relationship()
    patient: Mapped[Patient | None] = relationship()
