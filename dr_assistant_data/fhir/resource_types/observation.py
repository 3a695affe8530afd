"""Observation: a vital sign (``uow.vital_signs``) of the FHIR vital-signs category, one
of ``vocabulary.VITAL_SIGNS`` by its LOINC code, or a blood pressure panel (85354-9)
whose components become rows sharing ``panel_id``. Any other Observation (a laboratory
result, a survey) is reported ``unsupported`` with the element that says why.

The vital signs a clinical note records in its content go out too, in the patient's
record, tagged ``codes.NOTE_VITALS_TAG`` with ids derived from the note: the note holds
them, so an import skips them (``held_by_note``) rather than writing them twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ...errors import ValidationError
from ...relational.models import VitalSign
from ...relational.rules.validation import columns_of
from ...relational.vocabulary import (
    BLOOD_PRESSURE_PANEL,
    OBSERVATION_STATUSES,
    VITAL_SIGN_KINDS,
    VITAL_SIGNS,
)
from .. import codes
from ..elements import Draft, clinic_code, codings, fhir_code, moment, reference_to
from ..outbound import JSON, meta, reference, resource, when
from ..outcomes import (
    CREATED,
    HELD_BY_NOTE,
    INVALID,
    LINKED,
    NOT_KEPT,
    REQUIRED,
    SKIPPED,
    UNSUPPORTED,
    UNSUPPORTED_CODE,
    UPDATED,
    Refusal,
)
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import Resolved, Run, Simple, Written, chart_writer

KEPT = (
    *("identifier", "status", "category", "code", "subject", "encounter"),
    *("effectiveDateTime", "effectivePeriod", "valueQuantity", "component"),
)
ESSENTIAL = frozenset(
    {"status", "category", "code", "subject", "effectiveDateTime", "effectivePeriod"}
    | {"valueQuantity", "component"}
)
PATHS = {
    "patient_id": "Observation.subject",
    "encounter_id": "Observation.encounter",
    "kind": "Observation.code",
    "code": "Observation.code",
    "code_system": "Observation.code",
    "code_display": "Observation.code",
    "value": "Observation.valueQuantity",
    "unit": "Observation.valueQuantity",
    "effective_at": "Observation.effectiveDateTime",
    "status": "Observation.status",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""
FINER = ("code", "code_system", "code_display")
"""A reading's own coding, finer than its kind (an oral temperature)."""
KIND_OF = {code: kind for kind, (code, _) in VITAL_SIGNS.items()}
VITAL_SIGNS_CATEGORY = "vital-signs"
NOTE_VITALS = uuid.UUID("5f0c8d2e-3b7a-4e51-9a0d-2c6f1e4b8a93")
"""The namespace of the ids of the Observations exported from notes (``uuid5``)."""


def build(raw: Raw, o: Any, keys: list[str]) -> Draft:
    tags = ((raw.resource or {}).get("meta") or {}).get("tag") or []
    if codes.NOTE_VITALS_TAG in tags:
        raise Refusal("Observation.meta.tag", HELD_BY_NOTE, SKIPPED)
    if not any(code == VITAL_SIGNS_CATEGORY for c in o.category or [] for _, code in codings(c)):
        raise Refusal("Observation.category", UNSUPPORTED_CODE, UNSUPPORTED)
    effective = o.effectiveDateTime or (o.effectivePeriod.start if o.effectivePeriod else None)
    common = {
        "status": clinic_code(o.status, OBSERVATION_STATUSES, "Observation.status"),
        "effective_at": moment(effective, "Observation.effectiveDateTime"),
    }
    if common["effective_at"] is None:
        raise Refusal("Observation.effectiveDateTime", REQUIRED)
    refs = {"patient_id": reference_to(o.subject, "Observation.subject", "Patient")}
    optional: frozenset[str] = frozenset()
    if o.encounter is not None:
        refs["encounter_id"] = reference_to(o.encounter, "Observation.encounter", "Encounter")
        optional = frozenset({"encounter_id"})
    dropped: list[tuple[str, str]] = []
    if (codes.LOINC, BLOOD_PRESSURE_PANEL[0]) in codings(o.code):
        measured = []
        for index, component in enumerate(o.component or []):
            path = f"Observation.component[{index}]"
            reading = _measured(component.code, component.valueQuantity, path, dropped)
            if reading is None:
                dropped.append((path, NOT_KEPT))
            else:
                measured.append(reading)
        if not measured:
            raise Refusal("Observation.component", REQUIRED)
        measured.sort(key=lambda reading: VITAL_SIGN_KINDS.index(reading["kind"]))
        extra = {"components": [common | m for m in measured], "panel_id": uuid.uuid4()}
        return Draft(raw, "Observation", {}, keys, refs, optional, extra, dropped)
    one = _measured(o.code, o.valueQuantity, "Observation", dropped)
    if one is None:
        raise Refusal("Observation.code", UNSUPPORTED_CODE, UNSUPPORTED)
    extra = {"components": [common | one]}
    return Draft(raw, "Observation", {}, keys, refs, optional, extra, dropped)


