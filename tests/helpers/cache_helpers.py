"""Each step of a cache test is a unit of work of its own, as requests would be."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.helpers.layers import patient_fields

DAY = date(2030, 6, 3)
NINE_IN_KOLKATA = datetime(2030, 6, 3, 3, 30, tzinfo=UTC)
"""A clinic day, and its first slot (9:00 in Kolkata) in UTC."""


def new_patient(dl, **fields):
    with dl.unit_of_work(actor="test") as uow:
        return uow.patients.create(**patient_fields(**fields))


def read(dl, reader):
    """``reader(uow)`` in a unit of work of its own."""
    with dl.unit_of_work(actor="test") as uow:
        return reader(uow)


def read_patient(dl, patient_id):
    return read(dl, lambda uow: uow.patients.get(patient_id))


def write_and_read_back(layer) -> str:
    """Create a patient, rename it in another unit of work, return the name read back."""
    patient = new_patient(layer)
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")
    return read_patient(layer, patient.id).last_name
