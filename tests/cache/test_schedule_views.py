"""The doctor's day as a read model: frozen views from the same cache entries as
``schedule_for``'s entities, never stale, never editable."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from dr_assistant_data.relational.caching.rows import codec_for
from dr_assistant_data.relational.caching.views import AppointmentView, PatientView
from dr_assistant_data.relational.models import Appointment, Patient
from dr_assistant_data.testing import AppointmentFactory, DoctorFactory, bind_factories
from tests.helpers.cache_helpers import DAY, NINE_IN_KOLKATA, read

ADDRESS = {"city": "Pune", "lines": ["12 MG Road"]}


def booked_day(dl, appointments=3):
    """A doctor with ``appointments`` on ``DAY``, their patients with JSON values set."""
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        for n in range(appointments):
            booked = AppointmentFactory(
                doctor=doctor, start_time=NINE_IN_KOLKATA + timedelta(hours=n)
            )
            booked.patient.allergies = ["latex", f"drug {n}"]
            booked.patient.address = ADDRESS
    return doctor


def as_values(appointment):
    """An appointment's columns and its patient's, as plain values, from an entity or a view."""
    thawed = {
        "appointment": {key: getattr(appointment, key) for key in codec_for(Appointment).keys},
        "patient": {key: getattr(appointment.patient, key) for key in codec_for(Patient).keys},
    }
    patient = thawed["patient"]
    patient["allergies"] = list(patient["allergies"])
    patient["address"] = {**patient["address"], "lines": list(patient["address"]["lines"])}
    return thawed


def test_a_view_holds_exactly_the_columns_its_entity_caches():
    for view, model in ((PatientView, Patient), (AppointmentView, Appointment)):
        fields = {field.name for field in dataclasses.fields(view)} - {"patient"}
        assert fields == set(codec_for(model).keys)
        assert not set(codec_for(model).withheld) & fields


@pytest.mark.parametrize("warm", [False, True], ids=["uncached", "cached"])
def test_views_hold_the_values_of_the_entities_of_the_day(dl, warm):
    doctor = booked_day(dl)
    if warm:
        read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))
    views = read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))
    entities = read(
        dl, lambda uow: [as_values(a) for a in uow.appointments.schedule_for(doctor.id, DAY)]
    )
    assert isinstance(views, tuple)
    assert len(views) == 3
    assert [as_values(view) for view in views] == entities
    assert (
        views[0].patient.full_name == f"{views[0].patient.first_name} {views[0].patient.last_name}"
    )


def test_a_warm_day_is_served_without_sql(dl, count_queries):
    doctor = booked_day(dl)
    read(dl, lambda uow: uow.appointments.schedule_for(doctor.id, DAY))  # fills the entries
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        views = uow.appointments.schedule_view(doctor.id, DAY)
    assert queries.count == 0
    assert [view.patient.allergies[0] for view in views] == ["latex"] * 3


def test_edits_in_another_unit_of_work_show_in_the_next_view(dl):
    doctor = booked_day(dl)
    first = read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))[0]
    with dl.unit_of_work(actor="test") as uow:
        uow.appointments.get(first.id).reason = "follow-up"
        patient = uow.patients.get(first.patient_id)
        patient.allergies.append("penicillin")
    again = read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))[0]
    assert again.reason == "follow-up"
    assert again.patient.allergies == ("latex", "drug 0", "penicillin")
    with dl.unit_of_work(actor="test") as uow:
        uow.appointments.update(first.id, status="cancelled")
    assert first.id not in [
        v.id for v in read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))
    ]


def test_a_view_cannot_be_changed_even_in_place(dl):
    doctor = booked_day(dl, appointments=1)
    read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))
    [view] = read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.reason = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.patient.last_name = "Sharma"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        view.patient.allergies.append("penicillin")
    with pytest.raises(TypeError):
        view.patient.address["city"] = "Mumbai"
    with pytest.raises(AttributeError):
        view.patient.address["lines"].append("Flat 4")
    assert not hasattr(view, "__dict__")


def test_a_unit_of_work_with_pending_writes_sees_its_own_changes(dl, count_queries):
    doctor = booked_day(dl)
    read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))
    with dl.unit_of_work(actor="test") as uow:
        first = uow.appointments.schedule_view(doctor.id, DAY)[0]
        uow.patients.get(first.patient_id).last_name = "Sharma"
        uow.appointments.get(first.id).notes = "bring reports"
        with count_queries() as queries:
            fresh = uow.appointments.schedule_view(doctor.id, DAY)[0]
        assert queries.count >= 1
        assert (fresh.notes, fresh.patient.last_name) == ("bring reports", "Sharma")
        uow.rollback()
    assert read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))[0].notes is None


def test_a_view_of_the_whole_day_includes_cancelled_appointments_when_asked(dl):
    doctor = booked_day(dl)
    first = read(dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY))[0]
    with dl.unit_of_work(actor="test") as uow:
        uow.appointments.update(first.id, status="cancelled")
    whole = read(
        dl, lambda uow: uow.appointments.schedule_view(doctor.id, DAY, include_cancelled=True)
    )
    assert [view.status for view in whole] == ["cancelled", "scheduled", "scheduled"]
    assert whole[0].patient.allergies == ("latex", "drug 0")
