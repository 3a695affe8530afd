"""Superseded signed versions of notes, one document each (``clinical_note_versions``).

An amendment supersedes the note's current signed version; that version is written here
once, never changed, by the amending unit of work (journaled like every document write, so
an undo or the sweep takes it back with the amendment). Kept out of the note, a note's
history has no ceiling: the note stays within its 512 KiB whatever the number of
amendments. Notes amended before migration ``m0003_note_versions`` may still embed their
history (``ClinicalNote.history``) until it has run; :func:`superseded` reads both.
"""

from __future__ import annotations

from typing import Any

from mongoengine import Document
from mongoengine import fields as me

from .clinical_note import ClinicalNote, SignedVersion
from .fields import UUIDText
from .journal import PendingMarker
from .store import DocumentStore


class NoteVersion(Document):
    meta = {"collection": "clinical_note_versions", "auto_create_index": False}

    id = me.StringField(primary_key=True)
    """``<note id>/<version>``: one document per version of a note."""
    note_id = UUIDText(required=True)
    version = me.IntField(required=True, min_value=1)
    signed = me.EmbeddedDocumentField(SignedVersion, required=True)
    pending = me.EmbeddedDocumentField(PendingMarker)


def version_document(note_id: str, signed: SignedVersion) -> dict[str, Any]:
    """The stored form of ``signed``, a superseded version of note ``note_id``."""
    version = NoteVersion(
        id=f"{note_id}/{signed.version}", note_id=note_id, version=signed.version, signed=signed
    )
    return version.to_mongo().to_dict()


def superseded(store: DocumentStore, note: ClinicalNote) -> list[SignedVersion]:
    """Every version ``note`` has superseded, oldest first."""
    by_version = {entry.version: entry for entry in note.history}
    versions = store.collection(NoteVersion).find({"note_id": note.id}, {"signed": 1})
    for raw in versions.sort("version", 1):
        entry = SignedVersion._from_son(raw["signed"])
        by_version[entry.version] = entry
    return [by_version[version] for version in sorted(by_version)]
