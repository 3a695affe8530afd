"""Users (staff) and patients."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select

from ...errors import DataLayerError, NotFoundError
from ...values.clock import utcnow
from ...values.fields import USERNAME, Text, as_uuid
from ...values.pages import check_page
from .. import allergy_list, bulk
from ..audit.trail import trail_of
from ..models import Patient, User
from .base import Repository
from .name_search import name_search

ERASURE_REASON = Text(
    max_length=64,
    pattern=re.compile(r"[a-z][a-z0-9_]{2,63}"),
    expected="a reason code (lower-case letters, digits and '_')",
    strip=True,
    nullable=False,
)
ERASED: dict[str, Any] = {
    "first_name": "erased",
    "last_name": "erased",
    "mrn": None,
    "abha_id": None,
    "phone": None,
    "email": None,
    "address": None,
    "emergency_contact": None,
}
"""What an erasure leaves in the fields that identify a patient."""


class UserRepository(Repository[User]):
    model = User
    filterable = frozenset({"role", "status", "specialty", "username", "email", "phone"})
    sortable = frozenset({"created_at", "updated_at", "full_name", "username", "last_login_at"})
    default_order = "full_name"

    def get_by_username(self, username: Any) -> User | None:
        """The active user who logs in with ``username``, or ``None``."""
        name = USERNAME.clean(username, "username")
        statement = select(User).where(User.username == name, User.status == "active")
        return self.session.scalars(statement).first()


class PatientRepository(Repository[Patient]):
    model = Patient
    filterable = frozenset(
        {"status", "gender", "blood_group", "mrn", "abha_id", "phone", "email", "date_of_birth"}
    )
    sortable = frozenset(
        {"created_at", "updated_at", "last_name", "first_name", "date_of_birth", "mrn"}
    )
    default_order = "last_name"
    chart_part = "demographics"

    def get(self, id: Any) -> Patient | None:
        """The patient with this id, or ``None``; a read of the chart when reads are audited."""
        patient = self._find(id)
        if patient is not None:
            self._audit_chart_read(patient.id, self.chart_part)
        return patient

    def _inserts_alone(self, fields: Mapping[str, Any]) -> bool:
        """Not when the new patient lists allergies: their rows are written with it
        (``allergy_list.py``)."""
        return not fields.get("allergies") and super()._inserts_alone(fields)

    def create_many(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        all_or_nothing: bool = False,
        progress: Callable[[bulk.Progress], None] | None = None,
    ) -> bulk.BulkResult:
        """As ``Repository.create_many``; the allergy names new patients list become
        their allergy rows too (``allergy_list.py``), at one more query per 1000 patients
        when any row lists one, none otherwise."""
        listed: list[bool] = []

        def noting(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
            for row in rows:
                if not listed and isinstance(row, Mapping) and row.get("allergies"):
                    listed.append(True)
                yield row

        result = super().create_many(
            noting(rows), batch_size=batch_size, all_or_nothing=all_or_nothing, progress=progress
        )
        if listed:
            allergy_list.record_listed_in_bulk(self.session, result.created)
        return result

    def find_by_mrn(self, mrn: Any) -> Patient | None:
        """The patient with this medical record number, or ``None``."""
        return self.session.scalars(select(Patient).where(self._equals("mrn", mrn))).first()

    def find_by_abha_id(self, abha_id: Any) -> Patient | None:
        """The patient with this ABHA number (any usual formatting), or ``None``.

        One indexed query on the blind index: the stored number is encrypted."""
        statement = select(Patient).where(self._equals("abha_id", abha_id))
        return self.session.scalars(statement).first()

    def find_by_phone(self, phone: Any, *, limit: int = 50) -> list[Patient]:
        """Patients with this phone number (any usual formatting; a family may share one),
        by name. One indexed query on the blind index."""
        check_page(limit, 0)
        statement = (
            select(Patient)
            .where(self._equals("phone", phone))
            .order_by(*self._ordering(None))
            .limit(limit)
        )
        return list(self.session.scalars(statement))

    def search_by_name(self, query: Any, *, limit: int = 20) -> list[Patient]:
        """Patients whose names match every word of ``query`` (a prefix, or on PostgreSQL a
        similar spelling), best match first, at most ``limit`` (1 to 50). One query on the
        trigram indexes (``name_search.py``); ``ValidationError`` before any SQL for a
        query that is not short text or a limit out of range. Phone numbers are not
        searched in part: see ``find_by_phone``."""
        dialect = self.session.get_bind().dialect.name
        return list(self.session.scalars(name_search(query, limit, dialect)))

    def purge(self, id: Any, *, reason: Any) -> None:
        """Erase what identifies a patient, for an erasure the law requires (DPDP Act).

        ``reason`` is a reason code (``"dpdp_erasure_request"``, ``"court_order"``...),
        never free text; without one nothing happens (``ValidationError("reason")``).
        Names, identifiers, contact details and address are erased and the birth date
        kept to its year; the row is soft-deleted. The clinical record (encounters,
        prescriptions, orders) stays, as medical-record retention requires, linked to the
        anonymous row. The audit trail records a ``delete`` with the reason code and the
        names of the fields erased. Works on a soft-deleted patient too.
        """
        code = ERASURE_REASON.clean(reason, "reason")
        patient = self.session.get(
            Patient, as_uuid(id), execution_options={"include_deleted": True}
        )
        if patient is None:
            raise NotFoundError("no patients record with that id")
        trail = trail_of(self.session)
        if trail is None:
            raise DataLayerError("erasure needs a unit of work")
        trail.mark_erasure("patients", patient.id, code)
        for key, value in ERASED.items():
            setattr(patient, key, value)
        patient.date_of_birth = date(patient.date_of_birth.year, 1, 1)
        patient.deleted_at = patient.deleted_at or utcnow()
        try:
            self.session.flush()
        finally:
            trail.reasons.pop(("patients", str(patient.id)), None)
