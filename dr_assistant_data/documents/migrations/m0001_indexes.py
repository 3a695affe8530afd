"""Indexes behind the note and recording reads, and the retention TTL.

Field names are spelled out rather than imported, so this migration stays what it was.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database


def upgrade(db: Database[dict[str, Any]]) -> None:
    notes = db["clinical_notes"]
    notes.create_index([("patient_id", ASCENDING), ("created_at", DESCENDING)])
    notes.create_index([("encounter_id", ASCENDING), ("created_at", DESCENDING)])
    notes.create_index([("pending.at", ASCENDING)], sparse=True)
    recordings = db["voice_recordings"]
    recordings.create_index([("encounter_id", ASCENDING), ("created_at", DESCENDING)])
    recordings.create_index([("pending.at", ASCENDING)], sparse=True)
    recordings.create_index(
        [("retention.expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"
    )
    audio = db["voice_audio.files"]
    audio.create_index([("expires_at", ASCENDING)])
    audio.create_index([("pending.at", ASCENDING)], sparse=True)
