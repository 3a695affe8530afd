"""FHIR resources checked and turned into the fields of the layer's records.

A resource is first screened as JSON (no ``$``-prefixed or dotted key anywhere, no
string over ``MAX_STRING``, no more than ``MAX_RESOURCE_BYTES`` of text), then the
elements the schema keeps are validated with the ``fhir.resources`` R4B model of its
type (elements the schema drops are not parsed: they cost time and are not stored).

Only a resource without what the schema requires (``ESSENTIAL``: a patient's name, an
encounter's subject...) is refused: it raises ``Refusal(field, code)`` naming the FHIR
element. An optional element that is not valid (the model refuses it, or the layer's
rules would: an email that does not parse) is dropped, and the resource kept without
it; so is an element the schema has no place for, and an extension it does not read.
Each is listed in ``Draft.dropped`` with its element and a reason. With ``strict``, an
invalid optional element refuses the resource instead. A ``modifierExtension`` changes
what the resource means, so a resource with one is refused. Nothing of a value goes
into a refusal or a dropped element.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as ModelError

from ..errors import ValidationError
from ..relational.models import Encounter, Order, Patient, Prescription, User
from ..relational.rules import columns_of
from . import codes, notes
from .identity import Target, identifier_key, own_keys, target
from .outcomes import (
    FORBIDDEN_KEY,
    INVALID,
    NOT_A_RECORD,
    NOT_KEPT,
    REQUIRED,
    SKIPPED,
    TOO_LARGE,
    UNSUPPORTED,
    UNSUPPORTED_CODE,
    UNSUPPORTED_TYPE,
    Refusal,
)
from .reading import MAX_RESOURCE_BYTES, Raw

MAX_STRING = 200_000
KEPT = {
    "Patient": (
        *("identifier", "active", "name", "telecom", "gender", "birthDate"),
        *("deceasedBoolean", "deceasedDateTime", "address", "contact"),
    ),
    "Practitioner": ("identifier", "active", "name", "telecom", "qualification"),
    "Encounter": (
        *("identifier", "status", "class", "subject", "participant", "period", "reasonCode"),
    ),
    "MedicationRequest": (
        *("identifier", "status", "statusReason", "intent", "medicationCodeableConcept"),
        *("medicationReference", "subject", "encounter", "authoredOn", "requester"),
        *("groupIdentifier", "note", "dosageInstruction", "dispenseRequest", "extension"),
    ),
    "ServiceRequest": (
        *("identifier", "requisition", "status", "intent", "category", "code", "subject"),
        *("encounter", "occurrenceDateTime", "authoredOn", "requester", "performer", "note"),
        *("patientInstruction", "extension"),
    ),
    "DocumentReference": (
        *("identifier", "status", "docStatus", "type", "subject", "date", "author"),
        *("content", "context"),
    ),
    "Composition": (
        *("identifier", "status", "type", "subject", "encounter", "date", "author", "title"),
        *("attester", "section"),
    ),
}
"""The elements read from each resource type (with ``resourceType`` and ``id``)."""
ESSENTIAL = {
    "Patient": frozenset({"name", "gender", "birthDate"}),
    "Practitioner": frozenset({"name"}),
    "Encounter": frozenset({"status", "class", "subject", "participant", "period"}),
    "MedicationRequest": frozenset(
        {"status", "medicationCodeableConcept", "subject", "encounter", "extension"}
    ),
    "ServiceRequest": frozenset({"status", "category", "code", "subject", "encounter"}),
    "DocumentReference": frozenset({"type", "subject", "content", "context"}),
    "Composition": frozenset({"status", "type", "subject", "encounter", "section"}),
}
"""The elements whose loss would refuse a resource (the others are dropped when not
valid); ``extension`` where the layer's own extension carries the record's status."""
NOT_REPORTED = frozenset({"resourceType", "id", "meta", "text"})
"""Elements not kept and not listed as dropped: the id and the resource's metadata, and
its narrative (a rendering of the elements themselves)."""
EXTENSIONS_READ = frozenset({codes.STATUS_EXTENSION, codes.DURATION_EXTENSION})
MAX_DROPPED = 20
"""Invalid elements dropped from one resource before it is refused whole."""
CHECKED_FIELDS: dict[str, tuple[type, dict[str, str]]] = {
    "Patient": (
        Patient,
        {
            "phone": "Patient.telecom",
            "email": "Patient.telecom",
            "mrn": "Patient.identifier",
            "abha_id": "Patient.identifier",
            "address": "Patient.address",
            "emergency_contact": "Patient.contact",
        },
    ),
    "Practitioner": (
        User,
        {
            "phone": "Practitioner.telecom",
            "email": "Practitioner.telecom",
            "specialty": "Practitioner.qualification",
        },
    ),
    "Encounter": (Encounter, {"chief_complaint": "Encounter.reasonCode"}),
    "MedicationRequest": (
        Prescription,
        {"pharmacy_id": "MedicationRequest.dispenseRequest", "notes": "MedicationRequest.note"},
    ),
    "ServiceRequest": (
        Order,
        {"provider_id": "ServiceRequest.performer", "notes": "ServiceRequest.note"},
    ),
}
"""Optional record fields checked by the layer's own rules before anything is written:
one that would be refused is dropped (its FHIR element listed) instead."""


@dataclass
class Draft:
    """A resource turned into record fields: ``fields`` to write, ``refs`` still to resolve
    (``{field name: target}``), and the ``keys`` the record is known by."""

    raw: Raw
    resource_type: str
    fields: dict[str, Any]
    keys: list[str]
    refs: dict[str, Target] = field(default_factory=dict)
    optional_refs: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """``(FHIR element, reason)`` of each element left out."""


def draft(raw: Raw, *, strict: bool = False) -> Draft:
    """The ``Draft`` of a resource, or ``Refusal``."""
    if raw.resource is None:
        raise Refusal(raw.field, raw.problem or INVALID)
    kind = raw.resource_type
    if kind not in KEPT:
        raise Refusal("resourceType", UNSUPPORTED_TYPE, UNSUPPORTED)
    _screen(raw.resource, kind)
    if raw.resource.get("modifierExtension"):
        raise Refusal(f"{kind}.modifierExtension", UNSUPPORTED_CODE)
    dropped = _not_kept(kind, raw.resource)
    resource = _checked(kind, raw.resource, dropped, strict)
    keys = own_keys(kind, raw.resource.get("id"), raw.full_url)
    built = BUILDERS[kind](raw, resource, keys)
    built.dropped = dropped + _invalid_fields(built, strict)
    return built


def _not_kept(kind: str, resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The elements of ``resource`` the schema has no place for."""
    dropped = [
        (f"{kind}.{key}", NOT_KEPT)
        for key in resource
        if key not in KEPT[kind] and key not in NOT_REPORTED
    ]
    if "extension" in KEPT[kind] and isinstance(resource.get("extension"), list):
        dropped += [
            (f"{kind}.extension", NOT_KEPT)
            for extension in resource["extension"]
            if not isinstance(extension, dict) or extension.get("url") not in EXTENSIONS_READ
        ]
    return dropped


