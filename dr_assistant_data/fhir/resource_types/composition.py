"""Composition: a clinical note as SOAP sections (``notes.py``), signed when final; the
index of an exported patient record (a ``Record artifact``) is skipped, its entries
being the records themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .. import codes, notes
from ..elements import Draft, codings, note_draft, note_type, reference_to
from ..outbound import JSON, reference, resource, when
from ..outcomes import INVALID, NOT_A_RECORD, REQUIRED, SKIPPED, Refusal
from ..reading import Raw
from ..resource_type import ResourceType
from ..writers import write_notes

KEPT = (
    *("identifier", "status", "type", "subject", "encounter", "date", "author", "title"),
    *("attester", "section"),
)
ESSENTIAL = frozenset({"status", "type", "subject", "encounter", "section"})


def build(raw: Raw, c: Any, keys: list[str]) -> Draft:
    if (codes.SNOMED, codes.RECORD_TYPE[0]) in codings(c.type):
        raise Refusal("Composition.type", NOT_A_RECORD, SKIPPED)
    resource = raw.resource or {}
    found, transcript, places = notes.content_of(resource.get("section") or [])
    content, unfit = notes.fitting(found)
    if not content and not transcript:
        raise Refusal("Composition.section", REQUIRED)
    fields = {
        "note_type": note_type(c.type, "Composition.type"),
        "content": content,
        "raw_transcription": transcript,
    }
    signed = c.status in ("final", "amended")
    draft = note_draft(raw, "Composition", c, fields, keys, c.encounter, signed)
    draft.dropped = [(f"Composition.{places[name]}", INVALID) for name in unfit]
    legal = next((a for a in c.attester or [] if a.party is not None), None)
    if signed and legal is not None:
        draft.refs["signed_by"] = reference_to(
            legal.party, "Composition.attester.party", "Practitioner"
        )
        draft.optional_refs = draft.optional_refs | {"signed_by"}
    return draft


def outbound(note: Any, *, transcript: bool) -> JSON:
    """A clinical note as a ``Composition``: its SOAP content as sections (``notes.py``);
    the raw text too when ``transcript`` (exports that move a clinic; a record shared
    with another facility carries the note, not the dictation)."""
    code, display = codes.NOTE_TYPE_OUT[note.note_type]
    signed = note.status in ("signed", "amended")
    content = note.content.to_mongo().to_dict() if note.content is not None else {}
    fields = {
        "resourceType": "Composition",
        "id": str(note.id),
        "meta": {"lastUpdated": when(note.updated_at)},
        "status": {"draft": "preliminary", "signed": "final", "amended": "amended"}[note.status],
        "type": {"coding": [{"system": codes.LOINC, "code": code, "display": display}]},
        "subject": reference("Patient", note.patient_id),
        "encounter": reference("Encounter", note.encounter_id),
        "date": when(note.updated_at),
        "author": [reference("Practitioner", note.doctor_id)],
        "title": display,
        "attester": [
            {
                "mode": "legal",
                "time": when(note.signed_at),
                "party": reference("Practitioner", note.signed_by),
            }
        ]
        if signed and note.signed_by
        else [],
        "section": notes.sections(content, note.raw_transcription if transcript else None),
    }
    return resource(fields)


def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
    for note in uow.clinical_notes.iterate():
        if fresh(note):
            uow.clinical_notes.record_chart_read(note.patient_id)
            yield [outbound(note, transcript=True)]


RESOURCE = ResourceType(
    "Composition",
    rank=6,
    kept=KEPT,
    essential=ESSENTIAL,
    build=build,
    write=write_notes,
    export=export,
)
