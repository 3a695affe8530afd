"""MedicationRequest: one item of a prescription; the resources of one
``groupIdentifier`` are one prescription, which stays within its patient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ...relational.models import Prescription, PrescriptionItem
from .. import codes
from ..elements import (
    Draft,
    annotation_text,
    day,
    first_coding,
    identifier_value,
    moment,
    ordered_item,
    own_status,
    status_in,
    text_of,
)
from ..export_rows import with_items
from ..outbound import JSON, concept, meta, reference, resource, when
from ..outcomes import REQUIRED, UNSUPPORTED_TYPE, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import WithItems, with_items_writer

KEPT = (
    *("identifier", "status", "statusReason", "intent", "medicationCodeableConcept"),
    *("medicationReference", "subject", "encounter", "authoredOn", "requester"),
    *("groupIdentifier", "note", "dosageInstruction", "dispenseRequest", "extension"),
)
ESSENTIAL = frozenset({"status", "medicationCodeableConcept", "subject", "encounter", "extension"})
CHECKED = (
    Prescription,
    {"pharmacy_id": "MedicationRequest.dispenseRequest", "notes": "MedicationRequest.note"},
)
PATHS = {
    "status": "MedicationRequest.status",
    "signed_at": "MedicationRequest.authoredOn",
    "items": "MedicationRequest.dosageInstruction",
    "valid_from": "MedicationRequest.dispenseRequest.validityPeriod",
    "valid_until": "MedicationRequest.dispenseRequest.validityPeriod",
    "pharmacy_id": "MedicationRequest.dispenseRequest.performer",
    "notes": "MedicationRequest.note",
    "encounter_id": "MedicationRequest.encounter",
    "patient_id": "MedicationRequest.subject",
    "doctor_id": "MedicationRequest.requester",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""


def build(raw: Raw, m: Any, keys: list[str]) -> Draft:
    if m.medicationReference is not None:
        raise Refusal("MedicationRequest.medicationReference", UNSUPPORTED_TYPE)
    medication = text_of(m.medicationCodeableConcept)
    if not medication:
        raise Refusal("MedicationRequest.medicationCodeableConcept", REQUIRED)
    status = own_status(m, tuple(codes.PRESCRIPTION_STATUS_OUT)) or status_in(
        codes.PRESCRIPTION_STATUS, m.status, "MedicationRequest.status"
    )
    dose = m.dosageInstruction[0] if m.dosageInstruction else None
    dispense = m.dispenseRequest
    validity = dispense.validityPeriod if dispense is not None else None
    fields = {
        "status": status,
        "signed_at": moment(m.authoredOn, "MedicationRequest.authoredOn"),
        "valid_from": day(validity.start, "MedicationRequest.dispenseRequest")
        if validity
        else None,
        "valid_until": day(validity.end, "MedicationRequest.dispenseRequest") if validity else None,
        "pharmacy_id": identifier_value(dispense.performer if dispense else None),
        "notes": annotation_text(m.note),
    }
    coded = first_coding(m.medicationCodeableConcept)
    item = {
        "medication_name": medication,
        "medication_code": coded["code"],
        "medication_system": coded["system"],
        "dosage": _dosage(dose),
        "frequency": _frequency(dose),
        "duration": _duration(dose, m),
        "quantity": _whole(dispense.quantity.value) if dispense and dispense.quantity else None,
        "refills": dispense.numberOfRepeatsAllowed or 0 if dispense else 0,
        "instructions": dose.patientInstruction if dose is not None else None,
    }
    draft = ordered_item(raw, "MedicationRequest", m, fields, item, keys, m.groupIdentifier)
    as_needed = dose is not None and bool(dose.asNeededBoolean or dose.asNeededCodeableConcept)
    dosage = DOSAGE | AS_NEEDED if item["frequency"] == "as needed" or not as_needed else DOSAGE
    draft.held = {"dosageInstruction": {0: dosage}, "dispenseRequest": {0: DISPENSE}}
    return draft


DOSAGE = frozenset({"text", "doseAndRate", "timing", "patientInstruction"})
AS_NEEDED = frozenset({"asNeededBoolean", "asNeededCodeableConcept"})
"""Kept as the frequency ("as needed") when the timing gives none, and a false flag says
no more than its absence; an as-needed flag beside a timing is listed as dropped."""
DISPENSE = frozenset({"validityPeriod", "quantity", "numberOfRepeatsAllowed", "performer"})
"""The parts of the first dosage line and of the dispense request kept."""


def _whole(value: Any) -> int | None:
    return int(value) if value is not None and float(value).is_integer() else None


def _quantity(quantity: Any) -> str | None:
    if quantity is None or quantity.value is None:
        return None
    unit = quantity.unit or quantity.code
    return f"{quantity.value:g} {unit}" if unit else f"{quantity.value:g}"


def _dosage(dose: Any) -> str:
    if dose is not None and dose.text:
        return str(dose.text)
    for rate in (dose.doseAndRate or []) if dose is not None else []:
        if (text := _quantity(rate.doseQuantity)) is not None:
            return text
    return "as directed"


def _frequency(dose: Any) -> str:
    timing = dose.timing if dose is not None else None
    if timing is not None and (text := text_of(timing.code)):
        return text
    repeat = timing.repeat if timing is not None else None
    if repeat is not None and repeat.frequency and repeat.period and repeat.periodUnit:
        return f"{repeat.frequency} per {repeat.period:g} {repeat.periodUnit}"
    if dose is not None and (dose.asNeededBoolean or dose.asNeededCodeableConcept):
        return "as needed"
    return "as directed"


def _duration(dose: Any, request: Any) -> str | None:
    for extension in request.extension or []:
        if extension.url == codes.DURATION_EXTENSION and extension.valueString:
            return str(extension.valueString)
    repeat = dose.timing.repeat if dose is not None and dose.timing is not None else None
    return _quantity(repeat.boundsDuration) if repeat is not None else None


def outbound(row: Any, items: list[Any]) -> list[JSON]:
    """One ``MedicationRequest`` per item of the prescription ``row``, grouped by its id."""
    dispense_common = {
        "validityPeriod": {"start": when(row.valid_from), "end": when(row.valid_until)},
        "performer": {"identifier": {"system": codes.PHARMACY_SYSTEM, "value": row.pharmacy_id}}
        if row.pharmacy_id
        else None,
    }
    resources = []
    for item in items:
        extensions = [{"url": codes.STATUS_EXTENSION, "valueCode": row.status}]
        if item.duration:
            extensions.append({"url": codes.DURATION_EXTENSION, "valueString": item.duration})
        fields = {
            "resourceType": "MedicationRequest",
            "id": str(item.id),
            "meta": meta(row),
            "extension": extensions,
            "status": codes.PRESCRIPTION_STATUS_OUT[row.status],
            "intent": "order",
            "medicationCodeableConcept": concept(
                item.medication_system, item.medication_code, item.medication_name
            ),
            "subject": reference("Patient", row.patient_id),
            "encounter": reference("Encounter", row.encounter_id),
            "authoredOn": when(row.signed_at),
            "requester": reference("Practitioner", row.doctor_id),
            "groupIdentifier": {"system": codes.PRESCRIPTION_SYSTEM, "value": str(row.id)},
            "note": [{"text": row.notes}] if row.notes else [],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": item.dosage,
                    "timing": {"code": {"text": item.frequency}},
                    "patientInstruction": item.instructions,
                }
            ],
            "dispenseRequest": {
                **dispense_common,
                "quantity": {"value": item.quantity} if item.quantity is not None else None,
                "numberOfRepeatsAllowed": item.refills,
            },
        }
        resources.append(resource(fields))
    return resources


def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
    prescriptions = filter(fresh, uow.prescriptions.iterate(order_by="created_at"))
    for prescription, items in with_items(uow, PrescriptionItem.prescription_id, prescriptions):
        uow.prescriptions.record_chart_read(prescription.patient_id)
        yield outbound(prescription, items)


WRITER = WithItems("prescriptions", "prescriptions", "prescription_items", "groupIdentifier", PATHS)
RESOURCE = ResourceType(
    "MedicationRequest",
    rank=3,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=with_items_writer(WRITER),
    checked=CHECKED,
    export=export,
)
