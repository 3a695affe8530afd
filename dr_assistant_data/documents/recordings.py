"""``uow.voice_recordings``: dictation audio streamed into GridFS, with its metadata.

The audio is written chunk by chunk from a file-like object (or bytes), never held whole
by the layer; a stream longer than ``MAX_AUDIO_BYTES`` is refused, and a stream that fails
(a client gone mid-upload) propagates its error, both with the chunks written removed.
Both the GridFS file and the metadata document are journaled, so a rolled-back unit of
work leaves neither behind.
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from typing import IO, Any

from ..errors import ValidationError
from ..values.clock import utcnow
from ..values.fields import as_uuid
from ..values.pages import check_page
from .recording_audio import AudioStream, BoundedReader, upload
from .references import check_encounter
from .repository import DocumentRepository, check_version, refuse_unknown
from .store import AUDIO_BUCKET
from .validation import embed, validate
from .voice_recording import (
    MAX_AUDIO_BYTES,
    MAX_RECORDING_BYTES,
    ProcessingStats,
    RecordingMetadata,
    Retention,
    VoiceRecording,
)

DEFAULT_RETENTION = timedelta(days=180)
OPTIONAL = ("duration", "metadata", "retention")


class VoiceRecordingRepository(DocumentRepository):
    document = VoiceRecording

    def store(
        self,
        *,
        encounter_id: Any,
        patient_id: Any,
        doctor_id: Any,
        audio: bytes | IO[bytes],
        mime_type: Any,
        **fields: Any,
    ) -> VoiceRecording:
        """Save ``audio`` and its metadata; ``retention`` defaults to 180 days from now."""
        refuse_unknown(fields, OPTIONAL)
        now = utcnow()
        recording = VoiceRecording(
            id=str(uuid.uuid4()),
            encounter_id=str(as_uuid(encounter_id, "encounter_id")),
            patient_id=str(as_uuid(patient_id, "patient_id")),
            doctor_id=str(as_uuid(doctor_id, "doctor_id")),
            mime_type=mime_type,
            duration=fields.get("duration"),
            metadata=embed(RecordingMetadata, fields.get("metadata") or {}, "metadata"),
            retention=embed(
                Retention,
                fields.get("retention") or {"expires_at": now + DEFAULT_RETENTION},
                "retention",
            ),
            audio_id=str(uuid.uuid4()),
            file_size=0,
            created_at=now,
            updated_at=now,
        )
        _check_expiry(recording.retention.expires_at, now)
        validate(recording, max_bytes=MAX_RECORDING_BYTES, name="recording")
        check_encounter(
            self.session, recording.encounter_id, recording.patient_id, recording.doctor_id
        )
        source = io.BytesIO(audio) if isinstance(audio, bytes | bytearray) else audio
        if not hasattr(source, "read"):
            raise ValidationError("audio", "must be bytes or a binary file")
        self.journal.track(f"{AUDIO_BUCKET}.files", recording.audio_id)
        reader = BoundedReader(source, limit=MAX_AUDIO_BYTES)
        upload(
            self.document_store.audio(),
            reader,
            _id=recording.audio_id,
            contentType=recording.mime_type,
            expires_at=recording.retention.expires_at,
            pending=self.journal.marker(None),
        )
        recording.file_size = reader.count
        self.insert(recording)
        self.audit("create", recording.id, ("audio", "mime_type", *fields))
        return recording

    def get(self, recording_id: Any) -> VoiceRecording | None:
        return self.objects().filter(id=str(as_uuid(recording_id))).first()

    def open_audio(self, recording_id: Any) -> AudioStream:
        """The audio as a read-only file object that fetches one chunk at a time."""
        recording = self.from_raw(self.load_raw(recording_id))
        return AudioStream(self.document_store.audio().get(recording.audio_id))

    def for_encounter(
        self, encounter_id: Any, *, limit: int = 50, offset: int = 0
    ) -> list[VoiceRecording]:
        """The encounter's recordings, newest first."""
        check_page(limit, offset)
        encounter = str(as_uuid(encounter_id, "encounter_id"))
        recordings = (
            self.objects(listing=True).filter(encounter_id=encounter).order_by("-created_at")
        )
        return list(recordings.skip(offset).limit(limit))

    def mark_transcribed(
        self,
        recording_id: Any,
        *,
        note_id: Any,
        expected_version: Any,
        processing_stats: Any = None,
    ) -> VoiceRecording:
        """Link the recording to the note drafted from it; guarded by ``expected_version``."""
        version = check_version(expected_version)
        before = self.load_raw(recording_id)
        recording = self.from_raw(before)
        recording.status = "transcribed"
        recording.transcription_note_id = str(as_uuid(note_id, "note_id"))
        if processing_stats is not None:
            recording.metadata.processing_stats = embed(
                ProcessingStats, processing_stats, "processing_stats"
            )
        recording.version, recording.updated_at = version + 1, utcnow()
        validate(recording, max_bytes=MAX_RECORDING_BYTES, name="recording")
        changed = ("status", "transcription_note_id", "metadata", "version", "updated_at")
        self.conditional_update(before, {"version": version}, recording, changed)
        self.audit("update", recording.id, ("status", "transcription_note_id"))
        return recording


def _check_expiry(expires_at: Any, now: datetime) -> None:
    if isinstance(expires_at, datetime) and (expires_at.tzinfo is None or expires_at <= now):
        raise ValidationError("retention.expires_at", "must be a future time with a time zone")
