"""Bulk creation: many rows validated like single creates, written in multi-row INSERTs.

Each row is checked by the rules ``Repository.create`` applies to one (the repository's
``_prepare``, then the checks of ``rules.validate``, run on its column values: no entity is
built), before any SQL. Valid rows go to the
database ``batch_size`` at a time, one ``COPY`` per batch on PostgreSQL (a multi-row
``INSERT`` elsewhere), each batch in a savepoint. Their audit events join the
unit of work's trail (written in bulk, chained, at commit) and their cache keys join the
keys the session owes (``caching/invalidation.py``), delivered once, after the commit.

A refused row is reported with its position in the input and the field at fault, and the
others are kept; with ``all_or_nothing`` the first refusal raises ``ValidationError``
(field ``rows[<n>].<field>``) and nothing of the call is written.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import ColumnDefault, Table
from sqlalchemy.orm import Session

from ..errors import (
    ConflictError,
    DataLayerError,
    DuplicateError,
    ValidationError,
    schema_field,
)
from ..protection.keyring import Keyring
from ..values.batches import check_batch_size
from ..values.clock import utcnow
from .audit.trail import Change, trail_of, written_fields
from .base import Entity, Versioned
from .caching.invalidation import note_inserted
from .connection.replicas import mark_written
from .driver.copy_rows import insert_rows
from .encryption import blind_indexes, index_value, session_keyring
from .rules import validation as rules


@dataclass(frozen=True)
class RowError:
    """Row ``index`` (its position in the input, from 0) was refused: ``field``, ``reason``."""

    index: int
    field: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """How far a bulk call has come, after each batch."""

    done: int
    created: int
    rejected: int


@dataclass
class BulkResult:
    """The ids created, in input order, and the rows refused."""

    created: list[uuid.UUID] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def create_many(
    session: Session,
    model: type[Entity],
    rows: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 1000,
    all_or_nothing: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> BulkResult:
    """Insert ``rows`` (see the module docstring); returns what was created and refused."""
    check_batch_size(batch_size)
    trail = trail_of(session)
    if trail is not None:
        trail.check_actor()
    keyring = session_keyring(session) if blind_indexes(model) else None
    session.flush()  # pending single writes go first, under their own rules
    table: Table = model.__table__
    result = BulkResult()
    written: list[Pending] = []
    outer = session.begin_nested() if all_or_nothing else None
    try:
        done = 0
        for chunk in _chunks(enumerate(rows), batch_size):
            valid = []
            for index, fields in chunk:
                try:
                    valid.append(_built(model, keyring, index, fields))
                except ValidationError as error:
                    if all_or_nothing:
                        raise ValidationError(
                            f"rows[{index}].{error.field}", error.reason
                        ) from None
                    result.errors.append(RowError(index, error.field, error.reason))
            kept = _written(session, table, valid, result, all_or_nothing)
            if outer is None:
                _record(session, model, kept)  # in the transaction from now on, whatever follows
            else:
                written.extend(kept)  # until the savepoint is released
            done += len(chunk)
            if progress is not None:
                progress(Progress(done, len(result.created), len(result.errors)))
    except BaseException:
        if outer is not None and outer.is_active:
            outer.rollback()
        raise
    if outer is not None:
        outer.commit()
        _record(session, model, written)
    return result


@dataclass(frozen=True)
class Pending:
    index: int
    values: dict[str, Any]
    """Every column of the table, as written."""


def _built(
    model: type[Entity],
    keyring: Keyring | None,
    index: int,
    fields: Mapping[str, Any],
) -> Pending:
    """Row ``index`` as :func:`new_row` makes it, once its fields are known to be column
    fields: no entity is built (nor joins the session), child rows have no bulk path."""
    if not isinstance(fields, Mapping):
        raise ValidationError("row", "must be a mapping of field names to values")
    writable = rules.columns_of(model)
    for key in fields:
        if key not in writable:
            field = schema_field(key, rules.field_names(model), "fields")
            raise ValidationError(field, "is not a field this record can be bulk created with")
    return Pending(index, new_row(model, keyring, dict(fields)))


def new_row(model: type[Entity], keyring: Keyring | None, given: dict[str, Any]) -> dict[str, Any]:
    """Every column value of a new row of ``model`` from ``given`` (column fields, normalized
    in place): checked by the rules a flush applies to a new row (``rules.validate_new``),
    then given the blind indexes of its encrypted values (``encryption.py``) and the
    column defaults of the fields left out, as a flush would. Its values are sealed on the
    way to the database by their column types."""
    rules.validate_new(model, given)
    if keyring is not None:
        for key, index_key in blind_indexes(model).items():
            given[index_key] = index_value(keyring, model, key, given.get(key))
    columns, defaults = _layout(model.__table__, issubclass(model, Versioned))
    values = {key: given.get(key) for key in columns}
    for key, default, none_is_absent in defaults:
        if key not in given or (none_is_absent and given[key] is None):
            values[key] = default()
    return values


@functools.cache
def _layout(
    table: Table, versioned: bool
) -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[], Any], bool], ...]]:
    """The table's columns, and how to fill those left out, as the ORM would at flush
    (column defaults, a new id among them; version 1; a ``None`` counts as left out
    unless the column's type stores it, as JSON does), worked out once per table."""
    defaults: list[tuple[str, Callable[[], Any], bool]] = []
    for column in table.columns:
        default = column.default
        none_is_absent = not column.type.should_evaluate_none
        if isinstance(default, ColumnDefault) and default.is_scalar:
            defaults.append((column.key, functools.partial(_constant, default.arg), none_is_absent))
        elif isinstance(default, ColumnDefault) and default.is_callable:
            defaults.append((column.key, functools.partial(default.arg, None), none_is_absent))
    if versioned:
        defaults.append(("version", functools.partial(_constant, 1), True))
    return tuple(column.key for column in table.columns), tuple(defaults)


def _constant(value: Any) -> Any:
    return value


def _written(
    session: Session, table: Table, valid: list[Pending], result: BulkResult, all_or_nothing: bool
) -> list[Pending]:
    """One multi-row INSERT; if the database refuses it (a taken unique value, say), the
    batch is retried row by row to keep the good rows and report the refused ones."""
    if not valid:
        return []
    if _insert(session, table, valid) is None:
        kept = valid
    else:
        kept = []
        for entry in valid:
            refused = _insert(session, table, [entry])
            if refused is None:
                kept.append(entry)
            elif all_or_nothing:
                raise _naming_row(entry.index, refused)
            else:
                result.errors.append(_row_error(entry.index, refused))
    result.created.extend(entry.values["id"] for entry in kept)
    return kept


def _insert(session: Session, table: Table, batch: list[Pending]) -> DataLayerError | None:
    """Insert ``batch`` in a savepoint; the database's refusal, if any, rolled back.

    On PostgreSQL a batch of several rows goes by ``COPY`` (``copy_rows.insert_rows``); a
    refused batch names no row, so the caller retries it row by row."""
    try:
        with session.begin_nested():
            insert_rows(session, table, [entry.values for entry in batch])
    except (ValidationError, ConflictError) as error:
        return error
    return None


def _naming_row(index: int, error: DataLayerError) -> DataLayerError:
    """``error`` with its field prefixed by the row's position: ``rows[<n>].<field>``."""
    if isinstance(error, DuplicateError):
        return DuplicateError(f"rows[{index}].{error.field}")
    if isinstance(error, ValidationError):
        return ValidationError(f"rows[{index}].{error.field}", error.reason)
    return error


def _row_error(index: int, error: DataLayerError) -> RowError:
    if isinstance(error, DuplicateError):
        return RowError(index, error.field, "already in use")
    if isinstance(error, ValidationError):
        return RowError(index, error.field, error.reason)
    return RowError(index, "row", str(error))


def _record(session: Session, model: type[Entity], written: list[Pending]) -> None:
    """Give rows now in the transaction their owed cache keys and audit events, so that a
    commit carries both even if the caller stops the import midway and commits."""
    rows = [entry.values for entry in written]
    note_inserted(session, model, rows)
    record_created(session, model, rows)


def record_created(session: Session, model: type[Entity], rows: list[dict[str, Any]]) -> None:
    """What a flush records of the new rows it wrote (given as their column values),
    beyond their cache keys: an audit event each, and that the transaction wrote."""
    mark_written(session, None)
    trail = trail_of(session)
    if trail is None:
        return
    now = utcnow()
    table = model.__tablename__
    for row in rows:
        trail.changes.append(Change("create", table, str(row["id"]), written_fields(row), now))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
