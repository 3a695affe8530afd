"""The layer's records out as FHIR: one patient's record as a document, or everything
(or what changed since a moment) as Bulk Data NDJSON.

Both read through the repositories' chart reads, so with ``AUDIT_READS`` on each patient
whose record goes out has its chart reads audited as if a doctor had opened it: the
document through the timelines' own reads, the bulk export by ``record_chart_read`` for
each record streamed by ``iterate()``.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..errors import NotFoundError
from ..layer import DataLayer
from ..progress import ProgressCallback, Tally
from ..values.clock import utcnow
from . import codes
from .export_rows import PAGE
from .outbound import JSON, reference
from .resource_types import REGISTRY
from .resource_types import allergy_intolerance as allergy_type
from .resource_types import composition as note_type
from .resource_types import condition as condition_type
from .resource_types import encounter as encounter_type
from .resource_types import medication_request as prescription_type
from .resource_types import observation as observation_type
from .resource_types import patient as patient_type
from .resource_types import practitioner as practitioner_type
from .resource_types import service_request as order_type

ENCOUNTERS_SECTION = (codes.LOINC, "46240-8", "History of encounters")
ALLERGIES_SECTION = (codes.LOINC, "48765-2", "Allergies and adverse reactions Document")
PROBLEMS_SECTION = (codes.LOINC, "11450-4", "Problem list - Reported")
VITAL_SIGNS_SECTION = (codes.LOINC, "8716-3", "Vital signs")
BULK_TYPES = tuple(name for name, kind in REGISTRY.items() if kind.export is not None)
"""The resource types a bulk export writes (``ResourceType.export``), in import order."""


def patient_record(uow: Any, patient_id: Any) -> JSON:
    """The patient's record as a FHIR document ``Bundle``: a ``Composition`` whose
    sections list the signed notes (each a ``Composition`` of SOAP sections), the
    prescriptions (a ``MedicationRequest`` per item), the orders (a ``ServiceRequest`` per
    item), the allergies, the problem list, the vital signs (those recorded as such and
    those the signed notes record, tagged as the notes') and the encounters, then every
    resource it names. ``NotFoundError`` when there is no such patient."""
    patient = uow.patients.get(patient_id)
    if patient is None:
        raise NotFoundError("no patients record with that id")
    encounters = list(_pages(uow.encounters, patient.id))
    prescriptions = list(_pages(uow.prescriptions, patient.id))
    orders = list(_pages(uow.orders, patient.id))
    notes = [note for note in _chart(uow.clinical_notes, patient.id) if note.is_signed]
    doctors = {row.doctor_id for row in [*encounters, *prescriptions, *orders]}
    doctors |= {uuid.UUID(str(note.signed_by)) for note in notes if note.signed_by}
    practitioners = uow.users.get_many(sorted(doctors, key=str)) if doctors else []
    vital_signs = _chart(uow.vital_signs, patient.id)
    parts: dict[str, list[JSON]] = {
        "notes": [note_type.outbound(note, transcript=False) for note in notes],
        "medications": [
            r for row in prescriptions for r in prescription_type.outbound(row, row.items)
        ],
        "orders": [r for row in orders for r in order_type.outbound(row, row.items)],
        "allergies": [allergy_type.outbound(row) for row in _chart(uow.allergies, patient.id)],
        "problems": [condition_type.outbound(row) for row in _chart(uow.conditions, patient.id)],
        "vital_signs": [
            *map(observation_type.outbound, observation_type.in_panels(vital_signs)),
            *(r for note in notes for r in observation_type.from_note(note)),
        ],
        "encounters": [encounter_type.outbound(row) for row in encounters],
    }
    composition = _record_composition(patient, encounters, parts)
    resources = [
        composition,
        patient_type.outbound(patient),
        *map(practitioner_type.outbound, practitioners),
        *parts["encounters"],
        *parts["notes"],
        *parts["medications"],
        *parts["orders"],
        *parts["allergies"],
        *parts["problems"],
        *parts["vital_signs"],
    ]
    bundle_id = str(uuid.uuid4())
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "identifier": {"system": f"{codes.BASE}/sid/bundle", "value": bundle_id},
        "type": "document",
        "timestamp": utcnow().isoformat(),
        "entry": [{"fullUrl": _url(r), "resource": r} for r in resources],
    }


def _record_composition(patient: Any, encounters: list[Any], parts: dict[str, list[JSON]]) -> JSON:
    sections = [
        ((codes.SNOMED, *codes.ABDM_CONSULTATION), parts["notes"]),
        ((codes.SNOMED, *codes.ABDM_MEDICATIONS_SECTION), parts["medications"]),
        ((codes.SNOMED, *codes.ABDM_ORDERS_SECTION), parts["orders"]),
        (ALLERGIES_SECTION, parts["allergies"]),
        (PROBLEMS_SECTION, parts["problems"]),
        (VITAL_SIGNS_SECTION, parts["vital_signs"]),
        (ENCOUNTERS_SECTION, parts["encounters"]),
    ]
    latest = max(encounters, key=lambda row: row.start_time, default=None)
    author = (
        reference("Practitioner", latest.doctor_id)
        if latest is not None
        else {"display": "Dr. Assistant"}
    )
    index: JSON = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "status": "final",
        "type": {"coding": [_coding(codes.SNOMED, *codes.RECORD_TYPE)]},
        "subject": reference("Patient", patient.id),
        "date": utcnow().isoformat(),
        "author": [author],
        "title": "Patient record",
        "section": [
            {
                "title": display,
                "code": {"coding": [_coding(system, code, display)]},
                "entry": [{"reference": _url(resource)} for resource in resources],
            }
            for (system, code, display), resources in sections
            if resources
        ],
    }
    if latest is not None:
        index["encounter"] = reference("Encounter", latest.id)
    return index


def _coding(system: str, code: str, display: str) -> JSON:
    return {"system": system, "code": code, "display": display}


def _url(resource: JSON) -> str:
    return f"{codes.BASE}/{resource['resourceType']}/{resource['id']}"


def _pages(repository: Any, patient_id: uuid.UUID) -> Iterator[Any]:
    after = None
    while True:
        page = repository.for_patient_page(patient_id, limit=PAGE, after=after)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


def _chart(repository: Any, patient_id: uuid.UUID) -> Iterator[Any]:
    """Every record of the patient in ``repository`` (notes, allergies, problems, vital
    signs), a page at a time."""
    offset = 0
    while batch := repository.for_patient(patient_id, limit=PAGE, offset=offset):
        yield from batch
        offset += len(batch)
        if len(batch) < PAGE:
            return


@dataclass
class ExportReport:
    """Resources written, by type, and the files written."""

    counts: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)

    def as_json(self) -> JSON:
        return {
            "counts": {kind: self.counts[kind] for kind in BULK_TYPES},
            "files": [str(path) for path in self.files],
        }


def export_bulk(
    dl: DataLayer,
    directory: Path,
    *,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> ExportReport:
    """Everything (or what was changed at or after ``since`` and before ``until``, Bulk
    Data's ``_since`` and ``_until``) as ``<Type>.ndjson`` files in
    ``directory``, streamed with ``iterate()``: memory stays flat whatever the size of
    the database. A record is exported whole (a prescription with all its items) when it
    changed; ``iterate`` has no range filter, so older rows are read and passed over."""
    directory.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    tally = Tally(progress, every=1000)
    with dl.unit_of_work(actor=actor) as uow, _Files(directory, report) as files:

        def fresh(row: Any) -> bool:
            changed: datetime = row.updated_at
            return (since is None or changed >= since) and (until is None or changed < until)

        def written(kind: str, resources: list[JSON]) -> None:
            files.write(kind, resources)
            tally.advance(len(resources))

        for kind, resource_type in REGISTRY.items():
            for resources in resource_type.export(uow, fresh) if resource_type.export else ():
                written(kind, resources)
    tally.finish()
    return report


class _Files:
    """One NDJSON file per resource type, opened when its first resource comes."""

    def __init__(self, directory: Path, report: ExportReport) -> None:
        self.directory = directory
        self.report = report
        self.open: dict[str, IO[str]] = {}

    def __enter__(self) -> _Files:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in self.open.values():
            stream.close()

    def write(self, kind: str, resources: list[JSON]) -> None:
        if kind not in self.open:
            path = self.directory / f"{kind}.ndjson"
            self.open[kind] = path.open("w", encoding="utf-8")
            self.report.files.append(path)
        stream = self.open[kind]
        for resource in resources:
            stream.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.report.counts[kind] += len(resources)
