"""A small demo clinic, written through the repositories and read back through the domain reads.

``demo`` and ``seed`` both build it. Every build is a new clinic: usernames, e-mails, MRNs
and ABHA numbers carry a number drawn at random for the build, so building twice into the
same database adds a second clinic beside the first instead of failing on a unique value,
and never changes a clinic it did not write. The staff get a password hash that matches no
password: they cannot log in.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from ..errors import NotFoundError
from ..relational.models import Patient
from ..unit_of_work import UnitOfWork
from ..values.clock import utcnow

_T = TypeVar("_T")

PASSWORD_HASH = "pbkdf2:sha256:600000$demo$" + "0" * 64
"""Well-formed, but the hash of no password."""

FIRST_SLOT = time(9, 0)
SLOT_GAP = timedelta(minutes=20)
VISIT_LENGTH = timedelta(minutes=15)


@dataclass(frozen=True)
class Booking:
    """A patient of the demo clinic and why they come today."""

    patient: dict[str, object]
    reason: str


BOOKINGS = (
    Booking(
        {
            "first_name": "Arjun",
            "last_name": "Mehta",
            "date_of_birth": date(1968, 3, 14),
            "gender": "male",
            "phone": "+919845012301",
            "blood_group": "B+",
            "allergies": ["sulfonamides"],
        },
        "Diabetes follow-up",
    ),
    Booking(
        {
            "first_name": "Lakshmi",
            "last_name": "Subramanian",
            "date_of_birth": date(1991, 11, 2),
            "gender": "female",
            "phone": "+919845012302",
            "blood_group": "O+",
        },
        "Fever and sore throat for three days",
    ),
    Booking(
        {
            "first_name": "Rohan",
            "last_name": "Deshpande",
            "date_of_birth": date(2012, 7, 21),
            "gender": "male",
            "phone": "+919845012303",
            "blood_group": "A+",
        },
        "Fitness certificate for school sports",
    ),
)


@dataclass(frozen=True)
class Clinic:
    """Ids of what :func:`build_clinic` wrote; the first patient is the one seen today."""

    doctor_id: uuid.UUID
    nurse_id: uuid.UUID
    patient_ids: tuple[uuid.UUID, ...]
    encounter_id: uuid.UUID


def build_clinic(uow: UnitOfWork, today: date) -> Clinic:
    """Write a doctor's morning on ``today`` (the clinic's local date) into ``uow``.

    Nothing is committed here: the clinic is saved when the unit of work ends, or not at all.
    """
    run = f"{secrets.randbelow(10**8):08d}"
    zone = uow.appointments.clinic_timezone
    doctor = uow.users.create(
        username=f"meera.raghavan.{run}",
        email=f"meera.raghavan.{run}@clinic.example.in",
        full_name="Dr Meera Raghavan",
        role="doctor",
        specialty="General Medicine",
        phone="+919845000001",
        password_hash=PASSWORD_HASH,
    )
    nurse = uow.users.create(
        username=f"kavitha.pillai.{run}",
        email=f"kavitha.pillai.{run}@clinic.example.in",
        full_name="Kavitha Pillai",
        role="nurse",
        phone="+919845000002",
        password_hash=PASSWORD_HASH,
    )
    patients = [
        uow.patients.create(mrn=f"MRN-{run}-{n}", abha_id=f"91{run}{n:04d}", **booking.patient)
        for n, booking in enumerate(BOOKINGS, start=1)
    ]
    first_slot = datetime.combine(today, FIRST_SLOT, zone)
    appointments = [
        uow.appointments.create(
            doctor_id=doctor.id,
            patient_id=patient.id,
            start_time=first_slot + n * SLOT_GAP,
            end_time=first_slot + n * SLOT_GAP + VISIT_LENGTH,
            reason=booking.reason,
            created_by=nurse.id,
        )
        for n, (patient, booking) in enumerate(zip(patients, BOOKINGS, strict=True))
    ]
    seen, visit = patients[0], appointments[0]
    encounter = uow.encounters.create(
        appointment_id=visit.id,
        doctor_id=doctor.id,
        patient_id=seen.id,
        start_time=visit.start_time,
        chief_complaint="Review of blood sugar control",
    )
    uow.prescriptions.create(
        encounter_id=encounter.id,
        patient_id=seen.id,
        doctor_id=doctor.id,
        valid_from=today,
        valid_until=today + timedelta(days=30),
        items=[
            {
                "medication_name": "Metformin",
                "dosage": "500 mg",
                "frequency": "twice daily after meals",
                "duration": "30 days",
                "quantity": 60,
            },
            {
                "medication_name": "Atorvastatin",
                "dosage": "10 mg",
                "frequency": "once at bedtime",
                "duration": "30 days",
                "quantity": 30,
            },
        ],
    )
    uow.orders.create(
        encounter_id=encounter.id,
        patient_id=seen.id,
        doctor_id=doctor.id,
        order_type="lab",
        status="ordered",
        ordered_at=visit.start_time,
        items=[{"item_code": "4548-4", "item_name": "HbA1c (glycated haemoglobin)"}],
    )
    uow.tasks.create(
        title="Collect blood sample for HbA1c",
        assigned_to=nurse.id,
        created_by=doctor.id,
        patient_id=seen.id,
        encounter_id=encounter.id,
        due_date=datetime.combine(today, time(10, 30), zone),
        priority="high",
        task_type="order",
    )
    uow.alerts.create(
        user_id=doctor.id,
        patient_id=patients[1].id,
        alert_type="lab_result",
        severity="high",
        title="Potassium 5.9 mmol/L, above the reference range",
    )
    uow.alerts.create(
        user_id=doctor.id,
        patient_id=patients[2].id,
        alert_type="appointment",
        severity="low",
        title="Appointment confirmed by the patient",
        is_read=True,
        read_at=utcnow(),
    )
    return Clinic(
        doctor_id=doctor.id,
        nurse_id=nurse.id,
        patient_ids=tuple(patient.id for patient in patients),
        encounter_id=encounter.id,
    )


def describe_clinic(uow: UnitOfWork, clinic: Clinic, today: date) -> list[str]:
    """The clinic as the domain reads return it, as lines of text; reads only.

    Raises ``NotFoundError`` when its staff or first patient are gone.
    """
    zone = uow.appointments.clinic_timezone
    doctor = _found(uow.users.get(clinic.doctor_id), "doctor")
    nurse = _found(uow.users.get(clinic.nurse_id), "nurse")
    patient = _found(uow.patients.get(clinic.patient_ids[0]), "patient")

    lines = [f"Schedule of {doctor.full_name} for {today:%A %d %B %Y} ({zone.key})"]
    for appointment in uow.appointments.schedule_for(doctor.id, today):
        who = f"{appointment.patient.full_name}, {appointment.patient.age_on(today)}"
        start = appointment.start_time.astimezone(zone)
        lines.append(f"  {start:%H:%M}  {who:<26}{appointment.reason}")

    lines += ["", f"Timeline of {patient.full_name} ({patient.mrn})"]
    for encounter in uow.encounters.for_patient(patient.id):
        start = encounter.start_time.astimezone(zone)
        lines.append(
            f"  Encounter {start:%d %b %H:%M} with {encounter.doctor.full_name}: "
            f"{encounter.chief_complaint} [{_label(encounter.status)}]"
        )
    for prescription in uow.prescriptions.for_patient(patient.id):
        until = (
            f", valid until {prescription.valid_until:%d %b %Y}" if prescription.valid_until else ""
        )
        lines.append(f"  Prescription [{_label(prescription.status)}]{until}")
        lines += [
            f"    {item.position + 1}. {item.medication_name} {item.dosage}, "
            f"{item.frequency}, for {item.duration}"
            for item in prescription.items
        ]
    for order in uow.orders.for_patient(patient.id):
        lines.append(f"  {order.order_type.capitalize()} order [{_label(order.status)}]")
        lines += [
            f"    {item.position + 1}. {item.item_name}, code {item.item_code}"
            for item in order.items
        ]

    lines += ["", f"Pending tasks of {nurse.full_name} ({nurse.role})"]
    for task in uow.tasks.pending_for(nurse.id):
        due = f", due {task.due_date.astimezone(zone):%H:%M}" if task.due_date else ""
        lines.append(f"  [{task.priority}] {task.title}{_about(task.patient)}{due}")

    lines += ["", f"Unread alerts of {doctor.full_name}: {uow.alerts.unread_count(doctor.id)}"]
    lines += [
        f"  [{alert.severity}] {alert.title}{_about(alert.patient)}"
        for alert in uow.alerts.unread_for(doctor.id)
    ]

    events = uow.audit.for_entity("patients", patient.id)
    actions = ", ".join(f"{event.action} by {event.actor}" for event in events)
    lines += ["", f"Audit trail of {patient.full_name}'s record: {len(events)} event(s): {actions}"]
    return lines


def _found(row: _T | None, what: str) -> _T:
    if row is None:
        raise NotFoundError(f"the demo clinic's {what} is gone")
    return row


def _about(patient: Patient | None) -> str:
    return f" ({patient.full_name})" if patient is not None else ""


def _label(status: str) -> str:
    return status.replace("_", " ")
