"""The text index of note search: chief complaint, HPI, impression, follow-up, transcript."""

from __future__ import annotations

from typing import Any

from pymongo import TEXT
from pymongo.database import Database

FIELDS = (
    "content.subjective.chief_complaint",
    "content.subjective.history_of_present_illness",
    "content.assessment.clinical_impression",
    "content.plan.follow_up",
    "raw_transcription",
)


def upgrade(db: Database[dict[str, Any]]) -> None:
    db["clinical_notes"].create_index(
        [(field, TEXT) for field in FIELDS],
        name="clinical_notes_text",
        default_language="english",
        weights={
            "content.subjective.chief_complaint": 5,
            "content.assessment.clinical_impression": 3,
        },
    )
