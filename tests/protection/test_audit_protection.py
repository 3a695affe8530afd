"""The audit trail is attributable, append-only in the database, and can record chart
reads; erasure is audited with a reason code. (Verification: ``test_audit_seals.py``.)"""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import InternalError

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import ImmutableRecordError, NotFoundError, ValidationError
from dr_assistant_data.relational.models import AuditEvent, Encounter, Patient
from dr_assistant_data.testing import EncounterFactory, PatientFactory, bind_factories
from tests.helpers.layers import patient_fields, settings_for

PRODUCTION_KEYS = {
    "data_encryption_keys": "k1:" + base64.b64encode(os.urandom(32)).decode(),
    "blind_index_key": base64.b64encode(os.urandom(32)).decode(),
    "audit_key": base64.b64encode(os.urandom(32)).decode(),
}


def audit_count(dl: DataLayer) -> int:
    with dl.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AuditEvent))


def create_patients(dl: DataLayer, count: int) -> list[Patient]:
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        return [PatientFactory() for _ in range(count)]


@pytest.fixture
def production_layer(dl, database_url, tmp_path):
    settings = settings_for(database_url, **PRODUCTION_KEYS, audit_checkpoint_dir=str(tmp_path))
    layer = DataLayer(dataclasses.replace(settings, environment="production"))
    yield layer
    layer.close()


@pytest.fixture
def reads_audited(dl, database_url):
    layer = DataLayer(settings_for(database_url, audit_reads=True))
    yield layer
    layer.close()


# --- who did it -------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [None, "", "  ", "unknown"])
def test_production_refuses_a_write_without_an_actor_and_writes_nothing(production_layer, actor):
    with pytest.raises(ValidationError) as raised, production_layer.unit_of_work(actor) as uow:
        uow.patients.create(**patient_fields())
    assert raised.value.field == "actor"
    with production_layer.unit_of_work("test") as uow:
        assert uow.patients.count() == 0
    assert audit_count(production_layer) == 0


def test_production_refuses_a_note_without_an_actor_before_it_is_stored(visit, production_layer):
    with pytest.raises(ValidationError) as raised, production_layer.unit_of_work() as uow:
        uow.clinical_notes.create(**visit.ids, content={"subjective": {"chief_complaint": "cough"}})
    assert raised.value.field == "actor"
    assert production_layer.documents.db["clinical_notes"].count_documents({}) == 0


def test_production_records_the_actor_it_is_given(production_layer):
    with production_layer.unit_of_work(actor="doctor-42") as uow:
        patient = uow.patients.create(**patient_fields())
    with production_layer.unit_of_work(actor="doctor-42") as uow:
        [event] = uow.audit.for_entity("patients", patient.id)
    assert event.actor == "doctor-42"


def test_outside_production_a_write_without_an_actor_is_recorded_as_unknown(dl):
    with dl.unit_of_work() as uow:
        patient = uow.patients.create(**patient_fields())
    with dl.unit_of_work() as uow:
        [event] = uow.audit.for_entity("patients", patient.id)
    assert event.actor == "unknown"


# --- append-only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [update(AuditEvent).values(actor="someone-else"), delete(AuditEvent)],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_or_remove_audit_events(dl, statement):
    create_patients(dl, 1)
    with pytest.raises(ImmutableRecordError), dl.unit_of_work(actor="test") as uow:
        uow.session.execute(statement)
    assert audit_count(dl) == 1


def test_the_database_refuses_to_truncate_audit_events(dl):
    create_patients(dl, 1)
    with (
        pytest.raises(InternalError, match="audit_events_append_only"),
        dl.engine.begin() as connection,
    ):
        connection.execute(text("TRUNCATE audit_events"))
    assert audit_count(dl) == 1


# --- chart reads ------------------------------------------------------------------------


def test_chart_reads_are_recorded_once_per_unit_of_work_when_enabled(reads_audited):
    with reads_audited.unit_of_work(actor="doctor-1") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    patient_id = encounter.patient_id
    with reads_audited.unit_of_work(actor="doctor-2", correlation_id="req-9") as uow:
        uow.patients.get(patient_id)
        uow.patients.get(patient_id)
        uow.encounters.for_patient(patient_id)
        uow.prescriptions.for_patient(patient_id)
    with reads_audited.unit_of_work(actor="test") as uow:
        reads = [e for e in uow.audit.for_entity("patients", patient_id) if e.action == "read"]
    assert [(e.actor, e.changed_fields, e.correlation_id) for e in reads] == [
        ("doctor-2", ["demographics"], "req-9"),
        ("doctor-2", ["encounters"], "req-9"),
        ("doctor-2", ["prescriptions"], "req-9"),
    ]
    assert reads_audited.verify_audit_chain().ok


