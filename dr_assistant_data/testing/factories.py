"""factory-boy factories for the relational models."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from ..errors import DataLayerError
from ..relational.models import (
    Alert,
    Allergy,
    Appointment,
    Condition,
    Encounter,
    Order,
    OrderItem,
    Patient,
    Prescription,
    PrescriptionItem,
    Task,
    User,
    VitalSign,
)
from ..unit_of_work import UnitOfWork

_session: ContextVar[Session | None] = ContextVar("dr_assistant_factory_session", default=None)
_unit: ContextVar[UnitOfWork | None] = ContextVar("dr_assistant_factory_unit", default=None)

CLINIC_TIMEZONE = ZoneInfo("Asia/Kolkata")


def clinic_day_start() -> datetime:
    """09:00 today in an Indian clinic; appointments are laid out from here, 20 minutes
    apart (pass ``start_time`` for another time zone or day)."""
    today = datetime.now(CLINIC_TIMEZONE).date()
    return datetime.combine(today, time(9), CLINIC_TIMEZONE).astimezone(UTC)


def run_token() -> str:
    """A token of this process, new in each process (a forked child included): the unique
    values of the factories carry it, so rows made by another process or an earlier run in
    the same database never collide with this one's (sequences restart in each process)."""
    return _token_of(os.getpid())


@functools.cache
def _token_of(_pid: int) -> str:
    return uuid.uuid4().hex[:8]


@contextmanager
def bind_factories(target: UnitOfWork | Session) -> Iterator[Session]:
    """Make the factories write into ``target`` (a unit of work or a session) in this
    thread or task, until the block ends."""
    session = target.session if isinstance(target, UnitOfWork) else target
    token = _session.set(session)
    unit_token = _unit.set(target if isinstance(target, UnitOfWork) else None)
    try:
        yield session
    finally:
        _unit.reset(unit_token)
        _session.reset(token)


def current_unit() -> UnitOfWork:
    """The unit of work the factories are bound to (document factories need one)."""
    unit = _unit.get()
    if unit is None:
        raise DataLayerError("document factories need 'with bind_factories(uow):'")
    return unit


def _current_session() -> Session:
    session = _session.get()
    if session is None:
        raise DataLayerError("factories are not bound; use 'with bind_factories(uow):'")
    return session


class _Factory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _current_session
        sqlalchemy_session_persistence = "flush"


class UserFactory(_Factory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n:05d}-{run_token()}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@clinic.example.in")
    full_name: factory.declarations.BaseDeclaration = factory.Faker("name", locale="en_IN")
    role = "receptionist"
    phone = factory.Sequence(lambda n: f"+9197{n:08d}")
    # A syntactically plausible hash of no real password.
    password_hash = "pbkdf2:sha256:600000$factory$" + "0" * 64


class DoctorFactory(UserFactory):
    role = "doctor"
    specialty = "General Medicine"
    full_name = factory.LazyAttribute(lambda o: f"Dr {o.username.split('-')[0].title()}")


class NurseFactory(UserFactory):
    role = "nurse"


class PatientFactory(_Factory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN-{run_token()}-{n:06d}")
    first_name = factory.Faker("first_name", locale="en_IN")
    last_name = factory.Faker("last_name", locale="en_IN")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=1, maximum_age=90)
    gender = factory.Iterator(["female", "male", "other"])
    phone = factory.Sequence(lambda n: f"+9198{n:08d}")
    blood_group = factory.Iterator(["O+", "B+", "A+", "AB+"])
    allergies = factory.LazyFunction(list)


class AppointmentFactory(_Factory):
    class Meta:
        model = Appointment

    doctor = factory.SubFactory(DoctorFactory)
    patient = factory.SubFactory(PatientFactory)
    start_time = factory.Sequence(lambda n: clinic_day_start() + timedelta(minutes=20 * n))
    end_time = factory.LazyAttribute(lambda o: o.start_time + timedelta(minutes=15))
    appointment_type = "in_person"
    reason = "Follow-up visit"


