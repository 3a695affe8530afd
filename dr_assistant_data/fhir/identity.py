"""Which row a resource is: the mapping from source identifiers to the layer's records.

Every resource imported leaves keys behind (``source_identifiers``): its logical id
(``Patient|id|<id>``), its Bundle ``fullUrl`` when that is a global URI (``urn:uuid:``,
``urn:oid:`` or an absolute URL) and its business identifiers (``Practitioner|<system>|
<value>``). A reference is resolved by the same keys, so a resource and a reference to it
meet however the files are split and in whatever order they come.

Every key belongs to the source the files come from (``--source``, or the default one):
one system's ``Patient/1`` is not another's, and an id shaped like a UUID (as the export
writes the layer's own ids) is an identifier of that source like any other, never a key
into the clinic's tables. A round trip between two databases works through these keys
alone. A record created by an import is *owned* by its source (an ownership key maps it
too): an import updates only the records its own source owns; a record it reaches any
other way (a patient found by ABHA number or MRN) is linked, not overwritten.
Keys are stored as SHA-256 digests: the table holds no identifier in clear.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..relational.models import SourceIdentifier
from ..values.clock import utcnow

_RELATIVE = re.compile(r"(?:.*/)?([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?")
_GLOBAL = ("urn:uuid:", "urn:oid:", "http://", "https://")


@dataclass(frozen=True)
class Target:
    """What a reference names: the keys that may map it, and the type it must be."""

    resource_type: str | None
    keys: tuple[str, ...]
    path: str = ""
    """The FHIR element that holds the reference (``Encounter.subject``)."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def own_keys(resource_type: str, logical_id: object, full_url: str | None) -> list[str]:
    """The keys a resource is known by, besides its business identifiers."""
    keys = []
    if isinstance(logical_id, str) and logical_id:
        keys.append(f"{resource_type}|id|{logical_id}")
    if full_url and full_url.startswith(_GLOBAL):
        keys.append(f"url|{full_url}")
    return keys


def identifier_key(resource_type: str, system: str | None, value: str) -> str:
    return f"{resource_type}|{system or ''}|{value}"


def target(reference: str) -> Target | None:
    """The keys of a reference string; ``None`` for one that can name nothing here (a
    contained ``#id``, an empty string)."""
    if not isinstance(reference, str) or not reference or reference.startswith("#"):
        return None
    keys: list[str] = []
    if reference.startswith(_GLOBAL):
        keys.append(f"url|{reference}")
    match = _RELATIVE.fullmatch(reference)
    if match is None:
        return Target(None, tuple(keys)) if keys else None
    kind, logical_id = match.groups()
    keys.append(f"{kind}|id|{logical_id}")
    return Target(kind, tuple(keys))


def _owner_key(source: str, entity_type: str, id: object) -> str:
    return f"owner|{source}|{entity_type}|{id}"


class Mapping:
    """The mapping rows of one unit of work's session for one ``source`` (Core
    statements: the rows hold no patient data and are not audited; the records they
    point to are)."""

    def __init__(self, session: Session, source: str = "") -> None:
        self.session = session
        self.source = source

    def owned(self, entity_type: str, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``ids`` an import of this source created, in one query."""
        keys = {_owner_key(self.source, entity_type, id): id for id in ids}
        return {keys[key] for key in self.find(keys)}

    def own(self, entity_type: str, ids: Iterable[uuid.UUID]) -> None:
        """Mark ``ids`` as created by an import of this source."""
        self.record((_owner_key(self.source, entity_type, id), entity_type, id) for id in ids)

    def find(self, keys: Iterable[str]) -> dict[str, tuple[str, uuid.UUID]]:
        """``{key: (entity type, id)}`` for the keys already mapped, in one query."""
        hashed = {digest(key): key for key in keys}
        if not hashed:
            return {}
        statement = select(
            SourceIdentifier.source_key, SourceIdentifier.entity_type, SourceIdentifier.entity_id
        ).where(SourceIdentifier.source_key.in_(list(hashed)))
        return {hashed[key]: (kind, id) for key, kind, id in self.session.execute(statement)}

    def record(self, rows: Iterable[tuple[str, str, uuid.UUID]]) -> None:
        """Map each ``(key, entity type, id)``; a key mapped already keeps its row."""
        values = {
            digest(key): {
                "source_key": digest(key),
                "entity_type": kind,
                "entity_id": id,
                "created_at": utcnow(),
            }
            for key, kind, id in rows
        }
        if not values:
            return
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(SourceIdentifier)
            .on_conflict_do_nothing(index_elements=["source_key"])
            # RETURNING lets SQLAlchemy send many rows per statement ("insertmanyvalues"),
            # which it does not do for ON CONFLICT without it: a statement per row
            .returning(SourceIdentifier.source_key)
        )
        self.session.execute(statement, list(values.values()))