def _invalid_fields(built: Draft, strict: bool) -> list[tuple[str, str]]:
    """Drop the optional fields the layer's rules would refuse (``strict``: refuse)."""
    model, paths = CHECKED_FIELDS.get(built.resource_type, (None, {}))
    if model is None:
        return []
    columns = columns_of(model)
    dropped = []
    for name, path in paths.items():
        value = built.fields.get(name)
        if value is None or name not in columns:
            continue
        try:
            columns[name].check.clean(value, name)
        except ValidationError:
            if strict:
                raise Refusal(path, INVALID) from None
            built.fields[name] = None
            dropped.append((path, INVALID))
    return dropped


def _screen(value: Any, path: str, budget: list[int] | None = None) -> None:
    budget = [MAX_RESOURCE_BYTES] if budget is None else budget
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$") or "." in key or "\x00" in key:
                raise Refusal(path, FORBIDDEN_KEY)
            _screen(item, f"{path}.{key}", budget)
    elif isinstance(value, list):
        for item in value:
            _screen(item, path, budget)
    elif isinstance(value, str):
        budget[0] -= len(value)
        if len(value) > MAX_STRING or budget[0] < 0:
            raise Refusal(path, TOO_LARGE)


def _checked(
    kind: str, resource: dict[str, Any], dropped: list[tuple[str, str]], strict: bool
) -> Any:
    """The model of the kept elements; an optional one the model refuses is dropped (the
    item of a list, or the element) and the rest validated again."""
    kept = {key: resource[key] for key in ("resourceType", "id", *KEPT[kind]) if key in resource}
    for _ in range(MAX_DROPPED):
        try:
            return get_fhir_model_class(kind).model_validate(kept)
        except ModelError as error:
            location = error.errors()[0]["loc"] if error.errors() else ()
            names = [str(part) for part in location if not isinstance(part, int)]
            path = ".".join([kind, *names[:3]])
            element = str(location[0]) if location else ""
            element = "class" if element == "class_fhir" else element
            if strict or element not in kept or element in ESSENTIAL[kind]:
                raise Refusal(path, INVALID) from None
            _drop(kept, element, location[1] if len(location) > 1 else None)
            dropped.append((path, INVALID))
        except (TypeError, ValueError):
            raise Refusal(kind, INVALID) from None
    raise Refusal(kind, INVALID)


