"""Undo of document writes when the relational transaction of their unit of work fails.

MongoDB and PostgreSQL cannot commit atomically together. Document writes happen at once;
each carries a ``pending`` marker (the unit's id, the time, and the document as it was
before the unit first touched it: ``None`` for a new one). The unit's relational
transaction also inserts a ``document_commits`` row, so that row exists exactly when the
relational side committed. Then:

* commit succeeded → the markers are removed (``finalize``); the sweep deletes the row
  once it is older than the grace period;
* the block raised or the commit definitely failed → each touched document is restored from
  its marker, newest unit first (``undo``): inserts deleted, updates replaced by the
  before-image;
* the answer to the COMMIT was lost → PostgreSQL is asked whether the row exists
  (``relational/commit_outcome.py``; phase 5 of ``commit.py``): committed → finalized;
  not committed → undone; no answer → the documents stay marked (``abandon``) for the
  sweep to settle;
* the process died in between → :func:`dr_assistant_data.documents.sweep.sweep` later
  finalizes markers whose unit has a ``document_commits`` row and undoes the others.

A document pending under one unit refuses writes from another (``ConflictError``), so an
undo never overwrites someone else's change.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

from mongoengine import EmbeddedDocument
from mongoengine import fields as me
from pymongo.collection import Collection
from pymongo.database import Database
from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..errors import ConflictError, DataLayerError
from ..relational.models import DocumentCommit
from ..values.clock import utcnow
from .translate import translated

logger = logging.getLogger(__name__)

Raw = dict[str, Any]


class PendingMarker(EmbeddedDocument):
    """Set on a document by an unfinished unit of work; removed when it commits."""

    unit = me.StringField()
    at = me.DateTimeField()
    before = me.DictField()


def _delete_document(db: Database[Raw], collection: str, doc_id: Any) -> None:
    db[collection].delete_one({"_id": doc_id})


def _delete_audio(db: Database[Raw], collection: str, doc_id: Any) -> None:
    bucket = collection.removesuffix(".files")
    db[f"{bucket}.chunks"].delete_many({"files_id": doc_id})
    db[collection].delete_one({"_id": doc_id})


UNDO_INSERT: dict[str, Callable[[Database[Raw], str, Any], None]] = {
    "clinical_notes": _delete_document,
    "clinical_note_versions": _delete_document,
    "voice_recordings": _delete_document,
    "voice_audio.files": _delete_audio,
}
"""Every journaled collection, and how an insert into it is taken back."""


class DocumentJournal:
    """The document writes of one unit of work, until its relational side commits."""

    def __init__(self, db: Callable[[], Database[Raw]]) -> None:
        self._db = db
        self._written: dict[tuple[str, Any], None] = {}

    @cached_property
    def unit_id(self) -> str:
        """The id its writes are marked with and its commit row holds: drawn when first
        needed, so a unit of work that writes no document draws none."""
        return uuid.uuid4().hex

    def marker(self, before: Raw | None) -> Raw:
        return {"unit": self.unit_id, "at": utcnow(), "before": before}

    def insert(self, collection: Collection[Raw], raw: Raw) -> None:
        """Insert ``raw`` as pending under this unit."""
        raw["pending"] = self.marker(None)
        self.track(collection.name, raw["_id"])
        collection.insert_one(raw)

    def update(self, collection: Collection[Raw], before: Raw, expected: Raw, changes: Raw) -> bool:
        """Apply ``changes`` (an update document) if the document still matches
        ``expected``; the first write of this unit keeps ``before`` for undo.

        ``expected`` must pin the version ``before`` shows, so the before-image kept is
        exactly what this write replaces. Returns False when nothing matched (the caller
        decides why). Raises ``ConflictError`` when another unfinished unit of work holds
        the document.
        """
        held_by = (before.get("pending") or {}).get("unit")
        if held_by not in (None, self.unit_id):
            raise ConflictError("the record is being changed by another unit of work; retry")
        if held_by is None:
            clean = {k: v for k, v in before.items() if k != "pending"}
            changes = {
                **changes,
                "$set": {**changes.get("$set", {}), "pending": self.marker(clean)},
            }
        self.track(collection.name, before["_id"])
        result = collection.update_one({"_id": before["_id"], **expected}, changes)
        return result.matched_count == 1

    def track(self, collection: str, doc_id: Any) -> None:
        self._written[(collection, doc_id)] = None

    @property
    def written(self) -> list[tuple[str, Any]]:
        return list(self._written)

    def before_commit(self, session: Session) -> None:
        """Record, in the relational transaction about to commit, that this unit commits."""
        if self._written:
            session.execute(insert(DocumentCommit.__table__).values(unit_id=self.unit_id))

    def after_commit(self) -> None:
        """The relational side committed: the documents are final. A failure here leaves
        them marked, and the sweep finalizes them (the commit row says so)."""
        self._settle(finalize, "finalize")

    def release(self) -> None:
        """Undo whatever was written and not committed. A failure leaves the documents
        marked, and the sweep undoes them (no commit row)."""
        self._settle(undo, "undo")

    def abandon(self) -> None:
        """Whether the relational side committed is unknown: leave the documents marked,
        untouched, for the sweep to settle from the commit row once PostgreSQL answers."""
        written, unit = self._start_afresh()
        if written:
            logger.warning("documents of unit %s left for the sweep: outcome unknown", unit)

    def _start_afresh(self) -> tuple[list[tuple[str, Any]], str]:
        """What was written, and under which unit; then a new unit id, so a later commit
        can never vouch for writes settled (or left to the sweep) before it. An id nothing
        was written under is in no document and no commit row: it is kept."""
        written, unit = self.written, self.unit_id
        if written:
            self._written.clear()
            self.unit_id = uuid.uuid4().hex
        return written, unit

    def _settle(
        self, step: Callable[[Database[Raw], str, list[tuple[str, Any]]], None], what: str
    ) -> None:
        """Apply ``step`` to what was written, then start afresh (``_start_afresh``)."""
        if not self._written:  # most units write no document: nothing to settle
            return
        written, unit = self._start_afresh()
        try:
            step(self._db(), unit, written)
        except DataLayerError:
            logger.warning("documents of unit %s left for the sweep to %s", unit, what)


@translated
def finalize(db: Database[Raw], unit: str, written: list[tuple[str, Any]]) -> None:
    """Remove this unit's markers from the documents it wrote."""
    by_collection: dict[str, list[Any]] = {}
    for collection, doc_id in written:
        by_collection.setdefault(collection, []).append(doc_id)
    for collection, ids in by_collection.items():
        db[collection].update_many(
            {"_id": {"$in": ids}, "pending.unit": unit}, {"$unset": {"pending": ""}}
        )


@translated
def undo(db: Database[Raw], unit: str, written: list[tuple[str, Any]]) -> None:
    """Put back every document this unit wrote, newest write first."""
    for collection, doc_id in reversed(written):
        raw = db[collection].find_one({"_id": doc_id, "pending.unit": unit}, {"pending": 1})
        if raw is None:
            continue  # already undone, or never written
        before = raw["pending"]["before"]
        if before is None:
            UNDO_INSERT[collection](db, collection, doc_id)
        else:
            db[collection].replace_one({"_id": doc_id, "pending.unit": unit}, before)
