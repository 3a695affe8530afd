"""A chart record stays with its patient: it never joins another patient's encounter, and
is never moved to another patient."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dr_assistant_data import ConflictError, ValidationError
from dr_assistant_data.testing import (
    AllergyFactory,
    ConditionFactory,
    EncounterFactory,
    PatientFactory,
    VitalSignFactory,
    bind_factories,
)
from tests.helpers.cache_helpers import read

TAKEN = datetime(2025, 5, 1, 4, 30, tzinfo=UTC)
RECORDS = {
    "conditions": {"display": "Asthma"},
    "allergies": {"substance": "Penicillin"},
    "vital_signs": {"kind": "heart_rate", "value": 70, "unit": "/min", "effective_at": TAKEN},
}


@pytest.mark.parametrize("table", sorted(RECORDS))
def test_a_record_joining_another_patients_encounter_is_refused_and_nothing_written(dl, table):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        theirs = EncounterFactory()
        mine = PatientFactory()
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        getattr(uow, table).create(patient_id=mine.id, encounter_id=theirs.id, **RECORDS[table])
    assert raised.value.field == "encounter_id"
    assert read(dl, lambda uow: getattr(uow, table).count()) == 0
    assert read(dl, lambda uow: uow.patients.get(mine.id).allergies) == []


def test_a_record_moved_to_another_encounter_of_another_patient_is_refused(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        sign = VitalSignFactory()
        theirs = EncounterFactory()
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.vital_signs.update(sign.id, encounter_id=theirs.id)
    assert raised.value.field == "encounter_id"
    assert read(dl, lambda uow: uow.vital_signs.get(sign.id).encounter_id) == sign.encounter_id


@pytest.mark.parametrize("factory", [ConditionFactory, AllergyFactory])
def test_a_record_is_never_moved_to_another_patient(dl, factory):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        record = factory()
        other = PatientFactory()
    repository = "conditions" if factory is ConditionFactory else "allergies"
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        getattr(uow, repository).update(record.id, patient_id=other.id)
    assert raised.value.field == "patient_id"
    assert read(dl, lambda uow: uow.patients.get(other.id).allergies) == []


def test_the_database_refuses_a_bulk_record_joining_another_patients_encounter(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        theirs = EncounterFactory()
        mine = EncounterFactory()
    rows = [
        {"patient_id": mine.patient_id, "encounter_id": mine.id, "display": "Asthma"},
        {"patient_id": mine.patient_id, "encounter_id": theirs.id, "display": "Asthma"},
    ]
    with dl.unit_of_work(actor="test") as uow:
        result = uow.conditions.create_many(rows, batch_size=1)
    assert [(error.index, error.field) for error in result.errors] == [(1, "encounter_id")]
    assert read(dl, lambda uow: uow.conditions.count()) == 1


def test_an_encounter_with_chart_records_cannot_move_to_another_patient(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        sign = VitalSignFactory()
        other = PatientFactory()
    with pytest.raises(ConflictError), dl.unit_of_work(actor="test") as uow:
        uow.encounters.update(sign.encounter_id, patient_id=other.id)
    assert read(dl, lambda uow: uow.encounters.get(sign.encounter_id).patient_id) == (
        sign.patient_id
    )
