"""FHIR R4 import and export, on a Synthea population generated offline and on a clinic
record that fills every field the schema holds."""

from __future__ import annotations

import base64
import gc
import json
import re
import weakref
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from dr_assistant_data import DataLayer
from dr_assistant_data.cli.main import run_with
from dr_assistant_data.fhir import import_files
from dr_assistant_data.fhir.codes import ABHA_SYSTEM, RECORD_TYPE
from dr_assistant_data.fhir.export_rows import with_items
from dr_assistant_data.fhir.exporter import export_bulk, patient_record
from dr_assistant_data.relational.models import AuditEvent, PrescriptionItem
from dr_assistant_data.relational.vocabulary import (
    BLOOD_PRESSURE_PANEL,
    ENCOUNTER_CLASSES,
    VITAL_SIGNS,
)
from tests.helpers.fhir_population import PEOPLE, as_ndjson, full_clinic, generate, resources
from tests.helpers.fhir_round_trip import differences, ids_in
from tests.helpers.fhir_schema import assert_valid, assert_valid_files
from tests.helpers.layers import scratch_database, settings_for

VITAL_SIGN_CODES = {code for code, _ in VITAL_SIGNS.values()} | {BLOOD_PRESSURE_PANEL[0]}


ALL_AGES = {"seed": 23, "people": 10, "ages": "0-140"}
"""Ten people of every age, whose oldest have notes listing more medications on one line
(``# Medications``, 513 to 517 characters) than one item of a list holds."""


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("synthea"))


@pytest.fixture(scope="module")
def all_ages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("synthea-all-ages"), **ALL_AGES)


def _mrn(patient: dict) -> str:
    return next(
        i["value"]
        for i in patient["identifier"]
        if any(c["code"] == "MR" for c in i.get("type", {}).get("coding", []))
    )


def _audit_writes(dl: DataLayer) -> int:
    with dl.unit_of_work(actor="test") as uow:
        return uow.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "read")
        )


def test_a_synthea_population_lands_field_by_field(layer, population):
    report = import_files(layer, population, actor="import:test")

    assert report.total("refused") == 0, report.refusals[:5]
    kept = (
        *("Patient", "Practitioner", "Encounter", "MedicationRequest", "DocumentReference"),
        *("AllergyIntolerance", "Condition", "Observation"),
    )
    assert {kind for (kind, outcome) in report.counts if outcome == "created"} == set(kept)
    with layer.unit_of_work(actor="test") as uow:
        synthea_patients = list(resources(population, "Patient"))
        assert len(synthea_patients) == PEOPLE
        for source in synthea_patients:
            patient = uow.patients.find_by_mrn(_mrn(source))
            name, address = source["name"][0], source["address"][0]
            phone = next(t["value"] for t in source["telecom"] if t["system"] == "phone")
            email = next(t["value"] for t in source["telecom"] if t["system"] == "email")
            assert (patient.first_name, patient.last_name) == (
                " ".join(name["given"]),
                name["family"],
            )
            assert patient.date_of_birth == date.fromisoformat(source["birthDate"])
            assert patient.gender == source["gender"]
            assert patient.phone == "+1" + phone.replace("-", "")
            assert patient.email == email.lower()
            assert patient.address == {
                "line": address["line"],
                "city": address["city"],
                "state": address["state"],
                "postal_code": address["postalCode"],
                "country": address["country"],
            }
            reference = f"urn:uuid:{source['id']}"
            encounters = [
                e
                for e in resources(population, "Encounter")
                if e["subject"]["reference"] == reference
            ]
            stored = uow.encounters.for_patient(patient.id, limit=500)
            assert sorted(e.start_time for e in stored) == sorted(
                datetime.fromisoformat(e["period"]["start"]) for e in encounters
            )
            assert {e.status for e in stored} == {"completed"}
            assert Counter(e.encounter_type for e in stored) == Counter(
                ENCOUNTER_CLASSES[e["class"]["code"]] for e in encounters
            )
            medications = [
                m["medicationCodeableConcept"]["coding"][0]["display"]
                for m in resources(population, "MedicationRequest")
                if m["subject"]["reference"] == reference
            ]
            prescribed = uow.prescriptions.for_patient(patient.id, limit=500)
            assert sorted(i.medication_name for p in prescribed for i in p.items) == sorted(
                medications
            )
            texts = [
                base64.b64decode(d["content"][0]["attachment"]["data"]).decode()
                for d in resources(population, "DocumentReference")
                if d["subject"]["reference"] == reference
            ]
            notes = uow.clinical_notes.for_patient(patient.id, limit=500)
            assert sorted(n.raw_transcription for n in notes) == sorted(texts)
            assert {n.status for n in notes} == {"signed"}
            assert all(n.content.subjective.chief_complaint for n in notes)