class EncounterFactory(_Factory):
    class Meta:
        model = Encounter

    doctor = factory.SubFactory(DoctorFactory)
    patient = factory.SubFactory(PatientFactory)
    encounter_type = "office_visit"
    start_time = factory.LazyFunction(lambda: datetime.now(UTC) - timedelta(minutes=30))
    chief_complaint = "Fever for three days"


class PrescriptionItemFactory(_Factory):
    class Meta:
        model = PrescriptionItem

    medication_name = factory.Iterator(["Paracetamol", "Amoxicillin", "Cetirizine"])
    dosage = "500 mg"
    frequency = "three times a day"
    duration = "5 days"
    quantity = 15
    refills = 0


class PrescriptionFactory(_Factory):
    """A draft prescription of an encounter, with two items."""

    class Meta:
        model = Prescription

    encounter = factory.SubFactory(EncounterFactory)
    patient_id = factory.SelfAttribute("encounter.patient.id")
    doctor = factory.SelfAttribute("encounter.doctor")
    items = factory.LazyFunction(lambda: PrescriptionItemFactory.build_batch(2))


class OrderItemFactory(_Factory):
    class Meta:
        model = OrderItem

    item_code = factory.Sequence(lambda n: f"LAB-{n:04d}")
    item_name = factory.Iterator(["Complete blood count", "HbA1c", "Lipid profile"])


class OrderFactory(_Factory):
    """A lab order of an encounter, with one item."""

    class Meta:
        model = Order

    encounter = factory.SubFactory(EncounterFactory)
    patient_id = factory.SelfAttribute("encounter.patient.id")
    doctor = factory.SelfAttribute("encounter.doctor")
    order_type = "lab"
    items = factory.LazyFunction(lambda: OrderItemFactory.build_batch(1))


class TaskFactory(_Factory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"Review lab results #{n}")
    creator = factory.SubFactory(DoctorFactory)
    assignee = factory.SubFactory(NurseFactory)
    priority = "medium"
    task_type = "review"


class AlertFactory(_Factory):
    class Meta:
        model = Alert

    user = factory.SubFactory(DoctorFactory)
    alert_type = "lab_result"
    severity = "medium"
    title = factory.Sequence(lambda n: f"New lab result #{n}")


class ConditionFactory(_Factory):
    """A confirmed, active problem diagnosed in an encounter (SNOMED CT)."""

    class Meta:
        model = Condition

    encounter = factory.SubFactory(EncounterFactory)
    patient_id = factory.SelfAttribute("encounter.patient.id")
    code = "44054006"
    code_system = "http://snomed.info/sct"
    display = "Diabetes mellitus type 2"
    category = "problem_list_item"
    clinical_status = "active"
    verification_status = "confirmed"
    recorded_at = factory.LazyAttribute(lambda o: o.encounter.start_time)


class AllergyFactory(_Factory):
    """A confirmed, high-criticality drug allergy with one reaction (SNOMED CT); the
    patient's ``allergies`` names list gains its substance."""

    class Meta:
        model = Allergy

    patient = factory.SubFactory(PatientFactory)
    substance = "Penicillin"
    substance_code = "764146007"
    substance_system = "http://snomed.info/sct"
    category = "medication"
    allergy_type = "allergy"
    criticality = "high"
    clinical_status = "active"
    verification_status = "confirmed"
    reactions = factory.LazyFunction(
        lambda: [
            {
                "manifestations": [
                    {"code": "247472004", "system": "http://snomed.info/sct", "display": "Hives"}
                ],
                "severity": "moderate",
            }
        ]
    )
    recorded_at = factory.LazyFunction(lambda: datetime.now(UTC) - timedelta(days=30))


class VitalSignFactory(_Factory):
    """A heart rate taken in an encounter (pass ``kind``, ``value`` and ``unit`` for
    another sign)."""

    class Meta:
        model = VitalSign

    encounter = factory.SubFactory(EncounterFactory)
    patient_id = factory.SelfAttribute("encounter.patient.id")
    kind = "heart_rate"
    value = 72.0
    unit = "/min"
    effective_at = factory.LazyAttribute(lambda o: o.encounter.start_time)
