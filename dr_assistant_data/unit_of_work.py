"""The unit of work across both stores: relational repositories plus the document ones.

    with dl.unit_of_work(actor=str(doctor.id)) as uow:
        note = uow.clinical_notes.create(encounter_id=..., patient_id=..., doctor_id=...)
    # committed: the note is final. An exception (or a failed commit) undoes the note too.

Document writes happen when they are made and are journaled (see ``documents/journal.py``):
if the block raises or the relational commit fails, they are undone, newest first, before
the exception propagates. A process that dies between the two stores leaves the documents
marked; ``DataLayer.sweep_documents()`` settles them from the relational outcome.

A COMMIT whose answer is lost (the connection drops once it is sent) is not a failure
until PostgreSQL says so (``relational/commit_outcome.py``): if the unit committed, its documents
are made final and ``commit`` returns normally, as for any commit; if it did not, they are
undone and the error propagates; if PostgreSQL cannot say, they stay marked for the sweep
and the error (``BackendUnavailableError``) propagates.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import telemetry
from .documents.journal import DocumentJournal
from .documents.notes import ClinicalNoteRepository
from .documents.recordings import VoiceRecordingRepository
from .documents.store import DocumentStore
from .protection.audit_key import AuditKey
from .relational.commit_outcome import Outcome, unit_outcome
from .relational.unit_of_work import RelationalUnitOfWork


class UnitOfWork(RelationalUnitOfWork):
    """The relational repositories (``RelationalUnitOfWork``) and the document ones, in one
    transaction. ``actor`` and ``correlation_id`` go on every audit event; ``read_only``
    and ``after_lsn`` route reads to a replica (``DataLayer.unit_of_work`` describes them);
    ``clinic_timezone``, ``actor_required``, ``audit_reads`` and ``audit_key`` come from
    the layer's settings.
    """

    clinical_notes: ClinicalNoteRepository
    voice_recordings: VoiceRecordingRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        documents: DocumentStore,
        primary: Engine,
        *,
        actor: str | None,
        clinic_timezone: ZoneInfo,
        correlation_id: str | None = None,
        actor_required: bool = False,
        audit_reads: bool = False,
        audit_key: AuditKey | None = None,
        read_only: bool = False,
        after_lsn: str | None = None,
    ) -> None:
        super().__init__(
            session_factory,
            actor=actor,
            clinic_timezone=clinic_timezone,
            correlation_id=correlation_id,
            actor_required=actor_required,
            audit_reads=audit_reads,
            audit_key=audit_key,
            read_only=read_only,
            after_lsn=after_lsn,
        )
        self._documents = documents
        self._primary = primary
        self._journal = DocumentJournal(lambda: documents.db)

    def __enter__(self) -> Self:
        self._activity = telemetry.start("unit_of_work", read_only=self.read_only)
        try:
            super().__enter__()
        except BaseException as error:
            self._activity.end("failed", error)
            raise
        self.clinical_notes = ClinicalNoteRepository(self._documents, self._journal, self.session)
        self.voice_recordings = VoiceRecordingRepository(
            self._documents, self._journal, self.session
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            try:
                super().__exit__(exc_type, exc, traceback)
            finally:
                self._journal.release()  # undoes what was not committed; nothing after a commit
        except BaseException as error:
            self._activity.end("failed", error)
            raise
        self._activity.end("committed" if exc_type is None else "rolled_back", exc)

    def commit(self) -> None:
        """Commit the relational transaction (with the unit's commit record), then make
        the unit's document writes final.

        When PostgreSQL stops answering during the commit, the unit's commit record decides:
        committed → this returns normally, the commit completed as if its answer had
        arrived (the write happened; raising would invite a duplicate retry); not
        committed → the documents are undone and ``BackendUnavailableError`` propagates;
        unknown → the documents stay marked for the sweep and ``BackendUnavailableError``
        propagates.
        """
        self._journal.before_commit(self.session)
        super().commit()
        self._journal.after_commit()

    def _committed_after_all(self) -> bool:
        """Ask PostgreSQL whether the commit that lost its answer took effect; when it
        cannot say, hand the documents to the sweep rather than undo a committed unit."""
        if not self._journal.written:
            return False  # no commit record to ask about: nothing of the documents' at stake
        outcome = unit_outcome(self._primary, self._journal.unit_id)
        if outcome is Outcome.UNKNOWN:
            self._journal.abandon()
        return outcome is Outcome.COMMITTED

    def rollback(self) -> None:
        """Discard the relational changes and undo the document writes since the last
        commit."""
        super().rollback()
        self._journal.release()