def test_a_population_of_all_ages_lands_every_note_with_nothing_refused(layer, all_ages):
    report = import_files(layer, all_ages, actor="import:test")

    assert report.total("refused") == 0, report.refusals[:5]
    notes = list(resources(all_ages, "DocumentReference"))
    assert report.counts[("DocumentReference", "created")] == len(notes)
    with layer.unit_of_work(actor="test") as uow:
        listed = [
            note.content.subjective.medications
            for note in uow.clinical_notes.iterate()
            if note.content.subjective is not None
        ]
    assert max(len("; ".join(medications)) for medications in listed) > 500


def _is_vital_sign(observation: dict) -> bool:
    categories = {c["code"] for k in observation.get("category", []) for c in k["coding"]}
    codes = {c["code"] for c in observation["code"]["coding"]}
    return "vital-signs" in categories and bool(codes & VITAL_SIGN_CODES)


def test_a_synthea_populations_chart_lands_and_what_is_not_read_is_counted_unsupported(
    layer, population
):
    report = import_files(layer, population, actor="import:test")

    for kind in ("AllergyIntolerance", "Condition"):
        expected = len(list(resources(population, kind)))
        assert expected, kind
        assert report.counts[(kind, "created")] == expected, kind
    observations = list(resources(population, "Observation"))
    vitals = sum(map(_is_vital_sign, observations))
    assert vitals
    assert report.counts[("Observation", "created")] == vitals
    assert report.counts[("Observation", "unsupported")] == len(observations) - vitals
    for kind in ("Immunization", "Procedure"):
        assert report.counts[(kind, "unsupported")] == len(list(resources(population, kind)))
    with layer.unit_of_work(actor="test") as uow:
        assert uow.allergies.count() + uow.conditions.count() == sum(
            report.counts[(kind, "created")] for kind in ("AllergyIntolerance", "Condition")
        )


def test_importing_the_same_files_again_changes_nothing(layer, population):
    import_files(layer, population, actor="import:test")
    writes = _audit_writes(layer)

    again = import_files(layer, population, actor="import:test")

    assert again.total("created") == again.total("updated") == again.total("refused") == 0
    assert again.total("skipped") + again.total("unsupported") == sum(again.counts.values())
    assert _audit_writes(layer) == writes


def test_references_resolve_across_batches_and_out_of_order(layer, population, tmp_path):
    mixed = as_ndjson(
        population,
        tmp_path / "mixed.ndjson",
        first=("DocumentReference", "MedicationRequest", "Encounter", "Patient"),
    )

    report = import_files(layer, [mixed], actor="import:test", batch_size=50)

    assert report.total("refused") == 0, report.refusals[:5]
    expected = Counter(r["resourceType"] for r in resources(population, "Encounter"))
    assert report.counts[("Encounter", "created")] == expected["Encounter"]
    assert report.counts[("MedicationRequest", "created")] == len(
        list(resources(population, "MedicationRequest"))
    )


def test_an_export_imported_into_another_database_exports_the_same(layer, population, tmp_path):
    import_files(layer, population, actor="import:test")
    full_clinic(layer)
    first = export_bulk(layer, tmp_path / "first", actor="export:test")
    assert first.counts["ServiceRequest"] == 2

    with scratch_database() as url, DataLayer(settings_for(url)) as other:
        other.migrate()
        report = import_files(other, first.files, actor="import:test")
        assert report.total("refused") == 0, report.refusals[:5]
        second = export_bulk(other, tmp_path / "second", actor="export:test")
        renamed = ids_in(other, first.files)

    assert differences(first.files, tmp_path / "second", renamed) == {}
    assert first.counts == second.counts


