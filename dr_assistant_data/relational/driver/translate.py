"""The one place where SQLAlchemy and driver exceptions become the contract's errors.

Translated: everything raised by the database or its driver, lost optimistic-lock races,
pool timeouts and spent transactions. SQLAlchemy's own usage errors (a programming
mistake, never data) propagate unchanged.

The driver's message is never copied into the new error and the new error is raised
outside the ``except`` block, so it carries neither ``__cause__`` nor ``__context__``:
PostgreSQL's ``DETAIL: Key (mrn)=(...)`` cannot reach a log through a chained traceback.
"""

from __future__ import annotations

import functools
import re

from sqlalchemy import Constraint, Index
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from ...boundary import boundary
from ...errors import (
    BackendUnavailableError,
    ConflictError,
    DataLayerError,
    DuplicateError,
    ImmutableRecordError,
    SchemaNotMigratedError,
    ValidationError,
)
from ..base import Base

OVERLAP = "ex_appointments_doctor_overlap"
"""The exclusion constraint on PostgreSQL and the trigger's message on SQLite."""
APPEND_ONLY = "audit_events_append_only"
"""The message of the triggers that refuse changes to the audit trail."""
REFUSED_DOWNGRADE = "cannot be downgraded"
"""In the message of a revision that refuses to downgrade (``migrations/refusals.py``)."""

UNDEFINED_OBJECT_STATES = ("42P01", "42703")
"""PostgreSQL's undefined_table and undefined_column: a schema behind the models."""
_SQLITE_UNDEFINED = re.compile(r"^no such (?:table|column): ")
_SQLITE_FIELD = re.compile(r"(?:UNIQUE|NOT NULL) constraint failed: \w+\.(\w+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")


def contract_error(error: Exception) -> DataLayerError:
    """The contract error for a SQLAlchemy / DBAPI exception; its text holds no values."""
    if isinstance(error, StaleDataError):
        return ConflictError("the record was changed by someone else; reload it and retry")
    if isinstance(error, sa_exc.DBAPIError) and APPEND_ONLY in str(error.orig):
        return ImmutableRecordError("audit events are append-only")
    if isinstance(error, sa_exc.DBAPIError) and REFUSED_DOWNGRADE in str(error.orig):
        return DataLayerError(_first_line(error.orig))  # a revision's constant text
    if isinstance(error, sa_exc.TimeoutError):
        return BackendUnavailableError("postgres", f"no free connection: {error.args[0]}")
    if isinstance(error, sa_exc.IntegrityError):
        return _integrity_error(error)
    if isinstance(error, sa_exc.DBAPIError) and _undefined_object(error):
        return SchemaNotMigratedError()
    if isinstance(error, sa_exc.DataError):
        return ValidationError(_pg_column(error) or "value", "is not a valid value")
    if isinstance(error, sa_exc.DBAPIError) and (
        error.connection_invalidated
        or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
    ):
        return BackendUnavailableError("postgres", _first_line(error.orig))
    if isinstance(error, sa_exc.PendingRollbackError):
        return DataLayerError(
            "this unit of work failed earlier and was rolled back; start a new one"
        )
    return DataLayerError(f"relational store error ({type(error).__name__})")


translated = boundary(
    (
        sa_exc.DBAPIError,
        sa_exc.StatementError,
        sa_exc.TimeoutError,
        StaleDataError,
        sa_exc.PendingRollbackError,
    ),
    contract_error,
)
"""Wrap a function so that only contract errors leave it."""


def _integrity_error(error: sa_exc.IntegrityError) -> DataLayerError:
    code = getattr(error.orig, "pgcode", None)
    message = str(error.orig)
    if OVERLAP in message or code == "23P01":
        return ConflictError("the doctor already has a live appointment overlapping this time")
    constraint = _pg_constraint(error)
    if code == "23505" or message.startswith("UNIQUE constraint failed"):
        return DuplicateError(_constraint_field(constraint) or _sqlite_field(message))
    if code == "23502" or message.startswith("NOT NULL constraint failed"):
        return ValidationError(_pg_column(error) or _sqlite_field(message), "is required")
    if code == "23503" or "FOREIGN KEY constraint failed" in message:
        if message.startswith("update or delete"):
            return ConflictError("the record is still referenced by other records")
        field = _constraint_field(constraint) or "reference"
        return ValidationError(field, "refers to a record that does not exist")
    if code == "23514" or message.startswith("CHECK constraint failed"):
        check = constraint or _sqlite_check(message)
        return ValidationError(_check_field(check), "violates a rule of the record")
    return ConflictError("the write conflicts with existing data")


def _undefined_object(error: sa_exc.DBAPIError) -> bool:
    """The statement named a table or column the database does not have."""
    if getattr(error.orig, "pgcode", None) in UNDEFINED_OBJECT_STATES:
        return True
    return bool(_SQLITE_UNDEFINED.match(str(error.orig)))


def _first_line(orig: BaseException | None) -> str:
    text = str(orig).strip().splitlines()
    return text[0] if text else "unavailable"


def _pg_constraint(error: sa_exc.DBAPIError) -> str | None:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _pg_column(error: sa_exc.DBAPIError) -> str | None:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "column_name", None)


def _sqlite_field(message: str) -> str:
    match = _SQLITE_FIELD.search(message)
    return match.group(1) if match else "value"


def _sqlite_check(message: str) -> str | None:
    match = _SQLITE_CHECK.search(message)
    return match.group(1) if match else None


@functools.cache
def _columns_by_constraint() -> dict[str, str]:
    """Constraint and index names of the schema, mapped to their first column (for a blind
    index, the encrypted field it indexes)."""
    names: dict[str, str] = {}
    for table in Base.metadata.tables.values():
        items: list[Constraint | Index] = [*table.constraints, *table.indexes]
        for item in items:
            columns = list(item.columns) if hasattr(item, "columns") else []
            if isinstance(item.name, str) and columns:
                info = getattr(columns[0], "info", {})  # expression indexes have no info
                names[item.name] = info.get("blind_index_of", columns[0].name)
    return names


def _constraint_field(constraint: str | None) -> str | None:
    return _columns_by_constraint().get(constraint) if constraint else None


def _check_field(constraint: str | None) -> str:
    if constraint is None:
        return "value"
    if constraint in _columns_by_constraint():
        return _columns_by_constraint()[constraint]
    # ck_<table>_<rule>: name the rule
    for table in Base.metadata.tables:
        prefix = f"ck_{table}_"
        if constraint.startswith(prefix):
            return constraint[len(prefix) :]
    return constraint
