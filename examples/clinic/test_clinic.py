"""The clinic's tests: each runs on a database, document store and cache of its own."""

# --8<-- [start:setup]
from __future__ import annotations

from datetime import datetime, time, timedelta
from unittest.mock import ANY
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient

from dr_assistant_data import DataLayer, UnitOfWork
from dr_assistant_data.relational.models import User
from dr_assistant_data.testing import AppointmentFactory, PatientFactory

CLINIC = ZoneInfo("Asia/Kolkata")  # the layer's CLINIC_TIMEZONE


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(CLINIC).date() + timedelta(days=1)
    return datetime.combine(day, time(hour, minute), CLINIC)


# --8<-- [end:setup]


# --8<-- [start:patients]
def test_a_registered_patient_can_be_read_back(client: FlaskClient) -> None:
    registered = client.post(
        "/patients",
        json={
            "first_name": "Ravi",
            "last_name": "Kumar",
            "date_of_birth": "1980-05-01",
            "gender": "male",
            "phone": "98000 00001",
        },
    )
    assert registered.status_code == 201

    shown = client.get(f"/patients/{registered.json['id']}")
    assert shown.json["name"] == "Ravi Kumar"
    assert shown.json["version"] == 1


def test_a_refused_patient_names_the_field_and_nothing_is_written(
    client: FlaskClient, data_layer: DataLayer
) -> None:
    refused = client.post(
        "/patients",
        json={
            "first_name": "Ravi",
            "last_name": "Kumar",
            "date_of_birth": "1980-05-01",
            "gender": "unknown",
        },
    )
    assert refused.status_code == 422
    assert refused.json["error"] == "invalid"
    assert refused.json["field"] == "gender"
    with data_layer.unit_of_work(actor="test") as uow:
        assert uow.patients.count() == 0


def test_an_allergy_refused_at_commit_is_answered_422_and_not_kept(
    client: FlaskClient, uow: UnitOfWork
) -> None:
    patient = PatientFactory(allergies=["penicillin"])
    uow.commit()

    refused = client.post(f"/patients/{patient.id}/allergies", json={"allergy": "x" * 500})
    assert refused.status_code == 422  # the view returned; the commit refused the value
    assert refused.json == {"error": "invalid", "field": "allergies", "message": ANY}
    assert client.get(f"/patients/{patient.id}").json["allergies"] == ["penicillin"]


# --8<-- [end:patients]


# --8<-- [start:appointments]
def test_a_booking_shows_in_the_doctors_day(
    client: FlaskClient, uow: UnitOfWork, doctor: User
) -> None:
    patient = PatientFactory(first_name="Asha", last_name="Rao")
    uow.commit()

    booked = client.post(
        "/appointments",
        json={
            "doctor_id": str(doctor.id),
            "patient_id": str(patient.id),
            "start_time": tomorrow_at(10).isoformat(),
            "end_time": tomorrow_at(10, 20).isoformat(),
            "reason": "Fever for three days",
        },
    )
    assert booked.status_code == 201

    day = client.get(f"/doctors/{doctor.id}/days/{tomorrow_at(10).date()}")
    [appointment] = day.json["appointments"]
    assert appointment["patient"] == "Asha Rao"
    assert appointment["start"].startswith(f"{tomorrow_at(10).date()}T10:00:00+05:30")


def test_a_booking_overlapping_the_doctors_time_is_refused(
    client: FlaskClient, uow: UnitOfWork, doctor: User
) -> None:
    AppointmentFactory(doctor=doctor, start_time=tomorrow_at(10), end_time=tomorrow_at(10, 20))
    patient = PatientFactory()
    uow.commit()

    refused = client.post(
        "/appointments",
        json={
            "doctor_id": str(doctor.id),
            "patient_id": str(patient.id),
            "start_time": tomorrow_at(10, 10).isoformat(),
            "end_time": tomorrow_at(10, 30).isoformat(),
        },
    )
    assert refused.status_code == 409
    assert refused.json["error"] == "conflict"
    day = client.get(f"/doctors/{doctor.id}/days/{tomorrow_at(10).date()}")
    assert len(day.json["appointments"]) == 1


# --8<-- [end:appointments]


# --8<-- [start:visit]
def test_a_visit_note_is_signed_once_and_then_frozen(
    client: FlaskClient, uow: UnitOfWork, doctor: User
) -> None:
    appointment = AppointmentFactory(
        doctor=doctor, start_time=tomorrow_at(11), end_time=tomorrow_at(11, 20)
    )
    uow.commit()
    visit = client.post(f"/appointments/{appointment.id}/visit")
    encounter_id = visit.json["encounter_id"]

    note = client.post(
        f"/encounters/{encounter_id}/notes",
        json={"content": {"subjective": {"chief_complaint": "fever"}}},
    )
    assert note.status_code == 201
    signed = client.post(f"/notes/{note.json['id']}/sign")
    assert signed.json["status"] == "signed"

    again = client.post(f"/notes/{note.json['id']}/sign")
    assert again.status_code == 409
    assert again.json["error"] == "immutable"


def test_dictation_is_kept_with_its_encounter(
    client: FlaskClient, uow: UnitOfWork, doctor: User, data_layer: DataLayer
) -> None:
    appointment = AppointmentFactory(
        doctor=doctor, start_time=tomorrow_at(12), end_time=tomorrow_at(12, 20)
    )
    uow.commit()
    encounter_id = client.post(f"/appointments/{appointment.id}/visit").json["encounter_id"]

    stored = client.post(
        f"/encounters/{encounter_id}/recordings",
        data=b"\x1aE\xdf\xa3" + bytes(4096),  # a few bytes of WebM
        content_type="audio/webm",
    )
    assert stored.status_code == 201
    with data_layer.unit_of_work(actor="test") as check:
        [recording] = check.voice_recordings.for_encounter(encounter_id)
        assert recording.file_size == 4100


# --8<-- [end:visit]


def test_a_request_without_a_signed_in_user_is_refused(app: Flask) -> None:
    assert (
        app.test_client().get("/patients/00000000-0000-4000-8000-000000000000").status_code == 401
    )


def test_an_unknown_patient_is_not_found(client: FlaskClient) -> None:
    shown = client.get("/patients/00000000-0000-4000-8000-000000000000")
    assert shown.status_code == 404
    assert shown.json == {"error": "not_found", "message": "no such patient"}
