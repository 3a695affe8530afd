"""Practitioner: a doctor of the clinic (a user without a password until one is set),
found again by its source's keys or its identifiers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ...relational.models import User
from ..elements import Draft, name_of, telecom_value, text_of
from ..identity import identifier_key
from ..outbound import JSON, meta, resource
from ..outcomes import REQUIRED, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import Simple, simple_writer

KEPT = ("identifier", "active", "name", "telecom", "qualification")
ESSENTIAL = frozenset({"name"})
CHECKED = (
    User,
    {
        "phone": "Practitioner.telecom",
        "email": "Practitioner.telecom",
        "specialty": "Practitioner.qualification",
    },
)
PATHS = {
    "full_name": "Practitioner.name",
    "email": "Practitioner.telecom",
    "phone": "Practitioner.telecom",
    "specialty": "Practitioner.qualification",
    "username": "Practitioner.identifier",
}
"""The FHIR element of each record field (how a refusal or a conflict names it)."""


def build(raw: Raw, p: Any, keys: list[str]) -> Draft:
    name = name_of(p.name, "Practitioner.name")
    words = [*(name.prefix or []), *(name.given or []), name.family or ""]
    full_name = name.text or " ".join(str(word) for word in words if word)
    if not full_name:
        raise Refusal("Practitioner.name", REQUIRED)
    keys = keys + [
        identifier_key("Practitioner", ident.system, ident.value)
        for ident in p.identifier or []
        if ident.value
    ]
    if not keys:
        raise Refusal("Practitioner.identifier", REQUIRED)
    username = "practitioner-" + uuid.uuid5(uuid.NAMESPACE_URL, keys[0]).hex[:20]
    qualification = p.qualification[0] if p.qualification else None
    fields = {
        "username": username,
        "full_name": str(full_name),
        "email": telecom_value(p.telecom, "email"),
        "phone": telecom_value(p.telecom, "phone"),
        "role": "doctor",
        "specialty": text_of(qualification.code) if qualification is not None else None,
        "status": "inactive" if p.active is False else "active",
    }
    return Draft(raw, "Practitioner", fields, keys)


def _practitioner_only(draft: Draft) -> dict[str, Any]:
    """A practitioner comes without a password (the hash matches none: no login until
    one is set) and, when the resource has no email, with an address that reaches nobody
    (the schema requires one)."""
    username = draft.fields["username"]
    return {
        "password_hash": "!imported",
        "email": draft.fields["email"] or f"{username}@practitioners.invalid",
    }


def outbound(row: Any) -> JSON:
    telecom = [
        {"system": system, "value": value}
        for system, value in (("phone", row.phone), ("email", row.email))
        if value and not (system == "email" and value.endswith("@practitioners.invalid"))
    ]
    fields = {
        "resourceType": "Practitioner",
        "id": str(row.id),
        "meta": meta(row),
        "active": row.status == "active",
        "name": [{"text": row.full_name}],
        "telecom": telecom,
        "qualification": [{"code": {"text": row.specialty}}] if row.specialty else [],
    }
    return resource(fields)


def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
    for user in uow.users.iterate(filters={"role": "doctor"}, order_by="created_at"):
        if fresh(user):
            yield [outbound(user)]


WRITER = Simple(
    "users", "users", PATHS, not_updated=frozenset({"username"}), create_only=_practitioner_only
)
RESOURCE = ResourceType(
    "Practitioner",
    rank=0,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=simple_writer(WRITER),
    referable_as="users",
    checked=CHECKED,
    export=export,
)