def _measured(
    concept: Any, quantity: Any, path: str, dropped: list[tuple[str, str]]
) -> dict[str, Any] | None:
    """The vital sign ``concept`` codes and its value, as the layer's rules accept them
    (``path``: the element holding both); ``None`` when it is none of the nine kinds.

    A value or unit the rules refuse refuses the resource, a blood pressure panel whole:
    a diastolic reading without its systolic would read as a blood pressure that was
    not taken. A finer coding they refuse is dropped, the kind being the LOINC code's."""
    loinc = [code for system, code in codings(concept) if system == codes.LOINC]
    kind = next((KIND_OF[code] for code in loinc if code in KIND_OF), None)
    if kind is None:
        return None
    if quantity is None or quantity.value is None:
        raise Refusal(f"{path}.valueQuantity", REQUIRED)
    base = VITAL_SIGNS[kind][0]
    finer = next((c for c in concept.coding if c.code and c.code != base), None)
    reading = {
        "kind": kind,
        "value": float(quantity.value),
        "unit": quantity.code or quantity.unit or VITAL_SIGNS[kind][1],
        "code": finer.code if finer else None,
        "code_system": finer.system if finer else None,
        "code_display": finer.display if finer else None,
    }
    columns = columns_of(VitalSign)
    for name in ("value", "unit", *FINER):
        try:
            columns[name].check.clean(reading[name], name)
        except ValidationError:
            if name not in FINER:
                raise Refusal(f"{path}.valueQuantity", INVALID) from None
            dropped.append((f"{path}.code", INVALID))
            return reading | dict.fromkeys(FINER)
    return reading


# -- writing: a row per measurement, one outcome per resource -------------------------------


def _panel_id(draft: Draft) -> dict[str, Any]:
    return {"panel_id": draft.extra["panel_id"]} if "panel_id" in draft.extra else {}


WRITER = Simple("vital_signs", "vital_signs", PATHS, create_only=_panel_id, subject="patient_id")
_write_rows = chart_writer(WRITER)
_PRECEDENCE = (CREATED, UPDATED, LINKED, SKIPPED)


def write(run: Run, items: list[Resolved]) -> Written:
    """Each measurement of each resource written as its own row, the first (in kind
    order: systolic before diastolic) known by the resource's keys, the others by its
    keys and their kind; the resource's outcome is its first refusal, else the strongest
    of its rows' (created, updated, linked, skipped)."""
    rows: list[Resolved] = []
    owner: dict[int, int] = {}
    for index, item in enumerate(items):
        draft = item.draft
        for position, fields in enumerate(draft.extra["components"]):
            keys = [f"{key}|{fields['kind']}" for key in draft.keys] if position else draft.keys
            one = Draft(draft.raw, "Observation", fields, keys, draft.refs, extra=draft.extra)
            owner[len(rows)] = index
            rows.append(Resolved(one, item.ids))
    outcomes: dict[int, list[str | Refusal]] = {index: [] for index in range(len(items))}
    index_of = {id(row): n for n, row in enumerate(rows)}
    for written, outcome in _write_rows(run, rows):
        outcomes[owner[index_of[id(written)]]].append(outcome)
    for index, item in enumerate(items):
        yield item, _folded(outcomes[index])


def _in_order(readings: list[Any]) -> list[Any]:
    """A panel's readings (rows) in kind order: systolic first, the one naming it."""
    return sorted(readings, key=lambda reading: VITAL_SIGN_KINDS.index(reading.kind))


def _folded(outcomes: list[str | Refusal]) -> str | Refusal:
    refused = next((o for o in outcomes if isinstance(o, Refusal)), None)
    if refused is not None:
        return refused
    return next(o for o in _PRECEDENCE if o in outcomes)


# -- out ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A measurement as an Observation holds it (a ``VitalSign`` row reads the same)."""

    kind: str
    value: float
    unit: str
    code: str | None = None
    code_system: str | None = None
    code_display: str | None = None


