"""The contract's CRUD methods, on every relational repository."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from dr_assistant_data import ConflictError, NotFoundError, ValidationError
from dr_assistant_data.testing import (
    AlertFactory,
    AppointmentFactory,
    DoctorFactory,
    EncounterFactory,
    OrderFactory,
    PatientFactory,
    PrescriptionFactory,
    TaskFactory,
    UserFactory,
    bind_factories,
)
from tests.helpers.layers import patient_fields

# repository name -> (factory, a field to update, a valid new value)
REPOSITORIES = {
    "users": (UserFactory, "full_name", "Dr Meera Iyer"),
    "patients": (PatientFactory, "blood_group", "AB-"),
    "appointments": (AppointmentFactory, "status", "confirmed"),
    "encounters": (EncounterFactory, "chief_complaint", "Cough"),
    "prescriptions": (PrescriptionFactory, "notes", "After food"),
    "orders": (OrderFactory, "status", "ordered"),
    "tasks": (TaskFactory, "priority", "urgent"),
    "alerts": (AlertFactory, "is_read", True),
}
SOFT_DELETED = {"users", "patients"}


@pytest.fixture(params=sorted(REPOSITORIES))
def repo_case(request, dl):
    name = request.param
    factory, field, value = REPOSITORIES[name]
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        ids = [factory().id for _ in range(3)]
    return name, ids, field, value


def test_get_returns_the_entity_or_none(dl, repo_case):
    name, ids, _, _ = repo_case
    with dl.unit_of_work(actor="test") as uow:
        repo = getattr(uow, name)
        assert repo.get(ids[0]).id == ids[0]
        assert repo.get(str(ids[0])).id == ids[0]
        assert repo.get(uuid.uuid4()) is None


def test_get_many_keeps_the_order_asked_for_and_skips_unknown_ids(dl, repo_case):
    name, ids, _, _ = repo_case
    wanted = [ids[2], uuid.uuid4(), ids[0]]
    with dl.unit_of_work(actor="test") as uow:
        assert [row.id for row in getattr(uow, name).get_many(wanted)] == [ids[2], ids[0]]


def test_update_applies_fields_and_bumps_the_version(dl, repo_case):
    name, ids, field, value = repo_case
    with dl.unit_of_work(actor="test") as uow:
        repo = getattr(uow, name)
        before = repo.get(ids[0])
        version = getattr(before, "version", None)
        updated = repo.update(ids[0], **{field: value})
        assert getattr(updated, field) == value
    with dl.unit_of_work(actor="test") as uow:
        saved = getattr(uow, name).get(ids[0])
        assert getattr(saved, field) == value
        if version is not None:
            assert saved.version == version + 1


def test_delete_removes_from_every_read(dl, repo_case):
    name, ids, _, _ = repo_case
    with dl.unit_of_work(actor="test") as uow:
        repo = getattr(uow, name)
        before = repo.count()
        repo.delete(ids[0])
        assert repo.get(ids[0]) is None
    with dl.unit_of_work(actor="test") as uow:
        repo = getattr(uow, name)
        assert repo.get(ids[0]) is None
        assert repo.count() == before - 1
        assert ids[0] not in [row.id for row in repo.list(limit=500)]
        assert [row.id for row in repo.get_many([ids[0], ids[1]])] == [ids[1]]


def test_list_pages_with_a_total_order(dl, repo_case):
    name, ids, _, _ = repo_case
    with dl.unit_of_work(actor="test") as uow:
        repo = getattr(uow, name)
        everything = [row.id for row in repo.list(order_by="created_at", limit=500)]
        first = [row.id for row in repo.list(order_by="created_at", limit=2)]
        rest = [row.id for row in repo.list(order_by="created_at", limit=500, offset=2)]
    assert first + rest == everything
    assert set(ids) <= set(everything)


def test_update_and_delete_of_an_unknown_id_are_not_found(dl, repo_case):
    name, _, field, value = repo_case
    with dl.unit_of_work(actor="test") as uow:
        repo = getattr(uow, name)
        with pytest.raises(NotFoundError):
            repo.update(uuid.uuid4(), **{field: value})
        with pytest.raises(NotFoundError):
            repo.delete(uuid.uuid4())


def test_soft_deleted_patients_are_kept_but_hidden(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory(mrn="MRN-KEEP")
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.delete(patient.id)
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.find_by_mrn("MRN-KEEP") is None
        assert uow.patients.list(filters={"mrn": "MRN-KEEP"}) == []
        from sqlalchemy import select

        from dr_assistant_data.relational.models import Patient

        kept = uow.session.scalars(
            select(Patient).where(Patient.id == patient.id).execution_options(include_deleted=True)
        ).one()
        assert kept.deleted_at is not None


def test_soft_deleted_users_cannot_log_in_but_keep_their_history(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        appointment = AppointmentFactory()
        doctor = appointment.doctor
    with dl.unit_of_work(actor="test") as uow:
        uow.users.delete(doctor.id)
    with dl.unit_of_work(actor="test") as uow:
        assert uow.users.get(doctor.id) is None
        assert uow.users.get_by_username(doctor.username) is None
        assert uow.appointments.get(appointment.id).doctor_id == doctor.id


def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory()
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, expected_version=1, blood_group="B-")
    with pytest.raises(ConflictError), dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, expected_version=1, blood_group="O-")
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.patients.get(patient.id)
        assert (saved.blood_group, saved.version) == ("B-", 2)


def test_prescription_items_are_created_ordered_and_replaced_with_their_prescription(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory()
    items = [
        {"medication_name": "Paracetamol", "dosage": "500 mg", "frequency": "TID"},
        {"medication_name": "Cetirizine", "dosage": "10 mg", "frequency": "OD", "refills": 1},
    ]
    with dl.unit_of_work(actor="test") as uow:
        prescription = uow.prescriptions.create(
            encounter_id=encounter.id,
            patient_id=encounter.patient_id,
            doctor_id=encounter.doctor_id,
            items=items,
        )
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.prescriptions.get(prescription.id)
        assert [item.medication_name for item in saved.items] == ["Paracetamol", "Cetirizine"]
        assert [item.position for item in saved.items] == [0, 1]
        uow.prescriptions.update(prescription.id, items=[items[1]])
    with dl.unit_of_work(actor="test") as uow:
        assert [i.medication_name for i in uow.prescriptions.get(prescription.id).items] == [
            "Cetirizine"
        ]
        uow.prescriptions.delete(prescription.id)
    with dl.unit_of_work(actor="test") as uow:
        from sqlalchemy import func, select

        from dr_assistant_data.relational.models import PrescriptionItem

        assert uow.session.scalar(select(func.count()).select_from(PrescriptionItem)) == 0


def test_list_filters_by_value_list_and_null(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        for status in ("scheduled", "confirmed", "completed"):
            AppointmentFactory(doctor=doctor, status=status)
    with dl.unit_of_work(actor="test") as uow:
        repo = uow.appointments
        live = repo.list(filters={"doctor_id": doctor.id, "status": ["scheduled", "confirmed"]})
        assert sorted(a.status for a in live) == ["confirmed", "scheduled"]
        assert repo.count(filters={"doctor_id": str(doctor.id)}) == 3
        assert repo.count(filters={"created_by": None}) == 3


def test_list_orders_descending_with_a_minus(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        for year in (1950, 1990, 1970):
            PatientFactory(date_of_birth=date(year, 1, 1))
    with dl.unit_of_work(actor="test") as uow:
        years = [p.date_of_birth.year for p in uow.patients.list(order_by="-date_of_birth")]
    assert years == [1990, 1970, 1950]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"filters": {"first_name": "Ravi"}}, "first_name"),
        ({"filters": {"status = 'active' OR 1=1 --": "x"}}, "filters"),
        ({"filters": {"status": "active'; DROP TABLE patients; --"}}, "status"),
        ({"filters": {"date_of_birth": "yesterday"}}, "date_of_birth"),
        ({"filters": [("status", "active")]}, "filters"),
        ({"order_by": "password_hash"}, "order_by"),
        ({"order_by": "last_name; DROP TABLE patients"}, "order_by"),
        ({"order_by": ["-last_name", 3]}, "order_by"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_list_refuses_what_it_does_not_allow_before_any_sql(dl, count_queries, kwargs, field):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.count()  # the connection is open; only the list call is counted
        with count_queries() as queries, pytest.raises(ValidationError) as raised:
            uow.patients.list(**kwargs)
    assert raised.value.field == field
    assert queries.count == 0


def test_create_refuses_unknown_and_layer_maintained_fields(dl):
    with dl.unit_of_work(actor="test") as uow:
        for field, named in [
            ("is_vip", "fields"),
            ("id", "id"),
            ("version", "version"),
            ("deleted_at", "deleted_at"),
            ("created_at", "created_at"),
        ]:
            with pytest.raises(ValidationError) as raised:
                uow.patients.create(**patient_fields(**{field: 1}))
            assert raised.value.field == named


def test_get_with_a_malformed_id_is_a_validation_error(dl):
    with dl.unit_of_work(actor="test") as uow:
        with pytest.raises(ValidationError) as raised:
            uow.patients.get("1 OR 1=1")
        assert raised.value.field == "id"


def test_timestamps_are_maintained_by_the_layer(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        task = TaskFactory()
    created = task.created_at
    with dl.unit_of_work(actor="test") as uow:
        updated = uow.tasks.update(task.id, status="completed", completed_at=datetime.now(UTC))
    assert updated.created_at == created
    assert updated.updated_at > created
    assert created.utcoffset() == timedelta(0)
