"""Superseded note versions move out of their note into clinical_note_versions.

Each embedded history entry becomes a document ``<note id>/<version>`` (an upsert, so a
run that died half-way is simply run again), then the note's ``history`` is removed if it
is still what was copied (a note amended meanwhile keeps it, for the next run). Field
names are spelled out rather than imported, so this migration stays what it was.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database


def upgrade(db: Database[dict[str, Any]]) -> None:
    versions = db["clinical_note_versions"]
    versions.create_index([("note_id", ASCENDING), ("version", ASCENDING)], unique=True)
    versions.create_index([("pending.at", ASCENDING)], sparse=True)
    notes = db["clinical_notes"]
    for note in notes.find({"history.0": {"$exists": True}}, {"history": 1}):
        for entry in note["history"]:
            version_id = f"{note['_id']}/{entry['version']}"
            versions.replace_one(
                {"_id": version_id},
                {"note_id": note["_id"], "version": entry["version"], "signed": entry},
                upsert=True,
            )
        notes.update_one(
            {"_id": note["_id"], "history": note["history"]}, {"$unset": {"history": ""}}
        )
