"""Every FHIR resource type the import reads and the export writes, one module each.

A module declares its ``RESOURCE`` (``resource_type.ResourceType``): the elements it
keeps, its builder, its writer, its outbound builder and bulk export rows, its rank in
the import order. ``REGISTRY`` holds them in that order; the importer, the inbound
checks and the bulk export derive everything they do from it, so adding a resource
type is adding a module here (and its name below).
"""

from __future__ import annotations

from ..resource_type import ResourceType
from . import (
    allergy_intolerance,
    composition,
    condition,
    document_reference,
    encounter,
    medication_request,
    observation,
    patient,
    practitioner,
    service_request,
)

MODULES = (
    practitioner,
    patient,
    encounter,
    medication_request,
    service_request,
    document_reference,
    composition,
    allergy_intolerance,
    condition,
    observation,
)
REGISTRY: dict[str, ResourceType] = {
    module.RESOURCE.name: module.RESOURCE
    for module in sorted(MODULES, key=lambda module: module.RESOURCE.rank)
}
"""The resource types by name, in import order (what is referenced comes first)."""

__all__ = ["MODULES", "REGISTRY", "ResourceType"]
