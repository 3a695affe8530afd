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
and the error (``BackendUnavailableError``) propagates. The commit, phase by phase:
``dr_assistant_data/commit.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import commit as commit_sequence
from . import telemetry
from .documents.journal import DocumentJournal
from .documents.notes import ClinicalNoteRepository
from .documents.recordings import VoiceRecordingRepository
from .documents.store import DocumentStore
from .errors import DataLayerError, ValidationError
from .protection.audit_key import AuditKey, audit_key_from
from .relational.audit.trail import AuditTrail
from .relational.repositories.audit import AuditRepository
from .relational.repositories.chart import (
    AllergyRepository,
    ConditionRepository,
    VitalSignRepository,
)
from .relational.repositories.clinical import (
    EncounterRepository,
    OrderRepository,
    PrescriptionRepository,
)
from .relational.repositories.people import PatientRepository, UserRepository
from .relational.repositories.scheduling import AppointmentRepository
from .relational.repositories.workflow import AlertRepository, TaskRepository
from .relational.unit_of_work import checked_lsn, close, open_session, rollback
from .session_context import context_of


class UnitOfWork:
    """The relational repositories and the document ones, in one transaction. ``actor``
    and ``correlation_id`` go on every audit event; ``read_only`` and ``after_lsn`` route
    reads to a replica (``DataLayer.unit_of_work`` describes them); ``clinic_timezone``,
    ``actor_required``, ``audit_reads`` and ``audit_key`` come from the layer's settings.
    """

    users: UserRepository
    patients: PatientRepository
    appointments: AppointmentRepository
    encounters: EncounterRepository
    prescriptions: PrescriptionRepository
    orders: OrderRepository
    tasks: TaskRepository
    alerts: AlertRepository
    conditions: ConditionRepository
    allergies: AllergyRepository
    vital_signs: VitalSignRepository
    audit: AuditRepository
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
        self._session_factory = session_factory
        self.read_only = read_only
        self.after_lsn = checked_lsn(after_lsn)
        self.commit_lsn: str | None = None
        """With read replicas: the primary's WAL position after the last commit that
        wrote; give it as ``after_lsn`` to a later read-only unit of work (any process)."""
        self.actor = actor
        self.correlation_id = correlation_id or uuid.uuid4().hex
        self._clinic_timezone = clinic_timezone
        self._actor_required = actor_required
        self._audit_reads = audit_reads
        self._audit_key = audit_key or audit_key_from("", production=False)
        self._session: Session | None = None
        self._documents = documents
        self._primary = primary
        self._journal = DocumentJournal(lambda: documents.db)

    @property
    def clinic_timezone(self) -> ZoneInfo:
        """The clinic's time zone (``CLINIC_TIMEZONE``): the one its days are counted in."""
        return self._clinic_timezone

    def clinic_time(self, moment: datetime) -> datetime:
        """``moment`` (as stored: timezone-aware, UTC) on the clinic's clock, for display:
        an appointment at ``04:30 UTC`` is ``10:00`` in Asia/Kolkata. A naive datetime is
        refused (``ValidationError``): which clock it was read on is unknown."""
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ValidationError("moment", "must be a timezone-aware datetime")
        return moment.astimezone(self._clinic_timezone)

    @property
    def session(self) -> Session:
        """The SQLAlchemy session, for queries the repositories do not offer."""
        if self._session is None:
            raise DataLayerError("the unit of work is not open; use it in a 'with' block")
        return self._session

    def __enter__(self) -> Self:
        self._activity = telemetry.start("unit_of_work", read_only=self.read_only)
        if self._session is not None:
            error = DataLayerError("a unit of work cannot be entered twice")
            self._activity.end("failed", error)
            raise error
        try:
            session = self._open()
        except BaseException as error:
            self._activity.end("failed", error)
            raise
        self._session = session
        for name in vars(self).keys() & _REPOSITORIES.keys():  # entered again: built anew
            del self.__dict__[name]
        return self

    if not TYPE_CHECKING:  # the annotations above type each repository; a typo stays one

        def __getattr__(self, name: str) -> Any:
            """A repository, built on its first use in the block and kept as a plain
            attribute from then on: a unit of work pays only for the repositories it uses."""
            build = _REPOSITORIES.get(name)
            if build is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            repository = build(self, self.session)
            setattr(self, name, repository)
            return repository

    def __dir__(self) -> list[str]:
        """The attributes, and in the block the repositories not yet built (``dir()``,
        ``inspect.getmembers`` and completion list every repository it can build)."""
        open_ = self._session is not None
        return sorted({*super().__dir__(), *(_REPOSITORIES if open_ else ())})

    def _open(self) -> Session:
        audit = AuditTrail(
            actor=self.actor,
            correlation_id=self.correlation_id,
            actor_required=self._actor_required,
            audit_reads=self._audit_reads,
            key=self._audit_key,
        )
        return open_session(
            self._session_factory, audit, read_only=self.read_only, after_lsn=self.after_lsn
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        failed = exc_type is not None
        try:
            try:
                if not failed:
                    self.commit()
            except BaseException:
                failed = True
                raise
            finally:
                self._session = None
                try:
                    close(session, failed=failed)
                finally:
                    self._journal.release()  # undoes what was not committed
        except BaseException as error:
            self._activity.end("failed", error)
            raise
        self._activity.end("committed" if exc_type is None else "rolled_back", exc)

    def use_primary(self) -> None:
        """Read from the primary from now on: the caller needs data no replica may lag on
        (a read-only unit of work reads from a replica until then, or until it writes)."""
        context_of(self.session).needs_primary = True

    def commit(self) -> None:
        """Flush, write the audit events, commit; then make the unit's document writes
        final (``commit.py``, phase by phase). The unit of work stays usable after.

        When PostgreSQL stops answering during the commit, the unit's commit record decides:
        committed → this returns normally, the commit completed as if its answer had
        arrived (the write happened; raising would invite a duplicate retry); not
        committed → the documents are undone and ``BackendUnavailableError`` propagates;
        unknown → the documents stay marked for the sweep and ``BackendUnavailableError``
        propagates.
        """
        self.commit_lsn = commit_sequence.commit(
            self.session, self._journal, self._primary, self.commit_lsn
        )

    def rollback(self) -> None:
        """Discard the relational changes (pending audit events included) and undo the
        document writes since the last commit."""
        rollback(self.session)
        self._journal.release()


_REPOSITORIES: dict[str, Callable[[UnitOfWork, Session], object]] = {
    "users": lambda unit, session: UserRepository(session),
    "patients": lambda unit, session: PatientRepository(session),
    "appointments": lambda unit, session: AppointmentRepository(session, unit.clinic_timezone),
    "encounters": lambda unit, session: EncounterRepository(session),
    "prescriptions": lambda unit, session: PrescriptionRepository(session),
    "orders": lambda unit, session: OrderRepository(session),
    "tasks": lambda unit, session: TaskRepository(session),
    "alerts": lambda unit, session: AlertRepository(session),
    "conditions": lambda unit, session: ConditionRepository(session),
    "allergies": lambda unit, session: AllergyRepository(session),
    "vital_signs": lambda unit, session: VitalSignRepository(session),
    "audit": lambda unit, session: AuditRepository(session),
    "clinical_notes": lambda unit, session: ClinicalNoteRepository(
        unit._documents, unit._journal, session
    ),
    "voice_recordings": lambda unit, session: VoiceRecordingRepository(
        unit._documents, unit._journal, session
    ),
}
"""How each repository the class annotates is built from the unit's session."""