def test_bulk_export_lines_are_valid_fhir_r4(layer, tmp_path):
    full_clinic(layer)

    report = export_bulk(layer, tmp_path, actor="export:test")

    assert dict(report.counts) == {
        "Practitioner": 1,
        "Patient": 1,
        "Encounter": 1,
        "MedicationRequest": 2,
        "ServiceRequest": 2,
        "Composition": 2,
        "AllergyIntolerance": 2,
        "Condition": 2,
        "Observation": 2,
    }
    for path in report.files:
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert_valid_files(report.files)


def test_a_patient_record_is_a_valid_abdm_shaped_document(layer):
    ids = full_clinic(layer)

    with layer.unit_of_work(actor="test") as uow:
        bundle = patient_record(uow, ids["patient"])

    Bundle.model_validate(bundle)
    assert_valid([bundle])
    assert bundle["type"] == "document"
    entries = [entry["resource"] for entry in bundle["entry"]]
    index = entries[0]
    assert index["resourceType"] == "Composition"
    assert index["type"]["coding"][0]["code"] == RECORD_TYPE[0]
    patient = next(r for r in entries if r["resourceType"] == "Patient")
    assert {"system": ABHA_SYSTEM, "value": "91-2345-6789-0123"}.items() <= next(
        i for i in patient["identifier"] if i["system"] == ABHA_SYSTEM
    ).items()
    kinds = Counter(r["resourceType"] for r in entries)
    assert (kinds["MedicationRequest"], kinds["ServiceRequest"]) == (2, 2)
    notes = [r for r in entries[1:] if r["resourceType"] == "Composition"]
    assert [n["id"] for n in notes] == [ids["signed"]]  # a draft is not yet a record
    codes = [s["code"]["coding"][0]["code"] for s in notes[0]["section"]]
    assert codes == ["subjective", "objective", "assessment", "plan"]  # no transcript
    referenced = {e["reference"] for s in index["section"] for e in s["entry"]}
    assert referenced <= {entry["fullUrl"] for entry in bundle["entry"]}


def test_importing_a_patient_record_into_the_database_it_came_from_changes_none_of_its_records(
    layer, tmp_path
):
    """The record's ids are the layer's own, but a file is no key into the clinic's
    tables: its patient is linked by ABHA number, and nothing it holds is overwritten."""
    ids = full_clinic(layer)
    with layer.unit_of_work(actor="test") as uow:
        bundle = patient_record(uow, ids["patient"])
        version = uow.patients.get(ids["patient"]).version
    path = tmp_path / "record.json"
    path.write_text(json.dumps(bundle))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Patient", "linked")] == 1
    assert report.total("updated") == report.total("conflict") == 0
    assert report.counts[("Composition", "skipped")] == 1  # the index
    with layer.unit_of_work(actor="test") as uow:
        assert uow.patients.get(ids["patient"]).version == version
        assert uow.patients.count() == 1


def test_exports_are_read_audited_like_chart_reads(database_url, dl, tmp_path):
    with DataLayer(settings_for(database_url, audit_reads=True)) as audited:
        ids = full_clinic(audited)
        export_bulk(audited, tmp_path, actor="export:test")
        with audited.unit_of_work(actor="test") as uow:
            events = uow.audit.for_entity("patients", ids["patient"])
    reads = {e.changed_fields[0] for e in events if e.action == "read" and e.actor == "export:test"}
    assert reads == {
        *("demographics", "clinical_notes", "encounters", "prescriptions", "orders"),
        *("allergies", "conditions", "vital_signs"),
    }


def test_the_bulk_export_holds_no_item_it_has_written(layer):
    """Items are loaded a page of records at a time and let go once written, like the
    streamed records, so a whole-clinic export runs in flat memory."""
    full_clinic(layer)
    with layer.unit_of_work(actor="test") as uow:
        streamed = with_items(uow, PrescriptionItem.prescription_id, uow.prescriptions.iterate())
        items = [weakref.ref(item) for _, group in streamed for item in group]
        gc.collect()
        assert len(items) == 2
        assert [ref() for ref in items if ref() is not None] == []


