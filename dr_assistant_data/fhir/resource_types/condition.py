"""Condition: one entry of the patient's problem list (``uow.conditions``), coded as the
source coded it (SNOMED CT, ICD-10...) with its statuses, dates and encounter. An
entered-in-error condition has no clinical status, as FHIR requires, in and out."""

from __future__ import annotations

from typing import Any

from ...relational.models import Condition
from ...relational.vocabulary import (
    CLINICAL_STATUSES,
    CONDITION_CATEGORIES,
    CONDITION_VERIFICATION_STATUSES,
)
from .. import codes
from ..elements import (
    Draft,
    clinic_code,
    codings,
    concept_code,
    first_coding,
    optional_moment,
    reference_to,
    text_of,
)
from ..export_rows import one_resource_each
from ..outbound import JSON, concept, meta, reference, resource, status_concept, when
from ..outcomes import REQUIRED, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import Simple, chart_writer

KEPT = (
    *("identifier", "clinicalStatus", "verificationStatus", "category", "code"),
    *("subject", "encounter", "onsetDateTime", "abatementDateTime", "recordedDate"),
)
ESSENTIAL = frozenset({"code", "subject", "clinicalStatus", "verificationStatus"})
PATHS = {
    "patient_id": "Condition.subject",
    "encounter_id": "Condition.encounter",
    "code": "Condition.code",
    "code_system": "Condition.code",
    "display": "Condition.code",
    "category": "Condition.category",
    "clinical_status": "Condition.clinicalStatus",
    "verification_status": "Condition.verificationStatus",
    "onset_at": "Condition.onsetDateTime",
    "abatement_at": "Condition.abatementDateTime",
    "recorded_at": "Condition.recordedDate",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""
CHECKED = (Condition, {"code": "Condition.code", "code_system": "Condition.code"})


def build(raw: Raw, c: Any, keys: list[str]) -> Draft:
    display = text_of(c.code)
    if not display:
        raise Refusal("Condition.code", REQUIRED)
    verification = concept_code(
        c.verificationStatus, CONDITION_VERIFICATION_STATUSES, "Condition.verificationStatus"
    )
    clinical = concept_code(c.clinicalStatus, CLINICAL_STATUSES, "Condition.clinicalStatus")
    category = next((code for kind in c.category or [] for _, code in codings(kind) if code), None)
    coded = first_coding(c.code)
    dropped: list[tuple[str, str]] = []
    onset = optional_moment(c.onsetDateTime, "Condition.onsetDateTime", dropped)
    abatement = optional_moment(c.abatementDateTime, "Condition.abatementDateTime", dropped)
    if onset is not None and abatement is not None and abatement < onset:
        dropped.append(("Condition.abatementDateTime", "invalid"))
        abatement = None
    fields = {
        "code": coded["code"],
        "code_system": coded["system"],
        "display": display,
        "category": clinic_code(category, CONDITION_CATEGORIES, "Condition.category"),
        "clinical_status": None if verification == "entered_in_error" else clinical,
        "verification_status": verification,
        "onset_at": onset,
        "abatement_at": abatement,
        "recorded_at": optional_moment(c.recordedDate, "Condition.recordedDate", dropped),
    }
    refs = {"patient_id": reference_to(c.subject, "Condition.subject", "Patient")}
    optional: frozenset[str] = frozenset()
    if c.encounter is not None:
        refs["encounter_id"] = reference_to(c.encounter, "Condition.encounter", "Encounter")
        optional = frozenset({"encounter_id"})
    return Draft(raw, "Condition", fields, keys, refs, optional, dropped=dropped)


def _clinical_status(row: Any) -> str | None:
    """None for an entered-in-error record, whatever it holds: FHIR forbids one then."""
    return None if row.verification_status == "entered_in_error" else row.clinical_status


def outbound(row: Any) -> JSON:
    category = (
        [{"coding": [{"system": codes.CONDITION_CATEGORY, "code": row.category.replace("_", "-")}]}]
        if row.category
        else []
    )
    fields = {
        "resourceType": "Condition",
        "id": str(row.id),
        "meta": meta(row),
        "clinicalStatus": status_concept(codes.CONDITION_CLINICAL, _clinical_status(row)),
        "verificationStatus": status_concept(codes.CONDITION_VERIFICATION, row.verification_status),
        "category": category,
        "code": concept(row.code_system, row.code, row.display),
        "subject": reference("Patient", row.patient_id),
        "encounter": reference("Encounter", row.encounter_id) if row.encounter_id else None,
        "onsetDateTime": when(row.onset_at),
        "abatementDateTime": when(row.abatement_at),
        "recordedDate": when(row.recorded_at),
    }
    return resource(fields)


WRITER = Simple("conditions", "conditions", PATHS, subject="patient_id")
RESOURCE = ResourceType(
    "Condition",
    rank=8,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=chart_writer(WRITER),
    checked=CHECKED,
    export=one_resource_each("conditions", outbound),
)
