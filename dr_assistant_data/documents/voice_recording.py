"""The voice recording: metadata here, the audio itself in GridFS (bucket ``voice_audio``).

``retention.expires_at`` is when the recording may go: a TTL index removes the metadata
document and the sweep removes expired audio (a TTL index cannot reach GridFS chunks).
"""

from __future__ import annotations

from mongoengine import Document, EmbeddedDocument
from mongoengine import fields as me

from .fields import FiniteFloatField, PlainDictField, TextField, UUIDText
from .journal import PendingMarker

AUDIO_TYPES = ("audio/webm", "audio/ogg", "audio/mpeg", "audio/wav", "audio/mp4", "audio/aac")
RECORDING_STATUSES = ("processing", "transcribed", "error")
QUALITIES = ("low", "medium", "high")
MAX_AUDIO_BYTES = 200 * 1024 * 1024
MAX_DURATION_SECONDS = 4 * 3600
MAX_RECORDING_BYTES = 64 * 1024


class ProcessingStats(EmbeddedDocument):
    transcription_time = FiniteFloatField(min_value=0.0, max_value=86_400.0)  # seconds
    word_count = me.IntField(min_value=0, max_value=1_000_000)
    confidence = FiniteFloatField(min_value=0.0, max_value=1.0)


class RecordingMetadata(EmbeddedDocument):
    device_info = PlainDictField(max_bytes=2048)
    quality = me.StringField(choices=QUALITIES)
    processing_stats = me.EmbeddedDocumentField(ProcessingStats)


class Retention(EmbeddedDocument):
    expires_at = me.DateTimeField(required=True)
    reason = TextField(max_length=500)


class VoiceRecording(Document):
    meta = {"collection": "voice_recordings", "auto_create_index": False}

    id = UUIDText(primary_key=True)
    encounter_id = UUIDText(required=True)
    patient_id = UUIDText(required=True)
    doctor_id = UUIDText(required=True)
    duration = FiniteFloatField(min_value=0.0, max_value=float(MAX_DURATION_SECONDS))  # seconds
    file_size = me.IntField(min_value=0, max_value=MAX_AUDIO_BYTES)
    mime_type = me.StringField(choices=AUDIO_TYPES, required=True)
    status = me.StringField(choices=RECORDING_STATUSES, required=True, default="processing")
    transcription_note_id = UUIDText()
    metadata = me.EmbeddedDocumentField(RecordingMetadata, default=RecordingMetadata)
    retention = me.EmbeddedDocumentField(Retention, required=True)
    audio_id = UUIDText(required=True)
    version = me.IntField(required=True, min_value=1, default=1)
    created_at = me.DateTimeField(required=True)
    updated_at = me.DateTimeField(required=True)
    pending = me.EmbeddedDocumentField(PendingMarker)

    def __repr__(self) -> str:
        return f"<VoiceRecording id={self.id} status={self.status}>"
