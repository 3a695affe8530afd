"""The import's checks in a worker process: the same outcomes in the same order as in
line, a bounded read-ahead, and a clean fall back when the worker dies."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr_assistant_data.fhir import checks, reading
from dr_assistant_data.fhir.checks import Checks
from dr_assistant_data.fhir.elements import Draft
from dr_assistant_data.fhir.outcomes import Refusal
from tests.helpers.fhir_population import as_ndjson, generate


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Synthea population as NDJSON, and lines the checks refuse among them."""
    folder = tmp_path_factory.mktemp("synthea-checks")
    path = as_ndjson(generate(folder), folder / "all.ndjson")
    bad = '{"resourceType": "Patient", "gender": "x"}\n{"resourceType": "Encounter"}\nnot json\n'
    path.write_text(bad + path.read_text() + bad)
    return path


def _outcomes(checked: Iterator[tuple[reading.Raw, checks.Checked]]) -> list[tuple]:
    return [
        (raw.position, outcome.resource_type, outcome.fields, outcome.keys, outcome.dropped)
        if isinstance(outcome, Draft)
        else (raw.position, outcome.field, outcome.code, outcome.outcome)
        for raw, outcome in checked
    ]


def test_resources_checked_in_a_worker_come_back_as_in_line_and_in_order(lines):
    with Checks(strict=False, source="lab", workers=0) as in_line:
        expected = _outcomes(in_line.drafts(reading.read(lines, 0)))
    with Checks(strict=False, source="lab", workers=1) as worker:
        found = _outcomes(worker.drafts(reading.read(lines, 0)))
        assert worker.workers.started  # the checks did run in another process

    assert found == expected
    assert [item[0] for item in found] == sorted(item[0] for item in found)
    assert sum(len(item) == 5 for item in found) > 100  # drafts, not only refusals


def test_the_worker_is_never_more_than_its_budget_ahead_of_the_import(lines, monkeypatch):
    budget, chunk = 200_000, 16
    monkeypatch.setattr(checks, "AHEAD_BYTES", budget)
    monkeypatch.setattr(checks, "CHUNK", chunk)
    read: deque[int] = deque()  # the sizes of what was read and not yet given back
    most = largest = 0

    def counted() -> Iterator[reading.Raw]:
        for raw in reading.read(lines, 0):
            read.append(raw.size)
            yield raw

    with Checks(strict=False, source="", workers=1) as worker:
        for raw, _ in worker.drafts(counted()):
            largest = max(largest, raw.size)
            most = max(most, sum(read))
            read.popleft()

    assert most > budget // 2  # it did read ahead
    assert most <= budget + 2 * chunk * largest  # the budget, the chunk that crossed it
    assert most < sum(raw.size for raw in reading.read(lines, 0)) // 4


def _dies(raws: list[reading.Raw], strict: bool, source: str) -> list[object]:
    os._exit(1)


def test_when_the_worker_dies_the_rest_is_checked_in_line_with_the_same_outcomes(
    lines, monkeypatch
):
    with Checks(strict=False, source="", workers=0) as in_line:
        expected = _outcomes(in_line.drafts(reading.read(lines, 0)))
    monkeypatch.setattr(checks, "_check_all", _dies)

    with Checks(strict=False, source="", workers=1) as worker:
        found = _outcomes(worker.drafts(reading.read(lines, 0)))
        assert worker.workers.count == 0

    assert found == expected


def test_a_refusal_from_the_worker_keeps_its_field_code_and_outcome(lines):
    with Checks(strict=True, source="", workers=1) as worker:
        refusals = [o for _, o in worker.drafts(reading.read(lines, 0)) if isinstance(o, Refusal)]

    assert {(r.field, r.code, r.outcome) for r in refusals} >= {
        ("Patient.name", "required", "refused"),
        ("Encounter.class", "invalid", "refused"),
        ("resource", "not_json", "refused"),
        ("resourceType", "unsupported_type", "unsupported"),
    }


def test_lines_parsed_in_the_worker_come_back_as_resources_parsed_in_line(lines):
    with Checks(strict=False, source="lab", workers=0) as in_line:
        expected = [(raw, outcome) for raw, outcome in in_line.drafts(reading.read(lines, 0))]
    with Checks(strict=False, source="lab", workers=1) as worker:
        found = list(worker.drafts(reading.read(lines, 0, parse=False)))
        assert worker.workers.started

    assert [raw for raw, _ in found] == [raw for raw, _ in expected]
    assert _outcomes(iter(found)) == _outcomes(iter(expected))
    assert all(o.raw is raw for raw, o in found if isinstance(o, Draft))
