"""What the import and the export know of one FHIR resource type, in one place.

Each module of ``resource_types`` declares one ``ResourceType``; ``resource_types.REGISTRY``
is what the importer, the inbound checks and the bulk export derive their tables from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .elements import Draft
from .outbound import JSON
from .reading import Raw
from .writers import Writer


@dataclass(frozen=True)
class ResourceType:
    name: str
    rank: int
    """Its place in the import order: what it references comes before it."""
    kept: tuple[str, ...]
    """The elements read (besides ``resourceType`` and ``id``); the others are listed as
    dropped."""
    essential: frozenset[str]
    """The kept elements whose loss refuses the resource; another kept element that is
    not valid is dropped instead."""
    build: Callable[[Raw, Any, list[str]], Draft]
    """The ``Draft`` of the resource's model (its kept elements), or ``Refusal``."""
    write: Writer
    """Writes resolved drafts through the repositories (``writers.py``)."""
    referable_as: str | None = None
    """The entity type a reference to such a resource resolves to (``patients``)."""
    checked: tuple[type, dict[str, str]] | None = None
    """The record's model and the optional fields the layer's rules check before
    anything is written (field: FHIR element), dropped when they would be refused."""
    export: Callable[[Any, Callable[[Any], bool]], Iterator[list[JSON]]] | None = None
    """The bulk export's resources of this type, a record at a time, for the records
    ``fresh`` accepts (their chart reads recorded); ``None``: not exported as such."""
