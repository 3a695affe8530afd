"""``uow.clinical_notes``: drafts edited under compare-and-set, signed, amended with history.

Every write checks its input first (nothing is written on a ``ValidationError``), is a
single-document atomic update guarded by the version it read, is journaled for undo if the
unit of work rolls back, and is recorded in the relational audit trail (field names only).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from ..errors import ConflictError, ImmutableRecordError, ValidationError
from ..relational.audit.trail import trail_of
from ..values.batches import check_batch_size
from ..values.clock import utcnow
from ..values.fields import as_uuid
from ..values.pages import check_page
from .clinical_note import (
    MAX_NOTE_BYTES,
    SIGNED_STATUSES,
    ClinicalNote,
    NoteContent,
    NoteMetadata,
    SignedVersion,
)
from .note_version import NoteVersion, superseded, version_document
from .references import check_encounter, check_user
from .repository import DocumentRepository, check_version, refuse_unknown
from .search import matching
from .validation import check_size, embed, validate

EDITABLE = (
    "note_type",
    "content",
    "raw_transcription",
    "ai_summary",
    "ai_confidence_score",
    "tags",
    "metadata",
)
REFERENCES = ("encounter_id", "patient_id", "doctor_id")
SIGN_FIELDS = ("status", "signed_by", "signed_at", "version", "updated_at")
AMEND_FIELDS = (
    "content",
    *SIGN_FIELDS,
    "amended_by",
    "amended_at",
    "amendment_reason",
)


class ClinicalNoteRepository(DocumentRepository):
    document = ClinicalNote

    def create(self, **fields: Any) -> ClinicalNote:
        """A new draft (version 1) of an encounter that exists, for its patient."""
        refuse_unknown(fields, (*REFERENCES, *EDITABLE))
        check_size(fields, max_bytes=MAX_NOTE_BYTES, name="note")
        for name in REFERENCES:
            if fields.get(name) is None:
                raise ValidationError(name, "is required")
            fields[name] = str(as_uuid(fields[name], name))
        now = utcnow()
        note = ClinicalNote(id=str(uuid.uuid4()), created_at=now, updated_at=now)
        _apply(note, fields)
        validate(note, max_bytes=MAX_NOTE_BYTES, name="note")
        check_encounter(self.session, note.encounter_id, note.patient_id, note.doctor_id)
        self.insert(note)
        self.audit("create", note.id, fields)
        return note

    def get(self, note_id: Any) -> ClinicalNote | None:
        return self.objects().filter(id=str(as_uuid(note_id))).first()

    def update_draft(self, note_id: Any, *, expected_version: Any, **fields: Any) -> ClinicalNote:
        """Edit a draft if it is still at ``expected_version``; bumps the version.

        Raises ``ConflictError`` when someone else edited it first, ``ImmutableRecordError``
        when it is signed, ``NotFoundError`` when there is no such note.
        """
        version = check_version(expected_version)
        refuse_unknown(fields, EDITABLE)
        check_size(fields, max_bytes=MAX_NOTE_BYTES, name="note")
        before = self.load_raw(note_id)
        note = self.from_raw(before)
        if note.is_signed:
            raise ImmutableRecordError("a signed note cannot be edited; amend it")
        if note.version != version:
            raise ConflictError("the note was changed by someone else; reload it and retry")
        edits = note.metadata.edit_count or 0
        _apply(note, fields)
        note.metadata.edit_count = edits + 1
        note.version, note.updated_at = version + 1, utcnow()
        validate(note, max_bytes=MAX_NOTE_BYTES, name="note")
        self.conditional_update(
            before,
            {"version": version, "status": "draft"},
            note,
            (*fields, "metadata", "version", "updated_at"),
        )
        self.audit("update", note.id, fields)
        return note

    def sign(self, note_id: Any, *, signed_by: Any, expected_version: Any = None) -> ClinicalNote:
        """Freeze a draft: from now on it changes only by amendment."""
        signer = check_user(self.session, signed_by, "signed_by")
        before = self.load_raw(note_id)
        note = self.from_raw(before)
        if note.is_signed:
            raise ImmutableRecordError("the note is already signed; amend it")
        version = note.version if expected_version is None else check_version(expected_version)
        now = utcnow()
        note.status, note.signed_by, note.signed_at = "signed", str(signer), now
        note.version, note.updated_at = version + 1, now
        expected = {"version": version, "status": "draft"}
        self.conditional_update(before, expected, note, SIGN_FIELDS, durable=True)
        self.audit("sign", note.id, ("status", "signed_by", "signed_at"))
        return note

    def amend(
        self,
        note_id: Any,
        *,
        amended_by: Any,
        reason: Any,
        content: Any,
        expected_version: Any = None,
    ) -> ClinicalNote:
        """Replace the content of a signed note; the version it replaces joins ``history``
        unchanged, with who signed it and when (in ``clinical_note_versions``, so there is
        no limit to the number of amendments). Records who amends, when and why."""
        amender = str(check_user(self.session, amended_by, "amended_by"))
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", "must say why the note is amended")
        check_size([reason, content], max_bytes=MAX_NOTE_BYTES, name="note")
        before = self.load_raw(note_id)
        note = self.from_raw(before)
        if not note.is_signed:
            raise ConflictError("a draft is edited with update_draft, not amended")
        version = note.version if expected_version is None else check_version(expected_version)
        replaced = note.signed_version()
        now = utcnow()
        note.content = embed(NoteContent, content, "content")
        note.status, note.signed_by, note.signed_at = "amended", amender, now
        note.amended_by, note.amended_at, note.amendment_reason = amender, now, reason.strip()
        note.version, note.updated_at = version + 1, now
        try:
            validate(note, max_bytes=MAX_NOTE_BYTES, name="note")
        except ValidationError as error:
            field = "reason" if error.field == "amendment_reason" else error.field
            raise ValidationError(field, error.reason) from None
        self.conditional_update(
            before,
            {"version": version, "status": {"$in": list(SIGNED_STATUSES)}},
            note,
            AMEND_FIELDS,
            durable=True,
        )
        versions = self.document_store.collection(NoteVersion, durable=True)
        self.journal.insert(versions, version_document(note.id, replaced))
        self.audit("amend", note.id, ("content", "amendment_reason"))
        return note

    def history(self, note_id: Any) -> list[SignedVersion]:
        """Every signed version, oldest first (the current one last); empty for a draft."""
        note = self.from_raw(self.load_raw(note_id))
        if not note.is_signed:
            return []
        return [*superseded(self.document_store, note), note.signed_version()]

    def for_patient(
        self, patient_id: Any, *, limit: int = 50, offset: int = 0
    ) -> list[ClinicalNote]:
        """The patient's notes, newest first (without their history); a read of the
        chart when reads are audited."""
        patient = as_uuid(patient_id, "patient_id")
        self.record_chart_read(patient)
        return self._newest_first(patient_id=str(patient), limit=limit, offset=offset)

    def iterate(self, *, batch_size: int = 1000) -> Iterator[ClinicalNote]:
        """Every note (without its history), oldest first, streamed from a cursor
        ``batch_size`` documents at a time: memory stays flat however many there are.
        Not a chart read: a caller that hands notes on records them (``record_chart_read``)."""
        check_batch_size(batch_size)
        notes = self.objects(listing=True).exclude("history").order_by("created_at", "id")
        yield from notes.batch_size(batch_size)

    def record_chart_read(self, patient_id: Any) -> None:
        """Record a read of the patient's notes made through ``iterate`` (an export),
        audited as ``for_patient`` is when reads are audited."""
        trail = trail_of(self.session)
        if trail is not None:
            trail.record_read("patients", as_uuid(patient_id, "patient_id"), "clinical_notes")

    def for_encounter(
        self, encounter_id: Any, *, limit: int = 50, offset: int = 0
    ) -> list[ClinicalNote]:
        """The encounter's notes, newest first (without their history)."""
        encounter = str(as_uuid(encounter_id, "encounter_id"))
        return self._newest_first(encounter_id=encounter, limit=limit, offset=offset)

    def search(self, text: Any, patient_id: Any = None, *, limit: int = 50) -> list[ClinicalNote]:
        """Notes whose chief complaint, history of present illness, clinical impression,
        follow-up or transcript match ``text`` (see ``search.py``), best first."""
        check_page(limit, 0)
        notes = self.objects(listing=True).exclude("history")
        if patient_id is not None:
            notes = notes.filter(patient_id=str(as_uuid(patient_id, "patient_id")))
        return list(matching(notes, text, embedded=self.document_store.embedded).limit(limit))

    def _newest_first(self, *, limit: int, offset: int, **match: str) -> list[ClinicalNote]:
        check_page(limit, offset)
        notes = self.objects(listing=True).exclude("history").filter(**match)
        return list(notes.order_by("-created_at").skip(offset).limit(limit))


def _apply(note: ClinicalNote, fields: dict[str, Any]) -> None:
    """Set caller fields on ``note``; nested objects become embedded documents."""
    for name, value in fields.items():
        if name == "content":
            value = embed(NoteContent, value, "content")
        elif name == "metadata":
            if isinstance(value, dict) and "edit_count" in value:
                raise ValidationError("metadata.edit_count", "is maintained by the layer")
            value = embed(NoteMetadata, value, "metadata")
        setattr(note, name, value)
