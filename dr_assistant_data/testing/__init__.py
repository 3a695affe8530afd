"""Test support for applications built on the layer: factory-boy factories for every
table written by callers, bound to a unit of work.

    from dr_assistant_data.testing import PatientFactory, bind_factories

    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory(allergies=["penicillin"])
        note = ClinicalNoteFactory()  # with its own encounter, patient and doctor

The binding lives in a context variable, so each thread (and each asyncio task) has its own
and parallel tests never write into each other's session. Factories flush through the
layer's session, so the layer's validation and audit rules apply to them too.

Servers of one's own for fault tests (a throwaway PostgreSQL, PgBouncer, Redis, a proxy that
loses a COMMIT) are in ``dr_assistant_data.testing.servers``, imported on their own.
"""

from .documents import ClinicalNoteFactory, VoiceRecordingFactory
from .factories import (
    AlertFactory,
    AllergyFactory,
    AppointmentFactory,
    ConditionFactory,
    DoctorFactory,
    EncounterFactory,
    NurseFactory,
    OrderFactory,
    OrderItemFactory,
    PatientFactory,
    PrescriptionFactory,
    PrescriptionItemFactory,
    TaskFactory,
    UserFactory,
    VitalSignFactory,
    bind_factories,
)

__all__ = [
    "AlertFactory",
    "AllergyFactory",
    "AppointmentFactory",
    "ClinicalNoteFactory",
    "ConditionFactory",
    "DoctorFactory",
    "EncounterFactory",
    "NurseFactory",
    "OrderFactory",
    "OrderItemFactory",
    "PatientFactory",
    "PrescriptionFactory",
    "PrescriptionItemFactory",
    "TaskFactory",
    "UserFactory",
    "VitalSignFactory",
    "VoiceRecordingFactory",
    "bind_factories",
]
