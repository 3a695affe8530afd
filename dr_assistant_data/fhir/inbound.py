"""FHIR resources checked and turned into the fields of the layer's records.

A resource is first screened as JSON (no ``$``-prefixed or dotted key anywhere, no
string over ``MAX_STRING``, no more than ``MAX_RESOURCE_BYTES`` of text), then the
elements the schema keeps are validated with the ``fhir.resources`` R4B model of its
type (elements the schema drops are not parsed: they cost time and are not stored).

What each type keeps and requires is its module's (``resource_types``). Only a resource
without what the schema requires (``ResourceType.essential``: a patient's name, an
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

import re
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as ModelError

from ..errors import ValidationError
from ..relational.rules.validation import columns_of
from . import codes
from .elements import Draft
from .identity import own_keys
from .outcomes import (
    FORBIDDEN_KEY,
    INVALID,
    NOT_KEPT,
    TOO_LARGE,
    UNSUPPORTED,
    UNSUPPORTED_CODE,
    UNSUPPORTED_TYPE,
    Refusal,
)
from .reading import MAX_RESOURCE_BYTES, Raw
from .resource_types import REGISTRY

MAX_STRING = 200_000
_INDEXED = re.compile(r"(?P<head>\w+\.(?P<element>\w+))\[(?P<index>\d+)\]")


NOT_REPORTED = frozenset({"resourceType", "id", "meta", "text"})
"""Elements not kept and not listed as dropped: the id and the resource's metadata, and
its narrative (a rendering of the elements themselves)."""


EXTENSIONS_READ = frozenset({codes.STATUS_EXTENSION, codes.DURATION_EXTENSION})


DROPPED_INVALID = frozenset({INVALID, UNSUPPORTED_CODE})
"""The reasons an element dropped by a builder has that refuse its resource under
``strict`` (an element the note's fields cannot hold is kept as text, not refused)."""


MAX_DROPPED = 20
"""Invalid elements dropped from one resource before it is refused whole."""


def draft(raw: Raw, *, strict: bool = False) -> Draft:
    """The ``Draft`` of a resource, or ``Refusal``; the elements its builder dropped
    (``Draft.dropped``) are listed with the others."""
    if raw.resource is None:
        raise Refusal(raw.field, raw.problem or INVALID)
    kind = raw.resource_type
    if kind not in REGISTRY:
        raise Refusal("resourceType", UNSUPPORTED_TYPE, UNSUPPORTED)
    _screen(raw.resource, kind)
    if raw.resource.get("modifierExtension"):
        raise Refusal(f"{kind}.modifierExtension", UNSUPPORTED_CODE)
    dropped = _not_kept(kind, raw.resource)
    positions: dict[str, list[int]] = {}
    resource = _checked(kind, raw.resource, dropped, strict, positions)
    keys = own_keys(kind, raw.resource.get("id"), raw.full_url)
    built = REGISTRY[kind].build(raw, resource, keys)
    invalid = next((d for d in built.dropped if d[1] in DROPPED_INVALID), None)
    if strict and invalid is not None:
        raise Refusal(*invalid)
    left_out = _left_out(kind, raw.resource, built.held, positions)
    invalid_fields = _invalid_fields(built, strict, positions)
    built.dropped = dropped + built.dropped + left_out + invalid_fields
    return built


def _not_kept(kind: str, resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The elements of ``resource`` the schema has no place for."""
    dropped = [
        (f"{kind}.{key}", NOT_KEPT)
        for key in resource
        if key not in REGISTRY[kind].kept and key not in NOT_REPORTED
    ]
    if "extension" in REGISTRY[kind].kept and isinstance(resource.get("extension"), list):
        dropped += [
            (f"{kind}.extension", NOT_KEPT)
            for extension in resource["extension"]
            if not isinstance(extension, dict) or extension.get("url") not in EXTENSIONS_READ
        ]
    return dropped


def _invalid_fields(
    built: Draft, strict: bool, positions: dict[str, list[int]]
) -> list[tuple[str, str]]:
    """Drop the optional fields the layer's rules would refuse (``strict``: refuse), each
    named by the element it was read from, at its place in the resource."""
    checked = REGISTRY[built.resource_type].checked
    if checked is None:
        return []
    model, paths = checked
    columns = columns_of(model)
    dropped = []
    for name, element in paths.items():
        value = built.fields.get(name)
        if value is None or name not in columns:
            continue
        path = _placed(built.paths.get(name, element), positions)
        try:
            columns[name].check.clean(value, name)
        except ValidationError:
            if strict:
                raise Refusal(path, INVALID) from None
            built.fields[name] = None
            dropped.append((path, INVALID))
    return dropped


def _placed(path: str, positions: dict[str, list[int]]) -> str:
    """``path`` (``Patient.telecom[1].value``, its index the model's) with the index of
    the item's place in the resource."""
    found = _INDEXED.match(path)
    if found is None or found["element"] not in positions:
        return path
    places = positions[found["element"]]
    index = int(found["index"])
    place = places[index] if index < len(places) else index
    return f"{found['head']}[{place}]{path[found.end() :]}"


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


def _left_out(
    kind: str,
    resource: dict[str, Any],
    held: dict[str, dict[int, frozenset[str]]],
    positions: dict[str, list[int]],
) -> list[tuple[str, str]]:
    """The parts of the elements a builder read in part (``Draft.held``): each item of a
    list not read (``Patient.name[1]``), and each key of an item read that is not kept
    (``Patient.name[0].prefix``; of an element that is no list, item 0's). Items are named
    by their place in the resource, and those the model refused are listed already."""
    dropped = []
    for element, kept in held.items():
        items = resource.get(element)
        path = f"{kind}.{element}"
        if isinstance(items, dict) and 0 in kept and element not in positions:  # no list
            dropped += [(f"{path}.{key}", NOT_KEPT) for key in items if key not in kept[0]]
            continue
        if not isinstance(items, list):
            continue
        places = positions.get(element, list(range(len(items))))
        read = {places[index]: keys for index, keys in kept.items() if index < len(places)}
        for place in places:
            item = items[place]
            if place not in read:
                dropped.append((f"{path}[{place}]", NOT_KEPT))
            elif isinstance(item, dict):
                dropped += [
                    (f"{path}[{place}].{k}", NOT_KEPT) for k in item if k not in read[place]
                ]
    return dropped


def _checked(
    kind: str,
    resource: dict[str, Any],
    dropped: list[tuple[str, str]],
    strict: bool,
    positions: dict[str, list[int]],
) -> Any:
    """The model of the kept elements; an optional one the model refuses is dropped (the
    item of a list, or the element) and the rest validated again. ``positions`` gets,
    for each list element an item was dropped from, the places in the resource of the
    items left (the model's item 0 may be the resource's item 1)."""
    kept = {
        key: resource[key]
        for key in ("resourceType", "id", *REGISTRY[kind].kept)
        if key in resource
    }
    for _ in range(MAX_DROPPED):
        try:
            return get_fhir_model_class(kind).model_validate(kept)
        except ModelError as error:
            location = tuple(error.errors()[0]["loc"]) if error.errors() else ()
            element = str(location[0]) if location else ""
            element = "class" if element == "class_fhir" else element
            index = location[1] if len(location) > 1 else None
            if isinstance(index, int) and element in positions:
                location = (location[0], positions[element][index], *location[2:])
            path = element_path(kind, location)
            if strict or element not in kept or element in REGISTRY[kind].essential:
                raise Refusal(path, INVALID) from None
            _drop(kept, element, index, positions)
            dropped.append((path, INVALID))
        except (TypeError, ValueError):
            raise Refusal(kind, INVALID) from None
    raise Refusal(kind, INVALID)


def element_path(kind: str, location: tuple[int | str, ...]) -> str:
    """A model error's location as a FHIR path with list indexes
    (``Patient.address[1].period.start``), to its third element at most."""
    path, names = kind, 0
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        if names == 3:
            break
        names += 1
        path += "." + ("class" if part == "class_fhir" else str(part))
    return path


def _drop(
    kept: dict[str, Any], element: str, index: object, positions: dict[str, list[int]]
) -> None:
    """Leave out ``kept[element]``, or only its item ``index`` when it is a list (whose
    items left keep their places in ``positions``)."""
    value = kept[element]
    if isinstance(value, list) and isinstance(index, int) and 0 <= index < len(value):
        kept[element] = [item for i, item in enumerate(value) if i != index]
        positions.setdefault(element, list(range(len(value)))).pop(index)
        if kept[element]:
            return
    del kept[element]
    positions[element] = []
