"""DocumentReference: a free-text clinical note (a plain-text or Markdown attachment),
kept whole as the note's raw text. Notes are exported as ``Composition``.

A headed part the note's fields cannot hold (a medication list of one 600-character
line) stays in the raw text only, the field left empty, and is listed as dropped
(``kept_as_text``): the note lands."""

from __future__ import annotations

from typing import Any

from .. import notes
from ..elements import Draft, note_draft, note_type
from ..outcomes import INVALID, KEPT_AS_TEXT, UNSUPPORTED_TYPE, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import write_notes

KEPT = (
    *("identifier", "status", "docStatus", "type", "subject", "date", "author"),
    *("content", "context"),
)
ESSENTIAL = frozenset({"type", "subject", "content", "context"})


def build(raw: Raw, d: Any, keys: list[str]) -> Draft:
    texts = ((i, _attachment_text(c)) for i, c in enumerate(d.content or []))
    index, text = next(((i, t) for i, t in texts if t is not None), (0, None))
    if text is None:
        raise Refusal("DocumentReference.content.attachment", UNSUPPORTED_TYPE)
    encounters = d.context.encounter if d.context is not None else None
    content, unfit = notes.fitting(notes.content_of_text(text))
    fields = {
        "note_type": note_type(d.type, "DocumentReference.type"),
        "content": content,
        "raw_transcription": text,
    }
    signed = d.docStatus in ("final", "amended")
    draft = note_draft(
        raw, "DocumentReference", d, fields, keys, encounters[0] if encounters else None, signed
    )
    path = f"DocumentReference.content[{index}].attachment.data"
    draft.dropped = [(path, KEPT_AS_TEXT) for _ in unfit]
    return draft


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
