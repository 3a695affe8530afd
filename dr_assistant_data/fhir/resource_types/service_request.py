"""ServiceRequest: one item of an order (lab, imaging, procedure, referral); the
resources of one ``requisition`` are one order, which stays within its patient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ...relational.models import Order, OrderItem
from .. import codes
from ..elements import (
    Draft,
    annotation_text,
    codings,
    identifier_value,
    moment,
    ordered_item,
    own_status,
    status_in,
    text_of,
)
from ..export_rows import with_items
from ..outbound import JSON, meta, reference, resource, when
from ..outcomes import REQUIRED, UNSUPPORTED_CODE, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import WithItems, with_items_writer

KEPT = (
    *("identifier", "requisition", "status", "intent", "category", "code", "subject"),
    *("encounter", "occurrenceDateTime", "authoredOn", "requester", "performer", "note"),
    *("patientInstruction", "extension"),
)
ESSENTIAL = frozenset({"status", "category", "code", "subject", "encounter"})
CHECKED = (
    Order,
    {"provider_id": "ServiceRequest.performer", "notes": "ServiceRequest.note"},
)
PATHS = {
    "status": "ServiceRequest.status",
    "order_type": "ServiceRequest.category",
    "items": "ServiceRequest.code",
    "ordered_at": "ServiceRequest.authoredOn",
    "completed_at": "ServiceRequest.occurrenceDateTime",
    "provider_id": "ServiceRequest.performer",
    "notes": "ServiceRequest.note",
    "encounter_id": "ServiceRequest.encounter",
    "patient_id": "ServiceRequest.subject",
    "doctor_id": "ServiceRequest.requester",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""


def build(raw: Raw, s: Any, keys: list[str]) -> Draft:
    categories = [code for concept in s.category or [] for code in codings(concept)]
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
    name = text_of(s.code)
    if not name:
        raise Refusal("ServiceRequest.code", REQUIRED)
    status = own_status(s, tuple(codes.ORDER_STATUS_OUT)) or status_in(
        codes.ORDER_STATUS, s.status, "ServiceRequest.status"
    )
    fields = {
        "order_type": order_type,
        "status": status,
        "ordered_at": moment(s.authoredOn, "ServiceRequest.authoredOn"),
        "completed_at": moment(s.occurrenceDateTime, "ServiceRequest.occurrenceDateTime")
        if status == "completed"
        else None,
        "provider_id": identifier_value(s.performer),
        "notes": annotation_text(s.note),
    }
    coding = next((c for c in (s.code.coding or []) if c.code), None)
    item = {
        "item_code": str(coding.code) if coding is not None else None,
        "item_name": name,
        "instructions": s.patientInstruction,
    }
    return ordered_item(raw, "ServiceRequest", s, fields, item, keys, s.requisition)


def outbound(row: Any, items: list[Any]) -> list[JSON]:
    """One ``ServiceRequest`` per item of the order ``row``, grouped by its id
    (``requisition``)."""
    category = {
        "system": codes.SNOMED,
        "code": codes.ORDER_CATEGORY_OUT[row.order_type],
        "display": codes.ORDER_CATEGORY_DISPLAY[row.order_type],
    }
    resources = []
    for item in items:
        fields = {
            "resourceType": "ServiceRequest",
            "id": str(item.id),
            "meta": meta(row),
            "extension": [{"url": codes.STATUS_EXTENSION, "valueCode": row.status}],
            "requisition": {"system": codes.ORDER_SYSTEM, "value": str(row.id)},
            "status": codes.ORDER_STATUS_OUT[row.status],
            "intent": "order",
            "category": [{"coding": [category]}],
            "code": {
                "coding": [{"code": item.item_code}] if item.item_code else [],
                "text": item.item_name,
            },
            "subject": reference("Patient", row.patient_id),
            "encounter": reference("Encounter", row.encounter_id),
            "occurrenceDateTime": when(row.completed_at),
            "authoredOn": when(row.ordered_at),
            "requester": reference("Practitioner", row.doctor_id),
            "performer": [
                {"identifier": {"system": codes.PROVIDER_SYSTEM, "value": row.provider_id}}
            ]
            if row.provider_id
            else [],
            "note": [{"text": row.notes}] if row.notes else [],
            "patientInstruction": item.instructions,
        }
        resources.append(resource(fields))
    return resources


def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
    orders = filter(fresh, uow.orders.iterate(order_by="created_at"))
    for order, items in with_items(uow, OrderItem.order_id, orders):
        uow.orders.record_chart_read(order.patient_id)
        yield outbound(order, items)


WRITER = WithItems("orders", "orders", "order_items", "requisition", PATHS)
RESOURCE = ResourceType(
    "ServiceRequest",
    rank=4,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=with_items_writer(WRITER),
    checked=CHECKED,
    export=export,
)
