"""The chart beside the visits, in and out: allergies, the problem list and vital signs
as their FHIR resources, every encounter class and type, a prescription's status and
medication code as the source gave them; the vital signs a note records go out with the
patient's record without coming back twice."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from dr_assistant_data import DataLayer
from dr_assistant_data.fhir import FhirImport, import_files
from dr_assistant_data.fhir.codes import ACT_CODE, NOTE_VITALS_TAG, RXNORM
from dr_assistant_data.fhir.exporter import export_bulk, patient_record
from dr_assistant_data.relational.vocabulary import ENCOUNTER_CLASSES
from tests.helpers.fhir_population import full_clinic
from tests.helpers.layers import scratch_database, settings_for

SNOMED = "http://snomed.info/sct"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _write(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def _patient(id: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": id,
        "name": [{"family": "Rao", "given": ["Anil"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
    }


def _practitioner() -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": "dr-1", "name": [{"text": "Dr Meera Iyer"}]}


def _encounter(id: str = "e1", patient: str = "p1", code: str = "AMB") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": code},
        "type": [{"coding": [{"system": SNOMED, "code": "185345009", "display": "Checkup"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"individual": {"reference": "Practitioner/dr-1"}}],
        "period": {"start": "2026-11-20T10:00:00+05:30", "end": "2026-11-20T11:00:00+05:30"},
    }


def _allergy(id: str = "a1", verification: str = "confirmed", **changes: Any) -> dict[str, Any]:
    clinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    verified = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
    return {
        "resourceType": "AllergyIntolerance",
        "id": id,
        "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": verified, "code": verification}]},
        "type": "allergy",
        "category": ["medication"],
        "criticality": "unable-to-assess",
        "code": {"coding": [{"system": RXNORM, "code": "7980", "display": "Penicillin G"}]},
        "patient": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "recordedDate": "2026-11-20T10:10:00+05:30",
        "reaction": [
            {
                "manifestation": [{"coding": [{"system": SNOMED, "code": "247472004"}]}],
                "severity": "severe",
            }
        ],
        **changes,
    }


def _condition(id: str = "c1", encounter: str = "e1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": id,
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": "44054006", "display": "Diabetes"}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "onsetDateTime": "2020-01-01T00:00:00+05:30",
    }


def _vital(id: str, code: str, value: float, unit: str, encounter: str = "e1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "effectiveDateTime": "2026-11-20T10:05:00+05:30",
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }


def _blood_pressure(id: str = "bp1") -> dict[str, Any]:
    panel = _vital(id, "85354-9", 0, "")
    del panel["valueQuantity"]
    panel["component"] = [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "code": "mm[Hg]"},
        }
        for code, value in (("8480-6", 131), ("8462-4", 86))
    ]
    return panel


def _visit(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return [_patient(), _practitioner(), _encounter(), *more]


def _exported(dl: DataLayer, folder: Path, kind: str) -> list[dict[str, Any]]:
    files = export_bulk(dl, folder, actor="export:test").files
    path = next((p for p in files if p.name == f"{kind}.ndjson"), None)
    return [json.loads(line) for line in path.read_text().splitlines()] if path else []


def test_every_encounter_class_lands_and_comes_back_out_as_it_was(layer, tmp_path):
    visits = [_encounter(f"e-{code}", code=code) for code in ENCOUNTER_CLASSES]
    path = _write(tmp_path / "all.ndjson", _patient(), _practitioner(), *visits)

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Encounter", "created")] == len(ENCOUNTER_CLASSES), report.refusals
    exported = _exported(layer, tmp_path / "out", "Encounter")
    assert sorted(e["class"]["code"] for e in exported) == sorted(ENCOUNTER_CLASSES)


def test_an_encounters_type_is_kept_and_exported(layer, tmp_path):
    import_files(layer, [_write(tmp_path / "v.ndjson", *_visit())], actor="import:test")

    [exported] = _exported(layer, tmp_path / "out", "Encounter")

    assert exported["type"] == [
        {
            "coding": [{"system": SNOMED, "code": "185345009", "display": "Checkup"}],
            "text": "Checkup",
        }
    ]


def test_a_stopped_prescription_stays_stopped_and_keeps_its_medication_code(layer, tmp_path):
    medication = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "stopped",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "313782", "display": "Acetaminophen 325 MG"}]
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
    }
    import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(medication))], actor="t")

    with layer.unit_of_work(actor="test") as uow:
        [prescription] = uow.prescriptions.list()
        item = prescription.items[0]
        assert prescription.status == "stopped"
        assert (item.medication_code, item.medication_system) == ("313782", RXNORM)
    [exported] = _exported(layer, tmp_path / "out", "MedicationRequest")
    assert exported["status"] == "stopped"
    assert exported["medicationCodeableConcept"]["coding"][0]["code"] == "313782"


def test_an_allergy_lands_structured_and_named_in_the_patients_allergies(layer, tmp_path):
    report = import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(_allergy()))], actor="t")

    assert report.counts[("AllergyIntolerance", "created")] == 1, report.refusals
    with layer.unit_of_work(actor="test") as uow:
        [patient] = uow.patients.list()
        [allergy] = uow.allergies.for_patient(patient.id)
        assert patient.allergies == ["Penicillin G"]
        assert (allergy.substance_code, allergy.substance_system) == ("7980", RXNORM)
        assert allergy.criticality == "unable_to_assess"
        assert allergy.verification_status == "confirmed"
        assert allergy.reactions[0]["severity"] == "severe"
        assert allergy.encounter_id is not None


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_a_refuted_or_entered_in_error_allergy_is_not_shown_as_active(
    layer, tmp_path, verification
):
    path = _write(tmp_path / "v.ndjson", *_visit(_allergy(verification=verification)))
    import_files(layer, [path], actor="import:test")

    with layer.unit_of_work(actor="test") as uow:
        [patient] = uow.patients.list()
        assert patient.allergies == []
        assert uow.allergies.for_patient(patient.id, active_only=True) == []
    [exported] = _exported(layer, tmp_path / "out", "AllergyIntolerance")
    assert ("clinicalStatus" in exported) is (verification == "refuted")


def test_the_patient_resource_carries_no_allergy_so_the_list_is_never_written_twice(
    layer, tmp_path
):
    import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(_allergy()))], actor="t")

    exported = _exported(layer, tmp_path / "out", "Patient")
    again = import_files(layer, [_write(tmp_path / "p.ndjson", *exported)], actor="t")

    assert "Penicillin" not in json.dumps(exported)
    assert again.counts[("Patient", "created")] == 1
    with layer.unit_of_work(actor="test") as uow:
        assert sorted(len(p.allergies) for p in uow.patients.list()) == [0, 1]


def test_a_condition_lands_in_the_problem_list(layer, tmp_path):
    import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(_condition()))], actor="t")

    with layer.unit_of_work(actor="test") as uow:
        [patient] = uow.patients.list()
        [problem] = uow.conditions.for_patient(patient.id, active_only=True)
        assert (problem.code, problem.code_system, problem.display) == (
            "44054006",
            SNOMED,
            "Diabetes",
        )
        assert problem.verification_status == "confirmed"
        assert problem.encounter_id is not None


def test_vital_sign_observations_land_with_their_encounter(layer, tmp_path):
    heart_rate = _vital("hr1", "8867-4", 72, "/min")
    path = _write(tmp_path / "v.ndjson", *_visit(_blood_pressure(), heart_rate))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Observation", "created")] == 2, report.refusals
    with layer.unit_of_work(actor="test") as uow:
        [encounter] = uow.encounters.list()
        rows = uow.vital_signs.for_encounter(encounter.id)
        assert sorted((r.kind, r.value) for r in rows) == [
            ("diastolic_bp", 86.0),
            ("heart_rate", 72.0),
            ("systolic_bp", 131.0),
        ]
        panels = {r.panel_id for r in rows if r.kind.endswith("_bp")}
        assert len(panels) == 1
        assert None not in panels


def test_vital_signs_go_out_as_vital_signs_observations_a_blood_pressure_as_a_panel(
    layer, tmp_path
):
    full_clinic(layer)

    exported = _exported(layer, tmp_path / "out", "Observation")

    assert all(o["category"][0]["coding"][0]["code"] == "vital-signs" for o in exported)
    [panel] = [o for o in exported if "component" in o]
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [128.0, 84.0]
    [temperature] = [o for o in exported if "valueQuantity" in o]
    assert [c["code"] for c in temperature["code"]["coding"]] == ["8310-5", "8331-1"]


def test_an_observation_other_than_a_vital_sign_is_unsupported(layer, tmp_path):
    glucose = _vital("g1", "2339-0", 5.4, "mmol/L")
    glucose["category"][0]["coding"][0]["code"] = "laboratory"

    report = import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(glucose))], actor="t")

    assert report.counts[("Observation", "unsupported")] == 1


def test_the_vitals_a_note_records_go_out_in_the_patients_record(layer):
    ids = full_clinic(layer)

    with layer.unit_of_work(actor="export:test") as uow:
        record = patient_record(uow, ids["patient"])

    from_note = [
        e["resource"]
        for e in record["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and NOTE_VITALS_TAG in e["resource"].get("meta", {}).get("tag", [])
    ]
    values = {
        o["code"]["coding"][0]["code"]: o.get("valueQuantity", {}).get("value") for o in from_note
    }
    assert values == {"8310-5": 38.4, "8867-4": 96.0, "2708-6": 98.0, "85354-9": None}
    panel = next(o for o in from_note if "component" in o)
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [120.0, 80.0]


@pytest.fixture
def record_moved(layer, tmp_path) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The clinic's patient record exported, imported into another database, and
    exported from there: both records and the import's report."""
    ids = full_clinic(layer)
    with layer.unit_of_work(actor="export:test") as uow:
        first = patient_record(uow, ids["patient"])
    path = tmp_path / "record.json"
    path.write_text(json.dumps(first))
    with scratch_database() as url, DataLayer(settings_for(url)) as other:
        other.migrate()
        report = import_files(other, [path], actor="import:test")
        with other.unit_of_work(actor="export:test") as uow:
            [patient] = uow.patients.list()
            second = patient_record(uow, patient.id)
    return first, second, report


