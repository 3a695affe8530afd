"""Encounters and what a doctor writes in them: prescriptions and orders."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.ext.orderinglist import OrderingList, ordering_list
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..base import Entity, Versioned, choice, partial_index
from ..vocabulary import (
    ENCOUNTER_STATUSES,
    ENCOUNTER_TYPES,
    ORDER_STATUSES,
    ORDER_TYPES,
    PRESCRIPTION_STATUSES,
)
from .people import Patient, User
from .scheduling import Appointment


class Encounter(Versioned, Entity):
    __tablename__ = "encounters"
    __table_args__ = (
        CheckConstraint("end_time IS NULL OR end_time >= start_time", name="end_not_before_start"),
        Index("ix_encounters_patient_id_start_time", "patient_id", "start_time"),
        Index("ix_encounters_doctor_id_start_time", "doctor_id", "start_time"),
        partial_index("ix_encounters_appointment_id", "appointment_id"),
        # what chart records reference, so each stays with its encounter's patient
        Index("uq_encounters_id_patient_id", "id", "patient_id", unique=True),
    )

    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    encounter_type: Mapped[str] = mapped_column(
        choice("encounter_type", ENCOUNTER_TYPES), default="office_visit"
    )
    """The clinic's kind of visit, one per v3 ActEncounterCode class
    (``vocabulary.ENCOUNTER_CLASSES``)."""
    type_code: Mapped[str | None] = mapped_column(String(64))
    """The encounter's type as its source coded it (a SNOMED CT code, say), with
    ``type_system`` and ``type_display``: kept beside ``encounter_type``, never mapped."""
    type_system: Mapped[str | None] = mapped_column(String(255))
    type_display: Mapped[str | None] = mapped_column(String(500))
    start_time: Mapped[datetime]
    end_time: Mapped[datetime | None]
    chief_complaint: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        choice("encounter_status", ENCOUNTER_STATUSES), default="in_progress"
    )

    appointment: Mapped[Appointment | None] = relationship()
    doctor: Mapped[User] = relationship()
    patient: Mapped[Patient] = relationship()


class PrescriptionItem(Entity):
    __tablename__ = "prescription_items"
    __table_args__ = (
        CheckConstraint("refills >= 0", name="refills_not_negative"),
        CheckConstraint("quantity IS NULL OR quantity > 0", name="quantity_positive"),
    )

    prescription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    medication_name: Mapped[str] = mapped_column(String(200))
    medication_code: Mapped[str | None] = mapped_column(String(64))
    """The medication's code (RxNorm, say) in ``medication_system``, beside its name."""
    medication_system: Mapped[str | None] = mapped_column(String(255))
    dosage: Mapped[str] = mapped_column(String(100))
    frequency: Mapped[str] = mapped_column(String(100))
    duration: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int | None]
    refills: Mapped[int] = mapped_column(default=0)
    instructions: Mapped[str | None] = mapped_column(Text)

    prescription: Mapped[Prescription] = relationship(back_populates="items")


class Prescription(Versioned, Entity):
    __tablename__ = "prescriptions"
    __table_args__ = (
        CheckConstraint(
            "valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from",
            name="valid_until_after_valid_from",
        ),
        Index("ix_prescriptions_patient_id_created_at", "patient_id", "created_at"),
        Index("ix_prescriptions_encounter_id", "encounter_id"),
        Index("ix_prescriptions_doctor_id", "doctor_id"),
    )

    encounter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("encounters.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(
        choice("prescription_status", PRESCRIPTION_STATUSES), default="draft"
    )
    signed_at: Mapped[datetime | None]
    valid_from: Mapped[date | None]
    valid_until: Mapped[date | None]
    pharmacy_id: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)

    items: Mapped[OrderingList[PrescriptionItem]] = relationship(
        order_by=PrescriptionItem.position,
        collection_class=ordering_list("position"),
        cascade="all, delete-orphan",
        passive_deletes=True,
        back_populates="prescription",
    )
    encounter: Mapped[Encounter] = relationship()
    doctor: Mapped[User] = relationship()


class OrderItem(Entity):
    __tablename__ = "order_items"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    item_code: Mapped[str | None] = mapped_column(String(64))
    item_name: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(Text)

    order: Mapped[Order] = relationship(back_populates="items")


class Order(Versioned, Entity):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "completed_at IS NULL OR ordered_at IS NULL OR completed_at >= ordered_at",
            name="completed_after_ordered",
        ),
        Index("ix_orders_patient_id_created_at", "patient_id", "created_at"),
        Index("ix_orders_encounter_id", "encounter_id"),
        Index("ix_orders_doctor_id", "doctor_id"),
        Index("ix_orders_status", "status"),
    )

    encounter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("encounters.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    order_type: Mapped[str] = mapped_column(choice("order_type", ORDER_TYPES))
    status: Mapped[str] = mapped_column(choice("order_status", ORDER_STATUSES), default="draft")
    ordered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)

    items: Mapped[OrderingList[OrderItem]] = relationship(
        order_by=OrderItem.position,
        collection_class=ordering_list("position"),
        cascade="all, delete-orphan",
        passive_deletes=True,
        back_populates="order",
    )
    encounter: Mapped[Encounter] = relationship()
    doctor: Mapped[User] = relationship()