def test_export_since_a_moment_leaves_out_what_did_not_change_after_it(layer, tmp_path):
    full_clinic(layer)
    later = datetime.now(UTC) + timedelta(days=1)

    assert sum(export_bulk(layer, tmp_path / "a", actor="t", since=later).counts.values()) == 0
    earlier = later - timedelta(days=2)
    assert export_bulk(layer, tmp_path / "b", actor="t", since=earlier).counts["Patient"] == 1


def test_export_until_a_moment_leaves_out_what_changed_at_or_after_it(layer, tmp_path):
    full_clinic(layer)
    earlier = datetime.now(UTC) - timedelta(days=1)
    later = earlier + timedelta(days=2)

    assert sum(export_bulk(layer, tmp_path / "a", actor="t", until=earlier).counts.values()) == 0
    window = export_bulk(layer, tmp_path / "b", actor="t", since=earlier, until=later)
    assert window.counts["Patient"] == 1


def test_the_command_line_imports_and_exports_with_a_summary(layer, population, tmp_path, capsys):
    assert run_with(layer, ["fhir", "import", *map(str, population), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["totals"]["refused"] == 0
    assert summary["by_type"]["Patient"]["created"] == PEOPLE

    assert run_with(layer, ["fhir", "export", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert re.search(r"^Patient\s+4$", table, re.MULTILINE)
    with layer.unit_of_work(actor="test") as uow:
        patient = uow.patients.list(limit=1)[0]
    assert run_with(layer, ["fhir", "export", "--patient", str(patient.id), str(tmp_path)]) == 0
    assert "Composition" in capsys.readouterr().out


def test_the_command_line_exports_a_window_and_names_a_bad_bound(layer, tmp_path, capsys):
    full_clinic(layer)
    window = ["--since", "2000-01-01", "--until", "2000-01-02", "--json", str(tmp_path)]
    assert run_with(layer, ["fhir", "export", *window]) == 0
    assert sum(json.loads(capsys.readouterr().out)["counts"].values()) == 0

    assert run_with(layer, ["fhir", "export", "--until", "someday", str(tmp_path)]) == 1
    assert "until" in capsys.readouterr().err


def test_the_demo_shows_a_patient_record_exported_as_a_fhir_document(tmp_path, capsys):
    from dr_assistant_data.cli.main import main

    assert main(["demo", "--database", str(tmp_path / "clinic.sqlite3")]) == 0

    out = capsys.readouterr().out
    assert out.index("Clinical note") < out.index("FHIR R4 document Bundle")
    assert "MedicationRequest: Metformin" in out


def test_the_same_logical_id_from_two_source_systems_is_two_patients(layer, tmp_path):
    def patient(family: str) -> str:
        resource = {
            "resourceType": "Patient",
            "id": "1",
            "name": [{"family": family, "given": ["Anil"]}],
            "gender": "male",
            "birthDate": "1970-01-01",
        }
        return json.dumps(resource) + "\n"

    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    first.write_text(patient("Rao"))
    second.write_text(patient("Nair"))

    import_files(layer, [first], actor="import:test", source="hospital-a")
    import_files(layer, [second], actor="import:test", source="hospital-b")
    again = import_files(layer, [first], actor="import:test", source="hospital-a")

    assert again.counts[("Patient", "skipped")] == 1
    with layer.unit_of_work(actor="test") as uow:
        assert sorted(p.last_name for p in uow.patients.list()) == ["Nair", "Rao"]


def test_an_import_tells_its_progress_after_each_batch(layer, population):
    told: list[tuple[int, int | None]] = []

    import_files(
        layer,
        population[:1],
        actor="import:test",
        batch_size=10,
        progress=lambda *a: told.append(a),
    )

    done = [n for n, _ in told]
    assert len(done) > 2
    assert done == sorted(done)
    assert all(total is None for _, total in told)