def _meaning(record: dict[str, Any], kind: str, *also: str) -> list[str]:
    """The resources of ``kind`` without what names records (ids, references, meta) nor
    the elements ``also`` names."""
    result = []
    for entry in record["entry"]:
        resource = dict(entry["resource"])
        if resource["resourceType"] != kind:
            continue
        for key in ("id", "meta", "patient", "subject", "encounter", *also):
            resource.pop(key, None)
        result.append(json.dumps(resource, sort_keys=True))
    return sorted(result)


def test_allergies_and_conditions_come_back_out_identical_in_meaning(record_moved):
    first, second, report = record_moved

    assert report.total("refused") == 0, report.refusals
    for kind in ("AllergyIntolerance", "Condition"):
        assert _meaning(second, kind) == _meaning(first, kind)
        assert len(_meaning(first, kind)) == 2


def test_a_notes_vitals_coming_back_with_the_note_are_not_written_twice(record_moved):
    first, second, report = record_moved

    tagged = [
        o
        for o in (e["resource"] for e in first["entry"])
        if NOTE_VITALS_TAG in o.get("meta", {}).get("tag", [])
    ]
    assert report.counts[("Observation", "skipped")] == len(tagged) == 4
    assert report.counts[("Observation", "created")] == 2  # the panel and the temperature
    # a note's vitals are dated by its signature, which an import gives anew
    assert _meaning(second, "Observation", "effectiveDateTime") == _meaning(
        first, "Observation", "effectiveDateTime"
    )


