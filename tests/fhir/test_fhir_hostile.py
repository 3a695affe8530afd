"""Hostile FHIR input: each bad resource is refused on its own, with the element and a
reason code, without stopping the import and without any of its values in the report or
the logs."""

from __future__ import annotations

import json
import logging

import pytest

from dr_assistant_data.fhir import import_files
from dr_assistant_data.fhir.inbound import MAX_STRING
from dr_assistant_data.fhir.reading import MAX_RESOURCE_BYTES

MARK = "Zqxv-planted"
"""In every hostile resource: it must never come out."""


def _patient(id: str, **changes: object) -> dict:
    return {
        "resourceType": "Patient",
        "id": id,
        "name": [{"family": f"{MARK}-family", "given": [f"{MARK}-given"]}],
        "gender": "female",
        "birthDate": "1990-01-02",
        **changes,
    }


def _practitioner() -> dict:
    return {"resourceType": "Practitioner", "id": "dr-1", "name": [{"text": "Dr Meera Iyer"}]}


def _encounter(id: str, subject: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": subject},
        "participant": [{"individual": {"reference": "Practitioner/dr-1"}}],
        "period": {"start": "2026-11-20T10:00:00+05:30"},
    }


def _composition(div: str) -> dict:
    return {
        "resourceType": "Composition",
        "id": "note-1",
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
        "subject": {"reference": "Patient/good"},
        "encounter": {"reference": "Encounter/visit"},
        "date": "2026-11-20T10:30:00+05:30",
        "author": [{"reference": "Practitioner/dr-1"}],
        "title": "Progress note",
        "section": [
            {
                "title": "Assessment",
                "code": {"coding": [{"system": "http://loinc.org", "code": "51848-0"}]},
                "text": {"status": "generated", "div": div},
            }
        ],
    }


HOSTILE = [
    (_patient("wrong-type", birthDate=12), "Patient.birthDate", "invalid"),
    (_patient("robot", gender="robot"), "Patient.gender", "unsupported_code"),
    (
        _patient("huge", name=[{"family": MARK + "x" * MAX_STRING, "given": ["a"]}]),
        "Patient.name.family",
        "too_large",
    ),
    (
        _patient("dollar", extension=[{"url": "http://x", "valueString": MARK, "$where": "1"}]),
        "Patient.extension",
        "forbidden_key",
    ),
    (_encounter("dangling", "Patient/nobody-" + MARK), "Encounter.subject", "unresolved_reference"),
    (
        _composition(f'<div xmlns="http://www.w3.org/1999/xhtml">{MARK}{"y" * 10_000_000}</div>'),
        "Composition.section.text.div",
        "too_large",
    ),
    (
        {"resourceType": "Patient", "id": "nameless", "gender": "male", "birthDate": "2001"},
        "Patient.name",
        "required",
    ),
]


def _bundle(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


@pytest.fixture
def hostile_bundle(tmp_path):
    good = [_practitioner(), _patient("good"), _encounter("visit", "Patient/good")]
    resources = [h[0] for h in HOSTILE[:4]] + good[:2] + [h[0] for h in HOSTILE[4:]] + good[2:]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(_bundle([*resources, "not a resource"])))
    return path


def test_each_hostile_resource_is_refused_with_its_element_and_reason(layer, hostile_bundle):
    report = import_files(layer, [hostile_bundle], actor="import:test")

    refused = sorted((r.field, r.reason) for r in report.refusals)
    assert refused == sorted(
        [(field, reason) for _, field, reason in HOSTILE] + [("resource", "not_json")]
    )


def test_hostile_resources_do_not_stop_the_good_ones(layer, hostile_bundle):
    report = import_files(layer, [hostile_bundle], actor="import:test")

    assert report.total("created") == 3
    with layer.unit_of_work(actor="test") as uow:
        assert uow.patients.count() == 1
        assert uow.encounters.count() == 1


def test_no_value_of_a_refused_resource_reaches_the_report_or_the_logs(
    layer, hostile_bundle, caplog
):
    caplog.set_level(logging.DEBUG)

    report = import_files(layer, [hostile_bundle], actor="import:test")

    assert MARK not in json.dumps(report.as_json())
    assert MARK not in caplog.text


def test_an_oversized_or_broken_ndjson_line_is_refused_and_the_next_lines_land(layer, tmp_path):
    path = tmp_path / "Patient.ndjson"
    huge = json.dumps(
        _patient("big", text={"status": "generated", "div": "z" * MAX_RESOURCE_BYTES})
    )
    lines = [huge, "{not json", json.dumps(_patient("fine"))]
    path.write_text("\n".join(lines) + "\n")

    report = import_files(layer, [path], actor="import:test")

    assert [(r.position, r.reason) for r in report.refusals] == [(1, "too_large"), (2, "not_json")]
    assert report.counts[("Patient", "created")] == 1


def test_a_bundle_of_a_type_that_holds_no_records_is_one_line_and_the_next_file_lands(
    layer, tmp_path
):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({**_bundle([_patient("p")]), "type": "searchset"}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_bundle([_patient("fine")])))

    report = import_files(layer, [path, good], actor="import:test")

    assert [(r.source, r.resource_type, r.field, r.reason) for r in report.refusals] == [
        (0, "Bundle", "Bundle.type", "unsupported_code")
    ]
    assert report.counts[("Patient", "created")] == 1
