"""The document side of the campaign: note editors and dictation uploads.

MongoDB is mongomock here, which lives in one process: the editors are threads of the
campaign's own process, sharing one ``DataLayer`` whose PostgreSQL connections go through
the fault proxy, so database faults (backend kills, restarts, a lost COMMIT reply) reach
them as they reach the worker processes. A thread cannot be SIGKILLed (that would take the
documents with it); a doomed editor dies instead inside its unit of work (``_survive``).

Each operation is a unit of work whose correlation id is the operation id: create a draft,
edit it, sign it, amend it, or store a recording (some with an audio stream that breaks
half-way). Every content written carries a unique token (``chief_complaint``).
"""

from __future__ import annotations

import io
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dr_assistant_data import DataLayer
from dr_assistant_data.unit_of_work import UnitOfWork

from .history import History, Operation

AUDIO_BYTES = 300 * 1024  # two GridFS chunks
GRIDFS_BATCH = 48_000_000  # pymongo's upload buffer
LONG_SHARE = 0.3  # of broken uploads, those that break after a batch was written


@dataclass
class Clinic:
    """The rows the notes hang on, made before the campaign starts."""

    doctor: str
    encounters: list[tuple[str, str]]
    """(encounter id, patient id)"""


@dataclass
class Draft:
    version: int
    signed: bool = False


@dataclass
class Editor:
    """One editing thread's state; ``run`` does ``quota`` operations."""

    dl: DataLayer
    clinic: Clinic
    history: History
    rng: random.Random
    quota: int
    rate: float
    begun: int = 0
    notes: dict[str, Draft] = field(default_factory=dict)
    doomed: threading.Event = field(default_factory=threading.Event)
    dead: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            while self.begun < self.quota:
                self.begun += 1
                self.step()
                time.sleep(self.rng.expovariate(self.rate))
        finally:
            self.history.close()

    def _survive(self, uow: UnitOfWork) -> None:
        """When doomed, die here, after the documents were written and before the commit,
        as a SIGKILLed process would: the database connection is cut (the server rolls
        back) and the thread stops for good, its documents left pending for the sweep."""
        if not self.doomed.is_set():
            return
        uow.session.connection().invalidate()
        uow.session.close()
        self.dead.set()
        threading.Event().wait()

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.15:
            self.store_recording(broken=roll < 0.05)
        elif roll < 0.35 or not self.notes:
            self.create()
        else:
            note_id = self.rng.choice(list(self.notes))
            draft = self.notes[note_id]
            if draft.signed:
                self.change(note_id, "note_amend")
            else:
                self.change(note_id, "note_sign" if self.rng.random() < 0.2 else "note_update")

    def _token(self) -> str:
        return f"{self.history.process}-n{self.rng.getrandbits(32):08x}"

    def create(self) -> None:
        encounter, patient = self.rng.choice(self.clinic.encounters)
        token = self._token()
        with self.history.operation("note_create", value=token) as op:
            with self.dl.unit_of_work(actor=self.clinic.doctor, correlation_id=op.id) as uow:
                note = uow.clinical_notes.create(
                    encounter_id=encounter,
                    patient_id=patient,
                    doctor_id=self.clinic.doctor,
                    note_type="soap",
                    content=_content(token),
                )
                op.result["key"] = note.id
                self._survive(uow)
                op.committing = True
            self.notes[note.id] = Draft(note.version)
        self._reload_after(op.result.get("key"), op)

    def change(self, note_id: str, kind: str) -> None:
        draft = self.notes[note_id]
        token = self._token()
        with self.history.operation(kind, key=note_id, value=token) as op:
            with self.dl.unit_of_work(actor=self.clinic.doctor, correlation_id=op.id) as uow:
                notes = uow.clinical_notes
                if kind == "note_update":
                    note = notes.update_draft(
                        note_id, expected_version=draft.version, content=_content(token)
                    )
                elif kind == "note_sign":
                    note = notes.sign(note_id, signed_by=self.clinic.doctor)
                else:
                    note = notes.amend(
                        note_id,
                        amended_by=self.clinic.doctor,
                        reason="correction",
                        content=_content(token),
                    )
                self._survive(uow)
                op.committing = True
            draft.version, draft.signed = note.version, note.is_signed
        self._reload_after(note_id, op)

    def _reload_after(self, note_id: str | None, op: Operation) -> None:
        """After an operation that did not return, learn the note's state afresh (or stop
        editing it when that fails too)."""
        if note_id is None or op.outcome == "ok":
            return
        try:
            with self.dl.unit_of_work(read_only=True) as uow:
                note = uow.clinical_notes.get(note_id)
        except Exception:  # the store is unreachable: leave this note alone
            note = None
        if note is None:
            self.notes.pop(note_id, None)
        else:
            draft = self.notes.setdefault(note_id, Draft(note.version))
            draft.version, draft.signed = note.version, note.is_signed

    def store_recording(self, *, broken: bool) -> None:
        encounter, patient = self.rng.choice(self.clinic.encounters)
        if broken:
            long = self.rng.random() < LONG_SHARE
            source: Any = BrokenStream(GRIDFS_BATCH + AUDIO_BYTES if long else AUDIO_BYTES)
        else:
            source = io.BytesIO(self.rng.randbytes(AUDIO_BYTES))
        kind = "recording_broken" if broken else "recording"
        with (
            self.history.operation(kind) as op,
            self.dl.unit_of_work(actor=self.clinic.doctor, correlation_id=op.id) as uow,
        ):
            recording = uow.voice_recordings.store(
                encounter_id=encounter,
                patient_id=patient,
                doctor_id=self.clinic.doctor,
                audio=source,
                mime_type="audio/webm",
            )
            op.result["key"] = recording.id
            self._survive(uow)
            op.committing = True


def _content(token: str) -> dict[str, Any]:
    return {"subjective": {"chief_complaint": token}}


class UploadInterrupted(OSError):
    """The campaign's own failure of an audio source; the layer lets it through."""


class BrokenStream:
    """Audio whose upload breaks after ``fail_after`` bytes (a dropped connection). GridFS
    buffers chunks and writes them in batches of ``GRIDFS_BATCH`` bytes, so only a long
    one has chunks in the database when it breaks."""

    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        count = size if size > 0 else AUDIO_BYTES
        if self.sent + count > self.fail_after:
            raise UploadInterrupted("the upload was interrupted")
        self.sent += count
        return bytes(count)
