"""A create is one INSERT compiled once (``repositories/inserted.py``), not a flush: the
same validation, audit event, outbox row, defaults and version, and an entity that behaves
as one the flush inserted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from dr_assistant_data import DuplicateError, ValidationError
from dr_assistant_data.testing import DoctorFactory, PatientFactory, bind_factories
from dr_assistant_data.testing.factories import clinic_day_start
from tests.helpers.layers import patient_fields

XID_BITS = 0xFFFFFFFF
"""``pg_current_xact_id()`` (the audit event's ``xid``) wraps to a row's ``xmin`` here."""


def _scalar(dl, sql: str, **params: object) -> object:
    with dl.engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def _stored_count(dl, table: str) -> int:
    return int(_scalar(dl, f"SELECT count(*) FROM {table}"))  # a table name of the test's own


def test_the_insert_its_audit_event_and_its_outbox_row_commit_in_one_transaction(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor, patient = DoctorFactory(), PatientFactory()
    start = clinic_day_start() + timedelta(hours=2)
    with dl.unit_of_work(actor="test") as uow:
        appointment = uow.appointments.create(
            doctor_id=doctor.id,
            patient_id=patient.id,
            start_time=start,
            end_time=start + timedelta(minutes=15),
        )
    row_xid = _scalar(
        dl, "SELECT xmin::text::bigint FROM appointments WHERE id = :id", id=appointment.id
    )
    event_xid = _scalar(
        dl, "SELECT xid FROM audit_events WHERE entity_id = :id", id=str(appointment.id)
    )
    outbox_rows = _scalar(  # the doctor's day is owed: the outbox row names it
        dl,
        "SELECT count(*) FROM cache_invalidations WHERE xmin::text::bigint = :xid"
        " AND keys::text LIKE :doctor",
        xid=row_xid,
        doctor=f"%{doctor.id}%",
    )
    assert int(event_xid) & XID_BITS == row_xid
    assert outbox_rows == 1


def test_a_create_refused_by_validation_sends_no_sql_and_its_unit_writes_nothing(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow:
        with count_queries() as log, pytest.raises(ValidationError) as refused:
            uow.patients.create(**patient_fields(gender="unknown"))
        assert not uow.session.identity_map
    assert refused.value.field == "gender"
    assert log.count == 0
    assert _stored_count(dl, "patients") == 0
    assert _stored_count(dl, "audit_events") == 0


def test_a_create_refused_by_the_database_raises_from_the_call_and_its_unit_writes_nothing(dl):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-1001"))
    with pytest.raises(DuplicateError), dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(first_name="Other"))
        try:
            uow.patients.create(**patient_fields(mrn="MRN-1001"))
        except DuplicateError:
            raised_by_the_call = True
            raise
    assert raised_by_the_call
    assert _stored_count(dl, "patients") == 1
    assert _stored_count(dl, "audit_events") == 1


def test_an_edit_after_a_create_in_the_same_unit_is_saved_version_checked_and_audited(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields(address={"city": "Pune"}))
        patient.first_name = "Meera"
        patient.address["city"] = "Mumbai"  # in place: tracked as on a loaded entity
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.patients.get(patient.id)
        assert (saved.first_name, saved.address, saved.version) == ("Meera", {"city": "Mumbai"}, 2)
        events = uow.audit.for_entity("patients", patient.id)
    created = ["address", "allergies", "date_of_birth", "first_name", "gender", "id", "last_name"]
    assert [(event.action, event.changed_fields) for event in events] == [
        ("create", [*created, "status"]),
        ("update", ["address", "first_name"]),
    ]


def test_a_create_then_a_get_in_the_same_unit_returns_the_same_object_without_a_query(
    dl, count_queries
):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
        with count_queries() as log:
            found = uow.patients.get(patient.id)
            listed = uow.patients.list(filters={"gender": "female"})
    assert found is patient
    assert listed == [patient]  # a query in the unit sees the row, as the same object
    assert log.count == 1  # the list's query; the get sends none


def test_a_created_entity_holds_its_defaults_and_version_as_stored(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields(phone="+91 98000 00001"))
        held = (patient.version, patient.status, patient.allergies, patient.phone)
        assert held == (1, "active", [], "+919800000001")
        assert patient.created_at is not None
        assert patient.updated_at is not None
    with dl.unit_of_work(actor="test") as uow:
        stored = uow.session.execute(
            text("SELECT version, status, created_at FROM patients WHERE id = :id"),
            {"id": patient.id},
        ).one()
        assert tuple(stored) == (1, "active", patient.created_at)
        assert uow.patients.find_by_phone("+919800000001") == [uow.patients.get(patient.id)]


def test_a_rolled_back_create_leaves_nothing_written_and_its_entity_readable_and_transient(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
        uow.rollback()
        assert inspect(patient).transient
        assert patient.first_name == "Ananya"
        assert uow.patients.get(patient.id) is None
    assert _stored_count(dl, "patients") == 0
    assert _stored_count(dl, "audit_events") == 0


def test_a_created_patient_looks_up_no_doctors_day_it_could_not_be_on(dl, count_queries):
    """A patient write drops the cached days the patient is booked on (found by a query);
    a patient just inserted is on none, so its create and commit send its INSERT and the
    commit alone."""
    with count_queries() as log, dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
    assert [s for s in log.statements if "appointments" in s] == []


def test_a_plain_patient_create_sends_its_insert_with_its_commit(dl, count_queries):
    """No unique, exclusion or foreign key column set: nothing another row could refuse
    it for, so its INSERT goes with the COMMIT (``round_trips.deferred``), which the query
    counter, counting the statements the engine executes, does not see."""
    with count_queries() as log, dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
    assert log.count == 0
    assert _scalar(dl, "SELECT first_name FROM patients WHERE id = :id", id=patient.id) == "Ananya"
    assert _stored_count(dl, "audit_events") == 1


def test_statements_after_a_create_in_its_unit_see_its_row(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
        assert uow.patients.count() == 1
        assert [found.id for found in uow.patients.search_by_name("Ananya")] == [patient.id]
        by_sql = text("SELECT last_name FROM patients WHERE id = :id")
        assert uow.session.execute(by_sql, {"id": patient.id}).scalar() == "Rao"
    assert _stored_count(dl, "patients") == 1


def test_a_row_referring_to_a_created_patient_is_written_in_the_same_unit(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
    start = clinic_day_start() + timedelta(hours=3)
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
        uow.appointments.create(
            doctor_id=doctor.id,
            patient_id=patient.id,
            start_time=start,
            end_time=start + timedelta(minutes=15),
        )
    assert _stored_count(dl, "appointments") == 1


def test_a_create_then_a_bulk_create_in_the_same_unit_commit_together(dl):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
        result = uow.patients.create_many([patient_fields(first_name=f"P{n}") for n in range(3)])
        assert len(result.created) == 3
        assert uow.patients.count() == 4
    assert _stored_count(dl, "patients") == 4


def test_creates_in_a_unit_that_rolls_back_leave_nothing(dl):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
        uow.rollback()
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
        uow.patients.create(**patient_fields(first_name="Meera"))
        uow.rollback()
    assert _stored_count(dl, "patients") == 0


@pytest.fixture
def no_zed(dl):
    """A rule only the database holds: no patient named Zed."""
    with dl.engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE patients ADD CONSTRAINT no_zed CHECK (first_name <> 'Zed')")
        )
    yield
    with dl.engine.begin() as connection:
        connection.execute(text("ALTER TABLE patients DROP CONSTRAINT no_zed"))


def test_a_create_refused_at_its_commit_raises_the_contracts_error_and_commits_nothing(dl, no_zed):
    with pytest.raises(ValidationError), dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
        uow.patients.create(**patient_fields(first_name="Zed"))
    assert _stored_count(dl, "patients") == 0
    assert _stored_count(dl, "audit_events") == 0


def test_a_create_refused_before_the_next_statement_raises_the_contracts_error_from_it(dl, no_zed):
    with pytest.raises(ValidationError), dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(first_name="Zed"))
        try:
            uow.patients.count()
        except ValidationError:
            raised_by_the_count = True
            raise
    assert raised_by_the_count
    assert _stored_count(dl, "patients") == 0
