"""Reads by id (``relational/repositories/by_id.py``): one compiled SELECT, the row made a
session-attached entity without ``Session.get``; what a caller can do with the entity is
what it could do with any loaded one."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text, update

from dr_assistant_data import ConflictError, DataLayer
from dr_assistant_data.commit import Participants, session_factory
from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing import AlertFactory, AppointmentFactory, bind_factories
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.unit_of_work import UnitOfWork
from tests.helpers.layers import patient_fields, settings_for

Units = Callable[[], UnitOfWork]


@pytest.fixture
def uncached(dl: DataLayer) -> Units:
    """Units of work with the layer's rules and no cache: every get reads the database."""
    factory = session_factory(dl.engine, Participants())
    zone = ZoneInfo(dl.settings.clinic_timezone)
    return lambda: UnitOfWork(factory, dl.documents, dl.engine, actor="test", clinic_timezone=zone)


@pytest.fixture
def patient_id(dl: DataLayer) -> uuid.UUID:
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(
            **patient_fields(phone="+919800000001", address={"city": "Pune"}, allergies=["latex"])
        )
    return patient.id


def test_a_get_is_one_statement_and_leaves_the_unit_without_a_transaction(uncached, patient_id, dl):
    with counting_queries(dl.engine) as log, uncached() as uow:
        assert uow.patients.get(patient_id).id == patient_id
        assert not uow.session.in_transaction()
    assert len(log.statements) == 1
    assert log.statements[0].startswith("SELECT")


def test_encrypted_columns_of_a_read_entity_are_decrypted(uncached, patient_id):
    with uncached() as uow:
        assert uow.patients.get(patient_id).phone == "+919800000001"


def test_an_edit_to_a_read_entity_is_saved_and_audited(uncached, patient_id):
    with uncached() as uow:
        uow.patients.get(patient_id).first_name = "Meera"
    with uncached() as uow:
        patient = uow.patients.get(patient_id)
        assert (patient.first_name, patient.version) == ("Meera", 2)
        [edit] = [e for e in uow.audit.for_entity("patients", patient_id) if e.action == "update"]
        assert "first_name" in edit.changed_fields


def test_an_in_place_edit_of_a_json_column_of_a_read_entity_is_saved(uncached, patient_id):
    with uncached() as uow:
        patient = uow.patients.get(patient_id)
        patient.address["city"] = "Mumbai"
        patient.allergies.append("penicillin")
    with uncached() as uow:
        patient = uow.patients.get(patient_id)
        assert patient.address == {"city": "Mumbai"}
        assert patient.allergies == ["latex", "penicillin"]


def test_an_edit_to_a_read_entity_changed_meanwhile_is_a_conflict(uncached, patient_id):
    with pytest.raises(ConflictError), uncached() as uow:
        patient = uow.patients.get(patient_id)
        with uncached() as other:
            other.patients.update(patient_id, first_name="Kavya")
        patient.first_name = "Meera"
    with uncached() as uow:
        assert uow.patients.get(patient_id).first_name == "Kavya"


def test_a_read_after_a_write_in_the_same_unit_returns_the_written_object(uncached, patient_id):
    with uncached() as uow:
        written = uow.patients.update(patient_id, first_name="Meera")
        assert uow.patients.get(patient_id) is written
        created = uow.patients.create(**patient_fields(first_name="Isha"))
        assert uow.patients.get(created.id) is created


def test_a_read_in_a_unit_that_has_written_sees_its_uncommitted_rows(uncached, patient_id):
    with uncached() as uow:
        uow.session.execute(update(Patient).where(Patient.id == patient_id).values(mrn="MRN-7"))
        assert uow.patients.get(patient_id).mrn == "MRN-7"
        uow.rollback()


def test_two_reads_of_one_id_in_a_unit_are_one_object(uncached, patient_id):
    with uncached() as uow:
        assert uow.patients.get(patient_id) is uow.patients.get(patient_id)


def test_a_read_entity_can_be_deleted(uncached, patient_id, dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        alert_id = AlertFactory().id
    with uncached() as uow:
        assert uow.alerts.get(alert_id) is not None
        uow.alerts.delete(alert_id)
        assert uow.patients.get(patient_id) is not None
        uow.patients.delete(patient_id)
    with uncached() as uow:
        assert uow.alerts.get(alert_id) is None
        assert uow.patients.get(patient_id) is None


def test_a_read_entity_loads_its_relationships(uncached, dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        appointment = AppointmentFactory(
            start_time=datetime(2030, 6, 3, 4, tzinfo=UTC),
            end_time=datetime(2030, 6, 3, 4, tzinfo=UTC) + timedelta(minutes=15),
        )
        expected = (appointment.patient.last_name, appointment.doctor.full_name)
    with uncached() as uow:
        read = uow.appointments.get(appointment.id)
        assert (read.patient.last_name, read.doctor.full_name) == expected


def test_committing_an_edit_to_a_read_entity_drops_its_cached_value(dl, patient_id):
    with dl.unit_of_work(actor="test") as uow:
        read = uow.patients.get(patient_id)  # a miss: read from the database and cached
        read.first_name = "Meera"
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient_id).first_name == "Meera"


def test_a_slow_read_by_id_is_logged_with_its_units_correlation_id(dl, patient_id, caplog):
    slow = settings_for(dl.settings.database_url, db_slow_query_ms=100)
    with DataLayer(slow) as layer, dl.engine.connect() as locker:
        locker.execute(text("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE"))
        threading.Timer(0.3, locker.rollback).start()  # the read waits for the lock
        with caplog.at_level(logging.DEBUG), layer.unit_of_work(actor="test") as uow:
            assert uow.patients.get(patient_id) is not None
    [entry] = [
        record.query  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage().startswith("slow query")
    ]
    assert entry["correlation_id"] == uow.correlation_id
