"""What the outbound builders of the resource types (``resource_types``) share: the
layer's records as FHIR R4 resources (JSON), shaped as ABDM's records are.

Each record becomes the resources an importer reads back into the same record: every
field the schema holds has its element (docs/how-to/fhir.md), statuses FHIR has no exact
code for travel in the layer's own extension, and references are ``Type/<id>`` with the
layer's ids (which an import reads as identifiers of its source, like any other).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

JSON = dict[str, Any]


def reference(kind: str, id: object) -> JSON:
    return {"reference": f"{kind}/{id}"}


def concept(system: str | None, code: str | None, display: str | None = None) -> JSON:
    """A CodeableConcept of one coding; its display also as its text."""
    coding = {"system": system, "code": code, "display": display} if code else {}
    return {"coding": [coding], "text": display}


def status_concept(system: str, code: str | None) -> JSON | None:
    """A status CodeableConcept of FHIR's ``system`` from the clinic's code, or ``None``."""
    return {"coding": [{"system": system, "code": code.replace("_", "-")}]} if code else None


def meta(row: Any) -> JSON:
    return {"lastUpdated": when(row.updated_at)}


def when(value: date | datetime | None) -> str | None:
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
