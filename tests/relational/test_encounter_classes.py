"""Every v3 ActEncounterCode class has an encounter type of its own, and a coded type and
a medication's code are kept beside the clinic's words."""

from __future__ import annotations

import pytest

from dr_assistant_data import ValidationError
from dr_assistant_data.relational.vocabulary import (
    ENCOUNTER_CLASS_OF,
    ENCOUNTER_CLASSES,
    ENCOUNTER_TYPES,
    PRESCRIPTION_STATUSES,
)
from dr_assistant_data.testing import EncounterFactory, PrescriptionFactory, bind_factories
from tests.helpers.cache_helpers import read

CLASSES = ("AMB", "EMER", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR", "HH", "FLD")


def test_each_encounter_class_maps_to_a_type_and_back_to_itself():
    assert set(ENCOUNTER_CLASSES) == set(CLASSES)
    assert set(ENCOUNTER_CLASSES.values()) == set(ENCOUNTER_TYPES)
    assert all(ENCOUNTER_CLASS_OF[ENCOUNTER_CLASSES[code]] == code for code in CLASSES)


def test_a_stopped_prescription_is_not_a_cancelled_one():
    assert {"stopped", "cancelled", "on_hold", "entered_in_error"} <= set(PRESCRIPTION_STATUSES)


@pytest.mark.parametrize("code", CLASSES)
def test_an_encounter_of_every_class_is_stored_with_its_coded_type(dl, code):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    with dl.unit_of_work(actor="test") as uow:
        uow.encounters.update(
            encounter.id,
            encounter_type=ENCOUNTER_CLASSES[code],
            type_code="185347001",
            type_system="http://snomed.info/sct",
            type_display="Encounter for problem",
        )
    stored = read(dl, lambda uow: uow.encounters.get(encounter.id))
    assert ENCOUNTER_CLASS_OF[stored.encounter_type] == code
    assert (stored.type_code, stored.type_display) == ("185347001", "Encounter for problem")


@pytest.mark.parametrize("status", ["stopped", "on_hold", "completed", "entered_in_error"])
def test_a_prescription_keeps_its_status_as_written(dl, status):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        prescription = PrescriptionFactory()
    with dl.unit_of_work(actor="test") as uow:
        uow.prescriptions.update(prescription.id, status=status)
    assert read(dl, lambda uow: uow.prescriptions.get(prescription.id).status) == status


def test_a_prescription_item_keeps_its_medication_code_beside_its_name(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    with dl.unit_of_work(actor="test") as uow:
        prescription = uow.prescriptions.create(
            encounter_id=encounter.id,
            patient_id=encounter.patient_id,
            doctor_id=encounter.doctor_id,
            items=[
                {
                    "medication_name": "Amoxicillin 250 MG Oral Capsule",
                    "medication_code": "308182",
                    "medication_system": rxnorm,
                    "dosage": "250 mg",
                    "frequency": "three times a day",
                }
            ],
        )
    [item] = read(dl, lambda uow: uow.prescriptions.get(prescription.id).items)
    assert (item.medication_name, item.medication_code, item.medication_system) == (
        "Amoxicillin 250 MG Oral Capsule",
        "308182",
        rxnorm,
    )


def test_an_encounter_type_outside_the_vocabulary_is_refused(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.encounters.update(encounter.id, encounter_type="IMP")
    assert raised.value.field == "encounter_type"
