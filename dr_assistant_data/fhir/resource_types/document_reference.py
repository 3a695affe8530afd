"""DocumentReference: a free-text clinical note (a plain-text or Markdown attachment),
kept whole as the note's raw text. Notes are exported as ``Composition``."""

from __future__ import annotations

from typing import Any

from .. import notes
from ..elements import Draft, note_draft, note_type
from ..outcomes import INVALID, UNSUPPORTED_TYPE, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import write_notes

KEPT = (
    *("identifier", "status", "docStatus", "type", "subject", "date", "author"),
    *("content", "context"),
)
ESSENTIAL = frozenset({"type", "subject", "content", "context"})


def build(raw: Raw, d: Any, keys: list[str]) -> Draft:
    text = next((t for t in map(_attachment_text, d.content or []) if t is not None), None)
    if text is None:
        raise Refusal("DocumentReference.content.attachment", UNSUPPORTED_TYPE)
    encounters = d.context.encounter if d.context is not None else None
    fields = {
        "note_type": note_type(d.type, "DocumentReference.type"),
        "content": notes.content_of_text(text),
        "raw_transcription": text,
    }
    signed = d.docStatus in ("final", "amended")
    return note_draft(
        raw, "DocumentReference", d, fields, keys, encounters[0] if encounters else None, signed
    )


def _attachment_text(content: Any) -> str | None:
    attachment = content.attachment
    if not (attachment.contentType or "").startswith(("text/plain", "text/markdown")):
        return None
    if attachment.data is None:
        return None
    try:
        return bytes(attachment.data).decode("utf-8")  # the model decoded the base64
    except UnicodeDecodeError:
        raise Refusal("DocumentReference.content.attachment.data", INVALID) from None


RESOURCE = ResourceType(
    "DocumentReference",
    rank=5,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=write_notes,
)
