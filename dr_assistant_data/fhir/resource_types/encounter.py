"""Encounter: a visit of a patient to a doctor; its subject never changes once written."""

from __future__ import annotations

from typing import Any

from ...relational.models import Encounter
from .. import codes
from ..elements import Draft, codings, first_coding, moment, reference_to, status_in, text_of
from ..export_rows import one_resource_each
from ..outbound import JSON, concept, meta, reference, resource, when
from ..outcomes import NOT_KEPT, REQUIRED, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import Simple, simple_writer

KEPT = (
    *("identifier", "status", "class", "type", "subject", "participant", "period"),
    "reasonCode",
)
ESSENTIAL = frozenset({"status", "class", "subject", "participant", "period"})
PARTICIPANT = frozenset({"type", "individual"})
CONCEPT = frozenset({"coding", "text"})
"""The parts kept of the doctor's participant, the first type and the reason read; the
other participants, types and reasons are listed as dropped."""
CHECKED = (
    Encounter,
    {
        "chief_complaint": "Encounter.reasonCode",
        "type_code": "Encounter.type",
        "type_system": "Encounter.type",
        "type_display": "Encounter.type",
    },
)

PATHS = {
    "encounter_type": "Encounter.class",
    "status": "Encounter.status",
    "start_time": "Encounter.period.start",
    "end_time": "Encounter.period.end",
    "chief_complaint": "Encounter.reasonCode",
    "type_code": "Encounter.type",
    "type_system": "Encounter.type",
    "type_display": "Encounter.type",
    "patient_id": "Encounter.subject",
    "doctor_id": "Encounter.participant",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""


def _performer(participants: Any) -> int | None:
    """The index of the encounter's doctor: its primary performer, else its attender,
    else the first participant who is a practitioner."""
    people = [(i, p) for i, p in enumerate(participants or []) if p.individual is not None]
    for wanted in ("PPRF", "ATND"):
        for index, person in people:
            if any(code == wanted for kind in person.type or [] for _, code in codings(kind)):
                return index
    return people[0][0] if people else None


def build(raw: Raw, e: Any, keys: list[str]) -> Draft:
    kind = status_in(
        codes.ENCOUNTER_CLASS, e.class_fhir.code if e.class_fhir else None, "Encounter.class"
    )
    start = moment(e.period.start if e.period else None, "Encounter.period.start")
    if start is None:
        raise Refusal("Encounter.period.start", REQUIRED)
    end = moment(e.period.end, "Encounter.period.end")
    kind_of_visit = first_coding(e.type[0] if e.type else None)
    fields = {
        "encounter_type": kind,
        "type_code": kind_of_visit["code"],
        "type_system": kind_of_visit["system"],
        "type_display": kind_of_visit["display"],
        "status": status_in(codes.ENCOUNTER_STATUS, e.status, "Encounter.status"),
        "start_time": start,
        "end_time": end if end is not None and end >= start else None,
        "chief_complaint": next((t for t in map(text_of, e.reasonCode or []) if t), None),
    }
    performer = _performer(e.participant)
    refs = {
        "patient_id": reference_to(e.subject, "Encounter.subject", "Patient"),
        "doctor_id": reference_to(
            e.participant[performer].individual if performer is not None else None,
            "Encounter.participant",
            "Practitioner",
        ),
    }
    reason = next((i for i, concept in enumerate(e.reasonCode or []) if text_of(concept)), None)
    held = {
        "participant": {performer: PARTICIPANT} if performer is not None else {},
        "type": {0: CONCEPT},
        "reasonCode": {reason: CONCEPT} if reason is not None else {},
    }
    draft = Draft(raw, "Encounter", fields, keys, refs, held=held)
    if end is not None and end < start:
        draft.dropped.append(("Encounter.period.end", NOT_KEPT))  # the schema: not before it
    return draft


def outbound(row: Any) -> JSON:
    participant_type = {
        "system": codes.PARTICIPATION,
        "code": "PPRF",
        "display": "primary performer",
    }
    fields = {
        "resourceType": "Encounter",
        "id": str(row.id),
        "meta": meta(row),
        "status": codes.ENCOUNTER_STATUS_OUT[row.status],
        "class": {"system": codes.ACT_CODE, "code": codes.ENCOUNTER_CLASS_OUT[row.encounter_type]},
        "type": [concept(row.type_system, row.type_code, row.type_display)],
        "subject": reference("Patient", row.patient_id),
        "participant": [
            {
                "type": [{"coding": [participant_type]}],
                "individual": reference("Practitioner", row.doctor_id),
            }
        ],
        "period": {"start": when(row.start_time), "end": when(row.end_time)},
        "reasonCode": [{"text": row.chief_complaint}] if row.chief_complaint else [],
    }
    return resource(fields)


WRITER = Simple("encounters", "encounters", PATHS, subject="patient_id")
RESOURCE = ResourceType(
    "Encounter",
    rank=2,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=simple_writer(WRITER),
    referable_as="encounters",
    checked=CHECKED,
    export=one_resource_each("encounters", outbound),
)
