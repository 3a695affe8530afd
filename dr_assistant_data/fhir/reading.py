"""Resources streamed out of FHIR files: Bulk Data NDJSON, or a Bundle.

Neither is read whole: NDJSON line by line (a line longer than ``MAX_RESOURCE_BYTES``
is skipped unread and refused), a Bundle entry by entry (``ijson``), so memory stays
bounded by the largest resource, whatever the size of the file. Each resource comes out
as a ``Raw`` (its JSON object, or the reason it is not one) with its position in the
file; checking its content is ``inbound.py``'s job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from ..errors import ValidationError
from .outcomes import NOT_JSON, TOO_LARGE

MAX_RESOURCE_BYTES = 2 * 1024 * 1024
BUNDLE_TYPES = frozenset({"collection", "transaction", "document", "batch"})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Raw:
    """One resource as read: ``resource`` (a JSON object) or ``problem`` (a reason code).
    ``full_url`` is its Bundle entry's ``fullUrl``; ``position`` its line (NDJSON, from 1)
    or entry (Bundle, from 0)."""

    source: int
    position: int
    resource: dict[str, Any] | None
    full_url: str | None = None
    problem: str | None = None

    @property
    def resource_type(self) -> str:
        kind = self.resource.get("resourceType") if self.resource else None
        return kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 64 else "unknown"


def read(path: Path, source: int) -> Iterator[Raw]:
    """The resources of the file at ``path``: a Bundle if it is one JSON object whose
    ``resourceType`` is ``Bundle``, NDJSON otherwise."""
    with path.open("rb") as stream:
        head = stream.read(_CHUNK)
        stream.seek(0)
        if _is_bundle(head):
            yield from _bundle(stream, source)
        else:
            yield from _ndjson(stream, source)


def first_type(path: Path) -> str | None:
    """The ``resourceType`` of an NDJSON file's first line (``None`` for a Bundle or an
    unreadable first line): files are imported in the order of the types they hold."""
    with path.open("rb") as stream:
        line = stream.readline(MAX_RESOURCE_BYTES)
    try:
        resource = json.loads(line)
    except ValueError:
        return None
    if not isinstance(resource, dict) or resource.get("resourceType") == "Bundle":
        return None
    kind = resource.get("resourceType")
    return kind if isinstance(kind, str) else None


def _is_bundle(head: bytes) -> bool:
    """A Bundle is one JSON object, usually over many lines; NDJSON has an object per line."""
    first_line = head.lstrip().split(b"\n", 1)[0]
    try:
        first = json.loads(first_line)
    except ValueError:
        return head.lstrip().startswith(b"{") and b'"Bundle"' in head
    return isinstance(first, dict) and first.get("resourceType") == "Bundle"


def _ndjson(stream: BinaryIO, source: int) -> Iterator[Raw]:
    number = 0
    while True:
        line = stream.readline(MAX_RESOURCE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_RESOURCE_BYTES and not line.endswith(b"\n"):
            _skip_line(stream)
            yield Raw(source, number, None, problem=TOO_LARGE)
            continue
        if not line.strip():
            continue
        try:
            resource = json.loads(line)
        except ValueError:
            resource = None
        if not isinstance(resource, dict):
            yield Raw(source, number, None, problem=NOT_JSON)
            continue
        yield Raw(source, number, resource)


def _skip_line(stream: BinaryIO) -> None:
    while chunk := stream.readline(_CHUNK):
        if chunk.endswith(b"\n"):
            return


def _bundle(stream: BinaryIO, source: int) -> Iterator[Raw]:
    kind = _bundle_type(stream)
    if kind not in BUNDLE_TYPES:
        raise ValidationError("Bundle.type", "must be collection, transaction, batch or document")
    stream.seek(0)
    try:
        for number, entry in enumerate(ijson.items(stream, "entry.item", use_float=True)):
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                yield Raw(source, number, None, problem=NOT_JSON)
                continue
            url = entry.get("fullUrl")
            yield Raw(source, number, entry["resource"], url if isinstance(url, str) else None)
    except ijson.JSONError:
        raise ValidationError("Bundle", "is not well-formed JSON") from None


def _bundle_type(stream: BinaryIO) -> str | None:
    try:
        for kind in ijson.items(stream, "type"):
            return kind if isinstance(kind, str) else None
    except ijson.JSONError:
        raise ValidationError("Bundle", "is not well-formed JSON") from None
    return None
