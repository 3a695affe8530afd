"""Writing resolved drafts through the repositories, one writer per resource type.

Each writer takes the drafts of one type whose references are resolved to record ids
and yields each with its outcome: created, updated (something changed), skipped (the
record already holds exactly this) or a ``Refusal``. A record the layer refuses is
reported with the FHIR element of the field at fault; single writes run in a savepoint,
so one refused record leaves the others of the unit of work standing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, DataLayerError, DuplicateError, ValidationError
from ..relational.bulk import RowError
from .identity import Mapping
from .inbound import Draft
from .outbound import pruned
from .outcomes import CONFLICT, CREATED, DUPLICATE, INVALID, SKIPPED, UPDATED, Refusal

Written = Iterator[tuple["Resolved", str | Refusal]]
PATHS: dict[str, dict[str, str]] = {
    "Patient": {
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
    },
    "Practitioner": {
        "full_name": "Practitioner.name",
        "email": "Practitioner.telecom",
        "phone": "Practitioner.telecom",
        "specialty": "Practitioner.qualification",
        "username": "Practitioner.identifier",
    },
    "Encounter": {
        "start_time": "Encounter.period.start",
        "end_time": "Encounter.period.end",
        "chief_complaint": "Encounter.reasonCode",
        "patient_id": "Encounter.subject",
        "doctor_id": "Encounter.participant",
    },
    "MedicationRequest": {
        "items": "MedicationRequest.dosageInstruction",
        "valid_from": "MedicationRequest.dispenseRequest.validityPeriod",
        "valid_until": "MedicationRequest.dispenseRequest.validityPeriod",
        "pharmacy_id": "MedicationRequest.dispenseRequest.performer",
        "notes": "MedicationRequest.note",
        "encounter_id": "MedicationRequest.encounter",
        "patient_id": "MedicationRequest.subject",
        "doctor_id": "MedicationRequest.requester",
    },
    "ServiceRequest": {
        "items": "ServiceRequest.code",
        "ordered_at": "ServiceRequest.authoredOn",
        "completed_at": "ServiceRequest.occurrenceDateTime",
        "provider_id": "ServiceRequest.performer",
        "notes": "ServiceRequest.note",
        "encounter_id": "ServiceRequest.encounter",
        "patient_id": "ServiceRequest.subject",
        "doctor_id": "ServiceRequest.requester",
    },
}
NOT_UPDATED = frozenset({"username"})
"""Set when a record is created from a resource, never changed by one seen again."""


@dataclass
class Resolved:
    """A draft and the record ids its references resolved to (``{field: id}``)."""

    draft: Draft
    ids: dict[str, uuid.UUID]


def refusal_of(error: DataLayerError, kind: str) -> Refusal:
    """A layer error as a refusal: the FHIR element of its field and a reason code (the
    layer's message is not passed on)."""
    if isinstance(error, DuplicateError):
        code = DUPLICATE
    elif isinstance(error, ValidationError):
        code = INVALID
    else:
        code = CONFLICT
    return _refusal(str(getattr(error, "field", "") or ""), code, kind)


def _row_refusal(error: RowError, kind: str) -> Refusal:
    """A row ``create_many`` refused as a refusal."""
    return _refusal(error.field, DUPLICATE if error.reason == "already in use" else INVALID, kind)


def _refusal(field: str, code: str, kind: str) -> Refusal:
    """``field`` (``phone``, ``rows[3].phone``, ``items.dosage``) as its FHIR element."""
    paths = PATHS.get(kind, {})
    last, first = (field.split(".")[i].split("[")[0] for i in (-1, 0))
    return Refusal(paths.get(last) or paths.get(first) or kind, code)


# -- patients, practitioners, encounters: new rows in bulk ---------------------------------


@dataclass(frozen=True)
class Simple:
    repository: str
    entity_type: str
    create_only: Callable[[Draft], dict[str, Any]] = lambda draft: {}
    identity: Callable[[Any, list[Draft]], dict[int, uuid.UUID]] = lambda uow, drafts: {}
    same_keys: Callable[[Draft], set[str]] = lambda draft: set(draft.keys)


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


def _write_simple(spec: Simple, uow: Any, mapping: Mapping, items: list[Resolved]) -> Written:
    for batch in _rounds(items, spec.same_keys):
        yield from _write_round(spec, uow, mapping, batch)


def _rounds(items: list[Resolved], same: Callable[[Draft], set[str]]) -> Iterator[list[Resolved]]:
    """``items`` in rounds where no two share a key (a record twice in one batch: the
    second is written after the first, and so finds it)."""
    while items:
        seen: set[str] = set()
        now: list[Resolved] = []
        later: list[Resolved] = []
        for item in items:
            keys = same(item.draft)
            (later if keys & seen else now).append(item)
            seen |= keys
        yield now
        items = later


def _write_round(spec: Simple, uow: Any, mapping: Mapping, items: list[Resolved]) -> Written:
    repository = getattr(uow, spec.repository)
    kind = items[0].draft.resource_type
    found = mapping.find(key for item in items for key in item.draft.keys)
    known: dict[int, uuid.UUID] = {}
    for index, item in enumerate(items):
        id = next(
            (
                found[k][1]
                for k in item.draft.keys
                if k in found and found[k][0] == spec.entity_type
            ),
            None,
        )
        if id is not None:
            known[index] = id
    unknown = [i for i in range(len(items)) if i not in known]
    by_identity = spec.identity(uow, [items[i].draft for i in unknown])
    known |= {unknown[position]: id for position, id in by_identity.items()}
    local = {
        id: i for i, item in enumerate(items) if i not in known and (id := item.draft.local_id)
    }
    for row in _many(repository, set(local)):  # records of this layer, exported and back
        known[local[row.id]] = row.id
    new = [index for index in range(len(items)) if index not in known]
    rows = [
        {**items[i].draft.fields, **items[i].ids, **spec.create_only(items[i].draft)} for i in new
    ]
    result = repository.create_many(rows) if rows else None
    outcomes: dict[int, str | Refusal] = {}
    if result is not None:
        refused = {error.index: error for error in result.errors}
        created = iter(result.created)
        for position, index in enumerate(new):
            if position in refused:
                outcomes[index] = _row_refusal(refused[position], kind)
            else:
                known[index] = next(created)
                outcomes[index] = CREATED
    for index, id in known.items():
        if index not in outcomes:
            outcomes[index] = _updated(uow, repository, id, items[index])
    mapping.record(
        (key, spec.entity_type, known[index])
        for index, item in enumerate(items)
        if index in known and not isinstance(outcomes[index], Refusal)
        for key in item.draft.keys
    )
    for index, item in enumerate(items):
        yield item, outcomes[index]


def _updated(uow: Any, repository: Any, id: uuid.UUID, item: Resolved) -> str | Refusal:
    """Apply what the resource says (absent elements leave their field alone): updated
    when the record changed, skipped when it already held exactly this."""
    fields = {
        key: value
        for key, value in {**item.draft.fields, **item.ids}.items()
        if value is not None and key not in NOT_UPDATED
    }
    row = repository.get(id)
    if row is None:
        return Refusal(item.draft.resource_type, CONFLICT)  # mapped to a record since erased
    version = row.version
    try:
        with uow.session.begin_nested():
            row = repository.update(id, **fields)
    except (ValidationError, ConflictError) as error:
        return refusal_of(error, item.draft.resource_type)
    return UPDATED if row.version != version else SKIPPED


PATIENTS = Simple("patients", "patients", identity=_patient_identity, same_keys=_patient_keys)


def _practitioner_only(draft: Draft) -> dict[str, Any]:
    """A practitioner comes without a password (the hash matches none: no login until
    one is set) and, when the resource has no email, with an address that reaches nobody
    (the schema requires one)."""
    username = draft.fields["username"]
    return {
        "password_hash": "!imported",
        "email": draft.fields["email"] or f"{username}@practitioners.invalid",
    }


PRACTITIONERS = Simple("users", "users", create_only=_practitioner_only)
ENCOUNTERS = Simple("encounters", "encounters")


# -- prescriptions and orders: one record per group, an item per resource ------------------


@dataclass(frozen=True)
class WithItems:
    repository: str
    entity_type: str
    item_type: str


def _write_with_items(
    spec: WithItems, uow: Any, mapping: Mapping, items: list[Resolved]
) -> Written:
    def one(item: Resolved, encounters: dict[uuid.UUID, Any]) -> str:
        return _one_with_items(spec, uow, mapping, item, encounters)

    return _one_by_one(uow, items, one)


def _one_by_one(
    uow: Any, items: list[Resolved], write: Callable[[Resolved, dict[uuid.UUID, Any]], str]
) -> Written:
    """Write each item on its own (``write``, given the encounters the items name), a
    refusal by the layer or by ``write`` becoming the item's outcome."""
    encounters = {
        row.id: row for row in _many(uow.encounters, {i.ids["encounter_id"] for i in items})
    }
    for item in items:
        outcome: str | Refusal
        try:
            outcome = write(item, encounters)
        except Refusal as refusal:
            outcome = refusal
        except (ValidationError, ConflictError) as error:
            outcome = refusal_of(error, item.draft.resource_type)
        yield item, outcome


def _one_with_items(
    spec: WithItems, uow: Any, mapping: Mapping, item: Resolved, encounters: dict[uuid.UUID, Any]
) -> str:
    draft = item.draft
    kind = draft.resource_type
    encounter = encounters[item.ids["encounter_id"]]
    if encounter.patient_id != item.ids["patient_id"]:
        raise Refusal(f"{kind}.encounter", CONFLICT)
    doctor = item.ids.get("doctor_id", encounter.doctor_id)
    item_keys = [f"item|{key}" for key in draft.keys]
    group = [draft.extra["group"]] if draft.extra["group"] else []
    found = mapping.find([*draft.keys, *item_keys, *group])
    record_id = next((found[k][1] for k in [*group, *draft.keys] if k in found), None)
    item_id = next((found[k][1] for k in item_keys if k in found), draft.local_id)
    repository = getattr(uow, spec.repository)
    record_id = record_id or draft.extra["own_group"]
    record = repository.get(record_id) if record_id is not None else None
    fields = {key: value for key, value in draft.fields.items() if value is not None}
    with uow.session.begin_nested():
        if record is None:
            record = repository.create(
                encounter_id=encounter.id,
                patient_id=encounter.patient_id,
                doctor_id=doctor,
                **fields,
                items=[draft.extra["item"]],
            )
            written, outcome = record.items[-1], CREATED
        else:
            version = record.version
            written = next((line for line in record.items if line.id == item_id), None)
            changed = False
            if written is None:
                record = repository.update(
                    record.id, **fields, items=[*record.items, draft.extra["item"]]
                )
                written, changed = record.items[-1], True
            else:
                for key, value in draft.extra["item"].items():
                    if getattr(written, key) != value:
                        setattr(written, key, value)
                        changed = True
                record = repository.update(record.id, **fields)
            outcome = UPDATED if changed or record.version != version else SKIPPED
    mapping.record(
        [
            *((key, spec.entity_type, record.id) for key in [*draft.keys, *group]),
            *((key, spec.item_type, written.id) for key in item_keys),
        ]
    )
    return outcome


PRESCRIPTIONS = WithItems("prescriptions", "prescriptions", "prescription_items")
ORDERS = WithItems("orders", "orders", "order_items")


# -- notes: documents ------------------------------------------------------------------------


def _write_notes(uow: Any, mapping: Mapping, items: list[Resolved]) -> Written:
    found = mapping.find(key for item in items for key in item.draft.keys)

    def one(item: Resolved, encounters: dict[uuid.UUID, Any]) -> str:
        return _one_note(uow, mapping, item, encounters, found)

    return _one_by_one(uow, items, one)


def _one_note(
    uow: Any,
    mapping: Mapping,
    item: Resolved,
    encounters: dict[uuid.UUID, Any],
    found: dict[str, tuple[str, uuid.UUID]],
) -> str:
    draft = item.draft
    encounter = encounters[item.ids["encounter_id"]]
    if encounter.patient_id != item.ids["patient_id"]:
        raise Refusal(f"{draft.resource_type}.encounter", CONFLICT)
    doctor = item.ids.get("doctor_id", encounter.doctor_id)
    note_id = next(
        (found[k][1] for k in draft.keys if found.get(k, ("",))[0] == "clinical_notes"),
        draft.local_id,
    )
    note = uow.clinical_notes.get(note_id) if note_id is not None else None
    fields = {key: value for key, value in draft.fields.items() if value is not None}
    notes = uow.clinical_notes
    if note is None:
        note = notes.create(
            encounter_id=encounter.id, patient_id=encounter.patient_id, doctor_id=doctor, **fields
        )
        if draft.extra["signed"]:
            notes.sign(note.id, signed_by=item.ids.get("signed_by", doctor))
        outcome = CREATED
    elif _holds(note, fields):
        outcome = SKIPPED
    elif note.is_signed:
        notes.amend(
            note.id, amended_by=doctor, reason="FHIR import", content=fields.get("content", {})
        )
        outcome = UPDATED
    else:
        notes.update_draft(note.id, expected_version=note.version, **fields)
        outcome = UPDATED
    mapping.record((key, "clinical_notes", uuid.UUID(str(note.id))) for key in draft.keys)
    return outcome


def _holds(note: Any, fields: dict[str, Any]) -> bool:
    """Whether the note already holds these fields (content compared without empties)."""
    for key, value in fields.items():
        current = getattr(note, key)
        if key == "content":
            if pruned(current.to_mongo().to_dict()) != pruned(value):
                return False
        elif current != value:
            return False
    return True


def _many(repository: Any, ids: set[uuid.UUID]) -> list[Any]:
    wanted = list(ids)
    rows: list[Any] = []
    for start in range(0, len(wanted), 1000):
        rows += repository.get_many(wanted[start : start + 1000])
    return rows


WRITERS: dict[str, Callable[[Any, Mapping, list[Resolved]], Written]] = {
    "Patient": lambda uow, mapping, items: _write_simple(PATIENTS, uow, mapping, items),
    "Practitioner": lambda uow, mapping, items: _write_simple(PRACTITIONERS, uow, mapping, items),
    "Encounter": lambda uow, mapping, items: _write_simple(ENCOUNTERS, uow, mapping, items),
    "MedicationRequest": lambda uow, mapping, items: _write_with_items(
        PRESCRIPTIONS, uow, mapping, items
    ),
    "ServiceRequest": lambda uow, mapping, items: _write_with_items(ORDERS, uow, mapping, items),
    "DocumentReference": _write_notes,
    "Composition": _write_notes,
}
