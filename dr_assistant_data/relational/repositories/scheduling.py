"""Appointments and the doctor's day."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from ...values.fields import Day, as_uuid
from ..caching.policy import SCHEDULES
from ..caching.views import AppointmentView
from ..models import Appointment
from ..vocabulary import INACTIVE_APPOINTMENT_STATUSES
from .base import Repository

DAY = Day(nullable=False)


class AppointmentRepository(Repository[Appointment]):
    model = Appointment
    filterable = frozenset({"doctor_id", "patient_id", "status", "appointment_type", "created_by"})
    sortable = frozenset({"created_at", "updated_at", "start_time", "end_time"})
    default_order = "start_time"

    def __init__(self, session: Session, clinic_timezone: ZoneInfo) -> None:
        super().__init__(session)
        self.clinic_timezone = clinic_timezone

    def schedule_for(
        self, doctor_id: Any, day: date | str, *, include_cancelled: bool = False
    ) -> list[Appointment]:
        """The doctor's appointments starting on ``day`` (the clinic's local date), in time
        order, with ``.patient`` loaded: one query, whatever the day holds, none when cached
        (``caching.SCHEDULES``: the day and its patients are one entry; with
        ``include_cancelled``, uncached)."""
        parts, statement = self._day(doctor_id, day, include_cancelled)
        if include_cancelled:
            return list(self.session.scalars(statement().options(joinedload(Appointment.patient))))
        return SCHEDULES.rows(self.session, parts, statement)

    def schedule_view(
        self, doctor_id: Any, day: date | str, *, include_cancelled: bool = False
    ) -> tuple[AppointmentView, ...]:
        """``schedule_for``'s day as frozen views (``caching/views.py``), each with
        ``.patient``: the same rows and cache entries, no entity built for a cached row, so
        a cached day costs a fraction of ``schedule_for``'s. A view cannot be edited: to
        change an appointment or its patient, load it (``uow.appointments.get(view.id)``,
        ``uow.patients.get(view.patient_id)``) and edit that."""
        parts, statement = self._day(doctor_id, day, include_cancelled)
        return SCHEDULES.views(self.session, parts, statement, cached=not include_cancelled)

    def _day(
        self, doctor_id: Any, day: date | str, include_cancelled: bool
    ) -> tuple[tuple[uuid.UUID, date], Callable[[], Select[Any]]]:
        """The cache key's parts of the doctor's day and its statement."""
        doctor = as_uuid(doctor_id, "doctor_id")
        local_day = DAY.clean(day, "day")

        def statement() -> Select[Any]:
            """Built only when SQL runs (a cached day never builds it)."""
            start = datetime.combine(local_day, time.min, self.clinic_timezone)
            end = datetime.combine(local_day + timedelta(days=1), time.min, self.clinic_timezone)
            found = (
                select(Appointment)
                .where(
                    Appointment.doctor_id == doctor,
                    Appointment.start_time >= start.astimezone(UTC),
                    Appointment.start_time < end.astimezone(UTC),
                )
                .order_by(Appointment.start_time, Appointment.id)
            )
            if include_cancelled:
                return found
            return found.where(Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES))

        return (doctor, local_day), statement
