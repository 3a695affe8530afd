"""The doctor's day is one cache entry, its appointments and their patients: one GET, one
open and one parse when cached, dropped by every commit that changes an appointment of the
day or one of its patients, in whichever process."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
import redis

from dr_assistant_data.cache.sealing import CacheSealer
from dr_assistant_data.relational.caching.policy import SCHEDULES
from dr_assistant_data.testing import AppointmentFactory, DoctorFactory, bind_factories
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.testing.servers.ports import eventually
from tests.helpers.cache_helpers import DAY, NINE_IN_KOLKATA, read, read_patient
from tests.helpers.layers import CACHE_PREFIX
from tests.helpers.process_steps import in_process, rename


def heard(dl):
    """Wait until the layer hears other processes' invalidations: until then (its listener
    reconnecting, say) it reads past the shared cache."""
    dl.engine  # noqa: B018 - starts the outbox listener
    eventually(dl._outbox.ready, "the layer to hear other processes' invalidations")


def booked_day(dl, appointments=2):
    heard(dl)
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        booked = [
            AppointmentFactory(doctor=doctor, start_time=NINE_IN_KOLKATA + timedelta(hours=n))
            for n in range(appointments)
        ]
    return doctor, booked


def day_of(dl, doctor):
    return read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY))


def names_on(dl, doctor):
    return [a.patient.last_name for a in day_of(dl, doctor)]


def day_key(dl, doctor) -> str:
    return SCHEDULES.name(dl.cache_store, doctor.id, DAY)


@pytest.fixture
def decodes(monkeypatch):
    """The AES-GCM opens and JSON parses of cached values, counted."""
    counts = {"open": 0, "parse": 0}
    open_value, parse = CacheSealer.open, orjson.loads

    def counted_open(self, key, stored):
        counts["open"] += 1
        return open_value(self, key, stored)

    def counted_parse(payload):
        counts["parse"] += 1
        return parse(payload)

    monkeypatch.setattr(CacheSealer, "open", counted_open)
    monkeypatch.setattr(orjson, "loads", counted_parse)
    return counts


def test_a_cached_day_reads_its_appointments_and_their_patients_from_one_entry(dl, decodes):
    doctor, _ = booked_day(dl, appointments=3)
    day_of(dl, doctor)
    heard(dl)
    day_of(dl, doctor)
    before = dl.cache_stats()
    decodes.update(open=0, parse=0)
    with counting_queries(dl.engine) as queries:
        names = [a.patient.last_name for a in day_of(dl, doctor)]
    assert queries.count == 0
    assert len(names) == 3
    after = dl.cache_stats()
    assert after["schedules"]["hit"] - before["schedules"]["hit"] == 1
    assert after.get("entities", {}).get("hit", 0) == before.get("entities", {}).get("hit", 0)
    assert decodes == {"open": 1, "parse": 1}


def test_a_cached_patient_is_opened_and_parsed_once(dl, decodes):
    _doctor, booked = booked_day(dl, appointments=1)
    read_patient(dl, booked[0].patient_id)
    decodes.update(open=0, parse=0)
    assert read_patient(dl, booked[0].patient_id) is not None
    assert decodes == {"open": 1, "parse": 1}


def test_changing_one_appointment_of_a_cached_day_shows_in_it(dl):
    doctor, booked = booked_day(dl)
    day_of(dl, doctor)
    with dl.unit_of_work(actor="test") as uow:
        uow.appointments.get(booked[1].id).reason = "Fever since Monday"
    assert [a.reason for a in day_of(dl, doctor)][1] == "Fever since Monday"


def test_an_appointment_added_to_a_cached_day_shows_in_it(dl):
    doctor, booked = booked_day(dl)
    day_of(dl, doctor)
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        added = AppointmentFactory(
            doctor=uow.users.get(doctor.id), start_time=NINE_IN_KOLKATA + timedelta(hours=5)
        )
    assert [a.id for a in day_of(dl, doctor)] == [*(a.id for a in booked), added.id]


def test_a_patient_edited_in_another_process_shows_in_every_cached_day_they_are_on(dl):
    doctor, booked = booked_day(dl)
    patient_id = booked[0].patient_id
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        other = DoctorFactory()  # the same patient, another doctor, the next day
        AppointmentFactory(
            doctor=other,
            patient=uow.patients.get(patient_id),
            start_time=NINE_IN_KOLKATA + timedelta(days=1),
        )
    next_day = read(dl, lambda uow: uow.appointments.schedule_for(other.id, DAY + timedelta(1)))
    assert names_on(dl, doctor)[0] == next_day[0].patient.last_name != "Sharma"
    in_process(
        rename, dl.settings.database_url, {"cache_prefix": CACHE_PREFIX}, patient_id, "Sharma"
    )
    assert names_on(dl, doctor)[0] == "Sharma"
    assert (
        read(
            dl, lambda uow: uow.appointments.schedule_for(other.id, DAY + timedelta(1))[0].patient
        ).last_name
        == "Sharma"
    )


def test_a_patient_booked_onto_a_day_while_their_edit_commits_shows_edited_in_it(dl):
    doctor, _booked = booked_day(dl, appointments=1)
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = AppointmentFactory(start_time=NINE_IN_KOLKATA + timedelta(days=2)).patient
    with dl.unit_of_work(actor="test") as editing:
        editing.patients.get(patient.id).last_name = "Sharma"
        editing.session.flush()  # its days are looked up: not yet on the doctor's day
        with dl.unit_of_work(actor="test") as booking:
            booking.appointments.create(
                doctor_id=doctor.id,
                patient_id=patient.id,
                start_time=NINE_IN_KOLKATA + timedelta(hours=3),
                end_time=NINE_IN_KOLKATA + timedelta(hours=3, minutes=15),
            )
        assert names_on(dl, doctor)[1] != "Sharma"  # cached before the edit commits
    assert names_on(dl, doctor)[1] == "Sharma"


def test_a_tampered_day_entry_is_refused_and_the_day_read_from_the_database(dl):
    doctor, _booked = booked_day(dl)
    expected = names_on(dl, doctor)
    client = redis.Redis.from_url(dl.settings.redis_url)
    try:
        key = day_key(dl, doctor)
        sealed = bytearray(client.get(key))
        sealed[-1] ^= 1  # one bit of the tag
        client.set(key, bytes(sealed), keepttl=True)
        with counting_queries(dl.engine) as queries:
            assert names_on(dl, doctor) == expected
        assert queries.count >= 1
        assert client.get(key) != bytes(sealed)  # replaced by the value loaded
    finally:
        client.close()
