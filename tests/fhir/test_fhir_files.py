"""Files no import can be stopped by: each unreadable file is one line of the report,
each resource is bounded while it is read (before it is built), and the run always ends
with the report of what was written."""

from __future__ import annotations

import json
import logging
import os
import re
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dr_assistant_data.cli.main import run_with
from dr_assistant_data.errors import BackendUnavailableError
from dr_assistant_data.fhir import FhirImport, import_files
from dr_assistant_data.fhir.reading import MAX_DEPTH
from dr_assistant_data.fhir.resource_types import REGISTRY


def _patient(id: str, **changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": id,
        "name": [{"family": "Rao", "given": ["Anil"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
        **changes,
    }


def _ndjson(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def _bundle_text(entries: list[str]) -> str:
    return '{"resourceType": "Bundle", "type": "collection", "entry": [' + ",".join(entries) + "]}"


def _entry(resource: dict[str, Any]) -> str:
    return json.dumps({"resource": resource})


@pytest.fixture
def unreadable(tmp_path: Path) -> list[Path]:
    """A missing file, a directory, a symlink loop, a device and a pipe."""
    loop = tmp_path / "Xiomara_Quetzalcoatl_loop.json"
    loop.symlink_to(loop)
    zero = tmp_path / "Xiomara_Quetzalcoatl_zero.json"
    zero.symlink_to("/dev/zero")
    pipe = tmp_path / "Xiomara_Quetzalcoatl_pipe.json"
    os.mkfifo(pipe)
    return [tmp_path / "Xiomara_Quetzalcoatl_missing.json", tmp_path, loop, zero, pipe]


def test_each_unreadable_file_is_one_line_and_the_other_files_land(layer, tmp_path, unreadable):
    good = _ndjson(tmp_path / "good.ndjson", _patient("1"))

    report = import_files(layer, [*unreadable, good], actor="import:test")

    assert [(r.source, r.resource_type, r.field, r.reason) for r in report.refusals] == [
        (0, "File", "file", "unreadable"),
        (1, "File", "file", "not_a_file"),
        (2, "File", "file", "unreadable"),
        (3, "File", "file", "not_a_file"),
        (4, "File", "file", "not_a_file"),
    ]
    assert report.counts[("Patient", "created")] == 1


def test_the_command_line_names_no_file_and_prints_no_traceback(
    layer, tmp_path, unreadable, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    good = _ndjson(tmp_path / "good.ndjson", _patient("1"))

    status = run_with(layer, ["fhir", "import", *map(str, [*unreadable, good])])

    out, err = capsys.readouterr()
    assert status == 1
    assert re.search(r"^Patient\s+1\s", out, re.MULTILINE)
    for text in (out, err, caplog.text):
        assert "Xiomara" not in text
        assert str(tmp_path) not in text
        assert "Traceback" not in text


def test_a_deeply_nested_ndjson_line_is_refused_and_the_next_lines_land(layer, tmp_path):
    deep = '{"resourceType": "Patient", "id": "d", "x": ' + "[" * 990 + "]" * 990 + "}"
    path = tmp_path / "Patient.ndjson"
    path.write_text(deep + "\n" + json.dumps(_patient("fine")) + "\n")

    report = import_files(layer, [path], actor="import:test")

    assert [(r.position, r.field, r.reason) for r in report.refusals] == [
        (1, "Patient.x", "too_deep")
    ]
    assert report.counts[("Patient", "created")] == 1


def test_a_deep_bundle_entry_is_given_up_before_it_is_built(layer, tmp_path):
    levels = 20_000
    deep = '{"resource": {"resourceType": "Patient", "x": ' + "[" * levels + "]" * levels + "}}"
    path = tmp_path / "deep.json"
    path.write_text(_bundle_text([deep, _entry(_patient("fine"))]))

    tracemalloc.start()
    try:
        report = import_files(layer, [path], actor="import:test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [(r.position, r.reason) for r in report.refusals] == [(0, "too_deep")]
    assert report.counts[("Patient", "created")] == 1
    assert peak < 40 * 1024 * 1024


def test_a_string_of_tens_of_megabytes_is_cut_before_the_parser_holds_it(layer, tmp_path):
    huge = {"resourceType": "Patient", "id": "h", "text": {"div": "z" * (30 * 1024 * 1024)}}
    path = tmp_path / "string.json"
    path.write_text(_bundle_text([_entry(huge), _entry(_patient("fine"))]))

    tracemalloc.start()
    try:
        report = import_files(layer, [path], actor="import:test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [(r.position, r.field, r.reason) for r in report.refusals] == [
        (0, "Patient.text.div", "too_large")
    ]
    assert report.counts[("Patient", "created")] == 1
    assert peak < 20 * 1024 * 1024


def test_a_resource_of_millions_of_empty_objects_is_too_large(layer, tmp_path):
    empties = ",".join(["{}"] * 3_000_000)
    huge = '{"resource": {"resourceType": "Patient", "id": "h", "contact": [' + empties + "]}}"
    path = tmp_path / "empties.json"
    path.write_text(_bundle_text([huge, _entry(_patient("fine"))]))

    report = import_files(layer, [path], actor="import:test")

    assert [(r.position, r.field, r.reason) for r in report.refusals] == [
        (0, "Patient.contact", "too_large")
    ]
    assert report.counts[("Patient", "created")] == 1


def test_a_bad_byte_in_a_bundle_reports_the_rest_of_it_and_the_next_file_lands(layer, tmp_path):
    entries = [_entry(_patient(str(n))) for n in range(800)]
    entries[700] = entries[700].replace("Rao", "R\xffo")
    broken = tmp_path / "broken.json"
    broken.write_bytes(_bundle_text(entries).encode("latin-1"))
    after = _ndjson(tmp_path / "after.ndjson", _patient("after"))

    report = import_files(layer, [broken, after], actor="import:test")

    assert [(r.source, r.position, r.field, r.reason) for r in report.refusals] == [
        (0, 700, "Bundle.entry", "not_json")
    ]
    assert report.counts[("Patient", "created")] == 701


def test_a_bundle_with_a_byte_order_mark_is_read(layer, tmp_path):
    path = tmp_path / "bom.json"
    bundle = json.loads(_bundle_text([_entry(_patient("1")), _entry(_patient("2"))]))
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(bundle, indent=2).encode())

    report = import_files(layer, [path], actor="import:test")

    assert report.refusals == []
    assert report.counts[("Patient", "created")] == 2


def test_a_moment_python_cannot_hold_is_refused_and_its_batch_lands(layer, tmp_path):
    def encounter(id: str, start: str) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": id,
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/1"},
            "participant": [{"individual": {"reference": "Practitioner/dr"}}],
            "period": {"start": start},
        }

    doctor = {"resourceType": "Practitioner", "id": "dr", "name": [{"text": "Dr Iyer"}]}
    path = _ndjson(
        tmp_path / "all.ndjson",
        doctor,
        _patient("1"),
        encounter("early", "0001-01-01T00:00:00+14:00"),
        encounter("late", "9999-12-31T23:00:00-05:00"),
        encounter("fine", "2026-11-20T10:00:00+05:30"),
    )

    report = import_files(layer, [path], actor="import:test")

    assert sorted((r.field, r.reason) for r in report.refusals) == [
        ("Encounter.period.start", "invalid"),
        ("Encounter.period.start", "invalid"),
    ]
    assert report.counts[("Encounter", "created")] == 1


def test_a_lone_surrogate_in_a_resource_set_aside_does_not_stop_the_run(layer, tmp_path):
    encounter = {
        "resourceType": "Encounter",
        "id": "visit",
        "meta": {"source": "@@"},
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/later"},
        "participant": [{"individual": {"reference": "Practitioner/dr"}}],
        "period": {"start": "2026-11-20T10:00:00+05:30"},
    }
    doctor = {"resourceType": "Practitioner", "id": "dr", "name": [{"text": "Dr Iyer"}]}
    lines = [json.dumps(doctor), json.dumps(encounter).replace("@@", "\\ud800")]
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join([*lines, json.dumps(_patient("later"))]) + "\n")

    report = import_files(layer, [path], actor="import:test", batch_size=1)

    assert report.refusals == []
    assert report.counts[("Encounter", "created")] == 1


def test_a_database_failure_ends_the_run_with_the_report_of_what_was_written(
    layer, tmp_path, monkeypatch
):
    write_patients = REGISTRY["Patient"].write
    calls = []

    def failing_second_time(run: Any, items: list[Any]) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise BackendUnavailableError("postgres", "gone")
        return write_patients(run, items)

    monkeypatch.setitem(
        REGISTRY, "Patient", replace(REGISTRY["Patient"], write=failing_second_time)
    )
    path = _ndjson(tmp_path / "p.ndjson", *(_patient(str(n)) for n in range(3)))

    report = FhirImport(layer, actor="import:test", batch_size=1).run([path])

    assert report.stopped == "backend_unavailable"
    assert report.counts[("Patient", "created")] == 1
    assert [(r.position, r.reason) for r in report.refusals] == [(2, "stopped")]
    with layer.unit_of_work(actor="test") as uow:
        assert uow.patients.count() == 1


def test_a_fault_of_the_import_itself_ends_the_run_with_its_report_and_no_traceback(
    layer, tmp_path, monkeypatch, caplog
):
    def broken(run: Any, items: list[Any]) -> Any:
        raise RuntimeError(str(tmp_path))

    monkeypatch.setitem(REGISTRY, "Patient", replace(REGISTRY["Patient"], write=broken))
    path = _ndjson(tmp_path / "p.ndjson", _patient("1"))

    report = FhirImport(layer, actor="import:test").run([path])

    assert report.stopped == "failed"
    assert [(r.position, r.reason) for r in report.refusals] == [(1, "stopped")]
    assert str(tmp_path) not in caplog.text
    assert "Traceback" not in caplog.text


def test_resources_of_many_values_are_written_in_smaller_batches(layer, tmp_path):
    """A batch is weighed by the values its resources hold, not only their text: what an
    import holds in memory stays bounded whatever the shape of the resources."""
    many = [{"url": "http://example.org/x", "valueString": "abcdefghij"}] * 16_000
    path = _ndjson(tmp_path / "p.ndjson", *(_patient(str(n), extension=many) for n in range(30)))
    told: list[int] = []

    report = import_files(layer, [path], actor="import:test", progress=lambda n, _: told.append(n))

    assert report.counts[("Patient", "created")] == 30
    assert len(told) >= 3


def test_a_resource_nested_within_the_limit_is_read(layer, tmp_path):
    nested: Any = "x"
    for _ in range(MAX_DEPTH - 4):
        nested = {"a": nested}
    path = _ndjson(tmp_path / "p.ndjson", _patient("1", meta={"extension": nested}))

    report = import_files(layer, [path], actor="import:test")

    assert report.counts[("Patient", "created")] == 1