def _code(reading: Any) -> JSON:
    coding = [{"system": codes.LOINC, "code": VITAL_SIGNS[reading.kind][0]}]
    if reading.code:
        coding.append(
            {"system": reading.code_system, "code": reading.code, "display": reading.code_display}
        )
    return {"coding": coding, "text": reading.kind.replace("_", " ")}


def _quantity(reading: Any) -> JSON:
    unit = reading.unit
    return {"value": reading.value, "unit": unit, "system": codes.UCUM, "code": unit}


def observation(
    id: object, first: Any, readings: list[Any], *, status: str = "final", tag: bool = False
) -> JSON:
    """One vital-signs Observation of ``readings`` (two or more: a blood pressure panel),
    taken when and where ``first`` (a row, a note) says."""
    fields: JSON = {
        "resourceType": "Observation",
        "id": str(id),
        "meta": {**meta(first), "tag": [codes.NOTE_VITALS_TAG] if tag else []},
        "status": fhir_code(status),
        "category": [
            {"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": VITAL_SIGNS_CATEGORY}]}
        ],
        "subject": reference("Patient", first.patient_id),
        "encounter": reference("Encounter", first.encounter_id) if first.encounter_id else None,
        "effectiveDateTime": when(getattr(first, "effective_at", None) or first.signed_at),
    }
    if len(readings) == 1:
        fields |= {"code": _code(readings[0]), "valueQuantity": _quantity(readings[0])}
    else:
        code, display = BLOOD_PRESSURE_PANEL
        fields["code"] = {"coding": [{"system": codes.LOINC, "code": code, "display": display}]}
        fields["component"] = [
            {"code": _code(r), "valueQuantity": _quantity(r)} for r in _in_order(readings)
        ]
    return resource(fields)


def outbound(rows: list[Any]) -> JSON:
    """The Observation of a vital sign row, or of the rows of one blood pressure panel
    (its id the first row's, as an import maps it: ``write``)."""
    first = _in_order(rows)[0]
    return observation(first.id, first, rows, status=first.status)


def in_panels(rows: Iterable[Any]) -> Iterator[list[Any]]:
    """``rows`` (a patient's vital signs) grouped as their Observations are."""
    panels: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        if row.panel_id is None:
            yield [row]
        else:
            panels.setdefault(row.panel_id, []).append(row)
    yield from panels.values()


NOTE_READINGS = (
    *("temperature", "heart_rate", "respiratory_rate", "oxygen_saturation"),
    *("weight", "height", "bmi"),
)
"""The vital signs a note holds as single values (its blood pressure is a panel)."""


def from_note(note: Any) -> list[JSON]:
    """The vital signs a note's content records, as tagged vital-signs Observations (ids
    derived from the note's, so an export gives the same ids every time)."""
    objective = note.content.objective if note.content else None
    vitals = objective.vital_signs if objective is not None else None
    if vitals is None:
        return []
    result = []
    for kind in NOTE_READINGS:
        value = getattr(vitals, kind)
        if value is not None:
            reading = Reading(kind, float(value), VITAL_SIGNS[kind][1])
            id = uuid.uuid5(NOTE_VITALS, f"{note.id}|{kind}")
            result.append(observation(id, note, [reading], tag=True))
    pressure = vitals.blood_pressure
    if pressure is not None and pressure.systolic is not None and pressure.diastolic is not None:
        readings = [
            Reading("systolic_bp", float(pressure.systolic), VITAL_SIGNS["systolic_bp"][1]),
            Reading("diastolic_bp", float(pressure.diastolic), VITAL_SIGNS["diastolic_bp"][1]),
        ]
        id = uuid.uuid5(NOTE_VITALS, f"{note.id}|blood_pressure")
        result.append(observation(id, note, readings, tag=True))
    return result


def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
    for row in uow.vital_signs.iterate(order_by="created_at"):
        if not fresh(row):
            continue
        rows = [row]
        if row.panel_id is not None:
            statement = select(VitalSign).where(VitalSign.panel_id == row.panel_id)
            rows = _in_order(list(uow.session.scalars(statement)))
            if rows[0].id != row.id:
                continue  # the panel goes out once, with its first row
        uow.vital_signs.record_chart_read(row.patient_id)
        yield [outbound(rows)]


RESOURCE = ResourceType(
    "Observation",
    rank=9,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=write,
    export=export,
)
