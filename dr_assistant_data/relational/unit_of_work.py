"""The relational unit of work: one transaction, its repositories, its audit trail.

    with dl.unit_of_work(actor=str(doctor.id)) as uow:
        patient = uow.patients.get(patient_id)
        patient.allergies.append("penicillin")
    # committed here; an exception inside the block rolls everything back and propagates

Leaving the block normally flushes (validating every changed row), writes the audit events
and commits. An exception rolls back and is re-raised unchanged. Once the database has
refused a write (a duplicate, a lost race) the transaction is spent: start a new unit of
work to try again.

Callers use the public ``UnitOfWork`` (``dr_assistant_data/unit_of_work.py``), which adds
the document repositories to this one.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ..errors import BackendUnavailableError, DataLayerError, ValidationError
from ..protection.audit_key import AuditKey, audit_key_from
from ..session_context import context_of
from .audit.trail import AuditTrail, trail_of
from .connection.replicas import commit_lsn
from .driver.translate import translated
from .repositories.audit import AuditRepository
from .repositories.chart import AllergyRepository, ConditionRepository, VitalSignRepository
from .repositories.clinical import EncounterRepository, OrderRepository, PrescriptionRepository
from .repositories.people import PatientRepository, UserRepository
from .repositories.scheduling import AppointmentRepository
from .repositories.workflow import AlertRepository, TaskRepository

WAL_POSITION = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


class RelationalUnitOfWork:
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

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        actor: str | None,
        correlation_id: str | None = None,
        clinic_timezone: ZoneInfo,
        actor_required: bool = False,
        audit_reads: bool = False,
        audit_key: AuditKey | None = None,
        read_only: bool = False,
        after_lsn: str | None = None,
    ) -> None:
        self._session_factory = session_factory
        self.read_only = read_only
        if after_lsn is not None and not WAL_POSITION.fullmatch(str(after_lsn)):
            raise ValidationError("after_lsn", "is not a WAL position such as 0/16B3748")
        self.after_lsn = after_lsn
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
        if self._session is not None:
            raise DataLayerError("a unit of work cannot be entered twice")
        session = self._session_factory()
        context = context_of(session)
        context.audit = AuditTrail(
            actor=self.actor,
            correlation_id=self.correlation_id,
            actor_required=self._actor_required,
            audit_reads=self._audit_reads,
            key=self._audit_key,
        )
        context.read_only = self.read_only
        context.after_lsn = self.after_lsn
        self._session = session
        self.users = UserRepository(session)
        self.patients = PatientRepository(session)
        self.appointments = AppointmentRepository(session, self._clinic_timezone)
        self.encounters = EncounterRepository(session)
        self.prescriptions = PrescriptionRepository(session)
        self.orders = OrderRepository(session)
        self.conditions = ConditionRepository(session)
        self.allergies = AllergyRepository(session)
        self.vital_signs = VitalSignRepository(session)
        self.tasks = TaskRepository(session)
        self.alerts = AlertRepository(session)
        self.audit = AuditRepository(session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        failed = exc_type is not None
        try:
            if not failed:
                self.commit()
        except BaseException:
            failed = True
            raise
        finally:
            self._session = None
            _close(session, failed=failed)

    def use_primary(self) -> None:
        """Read from the primary from now on: the caller needs data no replica may lag on
        (a read-only unit of work reads from a replica until then, or until it writes)."""
        context_of(self.session).needs_primary = True

    def commit(self) -> None:
        """Flush, write the audit events, commit. The unit of work stays usable after.

        A ``BackendUnavailableError`` during the commit may hide a commit that took effect
        (the connection dropped after COMMIT was sent). When ``_committed_after_all`` proves
        it did, the commit is completed as if its answer had arrived: the session's
        ``after_commit`` listeners run (cached reads dropped, the writer's reads kept on the
        primary) and this returns normally.
        """
        session = self.session
        if _untouched(session):
            return  # a unit served from the cache: no transaction began, none to end
        session.flush()
        # the events go to the primary (an INSERT); reads already made stay where they were
        context = context_of(session)
        _trail(session).write(session)
        sent = context.snapshot()  # what the listeners of a commit find, before its rollback
        try:
            session.commit()
        except BackendUnavailableError as error:
            if error.backend != "postgres" or not self._committed_after_all():
                raise
            context.restore(sent)
            session.dispatch.after_commit(session)
        self.commit_lsn = commit_lsn(session, self.commit_lsn)

    def _committed_after_all(self) -> bool:
        """Whether a commit whose answer was lost took effect. Without a record of its own
        to ask about, a relational unit of work cannot tell: the error propagates."""
        return False

    def rollback(self) -> None:
        """Discard every change since the last commit, including pending audit events."""
        self.session.rollback()
        _trail(self.session).changes.clear()


def _trail(session: Session) -> AuditTrail:
    trail = trail_of(session)
    assert trail is not None, "set when the unit of work is entered"
    return trail


def _untouched(session: Session) -> bool:
    """No transaction began (no SQL ran), no change is pending and no audit event is owed:
    a commit would flush nothing, write nothing and send nothing."""
    if session.get_transaction() is not None or _trail(session).changes:
        return False
    return not (session.new or session.deleted or session.dirty)


def _close(session: Session, *, failed: bool) -> None:
    """``close()`` detaches the entities, then rolls back whatever was not committed:
    unlike ``rollback()`` it leaves their loaded attributes readable. A rollback that cannot
    reach the server (the connection is gone, and the server rolls back by itself) is the
    contract's ``BackendUnavailableError``; after a failure it is dropped, so the exception
    the caller's block or the commit raised is the one that propagates."""
    try:
        translated(session.close)()
    except BackendUnavailableError:
        if not failed:
            raise
