"""Patient: the clinic's patient, found again by its source's keys or linked by ABHA
number or MRN; exported with its identifiers, contact points, address and emergency
contact."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ...errors import ValidationError
from ...relational.models import Patient
from .. import codes
from ..elements import (
    Draft,
    codings,
    day,
    name_of,
    phone_number,
    status_in,
    telecom_at,
    telecom_value,
)
from ..outbound import JSON, meta, resource
from ..outcomes import REQUIRED, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import Simple, simple_writer

KEPT = (
    *("identifier", "active", "name", "telecom", "gender", "birthDate"),
    *("deceasedBoolean", "deceasedDateTime", "address", "contact"),
)
ESSENTIAL = frozenset({"name", "gender", "birthDate"})
CHECKED = (
    Patient,
    {
        "phone": "Patient.telecom",
        "email": "Patient.telecom",
        "mrn": "Patient.identifier",
        "abha_id": "Patient.identifier",
        "address": "Patient.address",
        "emergency_contact": "Patient.contact",
    },
)
PATHS = {
    "first_name": "Patient.name.given",
    "last_name": "Patient.name.family",
    "date_of_birth": "Patient.birthDate",
    "gender": "Patient.gender",
    "phone": "Patient.telecom",
    "email": "Patient.telecom",
    "mrn": "Patient.identifier",
    "abha_id": "Patient.identifier",
    "address": "Patient.address",
    "emergency_contact": "Patient.contact",
    "status": "Patient.active",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""
NAME = frozenset({"use", "given", "family"})
IDENTIFIER = frozenset({"system", "type", "value"})
CONTACT_POINT = frozenset({"system", "value"})
ADDRESS = frozenset({"line", "city", "district", "state", "postalCode", "country"})
CONTACT = frozenset({"name", "relationship", "telecom"})
"""The parts of the items of a list element kept (of the official name, the first
address...); the others, and the items not read, are listed as dropped."""


def build(raw: Raw, p: Any, keys: list[str]) -> Draft:
    name = name_of(p.name, "Patient.name")
    if not name.family:
        raise Refusal("Patient.name.family", REQUIRED)
    if not name.given:
        raise Refusal("Patient.name.given", REQUIRED)
    if p.birthDate is None:
        raise Refusal("Patient.birthDate", REQUIRED)
    gender = status_in({g: g for g in ("male", "female", "other")}, p.gender, "Patient.gender")
    fields: dict[str, Any] = {
        "first_name": " ".join(str(given) for given in name.given),
        "last_name": str(name.family),
        "date_of_birth": day(p.birthDate, "Patient.birthDate"),
        "gender": gender,
        "status": "deceased"
        if p.deceasedBoolean or p.deceasedDateTime
        else ("inactive" if p.active is False else "active"),
        "mrn": None,
        "abha_id": None,
    }
    paths: dict[str, str] = {}
    identifiers: dict[int, frozenset[str]] = {}
    for index, ident in enumerate(p.identifier or []):
        if not ident.value:
            continue
        if ident.system in codes.ABHA_SYSTEMS and fields["abha_id"] is None:
            kept = "abha_id"
        elif (codes.V2_0203, "MR") in codings(ident.type) and fields["mrn"] is None:
            kept = "mrn"
        else:
            continue
        fields[kept] = str(ident.value)
        paths[kept] = f"Patient.identifier[{index}].value"
        identifiers[index] = IDENTIFIER
    address = p.address[0] if p.address else None
    country = address.country if address is not None else None
    telecom = {system: telecom_at(p.telecom, system) for system in ("phone", "email")}
    phone = telecom_value(p.telecom, "phone")
    fields["phone"] = phone_number(phone, country) if phone else None
    fields["email"] = telecom_value(p.telecom, "email")
    paths |= {s: f"Patient.telecom[{i}].value" for s, i in telecom.items() if i is not None}
    fields["address"] = _address_of(address)
    contact, fields["emergency_contact"] = _contact_of(p.contact, country)
    held = {
        "name": {next(i for i, n in enumerate(p.name) if n is name): NAME},
        "identifier": identifiers,
        "telecom": {i: CONTACT_POINT for i in telecom.values() if i is not None},
        "address": {0: ADDRESS},
        "contact": {contact: CONTACT} if contact is not None else {},
    }
    return Draft(raw, "Patient", fields, keys, held=held, paths=paths)


def _address_of(address: Any) -> dict[str, Any] | None:
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


def _contact_of(contacts: Any, country: str | None) -> tuple[int | None, dict[str, Any] | None]:
    """The first contact that says something, and its index."""
    for index, contact in enumerate(contacts or []):
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
            "phone": phone_number(phone, country)
            if (phone := telecom_value(contact.telecom, "phone"))
            else None,
        }
        kept = {key: value for key, value in found.items() if value}
        if kept:
            return index, kept
    return None, None


def _relationship(concept: Any) -> str | None:
    """A contact's relationship in words; the bare code that marks an emergency contact
    (v2-0131 ``C``) says nothing more than the field's name."""
    if concept.text:
        return str(concept.text)
    words = [c.display or c.code for c in concept.coding or [] if c.system != codes.V2_0131]
    return str(words[0]) if words and words[0] else None


