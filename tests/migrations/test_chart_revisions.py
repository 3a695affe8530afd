"""Revisions 0013-0017: the allergy names patients list move into allergy rows and back,
the wider encounter and prescription vocabularies are stored, and a downgrade that would
destroy a value the older schema cannot hold is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import DataLayerError
from dr_assistant_data.migrations import relational as relational_migrations
from dr_assistant_data.testing import EncounterFactory, PrescriptionFactory, bind_factories
from tests.helpers.layers import scratch_database, settings_for


@pytest.fixture
def fresh() -> Iterator[DataLayer]:
    with scratch_database("dr_assistant_chart") as url, DataLayer(settings_for(url)) as layer:
        yield layer


def listed_patient(layer: DataLayer, names: str) -> uuid.UUID:
    patient_id = uuid.uuid4()
    with layer.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patients (id, first_name, last_name, date_of_birth, gender, "
                "allergies, status, version, created_at, updated_at) VALUES "
                "(:id, 'Ira', 'Sen', '1990-01-01', 'female', CAST(:names AS jsonb), 'active', "
                "1, now(), now())"
            ),
            {"id": patient_id, "names": names},
        )
    return patient_id


def current(layer: DataLayer) -> tuple[str, ...]:
    return layer.migration_status().current


def at_head(layer: DataLayer) -> tuple[str, ...]:
    status = layer.migration_status()
    return (status.head,) if status.head else ()


def test_revision_0016_moves_each_listed_name_into_an_active_allergy_in_order(fresh):
    relational_migrations.upgrade(fresh.engine, "0015")
    patient_id = listed_patient(fresh, '["sulfa", "latex", "penicillin"]')
    listed_patient(fresh, "[]")
    relational_migrations.upgrade(fresh.engine, "0016")
    fresh.migrate()
    with fresh.unit_of_work(actor="test") as uow:
        moved = uow.allergies.list(filters={"patient_id": patient_id}, order_by="created_at")
        assert [(each.substance, each.is_active) for each in moved] == [
            ("sulfa", True),
            ("latex", True),
            ("penicillin", True),
        ]
        assert uow.allergies.count() == 3
        assert uow.patients.get(patient_id).allergies == ["sulfa", "latex", "penicillin"]


def test_downgrading_0016_keeps_the_active_names_on_the_patient(fresh):
    fresh.migrate()
    with fresh.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = EncounterFactory().patient
        uow.allergies.create(patient_id=patient.id, substance="latex")
        refuted = uow.allergies.create(patient_id=patient.id, substance="sulfa")
        uow.allergies.update(refuted.id, verification_status="refuted")
    fresh.downgrade("0015")
    with fresh.engine.connect() as connection:
        names = connection.scalar(
            text("SELECT allergies FROM patients WHERE id = :id"), {"id": patient.id}
        )
        assert names == ["latex"]
        assert connection.scalar(text("SELECT to_regclass('allergies')")) is None


def test_every_encounter_class_and_prescription_status_is_stored(fresh):
    fresh.migrate()
    with fresh.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory(
            encounter_type="inpatient",
            type_code="32485007",
            type_system="http://snomed.info/sct",
            type_display="Hospital admission",
        )
        prescription = PrescriptionFactory(encounter=encounter, status="stopped")
        prescription.items[0].medication_code = "308182"
        prescription.items[0].medication_system = "http://www.nlm.nih.gov/research/umls/rxnorm"
    with fresh.unit_of_work(actor="test") as uow:
        stored = uow.prescriptions.get(prescription.id)
        assert (stored.status, stored.encounter.encounter_type) == ("stopped", "inpatient")
        assert (stored.items[0].medication_code, stored.encounter.type_code) == (
            "308182",
            "32485007",
        )


def test_downgrading_0013_is_refused_while_a_row_holds_a_newer_value(fresh):
    fresh.migrate()
    with fresh.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory(
            encounter_type="short_stay", start_time=datetime(2025, 1, 1, tzinfo=UTC)
        )
    with pytest.raises(DataLayerError, match="revision 0013 cannot be downgraded"):
        fresh.downgrade("0012")
    assert current(fresh) == at_head(fresh)  # refused before any step: nothing changed
    with fresh.unit_of_work(actor="test") as uow:
        uow.encounters.update(encounter.id, encounter_type="office_visit")
    fresh.downgrade("0012")
    assert current(fresh) == ("0012",)


def test_the_embedded_database_stores_the_new_types_and_statuses_too(tmp_path):
    with DataLayer(settings_for(f"sqlite:///{tmp_path / 'embedded.db'}")) as layer:
        layer.migrate()
        with layer.unit_of_work(actor="test") as uow, bind_factories(uow):
            prescription = PrescriptionFactory(
                encounter=EncounterFactory(encounter_type="field_visit"),
                status="entered_in_error",
            )
        with layer.unit_of_work(actor="test") as uow:
            stored = uow.prescriptions.get(prescription.id)
            assert (stored.status, stored.encounter.encounter_type) == (
                "entered_in_error",
                "field_visit",
            )


def test_revision_0014_indexes_encounters_that_already_hold_rows(fresh):
    fresh.migrate()
    with fresh.unit_of_work(actor="test") as uow, bind_factories(uow):
        EncounterFactory()
    fresh.downgrade("0013")
    fresh.migrate()
    with fresh.engine.connect() as connection:
        valid = connection.scalar(
            text(
                "SELECT indisvalid AND indisunique FROM pg_index "
                "WHERE indexrelid = 'uq_encounters_id_patient_id'::regclass"
            )
        )
    assert valid is True
    assert current(fresh) == at_head(fresh)
