"""The layer's records as FHIR R4 resources (JSON), shaped as ABDM's records are.

Each record becomes the resources an importer reads back into the same record: every
field the schema holds has its element (docs/how-to/fhir.md), statuses FHIR has no exact
code for travel in the layer's own extension, and references are ``Type/<id>`` with the
layer's ids, which an import into this layer resolves to the same rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

from . import codes, notes

JSON = dict[str, Any]


def reference(kind: str, id: object) -> JSON:
    return {"reference": f"{kind}/{id}"}


def patient(row: Any) -> JSON:
    identifiers = []
    if row.abha_id:
        identifiers.append(
            {
                "type": {"text": "ABHA number"},
                "system": codes.ABHA_SYSTEM,
                "value": row.abha_id,
            }
        )
    if row.mrn:
        mr = {"system": codes.V2_0203, "code": "MR", "display": "Medical record number"}
        identifiers.append({"type": {"coding": [mr]}, "system": codes.MRN_SYSTEM, "value": row.mrn})
    telecom = [
        {"system": system, "value": value}
        for system, value in (("phone", row.phone), ("email", row.email))
        if value
    ]
    fields: JSON = {
        "resourceType": "Patient",
        "id": str(row.id),
        "meta": _meta(row),
        "identifier": identifiers,
        "active": row.status != "inactive",
        "name": [{"use": "official", "family": row.last_name, "given": [row.first_name]}],
        "telecom": telecom,
        "gender": row.gender,
        "birthDate": row.date_of_birth.isoformat(),
        "deceasedBoolean": row.status == "deceased",
        "address": [_address(row.address)] if row.address else [],
        "contact": [_contact(row.emergency_contact)] if row.emergency_contact else [],
    }
    return resource(fields)


def _address(address: dict[str, Any]) -> JSON:
    return {
        "line": address.get("line"),
        "city": address.get("city"),
        "district": address.get("district"),
        "state": address.get("state"),
        "postalCode": address.get("postal_code"),
        "country": address.get("country"),
    }


def _contact(contact: dict[str, Any]) -> JSON:
    emergency = {"system": codes.V2_0131, "code": "C", "display": "Emergency Contact"}
    return {
        "relationship": [{"coding": [emergency], "text": contact.get("relationship")}],
        "name": {"text": contact.get("name")},
        "telecom": [{"system": "phone", "value": contact.get("phone")}],
    }


def practitioner(row: Any) -> JSON:
    telecom = [
        {"system": system, "value": value}
        for system, value in (("phone", row.phone), ("email", row.email))
        if value and not (system == "email" and value.endswith("@practitioners.invalid"))
    ]
    fields = {
        "resourceType": "Practitioner",
        "id": str(row.id),
        "meta": _meta(row),
        "active": row.status == "active",
        "name": [{"text": row.full_name}],
        "telecom": telecom,
        "qualification": [{"code": {"text": row.specialty}}] if row.specialty else [],
    }
    return resource(fields)


def encounter(row: Any) -> JSON:
    participant_type = {
        "system": codes.PARTICIPATION,
        "code": "PPRF",
        "display": "primary performer",
    }
    fields = {
        "resourceType": "Encounter",
        "id": str(row.id),
        "meta": _meta(row),
        "status": codes.ENCOUNTER_STATUS_OUT[row.status],
        "class": {"system": codes.ACT_CODE, "code": codes.ENCOUNTER_CLASS_OUT[row.encounter_type]},
        "subject": reference("Patient", row.patient_id),
        "participant": [
            {
                "type": [{"coding": [participant_type]}],
                "individual": reference("Practitioner", row.doctor_id),
            }
        ],
        "period": {"start": _when(row.start_time), "end": _when(row.end_time)},
        "reasonCode": [{"text": row.chief_complaint}] if row.chief_complaint else [],
    }
    return resource(fields)


def medication_requests(row: Any, items: list[Any]) -> list[JSON]:
    """One ``MedicationRequest`` per item of the prescription ``row``, grouped by its id."""
    dispense_common = {
        "validityPeriod": {"start": _when(row.valid_from), "end": _when(row.valid_until)},
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
            "meta": _meta(row),
            "extension": extensions,
            "status": codes.PRESCRIPTION_STATUS_OUT[row.status],
            "intent": "order",
            "medicationCodeableConcept": {"text": item.medication_name},
            "subject": reference("Patient", row.patient_id),
            "encounter": reference("Encounter", row.encounter_id),
            "authoredOn": _when(row.signed_at),
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


def service_requests(row: Any, items: list[Any]) -> list[JSON]:
    """One ``ServiceRequest`` per item of the order ``row``, grouped by its id
    (``requisition``)."""
    category = {
        "system": codes.SNOMED,
        "code": codes.ORDER_CATEGORY_OUT[row.order_type],
        "display": codes.ORDER_CATEGORY_DISPLAY[row.order_type],
    }
    resources = []
    for item in items:
        fields = {
            "resourceType": "ServiceRequest",
            "id": str(item.id),
            "meta": _meta(row),
            "extension": [{"url": codes.STATUS_EXTENSION, "valueCode": row.status}],
            "requisition": {"system": codes.ORDER_SYSTEM, "value": str(row.id)},
            "status": codes.ORDER_STATUS_OUT[row.status],
            "intent": "order",
            "category": [{"coding": [category]}],
            "code": {
                "coding": [{"code": item.item_code}] if item.item_code else [],
                "text": item.item_name,
            },
            "subject": reference("Patient", row.patient_id),
            "encounter": reference("Encounter", row.encounter_id),
            "occurrenceDateTime": _when(row.completed_at),
            "authoredOn": _when(row.ordered_at),
            "requester": reference("Practitioner", row.doctor_id),
            "performer": [
                {"identifier": {"system": codes.PROVIDER_SYSTEM, "value": row.provider_id}}
            ]
            if row.provider_id
            else [],
            "note": [{"text": row.notes}] if row.notes else [],
            "patientInstruction": item.instructions,
        }
        resources.append(resource(fields))
    return resources


def note_composition(note: Any, *, transcript: bool) -> JSON:
    """A clinical note as a ``Composition``: its SOAP content as sections (``notes.py``);
    the raw text too when ``transcript`` (exports that move a clinic; a record shared
    with another facility carries the note, not the dictation)."""
    code, display = codes.NOTE_TYPE_OUT[note.note_type]
    signed = note.status in ("signed", "amended")
    content = note.content.to_mongo().to_dict() if note.content is not None else {}
    fields = {
        "resourceType": "Composition",
        "id": str(note.id),
        "meta": {"lastUpdated": _when(note.updated_at)},
        "status": {"draft": "preliminary", "signed": "final", "amended": "amended"}[note.status],
        "type": {"coding": [{"system": codes.LOINC, "code": code, "display": display}]},
        "subject": reference("Patient", note.patient_id),
        "encounter": reference("Encounter", note.encounter_id),
        "date": _when(note.updated_at),
        "author": [reference("Practitioner", note.doctor_id)],
        "title": display,
        "attester": [
            {
                "mode": "legal",
                "time": _when(note.signed_at),
                "party": reference("Practitioner", note.signed_by),
            }
        ]
        if signed and note.signed_by
        else [],
        "section": notes.sections(content, note.raw_transcription if transcript else None),
    }
    return resource(fields)


def _meta(row: Any) -> JSON:
    return {"lastUpdated": _when(row.updated_at)}


def _when(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # documents come back naive on some stores: UTC
    return value.isoformat()


def resource(fields: JSON) -> JSON:
    """A resource's JSON from ``fields``, empty elements left out (``pruned``)."""
    return cast(JSON, pruned(fields))


def pruned(value: Any) -> Any:
    """Without empty elements: FHIR forbids empty strings, arrays and objects."""
    if isinstance(value, dict):
        kept = {key: pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        return [item for item in map(pruned, value) if item not in (None, "", [], {})]
    return value
