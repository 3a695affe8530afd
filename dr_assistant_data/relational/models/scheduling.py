"""Appointments: a doctor's time with a patient."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, column, func, literal, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..base import Entity, Versioned, choice, partial_index
from ..vocabulary import APPOINTMENT_STATUSES, APPOINTMENT_TYPES, INACTIVE_APPOINTMENT_STATUSES
from .people import Patient, User

LIVE_APPOINTMENT = "status NOT IN ({})".format(
    ", ".join(f"'{status}'" for status in INACTIVE_APPOINTMENT_STATUSES)
)

# A doctor never holds two live appointments whose [start, end) ranges overlap. PostgreSQL
# enforces it with this constraint; the embedded SQLite schema uses a trigger (see the
# initial revision).
NO_OVERLAP = ExcludeConstraint(
    (column("doctor_id"), "="),
    (func.tstzrange(column("start_time"), column("end_time"), literal("[)")), "&&"),
    name="ex_appointments_doctor_overlap",
    using="gist",
    where=text(LIVE_APPOINTMENT),
).ddl_if(dialect="postgresql")


class Appointment(Versioned, Entity):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("end_time > start_time", name="end_after_start"),
        NO_OVERLAP,
        Index("ix_appointments_doctor_id_start_time", "doctor_id", "start_time"),
        Index("ix_appointments_patient_id_start_time", "patient_id", "start_time"),
        Index("ix_appointments_status", "status"),
        partial_index("ix_appointments_created_by", "created_by"),
    )

    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    status: Mapped[str] = mapped_column(
        choice("appointment_status", APPOINTMENT_STATUSES), default="scheduled"
    )
    appointment_type: Mapped[str] = mapped_column(
        choice("appointment_type", APPOINTMENT_TYPES), default="in_person"
    )
    reason: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    check_in_time: Mapped[datetime | None]
    check_out_time: Mapped[datetime | None]

    doctor: Mapped[User] = relationship(foreign_keys=[doctor_id])
    patient: Mapped[Patient] = relationship()
    creator: Mapped[User | None] = relationship(foreign_keys=[created_by])
