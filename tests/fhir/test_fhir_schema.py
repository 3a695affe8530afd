"""Exports checked by a validator that is not ours (the official FHIR R4 JSON schema), on
a generated Synthea population of adults that the other FHIR tests do not use, and a round
trip of that population between two databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dr_assistant_data import DataLayer
from dr_assistant_data.fhir import import_files
from dr_assistant_data.fhir.exporter import BULK_TYPES, export_bulk, patient_record
from tests.helpers.fhir_population import full_clinic, generate
from tests.helpers.fhir_round_trip import differences, ids_in
from tests.helpers.fhir_schema import assert_valid, assert_valid_files, problems
from tests.helpers.layers import scratch_database, settings_for

ADULTS = {"seed": 23, "people": 3, "ages": "20-45"}
"""Another population than ``fhir_population``'s children: adults, with inpatient and
emergency encounters, allergies and a problem list."""


@pytest.fixture(scope="module")
def adults(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("synthea-adults"), **ADULTS)


def _filled(dl: DataLayer, population: list[Path]) -> None:
    """The population imported, and the clinic's own record beside it (every field)."""
    report = import_files(dl, population, actor="import:test")
    assert report.total("created") > 0
    full_clinic(dl)


def test_every_line_of_a_bulk_export_is_valid_against_the_r4_json_schema(layer, adults, tmp_path):
    _filled(layer, adults)

    report = export_bulk(layer, tmp_path, actor="export:test")

    checked = assert_valid_files(report.files)
    assert checked == {kind: n for kind, n in report.counts.items() if n}
    # every type the export writes has lines here, so a new one is checked too
    assert set(checked) == set(BULK_TYPES)


def test_every_patient_record_document_is_valid_against_the_r4_json_schema(layer, adults):
    _filled(layer, adults)

    with layer.unit_of_work(actor="test") as uow:
        patients = uow.patients.list(limit=100)
        documents = [patient_record(uow, patient.id) for patient in patients]

    assert len(documents) == 4
    assert assert_valid(documents) == 4


def test_the_schema_check_names_an_element_the_r4_schema_does_not_hold(layer, tmp_path):
    full_clinic(layer)
    report = export_bulk(layer, tmp_path, actor="export:test")
    encounter = json.loads((tmp_path / "Encounter.ndjson").read_text().splitlines()[0])
    assert problems(encounter) == []

    encounter["class"]["code"] = ["AMB"]  # a code is a string
    encounter["status"] = "done"  # not in the value set
    encounter["visitType"] = "x"  # no such element

    found = problems(encounter)
    assert [line.split(" ")[:2] for line in found] == [
        ["Encounter.status", "(enum):"],
        ["Encounter.class.code", "(type):"],
        ["Encounter", "(additionalProperties):"],
    ], found
    assert report.files


def test_a_generated_population_round_trips_between_two_databases(layer, adults, tmp_path):
    """Import, export, import the export into a second database, export again: the same
    resources, but for the ids the second database gave its records (mapped through its
    source identifiers) and what records the moment of writing (``meta``, a note's date
    and signing time)."""
    import_files(layer, adults, actor="import:test")
    first = export_bulk(layer, tmp_path / "first", actor="export:test")
    assert first.counts["Encounter"] > 100

    with scratch_database() as url, DataLayer(settings_for(url)) as other:
        other.migrate()
        report = import_files(other, first.files, actor="import:test")
        assert report.total("refused") == report.total("conflict") == 0, report.refusals[:5]
        assert report.total("created") == sum(first.counts.values())
        second = export_bulk(other, tmp_path / "second", actor="export:test")
        renamed = ids_in(other, first.files)

    assert second.counts == first.counts
    assert differences(first.files, tmp_path / "second", renamed) == {}
