"""Problem list, allergies and vital signs: parts of the patient's chart, read with it.

Each ``for_patient`` is a read of the chart (audited as one when reads are audited, under
the table's name) and runs one indexed query; none is cached (``caching/policy.py`` says why).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from sqlalchemy import ColumnElement, select

from ...values.fields import as_uuid
from ...values.pages import check_page
from .. import allergy_list, bulk
from ..models import Allergy, Condition, VitalSign
from ..vocabulary import NOT_ALLERGIC
from .base import Repository

R = TypeVar("R", Condition, Allergy, VitalSign)


class _ChartRecords(Repository[R]):
    """A patient's records of one kind, newest first."""

    newest_first: ClassVar[tuple[str, ...]]
    """The columns ``for_patient`` sorts on, newest first (then ``id``)."""

    def _inserts_alone(self, fields: Mapping[str, Any]) -> bool:
        """Never: a new record is checked against its encounter's patient
        (``rules/chart_integrity.py``), an allergy kept in its patient's list
        (``allergy_list.py``), both by the flush."""
        return False

    def for_patient(
        self, patient_id: Any, *, active_only: bool = False, limit: int = 50, offset: int = 0
    ) -> builtins.list[R]:
        """The patient's records, newest first; only those in force with
        ``active_only``. One query; ``ValidationError`` before any SQL for a bad id or
        page."""
        check_page(limit, offset)
        patient = as_uuid(patient_id, "patient_id")
        self._audit_chart_read(patient, self.model.__tablename__)
        statement = select(self.model).where(self.model.patient_id == patient)
        if active_only:
            statement = statement.where(*self._in_force())
        order = [getattr(self.model, name).desc().nulls_last() for name in self.newest_first]
        statement = statement.order_by(*order, self.model.id).limit(limit).offset(offset)
        return builtins.list(self.session.scalars(statement))

    def _in_force(self) -> builtins.list[ColumnElement[bool]]:
        return []


class ConditionRepository(_ChartRecords[Condition]):
    """The problem list (``uow.conditions``)."""

    model = Condition
    filterable = frozenset(
        {"patient_id", "encounter_id", "code", "code_system", "clinical_status", "category"}
    )
    sortable = frozenset({"created_at", "updated_at", "recorded_at", "onset_at"})
    newest_first = ("recorded_at", "onset_at", "created_at")

    def _in_force(self) -> builtins.list[ColumnElement[bool]]:
        """Active (or recurring, relapsed) problems, neither refuted nor entered in error."""
        return [
            Condition.clinical_status.in_(("active", "recurrence", "relapse")),
            Condition.verification_status.is_distinct_from("refuted"),
            Condition.verification_status.is_distinct_from("entered_in_error"),
        ]


class AllergyRepository(_ChartRecords[Allergy]):
    """The allergy list (``uow.allergies``); ``Patient.allergies`` lists the names of the
    active ones and is kept in step with every write (``allergy_list.py``)."""

    model = Allergy
    filterable = frozenset(
        {"patient_id", "encounter_id", "substance_code", "clinical_status", "verification_status"}
    )
    sortable = frozenset({"created_at", "updated_at", "recorded_at"})
    newest_first = ("recorded_at", "created_at")

    def _in_force(self) -> builtins.list[ColumnElement[bool]]:
        """What ``Allergy.is_active`` says, in SQL."""
        return [
            Allergy.clinical_status == "active",
            Allergy.verification_status.is_(None)
            | Allergy.verification_status.not_in(NOT_ALLERGIC),
        ]

    def create_many(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        all_or_nothing: bool = False,
        progress: Callable[[bulk.Progress], None] | None = None,
    ) -> bulk.BulkResult:
        """As ``Repository.create_many``, then the names lists of the patients written to
        are rebuilt (one query per 1000 rows, and the patients' updates)."""
        result = super().create_many(
            rows, batch_size=batch_size, all_or_nothing=all_or_nothing, progress=progress
        )
        for start in range(0, len(result.created), batch_size):
            chunk = result.created[start : start + batch_size]
            owners = select(Allergy.patient_id).where(Allergy.id.in_(chunk)).distinct()
            allergy_list.rebuild_lists(self.session, self.session.scalars(owners).all())
        return result


class VitalSignRepository(_ChartRecords[VitalSign]):
    """Vital signs (``uow.vital_signs``), read by patient or by encounter."""

    model = VitalSign
    filterable = frozenset({"patient_id", "encounter_id", "kind", "status", "panel_id"})
    sortable = frozenset({"created_at", "updated_at", "effective_at"})
    default_order = "-effective_at"
    newest_first = ("effective_at",)

    def _in_force(self) -> builtins.list[ColumnElement[bool]]:
        """Measurements that stand: not cancelled nor entered in error."""
        return [VitalSign.status.not_in(("cancelled", "entered_in_error"))]

    def for_encounter(self, encounter_id: Any, *, limit: int = 100) -> builtins.list[VitalSign]:
        """The encounter's measurements, in the order they were taken (by kind within a
        moment, so a blood pressure's two readings sit together). One query."""
        check_page(limit, 0)
        encounter = as_uuid(encounter_id, "encounter_id")
        statement = (
            select(VitalSign)
            .where(VitalSign.encounter_id == encounter)
            .order_by(VitalSign.effective_at, VitalSign.kind, VitalSign.id)
            .limit(limit)
        )
        rows = builtins.list(self.session.scalars(statement))
        for patient in {row.patient_id for row in rows}:
            self._audit_chart_read(patient, self.model.__tablename__)
        return rows
