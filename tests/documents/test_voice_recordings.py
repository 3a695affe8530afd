"""Voice recordings: audio streamed through GridFS, metadata validated, retention enforced."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from dr_assistant_data import ConflictError, ValidationError
from dr_assistant_data.documents import recordings

AUDIO = os.urandom(700_000)  # spans three GridFS chunks


def store(layer, visit, **fields):
    with layer.unit_of_work(actor="test") as uow:
        return uow.voice_recordings.store(
            **visit.ids, **{"audio": AUDIO, "mime_type": "audio/webm", **fields}
        )


def audio_collections(layer) -> tuple[int, int]:
    db = layer.documents.db
    return db["voice_audio.files"].count_documents({}), db["voice_audio.chunks"].count_documents({})


def test_audio_streams_back_unchanged_chunk_by_chunk(layer, visit):
    recording = store(layer, visit, audio=io.BytesIO(AUDIO), duration=42.5)
    with (
        layer.unit_of_work(actor="test") as uow,
        uow.voice_recordings.open_audio(recording.id) as audio,
    ):
        chunks = list(audio)
    assert b"".join(chunks) == AUDIO
    assert len(chunks) == 3
    assert recording.file_size == len(AUDIO)


def test_a_recording_is_listed_under_its_encounter(layer, visit):
    recording = store(layer, visit, metadata={"quality": "high", "device_info": {"os": "android"}})
    with layer.unit_of_work(actor="test") as uow:
        listed = uow.voice_recordings.for_encounter(visit.encounter_id)
    assert [r.id for r in listed] == [recording.id]
    assert (listed[0].status, listed[0].metadata.quality) == ("processing", "high")


def test_retention_defaults_to_180_days(layer, visit):
    recording = store(layer, visit)
    expected = datetime.now(UTC) + timedelta(days=180)
    assert abs(recording.retention.expires_at - expected) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mime_type": "application/x-sh"}, "mime_type"),
        ({"duration": -1}, "duration"),
        ({"metadata": {"quality": "superb"}}, "metadata.quality"),
        ({"metadata": {"device_info": {"$where": "1"}}}, "metadata.device_info"),
        ({"retention": {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}}, "retention.expires_at"),
        ({"audio": "not bytes"}, "audio"),
        ({"transcription_note_id": str(uuid.uuid4())}, "transcription_note_id"),
    ],
)
def test_invalid_input_names_the_field_and_stores_no_audio(layer, visit, fields, field):
    with pytest.raises(ValidationError) as raised:
        store(layer, visit, **fields)
    assert raised.value.field == field
    assert audio_collections(layer) == (0, 0)


def test_audio_over_the_size_limit_is_refused_and_its_chunks_removed(layer, visit, monkeypatch):
    monkeypatch.setattr(recordings, "MAX_AUDIO_BYTES", 300_000)
    with pytest.raises(ValidationError) as raised:
        store(layer, visit, audio=io.BytesIO(AUDIO))
    assert raised.value.field == "audio"
    assert audio_collections(layer) == (0, 0)
    assert layer.documents.db["voice_recordings"].count_documents({}) == 0


def test_marking_transcribed_links_the_note_under_a_version_check(layer, visit):
    recording = store(layer, visit)
    note_id = uuid.uuid4()
    with layer.unit_of_work(actor="test") as uow:
        uow.voice_recordings.mark_transcribed(
            recording.id,
            note_id=note_id,
            expected_version=1,
            processing_stats={"transcription_time": 3.2, "confidence": 0.93},
        )
    with pytest.raises(ConflictError), layer.unit_of_work(actor="test") as uow:
        uow.voice_recordings.mark_transcribed(recording.id, note_id=note_id, expected_version=1)
    with layer.unit_of_work(actor="test") as uow:
        loaded = uow.voice_recordings.get(recording.id)
    assert (loaded.status, loaded.transcription_note_id) == ("transcribed", str(note_id))
    assert loaded.metadata.processing_stats.confidence == 0.93


def test_a_ttl_index_expires_recordings_at_their_retention_time(layer):
    indexes = layer.documents.db["voice_recordings"].index_information()
    assert indexes["retention_ttl"]["key"] == [("retention.expires_at", 1)]
    assert indexes["retention_ttl"]["expireAfterSeconds"] == 0


def test_the_sweep_removes_audio_past_its_retention(layer, visit):
    soon = datetime.now(UTC) + timedelta(milliseconds=100)
    expiring = store(layer, visit, retention={"expires_at": soon, "reason": "test"})
    kept = store(layer, visit)
    time.sleep(0.15)

    assert layer.sweep_documents().expired_audio == 1
    files = layer.documents.db["voice_audio.files"]
    assert [f["_id"] for f in files.find()] == [kept.audio_id]
    assert (
        layer.documents.db["voice_audio.chunks"].count_documents({"files_id": expiring.audio_id})
        == 0
    )


BEYOND_UPLOAD_BUFFER = 50 * 2**20
"""More than the driver buffers (48 MB) before it writes chunks, so some reach MongoDB."""


class Dictation(io.RawIOBase):
    """About ``size`` bytes of audio that stop with ``failure`` (if any) instead of ending;
    notes how many chunks MongoDB held while it was being read."""

    def __init__(self, layer, size: int, failure: Exception | None = None) -> None:
        self._chunks = layer.documents.db["voice_audio.chunks"]
        self._left, self._failure = size, failure
        self.chunks_seen = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.chunks_seen = max(self.chunks_seen, self._chunks.count_documents({}))
        if self._failure is not None and self._left < size:
            raise self._failure
        data = b"\x00" * min(size, self._left)
        self._left -= len(data)
        return data


def test_an_upload_whose_stream_fails_leaves_no_chunk(layer, visit):
    dictation = Dictation(layer, BEYOND_UPLOAD_BUFFER, ConnectionResetError("client gone"))
    with pytest.raises(ConnectionResetError):
        store(layer, visit, audio=dictation)
    assert dictation.chunks_seen > 0
    assert audio_collections(layer) == (0, 0)


def test_an_upload_over_the_size_limit_leaves_no_chunk_once_written(layer, visit, monkeypatch):
    monkeypatch.setattr(recordings, "MAX_AUDIO_BYTES", BEYOND_UPLOAD_BUFFER)
    dictation = Dictation(layer, BEYOND_UPLOAD_BUFFER + 2**20)
    with pytest.raises(ValidationError):
        store(layer, visit, audio=dictation)
    assert dictation.chunks_seen > 0
    assert audio_collections(layer) == (0, 0)


def chunks_of_a_killed_upload(layer, started: datetime, count: int = 3) -> str:
    """Chunks as an upload leaves them when its process dies before the file document;
    their ids carry the time they were written, as the driver's do."""
    files_id = str(uuid.uuid4())
    at = ObjectId.from_datetime(started).binary[:4]
    layer.documents.db["voice_audio.chunks"].insert_many(
        [
            {"_id": ObjectId(at + os.urandom(8)), "files_id": files_id, "n": n, "data": b"\x00"}
            for n in range(count)
        ]
    )
    return files_id


def chunks_of(layer, files_id: str) -> int:
    return layer.documents.db["voice_audio.chunks"].count_documents({"files_id": files_id})


def test_the_sweep_removes_the_chunks_of_an_upload_killed_before_the_grace_period(layer, visit):
    killed = chunks_of_a_killed_upload(layer, datetime.now(UTC) - timedelta(minutes=20))
    kept = store(layer, visit)

    assert layer.sweep_documents(grace=timedelta(minutes=15)).orphaned_chunks == 3
    assert chunks_of(layer, killed) == 0
    assert chunks_of(layer, kept.audio_id) == 3


def test_the_sweep_leaves_the_chunks_of_an_upload_younger_than_the_grace_period(layer):
    recent = chunks_of_a_killed_upload(layer, datetime.now(UTC) - timedelta(minutes=10))

    assert layer.sweep_documents(grace=timedelta(minutes=15)).orphaned_chunks == 0
    assert chunks_of(layer, recent) == 3