@pytest.mark.parametrize(
    "resource",
    [
        _allergy(encounter={"reference": "Encounter/e2"}),
        _condition(encounter="e2"),
        _vital("hr1", "8867-4", 72, "/min", encounter="e2"),
    ],
    ids=lambda r: r["resourceType"],
)
def test_a_chart_record_in_another_patients_encounter_is_refused(layer, tmp_path, resource):
    others = [_patient("p2"), _encounter("e2", patient="p2")]
    path = _write(tmp_path / "v.ndjson", *_visit(*others, resource))

    report = import_files(layer, [path], actor="import:test")

    kind = resource["resourceType"]
    assert [(r.resource_type, r.field, r.reason) for r in report.refusals] == [
        (kind, f"{kind}.encounter", "cross_patient_reference")
    ]


def _note(text: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": "n1",
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "34117-2"}]},
        "subject": {"reference": "Patient/p1"},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                }
            }
        ],
        "context": {"encounter": [{"reference": "Encounter/e1"}]},
    }


def test_a_notes_part_its_fields_cannot_hold_stays_in_its_text_and_is_listed(layer, tmp_path):
    medication = "planted-" + "x" * 512  # one item of 520 characters: over the list's 500
    text = f"# Chief Complaint\nfever\n\n# Medications\n{medication}\n"
    path = _write(tmp_path / "v.ndjson", *_visit(_note(text)))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("DocumentReference", "created")] == 1, report.refusals
    dropped = [(d.field, d.reason) for d in report.dropped if d.resource_type != "Encounter"]
    assert ("DocumentReference.content[0].attachment.data", "kept_as_text") in dropped
    assert "planted" not in json.dumps(report.as_json())
    with layer.unit_of_work(actor="test") as uow:
        [note] = uow.clinical_notes.for_patient(uow.patients.list()[0].id)
        assert note.raw_transcription == text
        assert note.content.subjective.chief_complaint == "fever"
        assert note.content.subjective.medications == []


