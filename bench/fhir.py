"""FHIR: an NDJSON import against the layer's own ``create_many`` of the same rows, and
the Bulk Data export against the streamed ``iterate`` export it is built on."""

from __future__ import annotations

import json
import operator
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from dr_assistant_data import DataLayer
from dr_assistant_data.fhir import import_files
from dr_assistant_data.fhir.codes import V2_0203
from dr_assistant_data.fhir.exporter import export_bulk

from .volume import export_entities

TARGETS: list[tuple[str, str, Callable[[float, float], bool], float]] = [
    ("fhir_import_vs_create_many", ">=", operator.ge, 0.5),
]


def patients(count: int) -> list[dict[str, Any]]:
    """FHIR Patients as a Bulk Data export of another system would have them."""
    return [
        {
            "resourceType": "Patient",
            "id": f"source-{n}",
            "identifier": [
                {
                    "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                    "system": "https://hospital-a.example/mrn",
                    "value": f"A{n:08d}",
                }
            ],
            "name": [{"use": "official", "family": f"Import{n}", "given": ["Asha"]}],
            "gender": ("female", "male", "other")[n % 3],
            "birthDate": f"{1950 + n % 60}-{1 + n % 12:02d}-{1 + n % 28:02d}",
            "telecom": [
                {"system": "phone", "value": f"+9197{n:08d}"},
                {"system": "email", "value": f"patient{n}@example.in"},
            ],
            "address": [{"city": "Pune", "postalCode": "411001", "country": "IN"}],
        }
        for n in range(count)
    ]


def rows_of(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the import writes for ``resources``, for ``create_many`` to write."""
    return [
        {
            "mrn": r["identifier"][0]["value"],
            "first_name": r["name"][0]["given"][0],
            "last_name": r["name"][0]["family"],
            "date_of_birth": r["birthDate"],
            "gender": r["gender"],
            "phone": r["telecom"][0]["value"],
            "email": r["telecom"][1]["value"],
            "address": {"city": "Pune", "postal_code": "411001", "country": "IN"},
            "status": "active",
        }
        for r in resources
    ]


def _empty(dl: DataLayer) -> None:
    with dl.engine.begin() as connection:
        connection.execute(text("TRUNCATE patients, source_identifiers CASCADE"))


def import_export(dl: DataLayer, *, count: int, batch_size: int) -> dict[str, Any]:
    resources = patients(count)
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as folder:
        source = Path(folder) / "Patient.ndjson"
        source.write_text("".join(json.dumps(r) + "\n" for r in resources))
        rows = rows_of(resources)
        _empty(dl)
        started = time.perf_counter()
        with dl.unit_of_work(actor="bench-import") as uow:
            result = uow.patients.create_many(rows, batch_size=batch_size)
        create_many = time.perf_counter() - started
        assert not result.errors
        _empty(dl)
        started = time.perf_counter()
        report = import_files(dl, [source], actor="bench-import", batch_size=batch_size)
        imported = time.perf_counter() - started
        assert report.counts[("Patient", "created")] == count, report.refusals[:3]
        started = time.perf_counter()
        exported = export_bulk(dl, Path(folder) / "out", actor="bench-export")
        export_s = time.perf_counter() - started
        assert exported.counts["Patient"] == count
        started = time.perf_counter()
        streamed = export_entities(dl, batch_size)
        iterate_s = time.perf_counter() - started
        assert streamed == count
    _empty(dl)
    return {
        "fhir_resources": count,
        "fhir_import_per_s": count / imported,
        "fhir_create_many_per_s": count / create_many,
        "fhir_import_vs_create_many": create_many / imported,
        "fhir_export_rows_per_s": count / export_s,
        "fhir_iterate_rows_per_s": count / iterate_s,
        "fhir_export_vs_iterate": iterate_s / export_s,
    }


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The table of a run of this section alone (``--only fhir``)."""
    return table_rows(results["figures"])


def table_rows(f: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            f"FHIR import {f['fhir_resources']} Patients (NDJSON)",
            f"{f['fhir_import_per_s']:.0f} res/s",
            "create_many, same rows",
            f"{f['fhir_create_many_per_s']:.0f} rows/s",
            f"x{f['fhir_import_vs_create_many']:.2f}",
        ),
        (
            "FHIR Bulk export (Patient.ndjson)",
            f"{f['fhir_export_rows_per_s']:.0f} rows/s",
            "iterate to CSV",
            f"{f['fhir_iterate_rows_per_s']:.0f} rows/s",
            f"x{f['fhir_export_vs_iterate']:.2f}",
        ),
    ]
