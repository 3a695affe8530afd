"""The demo's clinical note: drafted from dictation, edited, signed, then amended.

Each step is its own unit of work, as it would be in the application: the AI draft, the
doctor's edit (guarded by the version the doctor saw), the signature, and an amendment a
day later. The note text goes to stdout only (it is demo data), never to a log.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from ..layer import DataLayer
    from .clinic import Clinic

DICTATION = (
    "Mr Mehta is here for his diabetes review. Sugars have been running high in the "
    "mornings. No chest pain. Compliant with metformin."
)


def chart_note(dl: DataLayer, clinic: Clinic) -> uuid.UUID:
    """Write the note of the clinic's encounter through its whole lifecycle."""
    visit = {
        "encounter_id": clinic.encounter_id,
        "patient_id": clinic.patient_ids[0],
        "doctor_id": clinic.doctor_id,
    }
    with dl.unit_of_work(actor="ai-scribe") as uow:
        draft = uow.clinical_notes.create(
            **visit,
            content={
                "subjective": {"chief_complaint": "Diabetes review, high morning sugars"},
                "objective": {
                    "vital_signs": {
                        "blood_pressure": {"systolic": 138, "diastolic": 86},
                        "heart_rate": 78,
                        "weight": 82.5,
                    }
                },
                "assessment": {"diagnoses": ["Type 2 diabetes mellitus"]},
            },
            raw_transcription=DICTATION,
            ai_confidence_score=0.87,
            metadata={"ai_assisted": True, "template_used": "soap"},
        )
    doctor = str(clinic.doctor_id)
    with dl.unit_of_work(actor=doctor) as uow:
        edited = uow.clinical_notes.update_draft(
            draft.id,
            expected_version=draft.version,
            content={
                **draft.content.to_mongo().to_dict(),
                "plan": {
                    "medications": ["Metformin 500 mg twice daily"],
                    "diagnostics": ["HbA1c"],
                    "follow_up": "Review with HbA1c in four weeks",
                },
            },
        )
        signed = uow.clinical_notes.sign(edited.id, signed_by=clinic.doctor_id)
    with dl.unit_of_work(actor=doctor) as uow:
        amended = signed.content.to_mongo().to_dict()
        amended["plan"]["follow_up"] = "Review with HbA1c in two weeks"
        uow.clinical_notes.amend(
            signed.id,
            amended_by=clinic.doctor_id,
            reason="Follow-up brought forward after the lab called",
            content=amended,
        )
    return uuid.UUID(draft.id)


def describe_note(uow: UnitOfWork, note_id: uuid.UUID, doctor_name: str) -> list[str]:
    """The note and every signed version of it, as lines of text."""
    note = uow.clinical_notes.get(note_id)
    if note is None:
        return []
    zone = uow.appointments.clinic_timezone
    vitals = note.content.objective.vital_signs
    lines = [
        f"Clinical note [{note.status}, version {note.version}]",
        f"  Complaint:  {note.content.subjective.chief_complaint}",
        f"  BP {vitals.blood_pressure.systolic}/{vitals.blood_pressure.diastolic} mmHg, "
        f"pulse {vitals.heart_rate}/min, weight {vitals.weight} kg",
        f"  Plan:       {', '.join(note.content.plan.medications)}; {note.content.plan.follow_up}",
        "  Signed versions, oldest first:",
    ]
    for version in uow.clinical_notes.history(note_id):
        when = version.signed_at.astimezone(zone)
        why = f" (amended: {version.amendment_reason})" if version.amendment_reason else ""
        lines.append(
            f"    v{version.version} {version.status} by {doctor_name} at {when:%H:%M:%S}{why}: "
            f"follow-up {version.content.plan.follow_up!r}"
        )
    return lines
