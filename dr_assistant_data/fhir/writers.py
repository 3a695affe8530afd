"""Writing resolved drafts through the repositories: the three ways a resource type's
records are written (``Simple`` rows created in bulk, ``WithItems`` records of one item
per resource, and notes), which each type's module (``resource_types``) declares.

Each writer takes the drafts of one type whose references are resolved to record ids
and yields each with its outcome: created, updated (something changed), linked, skipped
(the record already holds exactly this) or a ``Refusal`` (refused, or a conflict). A
record the layer refuses is reported with the FHIR element of the field at fault; single
writes run in a savepoint, so one refused record leaves the others of the unit of work
standing.

What a resource may change: only a record its own source owns (``identity.py``), only
once per run (a second resource with other content for the same record is a conflict),
and never a record of another patient: a record whose patient differs from the
resource's subject, or an encounter (prescription, order) of another patient to join,
is refused (``cross_patient_reference``), never moved or joined. A record another
source owns is left as it was; when it differs from the resource that is a conflict,
unless the import was asked to update linked records.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from collections.abc import Mapping as Paths
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConflictError, DataLayerError, DuplicateError, ValidationError
from ..relational.bulk import RowError
from .elements import Draft
from .identity import Mapping
from .outbound import pruned
from .outcomes import (
    CONFLICT,
    CONFLICTED,
    CREATED,
    CROSS_PATIENT,
    DUPLICATE,
    INVALID,
    LINKED,
    OTHER_SOURCE,
    SAME_RUN,
    SKIPPED,
    UPDATED,
    Refusal,
)

Written = Iterator[tuple["Resolved", str | Refusal]]
Writer = Callable[["Run", list["Resolved"]], Written]


@dataclass
class Resolved:
    """A draft and the record ids its references resolved to (``{field: id}``)."""

    draft: Draft
    ids: dict[str, uuid.UUID]


@dataclass
class Run:
    """What the writers of one unit of work share: the unit of work, its mapping rows
    (for the import's source), whether records of other sources may be updated, the
    records the run's earlier units of work wrote, and those this one writes."""

    uow: Any
    mapping: Mapping
    update_linked: bool
    earlier: set[uuid.UUID]
    touched: set[uuid.UUID] = field(default_factory=set)


class _Differs(Exception):
    """Raised inside a savepoint to undo a write that would overwrite what it must not."""

    def __init__(self, paths: list[str], reason: str) -> None:
        super().__init__(reason)
        self.conflict = Refusal(",".join(paths), reason, CONFLICTED)


def _guard(run: Run, id: uuid.UUID, owned: bool, paths: list[str]) -> None:
    """Refuse a change (``paths``: the elements that changed) to a record written earlier
    in this run, or owned by another source (unless linked records may be updated)."""
    if not paths:
        return
    if id in run.touched or id in run.earlier:
        raise _Differs(paths, SAME_RUN)
    if not owned and not run.update_linked:
        raise _Differs(paths, OTHER_SOURCE)


def refusal_of(error: DataLayerError, kind: str, paths: Paths[str, str]) -> Refusal:
    """A layer error as a refusal: the FHIR element of its field and a reason code (the
    layer's message is not passed on)."""
    if isinstance(error, DuplicateError):
        code = DUPLICATE
    elif isinstance(error, ValidationError):
        code = INVALID
    else:
        code = CONFLICT
    return _refusal(str(getattr(error, "field", "") or ""), code, kind, paths)


def _row_refusal(error: RowError, kind: str, paths: Paths[str, str]) -> Refusal:
    """A row ``create_many`` refused as a refusal."""
    code = DUPLICATE if error.reason == "already in use" else INVALID
    return _refusal(error.field, code, kind, paths)


def _refusal(field: str, code: str, kind: str, paths: Paths[str, str]) -> Refusal:
    """``field`` (``phone``, ``rows[3].phone``, ``items.dosage``) as its FHIR element."""
    last, first = (field.split(".")[i].split("[")[0] for i in (-1, 0))
    return Refusal(paths.get(last) or paths.get(first) or kind, code)


def _changed(row: Any, before: dict[str, Any], kind: str, paths: Paths[str, str]) -> list[str]:
    """The FHIR elements of the fields of ``row`` that no longer hold their ``before``."""
    changed = {key for key, value in before.items() if getattr(row, key) != value}
    return sorted({paths.get(key) or kind for key in changed})


# -- rows created in bulk (patients, practitioners, encounters) ---------------------------


@dataclass(frozen=True)
class Simple:
    """Records of one row each: the new ones created with one ``create_many``."""

    repository: str
    entity_type: str
    paths: Paths[str, str]
    """The FHIR element of each field (how a refusal or a conflict names it)."""
    not_updated: frozenset[str] = frozenset()
    """Set when a record is created from a resource, never changed by one seen again."""
    create_only: Callable[[Draft], dict[str, Any]] = lambda draft: {}
    identity: Callable[[Any, list[Draft]], dict[int, uuid.UUID]] = lambda uow, drafts: {}
    same_keys: Callable[[Draft], set[str]] = lambda draft: set(draft.keys)
    subject: str | None = None
    """The field naming the record's patient, which a resource seen again may not change."""


def simple_writer(spec: Simple) -> Writer:
    """The writer of ``spec``'s records."""

    def write(run: Run, items: list[Resolved]) -> Written:
        for batch in _rounds(items, spec.same_keys):
            yield from _write_round(spec, run, batch)

    return write


def chart_writer(spec: Simple) -> Writer:
    """The writer of chart records (an allergy, a problem, a vital sign), which may name
    an encounter: one naming an encounter of another patient than its subject is refused
    (``cross_patient_reference``) before anything is written; the others are written as
    ``simple_writer`` writes them."""
    write_simple = simple_writer(spec)

    def write(run: Run, items: list[Resolved]) -> Written:
        named = {item.ids["encounter_id"] for item in items if "encounter_id" in item.ids}
        patient_of = {row.id: row.patient_id for row in _many(run.uow.encounters, named)}
        same_patient = []
        for item in items:
            encounter = item.ids.get("encounter_id")
            if encounter is not None and patient_of.get(encounter) != item.ids["patient_id"]:
                yield item, Refusal(f"{item.draft.resource_type}.encounter", CROSS_PATIENT)
            else:
                same_patient.append(item)
        yield from write_simple(run, same_patient)

    return write


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


def _write_round(spec: Simple, run: Run, items: list[Resolved]) -> Written:
    """The records the drafts map to (by their keys, else by ``spec.identity``) brought
    up to date; the others created in one ``create_many``."""
    repository = getattr(run.uow, spec.repository)
    found = run.mapping.find(key for item in items for key in item.draft.keys)
    mapped = {
        index: id
        for index, item in enumerate(items)
        if (id := _mapped(found, item.draft.keys, spec.entity_type)) is not None
    }
    unknown = [i for i in range(len(items)) if i not in mapped]
    by_identity = spec.identity(run.uow, [items[i].draft for i in unknown])
    known = mapped | {unknown[position]: id for position, id in by_identity.items()}
    owned = run.mapping.owned(spec.entity_type, set(known.values()))
    outcomes = _created(spec, run, repository, items, known)
    for index, id in known.items():
        if index not in outcomes:
            existing = _Existing(id, id in owned, index in mapped)
            outcomes[index] = _brought_up_to_date(spec, run, repository, existing, items[index])
    run.mapping.record(
        (key, spec.entity_type, known[index])
        for index, item in enumerate(items)
        if index in known and _maps(outcomes[index])
        for key in item.draft.keys
    )
    for index, item in enumerate(items):
        yield item, outcomes[index]


def _maps(outcome: str | Refusal) -> bool:
    """Whether the resource's keys name its record after this outcome: they do when it
    was written or left as it was (a conflict still names the record, so that what
    refers to the resource finds it), not when it was refused."""
    return not isinstance(outcome, Refusal) or outcome.outcome == CONFLICTED


def _mapped(
    found: dict[str, tuple[str, uuid.UUID]], keys: list[str], entity_type: str
) -> uuid.UUID | None:
    return next((found[k][1] for k in keys if k in found and found[k][0] == entity_type), None)


def _created(
    spec: Simple, run: Run, repository: Any, items: list[Resolved], known: dict[int, uuid.UUID]
) -> dict[int, str | Refusal]:
    """Create the records of the drafts ``known`` does not map (adding them to it)."""
    new = [index for index in range(len(items)) if index not in known]
    if not new:
        return {}
    kind = items[new[0]].draft.resource_type
    rows = [
        {**items[i].draft.fields, **items[i].ids, **spec.create_only(items[i].draft)} for i in new
    ]
    result = repository.create_many(rows)
    outcomes: dict[int, str | Refusal] = {}
    refused = {error.index: error for error in result.errors}
    created = iter(result.created)
    for position, index in enumerate(new):
        if position in refused:
            outcomes[index] = _row_refusal(refused[position], kind, spec.paths)
        else:
            known[index] = next(created)
            outcomes[index] = CREATED
    ids = [known[index] for index in new if outcomes[index] == CREATED]
    run.mapping.own(spec.entity_type, ids)
    run.touched.update(ids)
    return outcomes


@dataclass(frozen=True)
class _Existing:
    id: uuid.UUID
    owned: bool
    """Created by an import of this source."""
    mapped: bool
    """Found by the resource's own keys (not linked now)."""


def _brought_up_to_date(
    spec: Simple, run: Run, repository: Any, existing: _Existing, item: Resolved
) -> str | Refusal:
    """Apply what the resource says (absent elements leave their field alone): updated
    when the record changed; skipped (or linked, when this source had not named it yet)
    when it already held exactly this; a conflict when it may not be changed."""
    kind = item.draft.resource_type
    row = repository.get(existing.id)
    if row is None:
        return Refusal(kind, CONFLICT)  # mapped to a record since erased
    if spec.subject is not None and getattr(row, spec.subject) != item.ids[spec.subject]:
        return Refusal(spec.paths.get(spec.subject) or kind, CROSS_PATIENT)
    fields = {
        key: value
        for key, value in {**item.draft.fields, **item.ids}.items()
        if value is not None and key not in spec.not_updated
    }
    version = row.version
    try:
        with run.uow.session.begin_nested():
            before = {key: getattr(row, key) for key in fields}
            row = repository.update(existing.id, **fields)
            if row.version != version:
                changed = _changed(row, before, kind, spec.paths)
                _guard(run, existing.id, existing.owned, changed)
    except _Differs as differs:
        return differs.conflict
    except (ValidationError, ConflictError) as error:
        return refusal_of(error, kind, spec.paths)
    if row.version != version:
        run.touched.add(existing.id)
        return UPDATED
    return SKIPPED if existing.mapped else LINKED


# -- one record per group, an item per resource (prescriptions, orders) ------------------


@dataclass(frozen=True)
class WithItems:
    """Records of items, one item per resource, grouped by the resources' group."""

    repository: str
    entity_type: str
    item_type: str
    group_element: str
    """The element naming the record an item belongs to (``groupIdentifier``)."""
    paths: Paths[str, str]


def with_items_writer(spec: WithItems) -> Writer:
    """The writer of ``spec``'s records and their items."""

    def write(run: Run, items: list[Resolved]) -> Written:
        def one(item: Resolved, encounters: dict[uuid.UUID, Any]) -> str:
            return _one_with_items(spec, run, item, encounters)

        return _one_by_one(run.uow, items, one, spec.paths)

    return write


def _one_by_one(
    uow: Any,
    items: list[Resolved],
    write: Callable[[Resolved, dict[uuid.UUID, Any]], str],
    paths: Paths[str, str],
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
        except _Differs as differs:
            outcome = differs.conflict
        except (ValidationError, ConflictError) as error:
            outcome = refusal_of(error, item.draft.resource_type, paths)
        yield item, outcome


def _encounter_of(item: Resolved, encounters: dict[uuid.UUID, Any]) -> Any:
    """The encounter the resource names, which must be its subject's."""
    encounter = encounters[item.ids["encounter_id"]]
    if encounter.patient_id != item.ids["patient_id"]:
        raise Refusal(f"{item.draft.resource_type}.encounter", CROSS_PATIENT)
    return encounter


def _one_with_items(
    spec: WithItems, run: Run, item: Resolved, encounters: dict[uuid.UUID, Any]
) -> str:
    draft = item.draft
    kind = draft.resource_type
    encounter = _encounter_of(item, encounters)
    doctor = item.ids.get("doctor_id", encounter.doctor_id)
    item_keys = [f"item|{key}" for key in draft.keys]
    group = [draft.extra["group"]] if draft.extra["group"] else []
    found = run.mapping.find([*draft.keys, *item_keys, *group])
    record_id = _mapped(found, [*group, *draft.keys], spec.entity_type)
    item_id = _mapped(found, item_keys, spec.item_type)
    repository = getattr(run.uow, spec.repository)
    record = repository.get(record_id) if record_id is not None else None
    if record is not None and record.patient_id != encounter.patient_id:
        by_group = _mapped(found, group, spec.entity_type) is not None
        raise Refusal(f"{kind}.{spec.group_element if by_group else 'subject'}", CROSS_PATIENT)
    fields = {key: value for key, value in draft.fields.items() if value is not None}
    with run.uow.session.begin_nested():
        if record is None:
            record = repository.create(
                encounter_id=encounter.id,
                patient_id=encounter.patient_id,
                doctor_id=doctor,
                **fields,
                items=[draft.extra["item"]],
            )
            written, outcome = record.items[-1], CREATED
            run.mapping.own(spec.entity_type, [record.id])
            run.touched.update([record.id, written.id])
        else:
            written, outcome = _joined(spec, run, repository, record, item_id, draft)
    run.mapping.record(
        [
            *((key, spec.entity_type, record.id) for key in [*draft.keys, *group]),
            *((key, spec.item_type, written.id) for key in item_keys),
        ]
    )
    return outcome


def _joined(
    spec: WithItems, run: Run, repository: Any, record: Any, item_id: Any, draft: Draft
) -> tuple[Any, str]:
    """The item added to (or brought up to date in) its record, in the caller's savepoint;
    ``_Differs`` when that changes what this run wrote or what another source owns."""
    kind = draft.resource_type
    owned = bool(run.mapping.owned(spec.entity_type, [record.id]))
    fields = {key: value for key, value in draft.fields.items() if value is not None}
    version = record.version
    before = {key: getattr(record, key) for key in fields}
    record = repository.update(record.id, **fields)
    _guard(run, record.id, owned, _changed(record, before, kind, spec.paths))
    written = next((line for line in record.items if line.id == item_id), None)
    if written is None:
        if not owned and not run.update_linked:
            raise _Differs([spec.paths.get("items", kind)], OTHER_SOURCE)
        record = repository.update(record.id, items=[*record.items, draft.extra["item"]])
        written = record.items[-1]
        run.touched.add(written.id)
        return written, UPDATED
    changed = [key for key, value in draft.extra["item"].items() if getattr(written, key) != value]
    if changed:
        _guard(run, written.id, owned, [spec.paths.get("items", kind)])
        for key in changed:
            setattr(written, key, draft.extra["item"][key])
        run.touched.add(written.id)
    if changed or record.version != version:
        run.touched.add(record.id)
        return written, UPDATED
    return written, SKIPPED


# -- notes: documents ------------------------------------------------------------------------


def write_notes(run: Run, items: list[Resolved]) -> Written:
    """The writer of clinical notes (``DocumentReference``, ``Composition``)."""
    found = run.mapping.find(key for item in items for key in item.draft.keys)

    def one(item: Resolved, encounters: dict[uuid.UUID, Any]) -> str:
        return _one_note(run, item, encounters, found)

    return _one_by_one(run.uow, items, one, {})


def _one_note(
    run: Run,
    item: Resolved,
    encounters: dict[uuid.UUID, Any],
    found: dict[str, tuple[str, uuid.UUID]],
) -> str:
    draft = item.draft
    encounter = _encounter_of(item, encounters)
    doctor = item.ids.get("doctor_id", encounter.doctor_id)
    note_id = _mapped(found, draft.keys, "clinical_notes")
    notes = run.uow.clinical_notes
    note = notes.get(note_id) if note_id is not None else None
    if note is not None and str(note.patient_id) != str(encounter.patient_id):
        raise Refusal(f"{draft.resource_type}.subject", CROSS_PATIENT)
    fields = {key: value for key, value in draft.fields.items() if value is not None}
    if note is None:
        note = notes.create(
            encounter_id=encounter.id, patient_id=encounter.patient_id, doctor_id=doctor, **fields
        )
        if draft.extra["signed"]:
            notes.sign(note.id, signed_by=item.ids.get("signed_by", doctor))
        id = uuid.UUID(str(note.id))
        run.mapping.own("clinical_notes", [id])
        run.touched.add(id)
        outcome = CREATED
    else:
        id = uuid.UUID(str(note.id))
        differing = _differing(note, fields)
        if differing:
            owned = bool(run.mapping.owned("clinical_notes", [id]))
            _guard(run, id, owned, [f"{draft.resource_type}.{key}" for key in differing])
        outcome = _note_updated(run, note, fields, doctor) if differing else SKIPPED
    run.mapping.record((key, "clinical_notes", id) for key in draft.keys)
    return outcome


def _note_updated(run: Run, note: Any, fields: dict[str, Any], doctor: Any) -> str:
    notes = run.uow.clinical_notes
    if note.is_signed:
        notes.amend(
            note.id, amended_by=doctor, reason="FHIR import", content=fields.get("content", {})
        )
    else:
        notes.update_draft(note.id, expected_version=note.version, **fields)
    run.touched.add(uuid.UUID(str(note.id)))
    return UPDATED


def _differing(note: Any, fields: dict[str, Any]) -> list[str]:
    """The fields the note does not already hold (content compared without empties)."""
    differing = []
    for key, value in fields.items():
        current = getattr(note, key)
        if key == "content":
            current, value = pruned(current.to_mongo().to_dict()), pruned(value)
        if current != value:
            differing.append(key)
    return differing


def _many(repository: Any, ids: set[uuid.UUID]) -> list[Any]:
    wanted = list(ids)
    rows: list[Any] = []
    for start in range(0, len(wanted), 1000):
        rows += repository.get_many(wanted[start : start + 1000])
    return rows
