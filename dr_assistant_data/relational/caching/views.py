"""Read models: frozen views of rows, decoded from the cache without building entities.

A view holds the columns its entity exposes (never a secret column) and cannot be changed:
its attributes are read-only and its JSON values are tuples and read-only mappings, so an
in-place edit such as ``view.patient.allergies.append(...)`` raises instead of being lost.
To change a row, load its entity in the unit of work (``uow.appointments.get(view.id)``)
and edit that. Views are built from the same cached rows as entities (``rows.py``),
or from entities a query loaded when the cache is not used.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from ..base import Entity
from ..models import Appointment, Patient
from .rows import Row, codec_for


@dataclass(frozen=True, slots=True)
class PatientView:
    """A patient's columns, read-only."""

    id: uuid.UUID
    mrn: str | None
    abha_id: str | None
    abha_id_index: str | None
    first_name: str
    last_name: str
    date_of_birth: date
    gender: str
    phone: str | None
    phone_index: str | None
    email: str | None
    email_index: str | None
    address: Mapping[str, Any] | None
    emergency_contact: Mapping[str, Any] | None
    blood_group: str | None
    allergies: tuple[str, ...]
    status: str
    created_at: datetime
    updated_at: datetime
    version: int
    deleted_at: datetime | None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class AppointmentView:
    """An appointment's columns, read-only, with its patient's view."""

    id: uuid.UUID
    doctor_id: uuid.UUID
    patient_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: str
    appointment_type: str
    reason: str | None
    notes: str | None
    created_by: uuid.UUID | None
    check_in_time: datetime | None
    check_out_time: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    patient: PatientView | None


VIEWS: dict[type[Entity], type[Any]] = {Patient: PatientView, Appointment: AppointmentView}
"""The view of each model that has one."""


def view_from_row(model: type[Entity], values: Row) -> Any:
    """The view of an encoded (cached) row of ``model``."""
    return view_from_columns(model, codec_for(model).decode(values))


def view_of(row: Entity, **related: Any) -> Any:
    """The view of a loaded entity, with ``related`` views set."""
    columns = {key: getattr(row, key) for key in codec_for(type(row)).keys}
    return view_from_columns(type(row), columns, **related)


def view_from_columns(model: type[Entity], columns: dict[str, Any], **related: Any) -> Any:
    """The view of ``model``'s decoded ``columns`` (taken over, JSON values frozen), with
    ``related`` views set."""
    for key in codec_for(model).documents:
        columns[key] = frozen(columns[key])
    return VIEWS[model](**columns, **related)


def frozen(value: Any) -> Any:
    """A JSON value that cannot be changed in place: lists as tuples, objects as read-only
    mappings, all the way down."""
    if isinstance(value, dict):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(frozen(item) for item in value)
    return value
