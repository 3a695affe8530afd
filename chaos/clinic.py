"""The records the campaign works on, made before it starts, and the final state of the
stores, read back for the checker after the sweep."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.audit.verify import AuditReport
from dr_assistant_data.relational.models import AuditEvent, AuditSeal, Patient
from dr_assistant_data.testing.factories import (
    AppointmentFactory,
    DoctorFactory,
    EncounterFactory,
    PatientFactory,
    bind_factories,
)

from .checker import Facts
from .notes import Clinic

INITIAL_VERSION = 1
DAY = date(2030, 6, 3)
"""The doctor's day every patient is booked on, from 9:00 in Kolkata (3:30 UTC)."""
FIRST_SLOT = datetime(2030, 6, 3, 3, 30, tzinfo=UTC)


def open_clinic(dl: DataLayer, *, patients: int, encounters: int) -> tuple[Clinic, list[str]]:
    """A doctor, ``patients`` patients (the workers' keys) each booked on the doctor's
    ``DAY``, and ``encounters`` encounters (the notes' parents); returns the clinic and
    the patient ids."""
    with dl.unit_of_work(actor="chaos", correlation_id="setup") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        people = PatientFactory.create_batch(patients)
        for slot, patient in enumerate(people):
            start = FIRST_SLOT + timedelta(minutes=10 * slot)
            end = start + timedelta(minutes=5)
            AppointmentFactory(doctor=doctor, patient=patient, start_time=start, end_time=end)
        visits = [
            EncounterFactory(doctor=doctor, patient=people[i % patients]) for i in range(encounters)
        ]
    clinic = Clinic(str(doctor.id), [(str(v.id), str(v.patient_id)) for v in visits])
    return clinic, [str(p.id) for p in people]


SEAL_ATTEMPTS = 100


def seal_everything(dl: DataLayer) -> AuditReport:
    """Seal until no event is left unsealed (the sealers were stopped with the faults);
    the last verification."""
    for _ in range(SEAL_ATTEMPTS):
        report = dl.verify_audit_chain()
        if not report.ok or report.unsealed == 0:
            return report
        dl.seal_audit()
        time.sleep(0.1)
    return report


def final_state(dl: DataLayer, patients: list[str]) -> Facts:
    """Read straight from the stores (never through the cache), once every audit event is
    sealed."""
    report = seal_everything(dl)
    with dl.engine.connect() as connection:
        rows = connection.execute(
            select(Patient.id, Patient.version, Patient.allergies, Patient.last_name)
        ).all()
        versions = {
            str(pid): (version, (allergies or [None])[0])
            for pid, version, allergies, _ in rows
            if str(pid) in patients
        }
        created = {name: str(pid) for pid, _, _, name in rows if str(pid) not in patients}
        events = [
            (c, t, e, a)
            for c, t, e, a in connection.execute(
                select(
                    AuditEvent.correlation_id,
                    AuditEvent.entity_type,
                    AuditEvent.entity_id,
                    AuditEvent.action,
                )
                .where(AuditEvent.correlation_id != "setup")
                .order_by(AuditEvent.seq)
            )
        ]
        sealed_total = connection.scalar(select(func.coalesce(func.max(AuditSeal.total), 0)))
    db = dl.documents.db
    notes = {
        raw["_id"]: raw.get("content", {}).get("subjective", {}).get("chief_complaint")
        for raw in db["clinical_notes"].find({}, {"content": 1})
    }
    pending = sum(
        db[name].count_documents({"pending": {"$exists": True}})
        for name in ("clinical_notes", "voice_recordings", "voice_audio.files")
    )
    return Facts(
        patients=versions,
        created=created,
        initial_version=INITIAL_VERSION,
        events=events,
        chain_ok=report.ok and report.unsealed == 0,
        event_total=report.rows_checked,
        sealed_total=sealed_total,
        notes=notes,
        pending=pending,
        recordings={r["_id"]: r.get("audio_id") for r in db["voice_recordings"].find()},
        audio_files={f["_id"] for f in db["voice_audio.files"].find({}, {"_id": 1})},
        chunk_files={c["files_id"] for c in db["voice_audio.chunks"].find({}, {"files_id": 1})},
    )
