"""Invalidation: every write through a unit of work drops what it affects, after commit only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing import (
    AlertFactory,
    AppointmentFactory,
    DoctorFactory,
    EncounterFactory,
    PatientFactory,
    bind_factories,
)
from tests.helpers.cache_helpers import DAY, NINE_IN_KOLKATA, new_patient, read, read_patient


class Boom(Exception):
    pass


def test_a_repository_update_is_seen_by_the_next_read(dl):
    patient = new_patient(dl)
    read_patient(dl, patient.id)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, allergies=["penicillin"])
    assert read_patient(dl, patient.id).allergies == ["penicillin"]


def test_a_plain_attribute_change_is_seen_by_the_next_read(dl):
    patient = new_patient(dl)
    read_patient(dl, patient.id)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id).phone = "+919811111111"
    assert read_patient(dl, patient.id).phone == "+919811111111"


def test_a_soft_delete_hides_the_cached_patient(dl):
    patient = new_patient(dl)
    read_patient(dl, patient.id)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.delete(patient.id)
    assert read_patient(dl, patient.id) is None


def test_a_factory_write_is_seen_by_the_next_read(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
    assert read(dl, lambda uow: uow.alerts.unread_count(doctor.id)) == 0
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        AlertFactory(user=uow.users.get(doctor.id))
    assert read(dl, lambda uow: uow.alerts.unread_count(doctor.id)) == 1


def test_invalidation_waits_for_the_commit(dl):
    """A reader between the writer's flush and commit reloads the old committed row; had
    the key been dropped at flush, that old row would be served after the commit."""
    patient = new_patient(dl)
    read_patient(dl, patient.id)
    with dl.unit_of_work(actor="writer") as writer:
        writer.patients.update(patient.id, last_name="Sharma")
        assert read_patient(dl, patient.id).last_name == "Rao"
    assert read_patient(dl, patient.id).last_name == "Sharma"


def test_a_rollback_drops_nothing(dl):
    patient = new_patient(dl)
    read_patient(dl, patient.id)
    before = dl.cache_stats()["entities"]["invalidation"]
    with pytest.raises(Boom), dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")
        raise Boom
    assert dl.cache_stats()["entities"]["invalidation"] == before
    assert read_patient(dl, patient.id).last_name == "Rao"


def test_a_unit_of_work_that_wrote_never_caches_its_uncommitted_data(dl):
    patient = new_patient(dl)
    with pytest.raises(Boom), dl.unit_of_work(actor="test") as uow:
        uow.session.execute(
            update(Patient).where(Patient.id == patient.id).values(last_name="Draft")
        )
        assert uow.patients.get(patient.id).last_name == "Draft"
        raise Boom
    assert read_patient(dl, patient.id).last_name == "Rao"


def test_a_unit_of_work_with_unflushed_changes_reads_past_the_cache(dl, count_queries):
    patient, other = new_patient(dl), new_patient(dl, first_name="Meera")
    read_patient(dl, other.id)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id).last_name = "Sharma"
        with count_queries() as queries:
            uow.patients.get(other.id)
    assert queries.count >= 1


def test_moving_an_appointment_refreshes_both_doctors_days(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        asha, ravi = DoctorFactory(), DoctorFactory()
        appointment = AppointmentFactory(doctor=asha, start_time=NINE_IN_KOLKATA)
    next_day = DAY + timedelta(days=1)
    days = [(asha.id, DAY), (ravi.id, next_day)]
    for doctor_id, day in days:
        read(dl, lambda uow, d=doctor_id, day=day: uow.appointments.schedule_for(d, day))
    with dl.unit_of_work(actor="test") as uow:
        moved = uow.appointments.get(appointment.id)
        moved.doctor_id = ravi.id
        moved.start_time += timedelta(days=1)
        moved.end_time += timedelta(days=1)
    schedules = [
        read(dl, lambda uow, d=doctor_id, day=day: uow.appointments.schedule_for(d, day))
        for doctor_id, day in days
    ]
    assert [[a.id for a in schedule] for schedule in schedules] == [[], [appointment.id]]


def test_a_new_encounter_refreshes_the_patients_timeline(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory()
    assert read(dl, lambda uow: uow.encounters.for_patient(patient.id)) == []
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        encounter = EncounterFactory(patient=uow.patients.get(patient.id))
    timeline = read(dl, lambda uow: uow.encounters.for_patient(patient.id))
    assert [e.id for e in timeline] == [encounter.id]


def test_a_renamed_patient_shows_in_a_cached_doctors_day(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        appointment = AppointmentFactory(doctor=doctor, start_time=NINE_IN_KOLKATA)
    read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY)[0].patient)
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.update(appointment.patient_id, last_name="Sharma")
    schedule = read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY))
    assert schedule[0].patient.last_name == "Sharma"


def test_reassigning_an_appointment_through_its_relation_refreshes_the_old_doctors_day(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        asha, ravi = DoctorFactory(), DoctorFactory()
        appointment = AppointmentFactory(doctor=asha, start_time=NINE_IN_KOLKATA)
    read(dl, lambda uow: uow.appointments.schedule_for(asha.id, DAY))
    with dl.unit_of_work(actor="test") as uow:
        uow.appointments.get(appointment.id).doctor = uow.users.get(ravi.id)
    assert read(dl, lambda uow: uow.appointments.schedule_for(asha.id, DAY)) == []
