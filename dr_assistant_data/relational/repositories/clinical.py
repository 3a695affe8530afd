"""Encounters, prescriptions and orders: the patient's timeline."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload, selectinload

from ...errors import ValidationError, schema_field
from ...values.fields import as_uuid
from ...values.pages import check_page
from ..caching.policy import TIMELINES
from ..models import Encounter, Order, OrderItem, Prescription, PrescriptionItem
from .base import Repository
from .keyset import Page

MAX_ITEMS = 100

W = TypeVar("W", Prescription, Order)


class EncounterRepository(Repository[Encounter]):
    model = Encounter
    filterable = frozenset(
        {"patient_id", "doctor_id", "appointment_id", "status", "encounter_type"}
    )
    sortable = frozenset({"created_at", "updated_at", "start_time", "end_time"})
    default_order = "-start_time"

    def for_patient(self, patient_id: Any, *, limit: int = 50, offset: int = 0) -> list[Encounter]:
        """The patient's encounters, newest first, with ``.doctor`` loaded: at most two
        queries, none when cached (the newest 50 are cached, ``caching.TIMELINES``)."""
        check_page(limit, offset)
        patient = as_uuid(patient_id, "patient_id")
        self._audit_chart_read(patient, "encounters")

        def statement() -> Select[Any]:
            return (
                select(Encounter)
                .where(Encounter.patient_id == patient)
                .order_by(Encounter.start_time.desc(), Encounter.id)
            )

        return TIMELINES.rows(self.session, (patient,), statement, limit=limit, offset=offset)

    def for_patient_page(
        self, patient_id: Any, *, limit: int = 50, after: str | None = None
    ) -> Page[Encounter]:
        """A keyset page of the patient's encounters, newest first, with ``.doctor``: one
        query at any depth of the history (uncached), resumed after ``next_cursor``."""
        check_page(limit, 0)
        patient = as_uuid(patient_id, "patient_id")
        self._audit_chart_read(patient, "encounters")
        statement = (
            select(Encounter)
            .options(joinedload(Encounter.doctor))
            .where(Encounter.patient_id == patient)
        )
        return self._page(
            statement, [(Encounter.start_time, True), (Encounter.id, False)], limit, after
        )


class _WithItems(Repository[W]):
    """Prescriptions and orders: a header with ordered item rows, written together.

    ``items`` is a list of dicts; on ``update`` it replaces the whole list.
    """

    item_model: ClassVar[type[PrescriptionItem] | type[OrderItem]]

    def _extra_fields(self) -> frozenset[str]:
        return frozenset({"items"})

    def _prepare(self, fields: dict[str, Any]) -> dict[str, Any]:
        if "items" not in fields:
            return fields
        items = fields["items"]
        if not isinstance(items, list | tuple) or len(items) > MAX_ITEMS:
            raise ValidationError("items", f"must be a list of at most {MAX_ITEMS} items")
        built = []
        for entry in items:
            if isinstance(entry, self.item_model):
                built.append(entry)
                continue
            if not isinstance(entry, dict):
                raise ValidationError("items", "each item must be an object")
            allowed = self.item_model.__table__.columns.keys()
            for key in entry:
                if key in {"id", "position", "created_at", "updated_at"} or key not in allowed:
                    field = "items." + schema_field(key, allowed, "fields")
                    raise ValidationError(field, "is not a writable field of an item")
            built.append(self.item_model(**entry))
        return {**fields, "items": built}

    def _timeline(self, column: Any, value: Any, limit: int, offset: int) -> list[W]:
        check_page(limit, offset)
        statement = (
            select(self.model)
            .options(selectinload(self.model.items), joinedload(self.model.doctor))
            .where(column == value)
            .order_by(self.model.created_at.desc(), self.model.id)
            .limit(limit)
            .offset(offset)
        )
        return list(self.session.scalars(statement))

    def for_patient(self, patient_id: Any, *, limit: int = 50, offset: int = 0) -> list[W]:
        """Newest first, with items and doctor loaded: two queries, whatever the history."""
        patient = as_uuid(patient_id, "patient_id")
        self._audit_chart_read(patient, self.model.__tablename__)
        return self._timeline(self.model.patient_id, patient, limit, offset)

    def for_patient_page(
        self, patient_id: Any, *, limit: int = 50, after: str | None = None
    ) -> Page[W]:
        """A keyset page of the patient's records, newest first, with items and doctor:
        two queries at any depth of the history, resumed after ``next_cursor``."""
        check_page(limit, 0)
        patient = as_uuid(patient_id, "patient_id")
        self._audit_chart_read(patient, self.model.__tablename__)
        statement = (
            select(self.model)
            .options(selectinload(self.model.items), joinedload(self.model.doctor))
            .where(self.model.patient_id == patient)
        )
        terms = [(self.model.created_at, True), (self.model.id, False)]
        return self._page(statement, terms, limit, after)

    def for_encounter(self, encounter_id: Any, *, limit: int = 50, offset: int = 0) -> list[W]:
        """Newest first, with items and doctor loaded: two queries."""
        return self._timeline(
            self.model.encounter_id, as_uuid(encounter_id, "encounter_id"), limit, offset
        )


class PrescriptionRepository(_WithItems[Prescription]):
    model = Prescription
    item_model = PrescriptionItem
    filterable = frozenset({"patient_id", "doctor_id", "encounter_id", "status"})
    sortable = frozenset({"created_at", "updated_at", "signed_at", "valid_from"})


class OrderRepository(_WithItems[Order]):
    model = Order
    item_model = OrderItem
    filterable = frozenset({"patient_id", "doctor_id", "encounter_id", "status", "order_type"})
    sortable = frozenset({"created_at", "updated_at", "ordered_at", "completed_at"})
