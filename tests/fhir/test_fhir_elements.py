"""Nothing a conformant record holds is silently lost: a type the import does not read
is reported as unsupported, an optional element that is not valid is dropped (the
resource kept, the element listed), and ``strict`` refuses such a resource instead."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dr_assistant_data.cli.main import run_with
from dr_assistant_data.fhir import FhirImport, import_files

EMAIL = "luis miguel.planted@example.com"


def _write(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def _patient(**changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "1",
        "name": [{"family": "Rao", "given": ["Luis"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
        **changes,
    }


def _immunization() -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "id": "i1",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "patient": {"reference": "Patient/1"},
        "occurrenceDateTime": "2026-11-20T10:00:00+05:30",
    }


def test_a_resource_type_the_import_does_not_read_is_unsupported_never_skipped(layer, tmp_path):
    path = _write(tmp_path / "all.ndjson", _patient(), _immunization())

    first = import_files(layer, [path], actor="import:test")
    again = import_files(layer, [path], actor="import:test")

    for report in (first, again):
        assert report.counts[("Immunization", "unsupported")] == 1
        assert report.counts[("Immunization", "skipped")] == 0
    assert again.counts[("Patient", "skipped")] == 1


def test_the_summary_has_a_column_of_unsupported_resources(layer, tmp_path, capsys):
    path = _write(tmp_path / "all.ndjson", _patient(), _immunization())

    run_with(layer, ["fhir", "import", str(path)])

    table = capsys.readouterr().out
    assert re.search(r"^resource\s.*\bskipped\b.*\bunsupported\b", table, re.MULTILINE)
    assert re.search(r"^Immunization(\s+0){5}\s+1\s+0$", table, re.MULTILINE)


def test_an_email_that_does_not_parse_is_dropped_and_the_patient_kept(layer, tmp_path):
    telecom = [{"system": "email", "value": EMAIL}, {"system": "phone", "value": "+919800000001"}]
    path = _write(tmp_path / "p.ndjson", _patient(telecom=telecom))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Patient", "created")] == 1
    assert [(d.position, d.field, d.reason) for d in report.dropped] == [
        (1, "Patient.telecom[0].value", "invalid")
    ]
    assert "planted" not in json.dumps(report.as_json())
    with layer.unit_of_work(actor="test") as uow:
        (patient,) = uow.patients.list()
        assert (patient.email, patient.phone) == (None, "+919800000001")


def test_an_optional_element_the_fhir_model_refuses_is_dropped_alone(layer, tmp_path):
    address = [{"city": "Pune", "period": {"start": "not a date"}}, {"city": "Mumbai"}]
    path = _write(tmp_path / "p.ndjson", _patient(address=address))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Patient", "created")] == 1
    assert [(d.field, d.reason) for d in report.dropped] == [
        ("Patient.address[0].period.start", "invalid")
    ]
    with layer.unit_of_work(actor="test") as uow:
        (patient,) = uow.patients.list()
        assert patient.address == {"city": "Mumbai"}


def test_strict_refuses_a_resource_with_an_invalid_optional_element(layer, tmp_path):
    path = _write(tmp_path / "p.ndjson", _patient(telecom=[{"system": "email", "value": EMAIL}]))

    report = FhirImport(layer, actor="import:test", strict=True).run([path])

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("Patient.telecom[0].value", "invalid")
    ]
    with layer.unit_of_work(actor="test") as uow:
        assert uow.patients.count() == 0


def test_the_command_line_has_a_strict_flag(layer, tmp_path, capsys):
    path = _write(tmp_path / "p.ndjson", _patient(telecom=[{"system": "email", "value": EMAIL}]))

    assert run_with(layer, ["fhir", "import", "--strict", "--json", str(path)]) == 1

    assert json.loads(capsys.readouterr().out)["totals"]["refused"] == 1


def test_elements_and_extensions_the_schema_has_no_place_for_are_listed_as_dropped(layer, tmp_path):
    extension = [{"url": "http://example.org/race", "valueString": "planted"}]
    path = _write(
        tmp_path / "p.ndjson",
        _patient(maritalStatus={"text": "married"}, extension=extension),
    )

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Patient", "created")] == 1
    assert sorted(report.dropped_counts) == [
        ("Patient", "Patient.extension", "not_kept"),
        ("Patient", "Patient.maritalStatus", "not_kept"),
    ]


def test_a_modifier_extension_refuses_the_resource(layer, tmp_path):
    modifier = [{"url": "http://example.org/not-really", "valueBoolean": True}]
    path = _write(tmp_path / "p.ndjson", _patient(modifierExtension=modifier))

    report = import_files(layer, [path], actor="import:test")

    assert [(r.field, r.reason) for r in report.refusals] == [
        ("Patient.modifierExtension", "unsupported_code")
    ]


def test_dropped_elements_inside_kept_ones_are_listed_with_their_nested_paths(layer, tmp_path):
    names = [
        {"use": "official", "family": "Rao", "given": ["Luis"], "prefix": ["planted"]},
        {"use": "maiden", "family": "planted"},
    ]
    telecom = [
        {"system": "phone", "value": "+919800000001", "use": "mobile"},
        {"system": "email", "value": EMAIL},
    ]
    ssn = {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-planted"}
    path = _write(tmp_path / "p.ndjson", _patient(name=names, telecom=telecom, identifier=[ssn]))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Patient", "created")] == 1
    assert sorted((d.field, d.reason) for d in report.dropped) == [
        ("Patient.identifier[0]", "not_kept"),
        ("Patient.name[0].prefix", "not_kept"),
        ("Patient.name[1]", "not_kept"),
        ("Patient.telecom[0].use", "not_kept"),
        ("Patient.telecom[1].value", "invalid"),
    ]
    assert "planted" not in json.dumps(report.as_json())
