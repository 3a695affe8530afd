"""What makes a row valid: derived from the columns, sharpened by clinical rules.

Every column gets a check from its type (length, enumeration, date, UUID...), required when
it is ``NOT NULL`` without a default. ``OVERRIDES`` replace that check where the clinic knows
more (phone and ABHA formats, birth dates not in the future). ``ORDERINGS`` are the
cross-field rules. :func:`validate` is called for every new or changed row before a flush
emits SQL, so a repository call and a plain attribute change are held to the same rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Boolean as SABoolean
from sqlalchemy import Date, Enum, Integer, String, Uuid
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper

from ...errors import ValidationError
from ...values import fields as f
from ..models import (
    Allergy,
    Appointment,
    Condition,
    Encounter,
    Order,
    OrderItem,
    Patient,
    Prescription,
    PrescriptionItem,
    User,
    VitalSign,
)
from ..types import MutableJSONDict, MutableJSONList, UTCDateTime
from .chart_values import UCUM_UNIT, Measurement, Reactions

NOT_FUTURE = f.Timestamp(not_future=True)

OVERRIDES: dict[tuple[type, str], f.Field] = {
    (User, "username"): f.USERNAME,
    (User, "email"): f.EMAIL,
    (User, "phone"): f.PHONE,
    (User, "profile_image_url"): f.WEB_URL,
    (User, "last_login_at"): NOT_FUTURE,
    (Patient, "mrn"): f.MRN,
    (Patient, "abha_id"): f.ABHA_NUMBER,
    (Patient, "phone"): f.PHONE,
    (Patient, "email"): f.EMAIL,
    (Patient, "date_of_birth"): f.Day(not_future=True, earliest=f.EARLIEST_BIRTH),
    (Appointment, "check_in_time"): NOT_FUTURE,
    (Appointment, "check_out_time"): NOT_FUTURE,
    (Prescription, "signed_at"): NOT_FUTURE,
    (Order, "completed_at"): NOT_FUTURE,
    (PrescriptionItem, "quantity"): f.Integer(minimum=1),
    (Condition, "recorded_at"): NOT_FUTURE,
    (Allergy, "reactions"): Reactions(),
    (Allergy, "recorded_at"): NOT_FUTURE,
    (VitalSign, "value"): Measurement(),
    (VitalSign, "unit"): UCUM_UNIT,
    (VitalSign, "effective_at"): NOT_FUTURE,
}
"""Clinical rules that replace the check a column's type implies."""

PERSON_NAMES = frozenset({(User, "full_name"), (Patient, "first_name"), (Patient, "last_name")})
"""Columns holding a person's name: checked as names (``fields.PersonName``: one Unicode
form, nothing invisible in them), at the column's length."""


@dataclass(frozen=True)
class Ordering:
    """``later`` must come after ``earlier`` (or equal it when ``strict`` is false)."""

    earlier: str
    later: str
    strict: bool = True

    def check(self, row: Values) -> None:
        first, second = row.get(self.earlier), row.get(self.later)
        if first is None or second is None:
            return
        if second < first or (self.strict and second == first):
            word = "after" if self.strict else "on or after"
            raise ValidationError(self.later, f"must be {word} {self.earlier}")


ORDERINGS: dict[type, tuple[Ordering, ...]] = {
    Appointment: (
        Ordering("start_time", "end_time"),
        Ordering("check_in_time", "check_out_time", strict=False),
    ),
    Encounter: (Ordering("start_time", "end_time", strict=False),),
    Prescription: (Ordering("valid_from", "valid_until", strict=False),),
    Order: (Ordering("ordered_at", "completed_at", strict=False),),
    Condition: (Ordering("onset_at", "abatement_at", strict=False),),
}

PROTECTED = frozenset({"id", "version", "created_at", "updated_at", "deleted_at"})
"""Maintained by the layer; callers never set them."""


PREFIXES: dict[type, str] = {PrescriptionItem: "items.", OrderItem: "items."}
"""Rows written through their parent report fields as the parent's caller named them."""


