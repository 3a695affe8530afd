"""The caching policy (``relational/caching/policy.py``): one table says what is cached, where,
under which key, and which writes drop it; the store and the listeners follow it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from dr_assistant_data.cache.keys import LOCK_SUFFIX
from dr_assistant_data.cache.store import REGION_TTLS
from dr_assistant_data.relational.caching.policy import (
    PATIENTS,
    POLICY,
    SCHEDULES,
    USERS,
    entity_read,
    regions_by_kind,
)
from dr_assistant_data.relational.models import Patient, Task, User
from dr_assistant_data.session_context import context_of
from dr_assistant_data.testing import AppointmentFactory, DoctorFactory, bind_factories
from tests.helpers.cache_helpers import DAY, NINE_IN_KOLKATA, new_patient, read, read_patient
from tests.helpers.layers import patient_fields


def test_every_cached_read_lives_in_a_region_the_store_configures():
    assert {read.region for read in POLICY} <= set(REGION_TTLS)


def test_each_kind_of_key_belongs_to_one_read():
    kinds = [read.kind for read in POLICY]
    assert len(kinds) == len(set(kinds))


def test_get_is_cached_for_exactly_the_models_with_an_entity_entry():
    assert entity_read(Patient) is PATIENTS
    assert entity_read(User) is USERS
    assert entity_read(Task) is None


def test_the_store_counts_each_kind_of_key_in_its_entrys_region(dl):
    store = dl.cache_store
    assert store.kind_regions == regions_by_kind()
    patient = new_patient(dl)
    assert store.region_of(PATIENTS.name(store, patient.id)) == "entities"
    assert store.region_of(SCHEDULES.name(store, patient.id, DAY)) == "schedules"


def test_a_flushed_write_owes_the_keys_its_entry_names_before_and_after(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        asha, ravi = DoctorFactory(), DoctorFactory()
        appointment = AppointmentFactory(doctor=asha, start_time=NINE_IN_KOLKATA)
    with dl.unit_of_work(actor="test") as uow:
        moved = uow.appointments.get(appointment.id)
        moved.doctor_id = ravi.id
        moved.start_time += timedelta(days=1)
        moved.end_time += timedelta(days=1)
        uow.session.flush()
        store = dl.cache_store
        next_day = DAY + timedelta(days=1)
        assert context_of(uow.session).owed == {
            SCHEDULES.name(store, doctor, day)
            for doctor in (asha.id, ravi.id)
            for day in (DAY, next_day)
        }


def test_a_patient_edit_owes_only_the_patients_own_key(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, allergies=["penicillin"])
        uow.session.flush()
        assert context_of(uow.session).owed == {PATIENTS.name(dl.cache_store, patient.id)}


def test_a_created_patient_owes_no_key_of_its_own(dl):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
        uow.session.flush()
        assert context_of(uow.session).owed == set()


def test_a_patient_read_before_its_create_commits_is_read_after_the_commit(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
        assert read_patient(dl, patient.id) is None  # another unit: not committed yet
    assert read_patient(dl, patient.id).id == patient.id


def test_a_patient_flushed_with_its_allergies_and_read_before_the_commit_is_read_after(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields(allergies=["latex"]))
        assert read(dl, lambda other: other.patients.get_many([patient.id])) == []
    assert read_patient(dl, patient.id).allergies == ["latex"]


def test_an_id_without_a_row_is_not_cached(dl, count_queries):
    missing = uuid.uuid4()
    assert read_patient(dl, missing) is None
    assert read(dl, lambda uow: uow.patients.get_many([missing])) == []
    with count_queries() as queries:
        assert read_patient(dl, missing) is None
        assert read(dl, lambda uow: uow.patients.get_many([missing])) == []
    assert queries.count == 2  # each read loads again
    key = PATIENTS.name(dl.cache_store, missing)
    assert dl.cache_store.client.exists(key, key + LOCK_SUFFIX) == 0  # the claim released


def test_a_deleted_patient_is_not_cached(dl, count_queries):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.delete(patient.id)
    assert read_patient(dl, patient.id) is None
    with count_queries() as queries:
        assert read_patient(dl, patient.id) is None
    assert queries.count == 1
