"""Database refusals become the contract's errors, with no patient value in them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dr_assistant_data import (
    BackendUnavailableError,
    ConflictError,
    DataLayer,
    DuplicateError,
    SchemaNotMigratedError,
    Settings,
    ValidationError,
)
from dr_assistant_data.testing import (
    AppointmentFactory,
    DoctorFactory,
    PatientFactory,
    bind_factories,
)
from tests.helpers.layers import patient_fields, scratch_database, settings_for


def full_text(error: BaseException | None) -> str:
    """The text of the error and of every exception chained to it: what a logging framework
    prints of an exception besides source lines."""
    texts = []
    while error is not None:
        texts.append(f"{error!r} {error}")
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def test_a_taken_mrn_is_a_duplicate_naming_the_field_not_the_value(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        PatientFactory(mrn="MRN-424242")
    with pytest.raises(DuplicateError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-424242", first_name="Kavya"))
    assert raised.value.field == "mrn"
    assert "424242" not in full_text(raised.value)
    assert "Kavya" not in full_text(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None


def test_a_taken_abha_number_is_a_duplicate(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        PatientFactory(abha_id="91-2345-6789-0123")
    with pytest.raises(DuplicateError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(abha_id="91234567890123"))
    assert raised.value.field == "abha_id"
    assert "0123" not in full_text(raised.value)


def test_emails_are_unique_whatever_their_case(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        DoctorFactory(email="asha@clinic.in")
    with pytest.raises(DuplicateError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.users.create(
            username="asha2",
            email="ASHA@Clinic.IN",
            full_name="Dr Asha Rao",
            role="doctor",
            password_hash="x",
        )
    assert raised.value.field == "email"


def test_overlapping_live_appointments_of_a_doctor_conflict_in_the_database(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        first = AppointmentFactory()
    with (
        pytest.raises(ConflictError, match="overlapping") as raised,
        dl.unit_of_work(actor="test") as uow,
    ):
        uow.appointments.create(
            doctor_id=first.doctor_id,
            patient_id=first.patient_id,
            start_time=first.start_time + timedelta(minutes=10),
            end_time=first.end_time + timedelta(minutes=10),
        )
    assert not isinstance(raised.value, DuplicateError)


def test_back_to_back_and_cancelled_appointments_do_not_overlap(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        first = AppointmentFactory()
        AppointmentFactory(
            doctor=first.doctor,
            start_time=first.end_time,
            end_time=first.end_time + timedelta(minutes=15),
        )
        AppointmentFactory(
            doctor=first.doctor,
            start_time=first.start_time,
            end_time=first.end_time,
            status="cancelled",
        )
    with dl.unit_of_work(actor="test") as uow:
        assert uow.appointments.count(filters={"doctor_id": first.doctor_id}) == 3


def test_reviving_a_cancelled_appointment_into_a_taken_slot_conflicts(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        first = AppointmentFactory()
        cancelled = AppointmentFactory(
            doctor=first.doctor,
            start_time=first.start_time,
            end_time=first.end_time,
            status="cancelled",
        )
    with pytest.raises(ConflictError), dl.unit_of_work(actor="test") as uow:
        uow.appointments.update(cancelled.id, status="scheduled")


def test_a_reference_to_a_missing_row_names_the_field(dl):
    import uuid

    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory()
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.appointments.create(
            doctor_id=uuid.uuid4(),
            patient_id=patient.id,
            start_time="2031-01-06T09:00:00+00:00",
            end_time="2031-01-06T09:15:00+00:00",
        )
    assert raised.value.field == "doctor_id"


def test_after_a_database_refusal_the_unit_of_work_is_spent(dl):
    from dr_assistant_data import DataLayerError

    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        PatientFactory(mrn="MRN-1")
    with (
        pytest.raises(DataLayerError, match="start a new one"),
        dl.unit_of_work(actor="test") as uow,
    ):
        with pytest.raises(DuplicateError):
            uow.patients.create(**patient_fields(mrn="MRN-1"))
        uow.patients.count()


def test_a_postgresql_database_never_migrated_says_to_run_migrate():
    with (
        scratch_database() as url,
        DataLayer(settings_for(url)) as layer,
        pytest.raises(SchemaNotMigratedError) as raised,
        layer.unit_of_work(actor="test") as uow,
    ):
        uow.patients.get(uuid.uuid4())

    assert "run `dr-assistant-data migrate`" in str(raised.value)
    assert raised.value.__context__ is None


def test_an_sqlite_database_never_migrated_says_to_run_migrate(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with (
        DataLayer(settings_for(url)) as layer,
        pytest.raises(SchemaNotMigratedError),
        layer.unit_of_work(actor="test") as uow,
    ):
        uow.patients.get(uuid.uuid4())


def test_an_unreachable_mongodb_is_named_by_host_and_port():
    settings = Settings(mongodb_uri="mongodb://127.0.0.1:1/dr_assistant", mongodb_timeout_ms=200)
    with DataLayer(settings) as layer, pytest.raises(BackendUnavailableError) as raised:
        layer.documents.health()

    assert str(raised.value).startswith("mongodb: no server answered (127.0.0.1:1: ")
    assert raised.value.__context__ is None