def _drop(kept: dict[str, Any], element: str, index: object) -> None:
    """Leave out ``kept[element]``, or only its item ``index`` when it is a list."""
    value = kept[element]
    if isinstance(value, list) and isinstance(index, int) and 0 <= index < len(value):
        kept[element] = [item for i, item in enumerate(value) if i != index]
        if kept[element]:
            return
    del kept[element]


# -- shared pieces ---------------------------------------------------------------------


def _text(concept: Any) -> str | None:
    """A CodeableConcept's words: its text, else its first coding's display or code."""
    if concept is None:
        return None
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return str(coding.display or coding.code)
    return None


def _codes(concept: Any) -> list[tuple[str | None, str | None]]:
    return [(c.system, c.code) for c in (concept.coding or [])] if concept is not None else []


def _ref(reference: Any, path: str, kind: str) -> Target:
    found = target(reference.reference) if reference is not None and reference.reference else None
    if found is None and reference is not None and reference.identifier is not None:
        ident = reference.identifier
        if ident.value:
            found = Target(kind, (identifier_key(kind, ident.system, ident.value),))
    if found is None:
        raise Refusal(path, REQUIRED)
    if found.resource_type not in (None, kind):
        raise Refusal(path, UNSUPPORTED_TYPE)
    return Target(kind, found.keys, path)


