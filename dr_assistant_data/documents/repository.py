"""What both document repositories share: the store, the unit's journal and session."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from mongoengine import Document
from mongoengine.base.common import _document_registry
from mongoengine.queryset import QuerySet
from pymongo.collection import Collection
from sqlalchemy.orm import Session

from .. import telemetry
from ..errors import (
    ConflictError,
    ImmutableRecordError,
    NotFoundError,
    ValidationError,
    schema_field,
)
from ..relational.audit.trail import trail_of
from ..session_context import context_of
from ..values.fields import as_uuid
from .journal import DocumentJournal, Raw
from .store import DocumentStore
from .translate import translated


class DocumentRepository:
    """Reads and journaled writes of one document class inside a unit of work."""

    document: ClassVar[type[Document]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every public method of a repository answers with contract errors only, and is a
        span (``telemetry.trace_methods``) that records the contract error's class."""
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if inspect.isfunction(value) and not name.startswith("_"):
                setattr(cls, name, translated(value))
        telemetry.trace_methods(cls, "document", _collection)

    def __init__(self, store: DocumentStore, journal: DocumentJournal, session: Session) -> None:
        self.document_store = store
        self.journal = journal
        self.session = session

    @property
    def collection(self) -> Collection[Raw]:
        return self.document_store.collection(self.document)

    def objects(self, *, listing: bool = False) -> QuerySet:
        """Query set on this layer's database; journal markers are never loaded. A
        ``listing`` of a read-only unit of work that has written nothing may be served by a
        secondary (a little behind); every other read is the primary's."""
        context = context_of(self.session)
        from_secondary = (
            listing and context.read_only and not context.needs_primary and not self.journal.written
        )
        store = self.document_store
        return store.objects(self.document, from_secondary=from_secondary).exclude("pending")

    def load_raw(self, doc_id: Any, field: str = "id") -> Raw:
        """The stored document (with its marker), or ``NotFoundError``."""
        raw = self.collection.find_one({"_id": str(as_uuid(doc_id, field))})
        if raw is None:
            raise NotFoundError(f"no {self.document._get_collection_name()} record with this id")
        return raw

    def from_raw(self, raw: Raw) -> Any:
        return self.document._from_son({k: v for k, v in raw.items() if k != "pending"})

    def insert(self, document: Document) -> None:
        self._check_actor()
        self.journal.insert(self.collection, document.to_mongo().to_dict())

    def conditional_update(
        self,
        before: Raw,
        expected: Raw,
        document: Document,
        fields: Iterable[str],
        *,
        durable: bool = False,
        **more: Raw,
    ) -> None:
        """Write ``fields`` of ``document`` if the stored one still matches ``expected``;
        otherwise say why it did not: gone, signed, or changed by someone else. ``durable``:
        acknowledged only once a majority of the replica set has it in its journal."""
        self._check_actor()
        stored = document.to_mongo()
        changes: Raw = {"$set": {name: stored.get(name) for name in fields}, **more}
        collection = self.document_store.collection(self.document, durable=durable)
        if self.journal.update(collection, before, expected, changes):
            return
        current = self.collection.find_one({"_id": before["_id"]}, {"status": 1})
        if current is None:
            raise NotFoundError("the record was deleted")
        if current.get("status") in ("signed", "amended") and expected.get("status") == "draft":
            raise ImmutableRecordError("the note was signed; amend it instead")
        raise ConflictError("the record was changed by someone else; reload it and retry")

    def _check_actor(self) -> None:
        """Refuse a write without a required actor before it reaches the store."""
        trail = trail_of(self.session)
        if trail is not None:
            trail.check_actor()

    def audit(self, action: str, doc_id: str, fields: Iterable[str]) -> None:
        trail = trail_of(self.session)
        if trail is not None:
            trail.record(action, self.document._get_collection_name(), doc_id, tuple(fields))


def _collection(repository: DocumentRepository) -> dict[str, str]:
    return {"collection": repository.document._get_collection_name()}


def refuse_unknown(fields: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Only the fields a caller may set; the layer maintains the rest. The error names a
    refused field only when some document of the schema has a field of that name."""
    allowed = set(allowed)
    for name in fields:
        if name not in allowed:
            known = {key for document in _document_registry.values() for key in document._fields}
            field = schema_field(name, known, "fields")
            raise ValidationError(field, "is not a field a caller can set")


def check_version(value: Any, field: str = "expected_version") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, "must be a whole number, 1 or more")
    return value
