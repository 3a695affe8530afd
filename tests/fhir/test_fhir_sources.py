"""An import writes only the records of its own source, and only within one patient:
no file, whatever ids it carries, can overwrite, move or join another record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dr_assistant_data.fhir import FhirImport, import_files
from dr_assistant_data.fhir.codes import ABHA_SYSTEM
from tests.helpers.fhir_population import full_clinic


def _write(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def _patient(id: str, family: str = "Rao", **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": id,
        "name": [{"family": family, "given": ["Anil"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
        **changes,
    }


def _practitioner() -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": "dr-1", "name": [{"text": "Dr Meera Iyer"}]}


def _encounter(id: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"individual": {"reference": "Practitioner/dr-1"}}],
        "period": {"start": "2026-11-20T10:00:00+05:30"},
    }


def _medication(id: str, patient: str, encounter: str, group: str, drug: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "groupIdentifier": {"system": "urn:rx", "value": group},
    }


def _note(id: str, patient: str, encounter: str, impression: str) -> dict[str, Any]:
    return {
        "resourceType": "Composition",
        "id": id,
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "date": "2026-11-20T10:30:00+05:30",
        "author": [{"reference": "Practitioner/dr-1"}],
        "title": "Progress note",
        "section": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "51848-0"}]},
                "text": {
                    "status": "generated",
                    "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{impression}</div>',
                },
            }
        ],
    }


def _two_patients(layer: Any, tmp_path: Path) -> None:
    """Patients p1 and p2 of source ``a``, each with an encounter, a prescription and a
    signed note."""
    path = _write(
        tmp_path / "clinic.ndjson",
        _practitioner(),
        _patient("p1", "Rao"),
        _patient("p2", "Nair"),
        _encounter("e1", "p1"),
        _encounter("e2", "p2"),
        _medication("m1", "p1", "e1", "g1", "Metformin"),
        _medication("m2", "p2", "e2", "g2", "Amlodipine"),
        _note("n1", "p1", "e1", "stable"),
        _note("n2", "p2", "e2", "improving"),
    )
    report = import_files(layer, [path], actor="import:test", source="a")
    assert report.total("refused") == 0, report.refusals


def _patient_named(uow: Any, family: str) -> Any:
    return next(p for p in uow.patients.list() if p.last_name == family)


def test_a_resource_with_a_clinic_records_uuid_as_id_never_overwrites_it(layer, tmp_path):
    ids = full_clinic(layer)
    hostile = _patient(str(ids["patient"]), "Intruder", gender="female")

    for source in ("hospital-b", ""):
        report = import_files(
            layer, [_write(tmp_path / "p.ndjson", hostile)], actor="import:test", source=source
        )
        assert report.counts[("Patient", "created")] == 1

    with layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.get(ids["patient"])
        assert (patient.last_name, patient.gender) == ("Kumar", "male")


def test_a_reference_to_a_clinic_records_uuid_names_nothing(layer, tmp_path):
    ids = full_clinic(layer)
    path = _write(tmp_path / "e.ndjson", _practitioner(), _encounter("visit", str(ids["patient"])))

    report = import_files(layer, [path], actor="import:test")

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("Encounter.subject", "unresolved_reference")
    ]
    with layer.unit_of_work(actor="test") as uow:
        assert uow.encounters.count() == 1


def test_a_record_of_one_source_is_never_updated_by_another(layer, tmp_path):
    import_files(layer, [_write(tmp_path / "a.ndjson", _patient("1"))], actor="t", source="a")

    report = import_files(
        layer, [_write(tmp_path / "b.ndjson", _patient("1", "Other"))], actor="t", source="b"
    )

    assert report.counts[("Patient", "created")] == 1
    with layer.unit_of_work(actor="test") as uow:
        assert sorted(p.last_name for p in uow.patients.list()) == ["Other", "Rao"]


def test_a_patient_matched_by_abha_number_from_another_source_is_linked_not_overwritten(
    layer, tmp_path
):
    ids = full_clinic(layer)
    abha = [{"system": ABHA_SYSTEM, "value": "91-2345-6789-0123"}]
    path = _write(
        tmp_path / "b.ndjson",
        _practitioner(),
        _patient("x", "Other", identifier=abha, birthDate="1999-09-09"),
        _encounter("visit", "x"),
    )

    report = import_files(layer, [path], actor="import:test", source="b")

    assert [(c.field, c.reason) for c in report.conflicts] == [
        ("Patient.birthDate,Patient.name.family,Patient.name.given", "held_by_other_source")
    ]
    assert report.counts[("Encounter", "created")] == 1
    with layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.get(ids["patient"])
        assert (patient.last_name, patient.date_of_birth.year) == ("Kumar", 1980)
        assert uow.encounters.count(filters={"patient_id": patient.id}) == 2


def test_a_linked_patient_is_updated_when_the_operator_asks_for_it(layer, tmp_path):
    ids = full_clinic(layer)
    abha = [{"system": ABHA_SYSTEM, "value": "91-2345-6789-0123"}]
    path = _write(tmp_path / "b.ndjson", _patient("x", "Other", identifier=abha))

    report = FhirImport(layer, actor="import:test", source="b", update_linked=True).run([path])

    assert report.counts[("Patient", "updated")] == 1
    with layer.unit_of_work(actor="test") as uow:
        assert uow.patients.get(ids["patient"]).last_name == "Other"


def test_a_prescription_item_naming_another_patients_prescription_is_refused(layer, tmp_path):
    _two_patients(layer, tmp_path)
    hostile = _medication("m3", "p1", "e1", "g2", "Warfarin")

    report = import_files(
        layer, [_write(tmp_path / "h.ndjson", hostile)], actor="import:test", source="a"
    )

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("MedicationRequest.groupIdentifier", "cross_patient_reference")
    ]
    with layer.unit_of_work(actor="test") as uow:
        nair = _patient_named(uow, "Nair")
        items = [i.medication_name for p in uow.prescriptions.for_patient(nair.id) for i in p.items]
        assert items == ["Amlodipine"]


def test_a_prescription_in_another_patients_encounter_is_refused(layer, tmp_path):
    _two_patients(layer, tmp_path)
    hostile = _medication("m3", "p1", "e2", "g3", "Warfarin")

    report = import_files(
        layer, [_write(tmp_path / "h.ndjson", hostile)], actor="import:test", source="a"
    )

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("MedicationRequest.encounter", "cross_patient_reference")
    ]


def test_an_encounter_whose_subject_would_change_is_refused_not_moved(layer, tmp_path):
    _two_patients(layer, tmp_path)

    report = import_files(
        layer,
        [_write(tmp_path / "h.ndjson", _encounter("e2", "p1"))],
        actor="import:test",
        source="a",
    )

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("Encounter.subject", "cross_patient_reference")
    ]
    with layer.unit_of_work(actor="test") as uow:
        nair = _patient_named(uow, "Nair")
        assert uow.encounters.count(filters={"patient_id": nair.id}) == 1


def test_a_note_whose_id_is_another_patients_note_is_refused_not_amended(layer, tmp_path):
    _two_patients(layer, tmp_path)

    report = import_files(
        layer,
        [_write(tmp_path / "h.ndjson", _note("n2", "p1", "e1", "tampered"))],
        actor="import:test",
        source="a",
    )

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("Composition.subject", "cross_patient_reference")
    ]
    with layer.unit_of_work(actor="test") as uow:
        nair = _patient_named(uow, "Nair")
        (note,) = uow.clinical_notes.for_patient(nair.id)
        assert note.content.assessment.clinical_impression == "improving"
        assert note.status == "signed"


def test_conflicting_content_for_one_id_within_one_run_is_a_conflict(layer, tmp_path):
    first = _write(tmp_path / "1.ndjson", _patient("1"))
    second = _write(tmp_path / "2.ndjson", _patient("1", gender="female", birthDate="1999-01-01"))

    report = import_files(layer, [first, second], actor="import:test")

    assert report.counts[("Patient", "created")] == 1
    assert [(c.source, c.field, c.reason) for c in report.conflicts] == [
        (1, "Patient.birthDate,Patient.gender", "differs_within_run")
    ]
    with layer.unit_of_work(actor="test") as uow:
        (patient,) = uow.patients.list()
        assert patient.gender == "male"


def test_the_same_resource_twice_in_one_run_is_skipped_the_second_time(layer, tmp_path):
    first = _write(tmp_path / "1.ndjson", _patient("1"))
    second = _write(tmp_path / "2.ndjson", _patient("1"))

    report = import_files(layer, [first, second], actor="import:test")

    assert report.counts[("Patient", "created")] == report.counts[("Patient", "skipped")] == 1


def test_a_record_of_its_own_source_is_updated_by_a_later_run(layer, tmp_path):
    import_files(layer, [_write(tmp_path / "1.ndjson", _patient("1"))], actor="t", source="a")

    report = import_files(
        layer, [_write(tmp_path / "2.ndjson", _patient("1", "Rao-Iyer"))], actor="t", source="a"
    )

    assert report.counts[("Patient", "updated")] == 1
