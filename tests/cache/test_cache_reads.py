"""Cached reads: a hit runs no SQL and yields entities that behave like loaded ones."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import inspect

from dr_assistant_data.testing import (
    AlertFactory,
    AppointmentFactory,
    DoctorFactory,
    EncounterFactory,
    PatientFactory,
    bind_factories,
)
from tests.helpers.cache_helpers import DAY, NINE_IN_KOLKATA, new_patient, read


def test_a_cached_patient_read_runs_no_sql(dl, count_queries):
    patient = new_patient(dl, allergies=["latex"])
    read(dl, lambda uow: uow.patients.get(patient.id))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        cached = uow.patients.get(patient.id)
        assert inspect(cached).persistent
    assert queries.count == 0
    assert (cached.first_name, cached.allergies, cached.version) == ("Ananya", ["latex"], 1)
    assert cached.date_of_birth == date(1992, 3, 14)
    assert cached.created_at == patient.created_at


def test_a_cached_patient_is_edited_and_saved_on_commit_like_a_loaded_one(dl):
    patient = new_patient(dl)
    read(dl, lambda uow: uow.patients.get(patient.id))
    with dl.unit_of_work(actor="test") as uow:
        cached = uow.patients.get(patient.id)
        cached.allergies.append("penicillin")
        cached.last_name = "Sharma"
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.patients.get(patient.id)
    assert (saved.allergies, saved.last_name, saved.version) == (["penicillin"], "Sharma", 2)


def test_get_many_reads_every_cached_patient_in_one_round_trip_and_no_sql(dl, count_queries):
    first, second = new_patient(dl), new_patient(dl, first_name="Meera")
    read(dl, lambda uow: uow.patients.get_many([first.id, second.id]))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        found = uow.patients.get_many([second.id, first.id])
    assert queries.count == 0
    assert [p.first_name for p in found] == ["Meera", "Ananya"]


def test_get_many_loads_only_the_misses_in_one_query(dl, count_queries):
    cached, cold = new_patient(dl), new_patient(dl, first_name="Meera")
    read(dl, lambda uow: uow.patients.get(cached.id))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        found = uow.patients.get_many([cold.id, cached.id])
    assert queries.count == 1
    assert [p.id for p in found] == [cold.id, cached.id]


def test_a_cached_user_read_runs_no_sql(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
    read(dl, lambda uow: uow.users.get(doctor.id))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        assert uow.users.get(doctor.id).username == doctor.username
    assert queries.count == 0


def test_a_cached_doctors_day_runs_no_sql_and_has_its_patients(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        booked = [
            AppointmentFactory(doctor=doctor, start_time=NINE_IN_KOLKATA + timedelta(hours=n))
            for n in range(3)
        ]
    read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        schedule = uow.appointments.schedule_for(doctor.id, DAY)
        patients = [appointment.patient.id for appointment in schedule]
    assert queries.count == 0
    assert [a.id for a in schedule] == [a.id for a in booked]
    assert patients == [a.patient_id for a in booked]


def test_a_cached_timeline_runs_no_sql_and_has_its_doctors(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient, doctor = PatientFactory(), DoctorFactory()
        for n in range(3):
            EncounterFactory(
                patient=patient, doctor=doctor, start_time=NINE_IN_KOLKATA + timedelta(days=n)
            )
    read(dl, lambda uow: uow.encounters.for_patient(patient.id))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        timeline = uow.encounters.for_patient(patient.id, limit=2, offset=1)
        doctors = {encounter.doctor.full_name for encounter in timeline}
    assert queries.count == 0
    assert [e.start_time for e in timeline] == [NINE_IN_KOLKATA + timedelta(days=n) for n in (1, 0)]
    assert doctors == {doctor.full_name}


def test_a_cached_unread_count_runs_no_sql(dl, count_queries):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        AlertFactory.create_batch(2, user=doctor)
    assert read(dl, lambda uow: uow.alerts.unread_count(doctor.id)) == 2
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        assert uow.alerts.unread_count(doctor.id) == 2
    assert queries.count == 0


def test_hits_misses_and_loads_are_counted_per_region(dl):
    patient = new_patient(dl)
    before = dl.cache_stats().get("entities", {"hit": 0, "miss": 0, "load": 0})
    read(dl, lambda uow: uow.patients.get(patient.id))
    read(dl, lambda uow: uow.patients.get(patient.id))
    after = dl.cache_stats()["entities"]
    assert after["miss"] - before["miss"] == 1
    assert after["load"] - before["load"] == 1
    assert after["hit"] - before["hit"] == 1
    assert dl.health()["redis"]["regions"]["entities"]["hit"] >= 1


def test_a_row_holding_an_integer_beyond_64_bits_reads_back_exactly_and_is_not_cached(dl):
    huge = 2**70 + 1  # JSON allows it; the cache's encoding does not carry it exactly
    patient = new_patient(dl, address={"city": "Pune", "ward": huge})
    hits_before = dl.cache_stats()["entities"]["hit"]
    for _ in range(2):
        assert read(dl, lambda uow: uow.patients.get(patient.id).address["ward"]) == huge
    assert dl.cache_stats()["entities"]["hit"] == hits_before
