"""AllergyIntolerance: one entry of the patient's allergy list (``uow.allergies``), whose
active entries ``Patient.allergies`` names; the ``Patient`` resource carries no allergy,
so the list travels only here and is never written twice.

A refuted or entered-in-error allergy is kept as such and never shown as active; an
entered-in-error one has no clinical status, as FHIR requires, in and out. A resource
without a clinical status that is neither refuted nor entered in error is kept as active:
an allergy the file does not rule out stays in front of the doctor. A category, type,
criticality or reaction severity the clinic has no code for is dropped and listed, never
the allergy: losing an allergy over its criticality is the worse harm (``strict`` refuses
it instead).
"""

from __future__ import annotations

from typing import Any

from ...relational.models import Allergy
from ...relational.vocabulary import (
    ALLERGY_CATEGORIES,
    ALLERGY_CLINICAL_STATUSES,
    ALLERGY_CRITICALITIES,
    ALLERGY_TYPES,
    ALLERGY_VERIFICATION_STATUSES,
    NOT_ALLERGIC,
    REACTION_SEVERITIES,
)
from .. import codes
from ..elements import (
    Draft,
    concept_code,
    fhir_code,
    first_coding,
    optional_code,
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
    *("identifier", "clinicalStatus", "verificationStatus", "type", "category"),
    *("criticality", "code", "patient", "encounter", "onsetDateTime", "recordedDate"),
    "reaction",
)
ESSENTIAL = frozenset({"code", "patient", "clinicalStatus", "verificationStatus"})
PATHS = {
    "patient_id": "AllergyIntolerance.patient",
    "encounter_id": "AllergyIntolerance.encounter",
    "substance": "AllergyIntolerance.code",
    "substance_code": "AllergyIntolerance.code",
    "substance_system": "AllergyIntolerance.code",
    "category": "AllergyIntolerance.category",
    "allergy_type": "AllergyIntolerance.type",
    "criticality": "AllergyIntolerance.criticality",
    "clinical_status": "AllergyIntolerance.clinicalStatus",
    "verification_status": "AllergyIntolerance.verificationStatus",
    "reactions": "AllergyIntolerance.reaction",
    "onset_at": "AllergyIntolerance.onsetDateTime",
    "recorded_at": "AllergyIntolerance.recordedDate",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""
REACTION = frozenset({"manifestation", "severity", "description", "onset"})
"""The parts of a reaction kept; the others (its substance, route, note) are listed."""
CHECKED = (
    Allergy,
    {
        "substance_code": "AllergyIntolerance.code",
        "substance_system": "AllergyIntolerance.code",
        "reactions": "AllergyIntolerance.reaction",
    },
)


def build(raw: Raw, a: Any, keys: list[str]) -> Draft:
    substance = text_of(a.code)
    if not substance:
        raise Refusal("AllergyIntolerance.code", REQUIRED)
    verification = concept_code(
        a.verificationStatus, ALLERGY_VERIFICATION_STATUSES, "AllergyIntolerance.verificationStatus"
    )
    clinical = concept_code(
        a.clinicalStatus, ALLERGY_CLINICAL_STATUSES, "AllergyIntolerance.clinicalStatus"
    )
    if verification == "entered_in_error":
        clinical = None
    elif clinical is None and verification not in NOT_ALLERGIC:
        clinical = "active"
    coded = first_coding(a.code)
    dropped: list[tuple[str, str]] = []
    fields = {
        "substance": substance,
        "substance_code": coded["code"],
        "substance_system": coded["system"],
        "category": optional_code(
            a.category[0] if a.category else None,
            ALLERGY_CATEGORIES,
            "AllergyIntolerance.category[0]",
            dropped,
        ),
        "allergy_type": optional_code(a.type, ALLERGY_TYPES, "AllergyIntolerance.type", dropped),
        "criticality": optional_code(
            a.criticality, ALLERGY_CRITICALITIES, "AllergyIntolerance.criticality", dropped
        ),
        "clinical_status": clinical,
        "verification_status": verification,
        "reactions": [_reaction(r, i, dropped) for i, r in enumerate(a.reaction or [])],
        "onset_at": optional_moment(a.onsetDateTime, "AllergyIntolerance.onsetDateTime", dropped),
        "recorded_at": optional_moment(a.recordedDate, "AllergyIntolerance.recordedDate", dropped),
    }
    refs = {"patient_id": reference_to(a.patient, "AllergyIntolerance.patient", "Patient")}
    optional: frozenset[str] = frozenset()
    if a.encounter is not None:
        refs["encounter_id"] = reference_to(
            a.encounter, "AllergyIntolerance.encounter", "Encounter"
        )
        optional = frozenset({"encounter_id"})
    held = {"reaction": dict.fromkeys(range(len(a.reaction or [])), REACTION)}
    return Draft(
        raw, "AllergyIntolerance", fields, keys, refs, optional, dropped=dropped, held=held
    )


def _reaction(reaction: Any, index: int, dropped: list[tuple[str, str]]) -> dict[str, Any]:
    path = f"AllergyIntolerance.reaction[{index}]"
    return {
        "manifestations": [first_coding(m) for m in reaction.manifestation or []],
        "severity": optional_code(
            reaction.severity, REACTION_SEVERITIES, f"{path}.severity", dropped
        ),
        "description": reaction.description,
        "onset_at": when(optional_moment(reaction.onset, f"{path}.onset", dropped)),
    }


def _clinical_status(row: Any) -> str | None:
    """None for an entered-in-error record, whatever it holds: FHIR forbids one then."""
    return None if row.verification_status == "entered_in_error" else row.clinical_status


def outbound(row: Any) -> JSON:
    fields = {
        "resourceType": "AllergyIntolerance",
        "id": str(row.id),
        "meta": meta(row),
        "clinicalStatus": status_concept(codes.ALLERGY_CLINICAL, _clinical_status(row)),
        "verificationStatus": status_concept(codes.ALLERGY_VERIFICATION, row.verification_status),
        "type": fhir_code(row.allergy_type),
        "category": [row.category] if row.category else [],
        "criticality": fhir_code(row.criticality),
        "code": concept(row.substance_system, row.substance_code, row.substance),
        "patient": reference("Patient", row.patient_id),
        "encounter": reference("Encounter", row.encounter_id) if row.encounter_id else None,
        "onsetDateTime": when(row.onset_at),
        "recordedDate": when(row.recorded_at),
        "reaction": [
            {
                "manifestation": [
                    concept(m.get("system"), m.get("code"), m.get("display"))
                    for m in reaction.get("manifestations") or []
                ],
                "severity": reaction.get("severity"),
                "description": reaction.get("description"),
                "onset": reaction.get("onset_at"),
            }
            for reaction in row.reactions or []
        ],
    }
    return resource(fields)


WRITER = Simple("allergies", "allergies", PATHS, subject="patient_id")
RESOURCE = ResourceType(
    "AllergyIntolerance",
    rank=7,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=chart_writer(WRITER),
    checked=CHECKED,
    export=one_resource_each("allergies", outbound),
)