def test_chart_reads_are_not_recorded_by_default(dl):
    [patient] = create_patients(dl, 1)
    with dl.unit_of_work(actor="doctor-2") as uow:
        uow.patients.get(patient.id)
        uow.encounters.for_patient(patient.id)
    assert audit_count(dl) == 1  # the create


def test_an_update_is_not_recorded_as_a_read(reads_audited):
    [patient] = create_patients(reads_audited, 1)
    with reads_audited.unit_of_work(actor="doctor-2") as uow:
        uow.patients.update(patient.id, allergies=["latex", "sulfa drugs"])
    with reads_audited.unit_of_work(actor="test") as uow:
        actions = [e.action for e in uow.audit.for_entity("patients", patient.id)]
    assert actions == ["create", "update"]


# --- erasure ----------------------------------------------------------------------------


def purge_target(dl: DataLayer) -> Patient:
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory(
            patient=PatientFactory(
                first_name="Lakshmi",
                mrn="MRN-ERASE-1",
                abha_id="91-4444-5555-6666",
                phone="+919844400001",
                email="lakshmi@example.in",
                address={"city": "Mysuru"},
            )
        )
    return encounter.patient


@pytest.mark.parametrize("reason", [None, "", "patient asked on the phone, 98444 00001"])
def test_erasure_without_a_reason_code_is_refused_and_changes_nothing(dl, reason):
    patient = purge_target(dl)
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="dpo") as uow:
        uow.patients.purge(patient.id, reason=reason)
    assert raised.value.field == "reason"
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.find_by_mrn("MRN-ERASE-1").id == patient.id
    assert audit_count(dl) == 3  # doctor, patient, encounter


def test_erasure_removes_identity_keeps_the_clinical_record_and_hides_the_patient(dl):
    patient = purge_target(dl)
    with dl.unit_of_work(actor="dpo") as uow:
        uow.patients.purge(patient.id, reason="dpdp_erasure_request")
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id) is None
        assert uow.patients.find_by_abha_id("91-4444-5555-6666") is None
        erased = uow.session.get(Patient, patient.id, execution_options={"include_deleted": True})
        assert uow.session.scalar(select(func.count()).select_from(Encounter)) == 1
    assert (erased.first_name, erased.last_name, erased.mrn, erased.abha_id) == (
        "erased",
        "erased",
        None,
        None,
    )
    assert (erased.phone, erased.email, erased.address) == (None, None, None)
    assert erased.date_of_birth.month == erased.date_of_birth.day == 1
    with dl.engine.connect() as connection:
        raw = json.dumps(
            [list(r) for r in connection.execute(text("SELECT * FROM patients"))], default=str
        )
    for value in ("Lakshmi", "MRN-ERASE-1", "Mysuru", "4444"):
        assert value not in raw


def test_erasure_is_audited_as_a_delete_with_its_reason_code(dl):
    patient = purge_target(dl)
    with dl.unit_of_work(actor="dpo", correlation_id="erase-1") as uow:
        uow.patients.purge(patient.id, reason="court_order")
    with dl.unit_of_work(actor="test") as uow:
        event = uow.audit.for_entity("patients", patient.id)[-1]
    assert (event.action, event.actor, event.reason) == ("delete", "dpo", "court_order")
    assert {"first_name", "abha_id", "phone"} <= set(event.changed_fields)
    assert dl.verify_audit_chain().ok


def test_a_soft_deleted_patient_can_still_be_erased(dl):
    patient = purge_target(dl)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.delete(patient.id)
    with dl.unit_of_work(actor="dpo") as uow:
        uow.patients.purge(patient.id, reason="dpdp_erasure_request")
    with dl.unit_of_work(actor="test") as uow:
        event = uow.audit.for_entity("patients", patient.id)[-1]
    assert (event.action, event.reason) == ("delete", "dpdp_erasure_request")


def test_erasing_an_unknown_patient_is_not_found(dl):
    with pytest.raises(NotFoundError), dl.unit_of_work(actor="dpo") as uow:
        uow.patients.purge("00000000-0000-0000-0000-000000000000", reason="court_order")