def _moment(value: Any, path: str) -> datetime | None:
    """A FHIR dateTime as an aware datetime; a bare date or a naive time cannot be placed
    on the clock and is refused, and so is a moment outside the years 1 to 9999 in UTC
    (``0001-01-01T00:00:00+14:00``), which neither Python nor the database holds."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise Refusal(path, INVALID)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise Refusal(path, INVALID) from None
    return value


def _day(value: Any, path: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise Refusal(path, INVALID)  # a partial date (year, year-month)
    return value


def _status(codes_in: dict[str, str], value: Any, path: str) -> str:
    if value is None:
        raise Refusal(path, REQUIRED)
    if value not in codes_in:
        raise Refusal(path, UNSUPPORTED_CODE)
    return codes_in[value]


def _own_status(resource: Any, allowed: tuple[str, ...]) -> str | None:
    for extension in resource.extension or []:
        if extension.url == codes.STATUS_EXTENSION and extension.valueCode in allowed:
            return str(extension.valueCode)
    return None


def _phone(value: str, country: str | None) -> str:
    """An international number; a local one is placed in ``country`` (the address's)."""
    if value.strip().startswith("+") or not country or len(country) != 2:
        return value
    try:
        number = phonenumbers.parse(value, country.upper())
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _telecom(points: Any, system: str) -> str | None:
    for point in points or []:
        if point.system == system and point.value:
            return str(point.value)
    return None


def _name(names: Any, path: str) -> Any:
    if not names:
        raise Refusal(path, REQUIRED)
    return next((name for name in names if name.use == "official"), names[0])


# -- one builder per resource type ---------------------------------------------------------


def _patient(raw: Raw, p: Any, keys: list[str]) -> Draft:
    name = _name(p.name, "Patient.name")
    if not name.family:
        raise Refusal("Patient.name.family", REQUIRED)
    if not name.given:
        raise Refusal("Patient.name.given", REQUIRED)
    if p.birthDate is None:
        raise Refusal("Patient.birthDate", REQUIRED)
    gender = _status({g: g for g in ("male", "female", "other")}, p.gender, "Patient.gender")
    fields: dict[str, Any] = {
        "first_name": " ".join(str(given) for given in name.given),
        "last_name": str(name.family),
        "date_of_birth": _day(p.birthDate, "Patient.birthDate"),
        "gender": gender,
        "status": "deceased"
        if p.deceasedBoolean or p.deceasedDateTime
        else ("inactive" if p.active is False else "active"),
        "mrn": None,
        "abha_id": None,
    }
    for ident in p.identifier or []:
        if not ident.value:
            continue
        if ident.system in codes.ABHA_SYSTEMS and fields["abha_id"] is None:
            fields["abha_id"] = str(ident.value)
        elif (codes.V2_0203, "MR") in _codes(ident.type) and fields["mrn"] is None:
            fields["mrn"] = str(ident.value)
    address = p.address[0] if p.address else None
    country = address.country if address is not None else None
    phone = _telecom(p.telecom, "phone")
    fields["phone"] = _phone(phone, country) if phone else None
    fields["email"] = _telecom(p.telecom, "email")
    fields["address"] = _address(address)
    fields["emergency_contact"] = _contact(p.contact, country)
    return Draft(raw, "Patient", fields, keys)


def _address(address: Any) -> dict[str, Any] | None:
    if address is None:
        return None
    found = {
        "line": [str(line) for line in address.line or []],
        "city": address.city,
        "district": address.district,
        "state": address.state,
        "postal_code": address.postalCode,
        "country": address.country,
    }
    kept = {key: value for key, value in found.items() if value not in (None, [])}
    return kept or None


def _contact(contacts: Any, country: str | None) -> dict[str, Any] | None:
    for contact in contacts or []:
        relationships = [_relationship(concept) for concept in contact.relationship or []]
        found = {
            "name": (
                contact.name.text
                or " ".join(
                    [*(str(g) for g in contact.name.given or []), contact.name.family or ""]
                ).strip()
            )
            if contact.name
            else None,
            "relationship": next((r for r in relationships if r), None),
            "phone": _phone(phone, country)
            if (phone := _telecom(contact.telecom, "phone"))
            else None,
        }
        kept = {key: value for key, value in found.items() if value}
        if kept:
            return kept
    return None


def _relationship(concept: Any) -> str | None:
    """A contact's relationship in words; the bare code that marks an emergency contact
    (v2-0131 ``C``) says nothing more than the field's name."""
    if concept.text:
        return str(concept.text)
    words = [c.display or c.code for c in concept.coding or [] if c.system != codes.V2_0131]
    return str(words[0]) if words and words[0] else None


def _practitioner(raw: Raw, p: Any, keys: list[str]) -> Draft:
    name = _name(p.name, "Practitioner.name")
    words = [*(name.prefix or []), *(name.given or []), name.family or ""]
    full_name = name.text or " ".join(str(word) for word in words if word)
    if not full_name:
        raise Refusal("Practitioner.name", REQUIRED)
    keys = keys + [
        identifier_key("Practitioner", ident.system, ident.value)
        for ident in p.identifier or []
        if ident.value
    ]
    if not keys:
        raise Refusal("Practitioner.identifier", REQUIRED)
    username = "practitioner-" + uuid.uuid5(uuid.NAMESPACE_URL, keys[0]).hex[:20]
    qualification = p.qualification[0] if p.qualification else None
    fields = {
        "username": username,
        "full_name": str(full_name),
        "email": _telecom(p.telecom, "email"),
        "phone": _telecom(p.telecom, "phone"),
        "role": "doctor",
        "specialty": _text(qualification.code) if qualification is not None else None,
        "status": "inactive" if p.active is False else "active",
    }
    return Draft(raw, "Practitioner", fields, keys)


def _performer(participants: Any) -> Any:
    """The encounter's doctor: its primary performer, else its attender, else the first
    participant who is a practitioner."""
    people = [p for p in participants or [] if p.individual is not None]
    for wanted in ("PPRF", "ATND"):
        for person in people:
            if any(code == wanted for kind in person.type or [] for _, code in _codes(kind)):
                return person.individual
    return people[0].individual if people else None


def _encounter(raw: Raw, e: Any, keys: list[str]) -> Draft:
    kind = _status(
        codes.ENCOUNTER_CLASS, e.class_fhir.code if e.class_fhir else None, "Encounter.class"
    )
    start = _moment(e.period.start if e.period else None, "Encounter.period.start")
    if start is None:
        raise Refusal("Encounter.period.start", REQUIRED)
    end = _moment(e.period.end, "Encounter.period.end")
    fields = {
        "encounter_type": kind,
        "status": _status(codes.ENCOUNTER_STATUS, e.status, "Encounter.status"),
        "start_time": start,
        "end_time": end if end is not None and end > start else None,
        "chief_complaint": next((t for t in map(_text, e.reasonCode or []) if t), None),
    }
    refs = {
        "patient_id": _ref(e.subject, "Encounter.subject", "Patient"),
        "doctor_id": _ref(_performer(e.participant), "Encounter.participant", "Practitioner"),
    }
    return Draft(raw, "Encounter", fields, keys, refs)


def _group_key(kind: str, ident: Any) -> str | None:
    """The key of a prescription's (order's) group identifier."""
    return (
        identifier_key(f"{kind}-group", ident.system, ident.value)
        if ident and ident.value
        else None
    )


def _medication_request(raw: Raw, m: Any, keys: list[str]) -> Draft:
    if m.medicationReference is not None:
        raise Refusal("MedicationRequest.medicationReference", UNSUPPORTED_TYPE)
    medication = _text(m.medicationCodeableConcept)
    if not medication:
        raise Refusal("MedicationRequest.medicationCodeableConcept", REQUIRED)
    status = _own_status(m, tuple(codes.PRESCRIPTION_STATUS_OUT)) or _status(
        codes.PRESCRIPTION_STATUS, m.status, "MedicationRequest.status"
    )
    dose = m.dosageInstruction[0] if m.dosageInstruction else None
    dispense = m.dispenseRequest
    validity = dispense.validityPeriod if dispense is not None else None
    fields = {
        "status": status,
        "signed_at": _moment(m.authoredOn, "MedicationRequest.authoredOn"),
        "valid_from": _day(validity.start, "MedicationRequest.dispenseRequest")
        if validity
        else None,
        "valid_until": _day(validity.end, "MedicationRequest.dispenseRequest")
        if validity
        else None,
        "pharmacy_id": _identifier_value(dispense.performer if dispense else None),
        "notes": _note(m.note),
    }
    item = {
        "medication_name": medication,
        "dosage": _dosage(dose),
        "frequency": _frequency(dose),
        "duration": _duration(dose, m),
        "quantity": _whole(dispense.quantity.value) if dispense and dispense.quantity else None,
        "refills": dispense.numberOfRepeatsAllowed or 0 if dispense else 0,
        "instructions": dose.patientInstruction if dose is not None else None,
    }
    return _ordered(raw, "MedicationRequest", m, fields, item, keys, m.groupIdentifier)


def _ordered(
    raw: Raw,
    kind: str,
    r: Any,
    fields: dict[str, Any],
    item: dict[str, Any],
    keys: list[str],
    group: Any,
) -> Draft:
    """A prescription or order item: the record is shared by the resources of one group."""
    refs = {
        "patient_id": _ref(r.subject, f"{kind}.subject", "Patient"),
        "encounter_id": _ref(r.encounter, f"{kind}.encounter", "Encounter"),
    }
    optional: frozenset[str] = frozenset()
    if r.requester is not None:
        refs["doctor_id"] = _ref(r.requester, f"{kind}.requester", "Practitioner")
        optional = frozenset({"doctor_id"})
    extra = {"item": item, "group": _group_key(kind, group)}
    return Draft(raw, kind, fields, keys, refs, optional, extra)


def _identifier_value(reference: Any) -> str | None:
    if reference is None:
        return None
    references = reference if isinstance(reference, list) else [reference]
    for one in references:
        if one.identifier is not None and one.identifier.value:
            return str(one.identifier.value)
    return None


def _note(annotations: Any) -> str | None:
    texts = [str(a.text) for a in annotations or [] if a.text]
    return "\n\n".join(texts) or None


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
    if timing is not None and (text := _text(timing.code)):
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


def _service_request(raw: Raw, s: Any, keys: list[str]) -> Draft:
    categories = [code for concept in s.category or [] for code in _codes(concept)]
    order_type = next(
        (
            codes.ORDER_CATEGORY[code]
            for system, code in categories
            if system == codes.SNOMED and code in codes.ORDER_CATEGORY
        ),
        None,
    )
    if order_type is None:
        raise Refusal("ServiceRequest.category", REQUIRED if not categories else UNSUPPORTED_CODE)
    name = _text(s.code)
    if not name:
        raise Refusal("ServiceRequest.code", REQUIRED)
    status = _own_status(s, tuple(codes.ORDER_STATUS_OUT)) or _status(
        codes.ORDER_STATUS, s.status, "ServiceRequest.status"
    )
    fields = {
        "order_type": order_type,
        "status": status,
        "ordered_at": _moment(s.authoredOn, "ServiceRequest.authoredOn"),
        "completed_at": _moment(s.occurrenceDateTime, "ServiceRequest.occurrenceDateTime")
        if status == "completed"
        else None,
        "provider_id": _identifier_value(s.performer),
        "notes": _note(s.note),
    }
    coding = next((c for c in (s.code.coding or []) if c.code), None)
    item = {
        "item_code": str(coding.code) if coding is not None else None,
        "item_name": name,
        "instructions": s.patientInstruction,
    }
    return _ordered(raw, "ServiceRequest", s, fields, item, keys, s.requisition)


def _note_type(concept: Any, path: str) -> str:
    for _, code in _codes(concept):
        if code in codes.NOTE_TYPE:
            return codes.NOTE_TYPE[code]
    raise Refusal(path, REQUIRED if concept is None else UNSUPPORTED_CODE)


def _document_reference(raw: Raw, d: Any, keys: list[str]) -> Draft:
    text = next((t for t in map(_attachment_text, d.content or []) if t is not None), None)
    if text is None:
        raise Refusal("DocumentReference.content.attachment", UNSUPPORTED_TYPE)
    encounters = d.context.encounter if d.context is not None else None
    fields = {
        "note_type": _note_type(d.type, "DocumentReference.type"),
        "content": notes.content_of_text(text),
        "raw_transcription": text,
    }
    signed = d.docStatus in ("final", "amended")
    return _note_draft(
        raw, "DocumentReference", d, fields, keys, encounters[0] if encounters else None, signed
    )


def _attachment_text(content: Any) -> str | None:
    attachment = content.attachment
    if not (attachment.contentType or "").startswith(("text/plain", "text/markdown")):
        return None
    if attachment.data is None:
        return None
    try:
        return bytes(attachment.data).decode("utf-8")  # the model decoded the base64
    except UnicodeDecodeError:
        raise Refusal("DocumentReference.content.attachment.data", INVALID) from None


def _composition(raw: Raw, c: Any, keys: list[str]) -> Draft:
    if (codes.SNOMED, codes.RECORD_TYPE[0]) in _codes(c.type):
        raise Refusal("Composition.type", NOT_A_RECORD, SKIPPED)
    resource = raw.resource or {}
    content, transcript = notes.content_of(resource.get("section") or [])
    if not content and not transcript:
        raise Refusal("Composition.section", REQUIRED)
    fields = {
        "note_type": _note_type(c.type, "Composition.type"),
        "content": content,
        "raw_transcription": transcript,
    }
    signed = c.status in ("final", "amended")
    draft = _note_draft(raw, "Composition", c, fields, keys, c.encounter, signed)
    legal = next((a for a in c.attester or [] if a.party is not None), None)
    if signed and legal is not None:
        draft.refs["signed_by"] = _ref(legal.party, "Composition.attester.party", "Practitioner")
        draft.optional_refs = draft.optional_refs | {"signed_by"}
    return draft


def _note_draft(
    raw: Raw,
    kind: str,
    r: Any,
    fields: dict[str, Any],
    keys: list[str],
    encounter: Any,
    signed: bool,
) -> Draft:
    refs = {
        "patient_id": _ref(r.subject, f"{kind}.subject", "Patient"),
        "encounter_id": _ref(encounter, f"{kind}.encounter", "Encounter"),
    }
    authors = [target(a.reference) for a in r.author or [] if a.reference]
    author = next(
        (a for a in authors if a is not None and a.resource_type in (None, "Practitioner")), None
    )
    optional: frozenset[str] = frozenset()
    if author is not None:
        path = f"{kind}.author"
        refs["doctor_id"] = Target("Practitioner", author.keys, path)
        optional = frozenset({"doctor_id"})
    return Draft(raw, kind, fields, keys, refs, optional, {"signed": signed})


BUILDERS = {
    "Patient": _patient,
    "Practitioner": _practitioner,
    "Encounter": _encounter,
    "MedicationRequest": _medication_request,
    "ServiceRequest": _service_request,
    "DocumentReference": _document_reference,
    "Composition": _composition,
}