def test_a_medication_line_of_items_separated_by_semicolons_is_a_list(layer, tmp_path):
    medications = "; ".join(f"drug {n} 100 mg oral tablet" for n in range(20))  # 548 chars
    path = _write(tmp_path / "v.ndjson", *_visit(_note(f"# Medications\n{medications}\n")))

    import_files(layer, [path], actor="import:test")

    with layer.unit_of_work(actor="test") as uow:
        [note] = uow.clinical_notes.for_patient(uow.patients.list()[0].id)
        assert note.content.subjective.medications == medications.split("; ")


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"criticality": "very-high"}, "AllergyIntolerance.criticality"),
        ({"category": ["cosmetic"]}, "AllergyIntolerance.category[0]"),
    ],
)
def test_an_allergy_with_a_code_the_clinic_has_not_lands_without_that_element(
    layer, tmp_path, changes, path
):
    report = import_files(
        layer, [_write(tmp_path / "v.ndjson", *_visit(_allergy(**changes)))], actor="t"
    )

    assert report.counts[("AllergyIntolerance", "created")] == 1, report.refusals
    assert [(d.field, d.reason) for d in report.dropped] == [(path, "unsupported_code")]
    with layer.unit_of_work(actor="test") as uow:
        [patient] = uow.patients.list()
        assert patient.allergies == ["Penicillin G"]


def test_an_allergy_reactions_unknown_severity_is_dropped_with_its_nested_path(layer, tmp_path):
    reactions = _allergy()["reaction"] * 2
    reactions[1] = {**reactions[1], "severity": "catastrophic"}
    path = _write(tmp_path / "v.ndjson", *_visit(_allergy(reaction=reactions)))

    report = import_files(layer, [path], actor="import:test")

    assert [(d.field, d.reason) for d in report.dropped] == [
        ("AllergyIntolerance.reaction[1].severity", "unsupported_code")
    ]
    with layer.unit_of_work(actor="test") as uow:
        [allergy] = uow.allergies.list()
        assert [r["severity"] for r in allergy.reactions] == ["severe", None]


def test_strict_refuses_an_allergy_with_a_code_the_clinic_has_not(layer, tmp_path):
    path = _write(tmp_path / "v.ndjson", *_visit(_allergy(criticality="very-high")))

    report = FhirImport(layer, actor="import:test", strict=True).run([path])

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("AllergyIntolerance.criticality", "unsupported_code")
    ]
    with layer.unit_of_work(actor="test") as uow:
        assert uow.allergies.list() == []


