"""The unit of work across both stores: relational repositories plus the document ones.

    with dl.unit_of_work(actor=str(doctor.id)) as uow:
        note = uow.clinical_notes.create(encounter_id=..., patient_id=..., doctor_id=...)
    # committed: the note is final. An exception (or a failed commit) undoes the note too.

Document writes happen when they are made and are journaled (see ``documents/journal.py``):
if the block raises or the relational commit fails, they are undone, newest first, before
the exception propagates. A process that dies between the two stores leaves the documents
marked; ``DataLayer.sweep_documents()`` settles them from the relational outcome.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from .documents.journal import DocumentJournal
from .documents.notes import ClinicalNoteRepository
from .documents.recordings import VoiceRecordingRepository
from .documents.store import DocumentStore
from .relational.unit_of_work import UnitOfWork as RelationalUnitOfWork


class UnitOfWork(RelationalUnitOfWork):
    clinical_notes: ClinicalNoteRepository
    voice_recordings: VoiceRecordingRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        documents: DocumentStore,
        **options: object,
    ) -> None:
        super().__init__(session_factory, **options)  # type: ignore[arg-type]
        self._documents = documents
        self._journal = DocumentJournal(lambda: documents.db)

    def __enter__(self) -> Self:
        super().__enter__()
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
            super().__exit__(exc_type, exc, traceback)
        finally:
            self._journal.release()  # undoes what was not committed; nothing after a commit

    def commit(self) -> None:
        """Commit the relational transaction (with the unit's commit record), then make
        the unit's document writes final."""
        self._journal.before_commit(self.session)
        super().commit()
        self._journal.after_commit()

    def rollback(self) -> None:
        """Discard the relational changes and undo the document writes since the last
        commit."""
        super().rollback()
        self._journal.release()