def _patient_identity(uow: Any, drafts: list[Draft]) -> dict[int, uuid.UUID]:
    """Patients already here by ABHA number or MRN (when no source key maps them): one
    query per identifier kind and 500 patients."""
    found: dict[int, uuid.UUID] = {}
    for name in ("abha_id", "mrn"):
        wanted = {i: d.fields[name] for i, d in enumerate(drafts) if d.fields.get(name)}
        wanted = {i: value for i, value in wanted.items() if i not in found}
        values = sorted(set(wanted.values()))
        rows = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            try:
                rows += uow.patients.list(filters={name: chunk}, limit=500)
            except ValidationError:  # a malformed value: look the others up one by one
                rows += [row for value in chunk for row in _one(uow, name, value)]
        by_value = {_comparable(getattr(row, name)): row.id for row in rows}
        for index, value in wanted.items():
            if _comparable(value) in by_value:
                found[index] = by_value[_comparable(value)]
    return found


def _one(uow: Any, name: str, value: str) -> list[Any]:
    try:
        return list(uow.patients.list(filters={name: value}, limit=1))
    except ValidationError:
        return []  # finds nothing; the write will refuse it


def _comparable(value: str) -> str:
    """An ABHA number or MRN as the patient table compares it (``91-2345...`` and
    ``912345...`` are one ABHA number)."""
    return value.replace("-", "").replace(" ", "").upper()


def _patient_keys(draft: Draft) -> set[str]:
    extra = {
        f"{name}|{draft.fields[name]}" for name in ("abha_id", "mrn") if draft.fields.get(name)
    }
    return set(draft.keys) | extra


def outbound(row: Any) -> JSON:
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
        "meta": meta(row),
        "identifier": identifiers,
        "active": row.status != "inactive",
        "name": [{"use": "official", "family": row.last_name, "given": [row.first_name]}],
        "telecom": telecom,
        "gender": row.gender,
        "birthDate": row.date_of_birth.isoformat(),
        "deceasedBoolean": row.status == "deceased",
        "address": [_address_element(row.address)] if row.address else [],
        "contact": [_contact_element(row.emergency_contact)] if row.emergency_contact else [],
    }
    return resource(fields)


def _address_element(address: dict[str, Any]) -> JSON:
    return {
        "line": address.get("line"),
        "city": address.get("city"),
        "district": address.get("district"),
        "state": address.get("state"),
        "postalCode": address.get("postal_code"),
        "country": address.get("country"),
    }


def _contact_element(contact: dict[str, Any]) -> JSON:
    emergency = {"system": codes.V2_0131, "code": "C", "display": "Emergency Contact"}
    return {
        "relationship": [{"coding": [emergency], "text": contact.get("relationship")}],
        "name": {"text": contact.get("name")},
        "telecom": [{"system": "phone", "value": contact.get("phone")}],
    }


def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
    for patient in uow.patients.iterate(order_by="created_at"):
        if fresh(patient):
            uow.patients.record_chart_read(patient.id)
            yield [outbound(patient)]


WRITER = Simple("patients", "patients", PATHS, identity=_patient_identity, same_keys=_patient_keys)
RESOURCE = ResourceType(
    "Patient",
    rank=1,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=simple_writer(WRITER),
    referable_as="patients",
    checked=CHECKED,
    export=export,
)
