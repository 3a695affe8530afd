"""Structured allergies (``uow.allergies``) and the names list ``Patient.allergies`` kept in
step with them: what existing callers read and write still works, a refuted or
entered-in-error allergy is not shown as active, and the cached patient never shows an
allergy list older than the last commit."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from dr_assistant_data import ValidationError
from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing import AllergyFactory, PatientFactory, bind_factories
from tests.helpers.cache_helpers import new_patient, read, read_patient
from tests.helpers.layers import patient_fields

HIVES = {"manifestations": [{"display": "Hives"}], "severity": "mild"}


def structured(dl, patient_id):
    return read(dl, lambda uow: uow.allergies.for_patient(patient_id))


def test_a_recorded_allergy_is_listed_by_name_on_the_patient(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.create(
            patient_id=patient.id,
            substance="Penicillin",
            substance_code="764146007",
            substance_system="http://snomed.info/sct",
            criticality="high",
            verification_status="confirmed",
            reactions=[HIVES],
        )
    assert read_patient(dl, patient.id).allergies == ["Penicillin"]
    [allergy] = structured(dl, patient.id)
    assert (allergy.substance_code, allergy.criticality, allergy.clinical_status) == (
        "764146007",
        "high",
        "active",
    )
    assert allergy.reactions == [
        {
            "manifestations": [{"code": None, "system": None, "display": "Hives"}],
            "severity": "mild",
            "description": None,
            "onset_at": None,
        }
    ]


@pytest.mark.parametrize(
    "change", [{"verification_status": "refuted"}, {"verification_status": "entered_in_error"}]
)
def test_a_refuted_or_mistaken_allergy_leaves_the_active_list(dl, change):
    patient = new_patient(dl, allergies=["latex"])
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        allergy = AllergyFactory(patient=uow.patients.get(patient.id), substance="Sulfa")
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.update(allergy.id, **change)
    assert read_patient(dl, patient.id).allergies == ["latex"]
    active = read(dl, lambda uow: uow.allergies.for_patient(patient.id, active_only=True))
    assert [each.substance for each in active] == ["latex"]
    assert len(structured(dl, patient.id)) == 2  # kept, not shown as active


def test_a_name_added_to_the_list_becomes_an_unverified_active_allergy(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id).allergies.append("peanuts")
    [allergy] = structured(dl, patient.id)
    assert (allergy.substance, allergy.clinical_status, allergy.verification_status) == (
        "peanuts",
        "active",
        None,
    )


def test_a_name_removed_from_the_list_makes_its_allergy_inactive_not_deleted(dl):
    patient = new_patient(dl, allergies=["latex", "sulfa"])
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, allergies=["sulfa"])
    states = {each.substance: each.clinical_status for each in structured(dl, patient.id)}
    assert states == {"latex": "inactive", "sulfa": "active"}
    assert read_patient(dl, patient.id).allergies == ["sulfa"]


def test_a_patient_created_with_names_has_one_allergy_per_name(dl):
    patient = new_patient(dl, allergies=["latex", "sulfa"])
    assert sorted(each.substance for each in structured(dl, patient.id)) == ["latex", "sulfa"]


def test_a_committed_allergy_change_drops_the_cached_patient(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        allergy = uow.allergies.create(patient_id=patient.id, substance="Penicillin")
    assert read_patient(dl, patient.id).allergies == ["Penicillin"]  # now cached
    assert dl.cache_store.trusted()
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.get(allergy.id).verification_status = "entered_in_error"
    assert read_patient(dl, patient.id).allergies == []


def test_a_rolled_back_allergy_leaves_the_patient_as_it_was(dl):
    patient = new_patient(dl, allergies=["latex"])
    with pytest.raises(RuntimeError), dl.unit_of_work(actor="test") as uow:
        uow.allergies.create(patient_id=patient.id, substance="Penicillin")
        raise RuntimeError
    assert read_patient(dl, patient.id).allergies == ["latex"]
    assert [each.substance for each in structured(dl, patient.id)] == ["latex"]


def test_an_allergy_change_moves_the_patients_version(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.create(patient_id=patient.id, substance="Penicillin")
    assert read_patient(dl, patient.id).version == patient.version + 1


def test_a_reaction_without_a_manifestation_is_refused_and_nothing_is_written(dl):
    patient = new_patient(dl)
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.allergies.create(
            patient_id=patient.id, substance="Penicillin", reactions=[{"severity": "mild"}]
        )
    assert raised.value.field == "reactions"
    assert structured(dl, patient.id) == []
    assert read_patient(dl, patient.id).allergies == []


def test_allergies_written_in_bulk_are_listed_on_their_patients(dl):
    first, second = new_patient(dl), new_patient(dl, allergies=["latex"])
    with dl.unit_of_work(actor="test") as uow:
        result = uow.allergies.create_many(
            [
                {"patient_id": first.id, "substance": "Penicillin"},
                {"patient_id": second.id, "substance": "Sulfa"},
            ]
        )
    assert len(result.created) == 2
    assert read_patient(dl, first.id).allergies == ["Penicillin"]
    assert read_patient(dl, second.id).allergies == ["latex", "Sulfa"]


def test_each_allergy_write_is_audited_under_its_own_record(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        allergy = uow.allergies.create(patient_id=patient.id, substance="Penicillin")
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.update(allergy.id, criticality="high")
    events = read(dl, lambda uow: uow.audit.for_entity("allergies", allergy.id))
    assert [(event.action, event.changed_fields) for event in events][1] == (
        "update",
        ["criticality"],
    )
    assert events[0].action == "create"
    assert "substance" in events[0].changed_fields


def test_a_factory_allergy_is_on_its_patients_list(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        allergy = AllergyFactory(patient=PatientFactory(allergies=["latex"]))
    assert read_patient(dl, allergy.patient_id).allergies == ["latex", "Penicillin"]


def test_patients_created_in_bulk_have_an_allergy_per_listed_name(dl):
    with dl.unit_of_work(actor="test") as uow:
        result = uow.patients.create_many(
            [
                patient_fields(allergies=["latex", "sulfa"]),
                patient_fields(),
            ]
        )
    listed, unlisted = result.created
    assert sorted(each.substance for each in structured(dl, listed)) == ["latex", "sulfa"]
    assert structured(dl, unlisted) == []
    assert read_patient(dl, listed).allergies == ["latex", "sulfa"]


def test_a_deleted_allergy_leaves_the_names_list(dl):
    patient = new_patient(dl, allergies=["latex", "sulfa"])
    [latex] = [each for each in structured(dl, patient.id) if each.substance == "latex"]
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.delete(latex.id)
    assert read_patient(dl, patient.id).allergies == ["sulfa"]


def test_a_listed_name_without_a_row_is_kept_when_another_allergy_is_recorded(dl):
    patient = new_patient(dl)
    with dl.engine.begin() as connection:  # as a writer that predates the allergy rows
        connection.execute(
            update(Patient).where(Patient.id == patient.id).values(allergies=["latex"])
        )
    with dl.unit_of_work(actor="test") as uow:
        uow.allergies.create(patient_id=patient.id, substance="Penicillin")
    assert read_patient(dl, patient.id).allergies == ["latex", "Penicillin"]
    assert sorted(each.substance for each in structured(dl, patient.id)) == ["Penicillin", "latex"]