@dataclass(frozen=True)
class Column:
    check: f.Field
    required: bool
    has_default: bool
    via: tuple[str, ...] = ()
    """Relationships that fill this foreign key at flush time."""


def _check_for_type(sql_type: Any, person_name: bool) -> f.Field:
    if sql_type is MutableJSONDict:
        return f.JSONObject()
    if sql_type is MutableJSONList:
        return f.TextList()
    if isinstance(sql_type, Enum):
        return f.Choice(values=tuple(sql_type.enums))
    if isinstance(sql_type, UTCDateTime):
        return f.Timestamp()
    if isinstance(sql_type, Date):
        return f.Day()
    if isinstance(sql_type, Uuid):
        return f.UUIDField()
    if isinstance(sql_type, SABoolean):
        return f.Boolean()
    if isinstance(sql_type, Integer):
        return f.Integer(minimum=0)
    if isinstance(sql_type, String) and sql_type.length:
        text = f.PersonName if person_name else f.Text
        return text(max_length=sql_type.length, strip=True)
    return f.Text()


@functools.cache
def columns_of(model: type) -> dict[str, Column]:
    """The check and required-ness of every writable column of ``model``."""
    mapper: Mapper[Any] = sa_inspect(model)
    result: dict[str, Column] = {}
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        if attr.key in PROTECTED or "blind_index_of" in column.info:
            continue
        name = (model, attr.key)
        check = OVERRIDES.get(name) or _check_for_type(column.type, name in PERSON_NAMES)
        has_default = column.default is not None or column.server_default is not None
        via = tuple(rel.key for rel in mapper.relationships if column in rel.local_columns)
        result[attr.key] = Column(
            check=replace(check, nullable=column.nullable or bool(via)),
            required=not column.nullable and not has_default,
            has_default=has_default,
            via=via,
        )
    return result


@functools.cache
def field_names(model: type) -> frozenset[str]:
    """Every attribute of ``model``: the names an error may repeat back to a caller."""
    return frozenset(sa_inspect(model).attrs.keys())


def clean(model: type, key: str, value: Any) -> Any:
    """Check one value bound for ``model.key`` (a filter value, say); return it normalized."""
    column = columns_of(model).get(key)
    if column is None:
        raise ValidationError(key, "is not a field of this record")
    return column.check.clean(value, key)


class Values(Protocol):
    """A row's values as validation reads and normalizes them."""

    def get(self, key: str) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...


class _Attributes:
    """An entity's attributes as ``Values`` (a normalized value set as an attribute
    change, which the flush writes)."""

    __slots__ = ("row",)

    def __init__(self, row: object) -> None:
        self.row = row

    def get(self, key: str) -> Any:
        return getattr(self.row, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self.row, key, value)


def validate(row: object, changed: set[str] | None) -> None:
    """Check ``row`` in place, normalizing values; ``changed=None`` means a new row.

    Raises ``ValidationError`` for the first offending field.
    """
    _validated(type(row), _Attributes(row), changed)


def validate_new(model: type, values: dict[str, Any]) -> None:
    """Check a new row of ``model`` given as its column values (a bulk insert, which
    builds no entity): the checks of :func:`validate`, normalizing ``values`` in place."""
    _validated(model, values, None)


def _validated(model: type, row: Values, changed: set[str] | None) -> None:
    try:
        for key, column in columns_of(model).items():
            if changed is not None and key not in changed:
                continue
            value = row.get(key)
            if value is None:
                if column.required and all(row.get(rel) is None for rel in column.via):
                    raise ValidationError(key, "is required")
                if changed is None and column.has_default:
                    continue  # filled by the column default on INSERT
            cleaned = column.check.clean(value, key)
            if cleaned != value or type(cleaned) is not type(value):
                row[key] = cleaned
        for ordering in ORDERINGS.get(model, ()):
            ordering.check(row)
    except ValidationError as error:
        prefix = PREFIXES.get(model)
        if prefix is None:
            raise
        raise ValidationError(prefix + error.field, error.reason) from None