def test_a_blood_pressure_panel_with_a_reading_the_layer_refuses_is_refused_whole(layer, tmp_path):
    panel = _blood_pressure()
    panel["component"][0]["valueQuantity"]["value"] = 1e7  # no plausible systolic pressure

    report = import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(panel))], actor="t")

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("Observation.component[0].valueQuantity", "invalid")
    ]
    with layer.unit_of_work(actor="test") as uow:
        assert uow.vital_signs.list() == []


def test_a_panels_component_of_another_kind_is_listed_with_its_path(layer, tmp_path):
    panel = _blood_pressure()
    mean = {"coding": [{"system": "http://loinc.org", "code": "8478-0"}]}
    panel["component"].insert(0, {"code": mean, "valueQuantity": {"value": 101}})

    report = import_files(layer, [_write(tmp_path / "v.ndjson", *_visit(panel))], actor="t")

    assert report.counts[("Observation", "created")] == 1, report.refusals
    assert [(d.field, d.reason) for d in report.dropped] == [
        ("Observation.component[0]", "not_kept")
    ]


def test_the_parts_of_a_dosage_and_a_dispense_request_not_kept_are_listed(layer, tmp_path):
    timing = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
    medication = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Acetaminophen 325 MG"},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "dosageInstruction": [
            {
                "timing": timing,
                "asNeededBoolean": True,
                "additionalInstruction": [{"text": "planted"}],
            },
            {"text": "planted"},
        ],
        "dispenseRequest": {"numberOfRepeatsAllowed": 1, "expectedSupplyDuration": {"value": 5}},
    }
    path = _write(tmp_path / "v.ndjson", *_visit(medication))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("MedicationRequest", "created")] == 1, report.refusals
    assert sorted((d.field, d.reason) for d in report.dropped if "Medication" in d.field) == [
        ("MedicationRequest.dispenseRequest.expectedSupplyDuration", "not_kept"),
        ("MedicationRequest.dosageInstruction[0].additionalInstruction", "not_kept"),
        ("MedicationRequest.dosageInstruction[0].asNeededBoolean", "not_kept"),
        ("MedicationRequest.dosageInstruction[1]", "not_kept"),
    ]


def test_the_parts_of_an_allergys_reaction_not_kept_are_listed(layer, tmp_path):
    reaction = {**_allergy()["reaction"][0], "exposureRoute": {"text": "planted"}}
    path = _write(tmp_path / "v.ndjson", *_visit(_allergy(reaction=[reaction])))

    report = import_files(layer, [path], actor="import:test")

    assert [(d.field, d.reason) for d in report.dropped] == [
        ("AllergyIntolerance.reaction[0].exposureRoute", "not_kept")
    ]


def test_an_encounters_other_participants_types_and_an_end_before_its_start_are_listed(
    layer, tmp_path
):
    encounter = _encounter()
    encounter["participant"].append({"individual": {"display": "a nurse"}})
    encounter["type"].append({"text": "second type"})
    encounter["period"]["end"] = "2019-01-01T00:00:00+00:00"

    path = _write(tmp_path / "v.ndjson", _patient(), _practitioner(), encounter)
    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Encounter", "created")] == 1, report.refusals
    assert sorted((d.field, d.reason) for d in report.dropped) == [
        ("Encounter.participant[1]", "not_kept"),
        ("Encounter.period.end", "not_kept"),
        ("Encounter.type[1]", "not_kept"),
    ]


def test_an_encounter_that_ends_when_it_starts_keeps_its_end(layer, tmp_path):
    encounter = _encounter()
    encounter["period"]["end"] = encounter["period"]["start"]

    path = _write(tmp_path / "v.ndjson", _patient(), _practitioner(), encounter)
    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Encounter", "created")] == 1, report.refusals
    assert report.dropped == []
    with layer.unit_of_work(actor="test") as uow:
        (stored,) = uow.encounters.list()
        assert stored.end_time == stored.start_time
