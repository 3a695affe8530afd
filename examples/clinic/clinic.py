"""A small clinic on Flask and dr-assistant-data: patients, a doctor's day, visits with
their clinical notes and dictation. The tutorial of the documentation builds it step by
step; ``test_clinic.py`` beside it is its test suite.

Run it against the stores configured in the environment (``DATABASE_URL``, ``MONGODB_URI``,
``REDIS_URL``...)::

    FLASK_SECRET_KEY=change-me flask --app clinic run
"""

# --8<-- [start:imports]
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from flask import Blueprint, Flask, abort, request, session

from dr_assistant_data import DataLayer, NotFoundError
from dr_assistant_data.flask import DataLayerExtension, current_uow

# --8<-- [end:imports]

# --8<-- [start:factory]
clinic = Blueprint("clinic", __name__)


def create_app(layer: DataLayer | None = None, **config: Any) -> Flask:
    """The clinic app. Its data layer is ``layer`` when given (the tests'), else one built
    from ``app.config`` over the environment; ``config`` is added to ``app.config``. The
    extension answers the layer's errors (422, 404, 409, 503) as JSON."""
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY signs the session cookie
    app.config.update(config)
    DataLayerExtension(app, actor=lambda: session.get("user_id"), layer=layer)
    app.register_blueprint(clinic)
    return app


@clinic.before_request
def signed_in() -> None:
    """Every request acts for a signed-in user, whom the audit trail names. Your login
    view puts their id in the session (``session["user_id"] = str(user.id)``)."""
    if "user_id" not in session:
        abort(401)


# --8<-- [end:factory]


# --8<-- [start:patients]
def given(*names: str) -> dict[str, Any]:
    """The named fields of the request's JSON object (the layer validates their values)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400)
    return {name: body[name] for name in names if name in body}


@clinic.post("/patients")
def register_patient() -> tuple[dict[str, Any], int]:
    fields = given("first_name", "last_name", "date_of_birth", "gender", "phone", "mrn")
    patient = current_uow.patients.create(**fields)
    return {"id": str(patient.id)}, 201


@clinic.get("/patients/<uuid:patient_id>")
def show_patient(patient_id: UUID) -> dict[str, Any]:
    patient = current_uow.patients.get(patient_id)  # from the cache when it holds it
    if patient is None:
        raise NotFoundError("no such patient")
    return {
        "id": str(patient.id),
        "name": patient.full_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "allergies": list(patient.allergies),
        "version": patient.version,
    }


@clinic.post("/patients/<uuid:patient_id>/allergies")
def add_allergy(patient_id: UUID) -> dict[str, Any]:
    patient = current_uow.patients.get(patient_id)
    if patient is None:
        raise NotFoundError("no such patient")
    patient.allergies.append(given("allergy").get("allergy"))  # checked when it commits
    return {"allergies": list(patient.allergies)}


# --8<-- [end:patients]


# --8<-- [start:appointments]
@clinic.post("/appointments")
def book_appointment() -> tuple[dict[str, Any], int]:
    fields = given("doctor_id", "patient_id", "start_time", "end_time", "reason")
    appointment = current_uow.appointments.create(**fields, created_by=session["user_id"])
    return {"id": str(appointment.id)}, 201


@clinic.get("/doctors/<uuid:doctor_id>/days/<day>")
def doctors_day(doctor_id: UUID, day: str) -> dict[str, Any]:
    """The doctor's appointments on ``day`` (YYYY-MM-DD, the clinic's date)."""
    appointments = current_uow.appointments.schedule_for(doctor_id, day)
    return {
        "appointments": [
            {
                "id": str(appointment.id),
                "start": current_uow.clinic_time(appointment.start_time).isoformat(),
                "patient": appointment.patient.full_name,  # loaded with the day
                "reason": appointment.reason,
                "status": appointment.status,
            }
            for appointment in appointments
        ]
    }


# --8<-- [end:appointments]


# --8<-- [start:visit]
@clinic.post("/appointments/<uuid:appointment_id>/visit")
def start_visit(appointment_id: UUID) -> tuple[dict[str, Any], int]:
    """Check the patient in and open the encounter the doctor writes in."""
    appointment = current_uow.appointments.update(appointment_id, status="in_progress")
    encounter = current_uow.encounters.create(
        appointment_id=appointment.id,
        doctor_id=appointment.doctor_id,
        patient_id=appointment.patient_id,
        start_time=datetime.now(UTC),
    )
    return {"encounter_id": str(encounter.id)}, 201


@clinic.post("/encounters/<uuid:encounter_id>/notes")
def write_note(encounter_id: UUID) -> tuple[dict[str, Any], int]:
    encounter = current_uow.encounters.get(encounter_id)
    if encounter is None:
        raise NotFoundError("no such encounter")
    note = current_uow.clinical_notes.create(
        encounter_id=encounter.id,
        patient_id=encounter.patient_id,
        doctor_id=encounter.doctor_id,
        note_type="soap",
        **given("content", "raw_transcription"),
    )
    return {"id": note.id, "version": note.version}, 201


@clinic.post("/notes/<uuid:note_id>/sign")
def sign_note(note_id: UUID) -> dict[str, Any]:
    note = current_uow.clinical_notes.sign(note_id, signed_by=session["user_id"])
    return {"id": note.id, "status": note.status, "version": note.version}


@clinic.post("/encounters/<uuid:encounter_id>/recordings")
def store_dictation(encounter_id: UUID) -> tuple[dict[str, Any], int]:
    """The request body is the audio, streamed into the document store as it arrives."""
    encounter = current_uow.encounters.get(encounter_id)
    if encounter is None:
        raise NotFoundError("no such encounter")
    recording = current_uow.voice_recordings.store(
        encounter_id=encounter.id,
        patient_id=encounter.patient_id,
        doctor_id=encounter.doctor_id,
        audio=request.stream,
        mime_type=request.mimetype,
    )
    return {"id": recording.id, "bytes": recording.file_size}, 201


# --8<-- [end:visit]
