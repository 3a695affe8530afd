"""What the resource types' builders share: the ``Draft`` a resource becomes, and the
readers of common FHIR elements (codes, references, moments, names, contact points).

A reader that cannot make sense of a required element raises ``Refusal(field, code)``
naming it; nothing of its value goes into the refusal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers

from . import codes
from .identity import Target, identifier_key, target
from .outcomes import INVALID, REQUIRED, UNSUPPORTED_CODE, UNSUPPORTED_TYPE, Refusal
from .reading import Raw


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
    held: dict[str, dict[int, frozenset[str]]] = field(default_factory=dict)
    """Elements read in part: ``{element: {item index (in the model): the keys of the
    item kept}}`` (an element that is no list: item 0); the other items and keys are
    listed as dropped (``not_kept``)."""
    paths: dict[str, str] = field(default_factory=dict)
    """The element a field was read from, where finer than its type's path for that field
    (``{"email": "Patient.telecom[1].value"}``): how a dropped field is named."""


def scoped(draft: Draft, source: str) -> Draft:
    """``draft`` with its keys, and those of its references, given to the system
    ``source`` (``""``: the default source, whose keys carry no prefix)."""
    if not source:
        return draft

    def local(keys: Iterable[str]) -> list[str]:
        return [f"{source}|{key}" for key in keys]

    draft.keys = local(draft.keys)
    draft.refs = {name: replace(t, keys=tuple(local(t.keys))) for name, t in draft.refs.items()}
    if draft.extra.get("group"):
        draft.extra["group"] = f"{source}|{draft.extra['group']}"
    return draft


def text_of(concept: Any) -> str | None:
    """A CodeableConcept's words: its text, else its first coding's display or code."""
    if concept is None:
        return None
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return str(coding.display or coding.code)
    return None


def codings(concept: Any) -> list[tuple[str | None, str | None]]:
    return [(c.system, c.code) for c in (concept.coding or [])] if concept is not None else []


def reference_to(reference: Any, path: str, kind: str) -> Target:
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


def moment(value: Any, path: str) -> datetime | None:
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


def optional_moment(value: Any, path: str, dropped: list[tuple[str, str]]) -> datetime | None:
    """``moment`` of an optional element: one that cannot be placed on the clock (a bare
    date) is dropped (listed in ``dropped``), never the resource."""
    try:
        return moment(value, path)
    except Refusal:
        dropped.append((path, INVALID))
        return None


def day(value: Any, path: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise Refusal(path, INVALID)  # a partial date (year, year-month)
    return value


def status_in(codes_in: dict[str, str], value: Any, path: str) -> str:
    if value is None:
        raise Refusal(path, REQUIRED)
    if value not in codes_in:
        raise Refusal(path, UNSUPPORTED_CODE)
    return codes_in[value]


def clinic_code(value: Any, allowed: tuple[str, ...], path: str) -> str | None:
    """A FHIR code as the clinic spells it (``entered-in-error``: ``entered_in_error``);
    ``None`` when absent, ``UNSUPPORTED_CODE`` when the clinic has no such code."""
    if value is None:
        return None
    code = str(value).replace("-", "_")
    if code not in allowed:
        raise Refusal(path, UNSUPPORTED_CODE)
    return code


def optional_code(
    value: Any, allowed: tuple[str, ...], path: str, dropped: list[tuple[str, str]]
) -> str | None:
    """``clinic_code`` of an optional element: a code the clinic has no equivalent for is
    dropped (listed in ``dropped``), never the resource."""
    try:
        return clinic_code(value, allowed, path)
    except Refusal as refusal:
        dropped.append((path, refusal.code))
        return None


def concept_code(concept: Any, allowed: tuple[str, ...], path: str) -> str | None:
    """The clinic's code of a status CodeableConcept (its first coding with a code)."""
    code = next((code for _, code in codings(concept) if code), None)
    return clinic_code(code, allowed, path)


def fhir_code(value: str | None) -> str | None:
    """The clinic's code as FHIR spells it (``entered_in_error``: ``entered-in-error``)."""
    return value.replace("_", "-") if value is not None else None


def first_coding(concept: Any) -> dict[str, str | None]:
    """``{"code", "system", "display"}`` of a CodeableConcept's first coding with a code
    (the display falling back on the concept's text); all ``None`` without one."""
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            display = coding.display or concept.text
            return {"code": coding.code, "system": coding.system, "display": display}
    return {"code": None, "system": None, "display": concept.text if concept else None}


def own_status(resource: Any, allowed: tuple[str, ...]) -> str | None:
    for extension in resource.extension or []:
        if extension.url == codes.STATUS_EXTENSION and extension.valueCode in allowed:
            return str(extension.valueCode)
    return None


def phone_number(value: str, country: str | None) -> str:
    """An international number; a local one is placed in ``country`` (the address's)."""
    if value.strip().startswith("+") or not country or len(country) != 2:
        return value
    try:
        number = phonenumbers.parse(value, country.upper())
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def telecom_value(points: Any, system: str) -> str | None:
    index = telecom_at(points, system)
    return str(points[index].value) if index is not None else None


def telecom_at(points: Any, system: str) -> int | None:
    """The index of the first contact point of ``system`` with a value."""
    for index, point in enumerate(points or []):
        if point.system == system and point.value:
            return index
    return None


def name_of(names: Any, path: str) -> Any:
    if not names:
        raise Refusal(path, REQUIRED)
    return next((name for name in names if name.use == "official"), names[0])


def group_key(kind: str, ident: Any) -> str | None:
    """The key of a prescription's (order's) group identifier."""
    return (
        identifier_key(f"{kind}-group", ident.system, ident.value)
        if ident and ident.value
        else None
    )


def ordered_item(
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
        "patient_id": reference_to(r.subject, f"{kind}.subject", "Patient"),
        "encounter_id": reference_to(r.encounter, f"{kind}.encounter", "Encounter"),
    }
    optional: frozenset[str] = frozenset()
    if r.requester is not None:
        refs["doctor_id"] = reference_to(r.requester, f"{kind}.requester", "Practitioner")
        optional = frozenset({"doctor_id"})
    extra = {"item": item, "group": group_key(kind, group)}
    return Draft(raw, kind, fields, keys, refs, optional, extra)


def identifier_value(reference: Any) -> str | None:
    if reference is None:
        return None
    references = reference if isinstance(reference, list) else [reference]
    for one in references:
        if one.identifier is not None and one.identifier.value:
            return str(one.identifier.value)
    return None


def annotation_text(annotations: Any) -> str | None:
    texts = [str(a.text) for a in annotations or [] if a.text]
    return "\n\n".join(texts) or None


def note_type(concept: Any, path: str) -> str:
    for _, code in codings(concept):
        if code in codes.NOTE_TYPE:
            return codes.NOTE_TYPE[code]
    raise Refusal(path, REQUIRED if concept is None else UNSUPPORTED_CODE)


def note_draft(
    raw: Raw,
    kind: str,
    r: Any,
    fields: dict[str, Any],
    keys: list[str],
    encounter: Any,
    signed: bool,
) -> Draft:
    refs = {
        "patient_id": reference_to(r.subject, f"{kind}.subject", "Patient"),
        "encounter_id": reference_to(encounter, f"{kind}.encounter", "Encounter"),
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
