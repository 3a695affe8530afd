"""Bulk creation: many rows validated like single creates, written in multi-row INSERTs.

Each row is checked by the rules ``Repository.create`` applies to one (the repository's
``_prepare``, then the checks of ``rules.validate``, run on its column values: no entity is
built), before any SQL. Valid rows go to the
database ``batch_size`` at a time, one ``COPY`` per batch on PostgreSQL (a multi-row
``INSERT`` elsewhere), each batch in a savepoint. Their audit events join the
unit of work's trail (written in bulk, chained, at commit) and their cache keys join the
keys the session owes (``caching/invalidation.py``), delivered once, after the commit.

The per-row work (the checks, blind indexes and sealed values, the COPY line, the audit
event and its HMAC) is done by ``WORKERS`` forked worker processes (``processes.py``) for
an import whose first batch holds ``PARALLEL_ROWS`` rows or more, ``PIECE`` rows at a time
and a batch ahead of the writes, while this process sends what they made; a smaller import,
or one where no worker can run, does the same work in line, with the same outcome. The
workers inherit the keys by the fork and open no connection.

A refused row is reported with its position in the input and the field at fault, and the
others are kept; with ``all_or_nothing`` the first refusal raises ``ValidationError``
(field ``rows[<n>].<field>``) and nothing of the call is written.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from typing import Any, NamedTuple

from sqlalchemy import ColumnDefault, Table
from sqlalchemy.orm import Session

from ..errors import (
    ConflictError,
    DataLayerError,
    DuplicateError,
    ValidationError,
    schema_field,
)
from ..processes import Workers, in_order
from ..protection.keyring import Keyring
from ..values.batches import check_batch_size
from ..values.clock import utcnow
from .audit.trail import (
    EVENT_COLUMNS,
    AuditTrail,
    Change,
    ReadyEvent,
    trail_of,
    written_fields,
)
from .base import Entity, Versioned
from .caching.invalidation import inserted_values_needed, note_inserted
from .connection.replicas import mark_written
from .driver.copy_rows import copy_lines, insert_into, insert_rows, line_encoder
from .encryption import blind_indexes, index_value, session_keyring
from .models import AuditEvent
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


WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Worker processes that encode a large import (``processes.py``)."""
PARALLEL_ROWS = 1000
"""An import whose first batch holds at least this many rows is encoded by the workers;
a smaller one in line (starting them would cost more than it saves)."""
PIECE = 500
"""Rows a worker encodes at once."""


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
    session.flush()  # pending single writes go first, under their own rules
    encoding = _Encoding.of(session, model, trail)
    batches = _chunks(enumerate(rows), batch_size)
    first = next(batches, [])
    count = WORKERS if len(first) >= PARALLEL_ROWS else 0
    result = BulkResult()
    written: list[Pending] = []
    outer = session.begin_nested() if all_or_nothing else None
    try:
        with Workers(count, initializer=functools.partial(_install, encoding)) as workers:
            encoded = in_order(
                workers,
                _pieces(chain([first], batches)),
                work=_encode_piece,
                in_line=encoding.piece,
                ahead=max(batch_size // PIECE, 1) + 2 * count,
            )
            done = 0
            for batch in _batches(encoded):
                valid = [entry for entries, _ in batch for entry in entries]
                for error in (error for _, errors in batch for error in errors):
                    if all_or_nothing:
                        raise ValidationError(f"rows[{error.index}].{error.field}", error.reason)
                    result.errors.append(error)
                kept = _written(session, encoding, valid, result, all_or_nothing)
                if outer is None:
                    _record(session, model, kept)  # in the transaction from now on
                else:
                    written.extend(kept)  # until the savepoint is released
                done += len(valid) + sum(len(errors) for _, errors in batch)
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


class Pending(NamedTuple):
    """A row ready to be written, as a worker sends it back: a tuple, cheap to pickle."""

    position: int
    id: uuid.UUID
    line: str | None
    """Its line of the table's COPY (PostgreSQL)."""
    values: dict[str, Any] | None
    """Every column of the table, as written: for an INSERT (where there is no line) and
    for the cache keys it affects (``note_inserted``) when a cached read needs them."""
    event: str | dict[str, object] | None
    """Its audit event, made with it when the session has a trail: its COPY line
    (PostgreSQL) or its row."""


_Piece = tuple[bool, list[tuple[int, Any]]]
"""Rows (with their positions) encoded at once, and whether they end their batch."""
_Encoded = tuple[list[Pending], list[RowError]]


@dataclass(frozen=True)
class _Encoding:
    """How one call turns a row into what is written: its checked column values, its COPY
    line and its audit event. Built in the caller; a worker inherits it by the fork
    (``processes.py``), keys included, and is never sent it."""

    model: type[Entity]
    table: Table
    keyring: Keyring | None
    encode: Callable[[dict[str, Any]], str] | None
    """A row's COPY line (PostgreSQL)."""
    trail: AuditTrail | None
    encode_event: Callable[[dict[str, Any]], str] | None
    """An audit event's COPY line (PostgreSQL)."""
    keep_values: bool
    """Whether the values go back with the line (``Pending.values``)."""

    @classmethod
    def of(cls, session: Session, model: type[Entity], trail: AuditTrail | None) -> _Encoding:
        table: Table = model.__table__
        dialect = session.get_bind(clause=insert_into(table)).dialect
        columns, _ = _layout(table, issubclass(model, Versioned))
        postgresql = dialect.name == "postgresql"
        return cls(
            model,
            table,
            session_keyring(session) if blind_indexes(model) else None,
            line_encoder(dialect, table, columns) if postgresql else None,
            trail,
            line_encoder(dialect, AuditEvent.__table__, EVENT_COLUMNS) if postgresql else None,
            not postgresql or inserted_values_needed(model),
        )

    def piece(self, piece: _Piece) -> _Encoded:
        """Each row of ``piece`` encoded, or refused with its position and field."""
        entries, errors = [], []
        now = utcnow()
        for index, fields in piece[1]:
            try:
                values = _built(self.model, self.keyring, fields)
            except ValidationError as error:
                errors.append(RowError(index, error.field, error.reason))
                continue
            entries.append(
                Pending(
                    index,
                    values["id"],
                    None if self.encode is None else self.encode(values),
                    values if self.keep_values else None,
                    self._event(values, now),
                )
            )
        return entries, errors

    def _event(self, values: dict[str, Any], now: datetime) -> str | dict[str, object] | None:
        if self.trail is None:
            return None
        row = self.trail.event_row(_created(self.table.name, values, now))
        return row if self.encode_event is None else self.encode_event(row)


_installed: _Encoding | None = None
"""In a worker process: the encoding of the call that started it."""


def _install(encoding: _Encoding) -> None:
    global _installed  # a worker process serves one call
    _installed = encoding


def _encode_piece(piece: _Piece) -> _Encoded:
    """In a worker: ``piece`` encoded by the call's encoding."""
    assert _installed is not None, "started without its encoding"
    return _installed.piece(piece)


def _pieces(batches: Iterable[list[tuple[int, Any]]]) -> Iterator[_Piece]:
    for batch in batches:
        for start in range(0, len(batch), PIECE):
            yield start + PIECE >= len(batch), batch[start : start + PIECE]


def _batches(encoded: Iterable[tuple[_Piece, _Encoded]]) -> Iterator[list[_Encoded]]:
    """The pieces' results regrouped by batch."""
    batch: list[_Encoded] = []
    for (last, _), outcome in encoded:
        batch.append(outcome)
        if last:
            yield batch
            batch = []


def _built(
    model: type[Entity],
    keyring: Keyring | None,
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The row as :func:`new_row` makes it, once its fields are known to be column fields:
    no entity is built (nor joins the session), child rows have no bulk path."""
    if not isinstance(fields, Mapping):
        raise ValidationError("row", "must be a mapping of field names to values")
    writable = rules.columns_of(model)
    for key in fields:
        if key not in writable:
            field = schema_field(key, rules.field_names(model), "fields")
            raise ValidationError(field, "is not a field this record can be bulk created with")
    return new_row(model, keyring, dict(fields))


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
    session: Session,
    encoding: _Encoding,
    valid: list[Pending],
    result: BulkResult,
    all_or_nothing: bool,
) -> list[Pending]:
    """One COPY (a multi-row INSERT elsewhere); if the database refuses it (a taken
    unique value, say), the batch is retried row by row to keep the good rows and report
    the refused ones."""
    if not valid:
        return []
    if _insert(session, encoding, valid) is None:
        kept = valid
    else:
        kept = []
        for entry in valid:
            refused = _insert(session, encoding, [entry])
            if refused is None:
                kept.append(entry)
            elif all_or_nothing:
                raise _naming_row(entry.position, refused)
            else:
                result.errors.append(_row_error(entry.position, refused))
    result.created.extend(entry.id for entry in kept)
    return kept


def _insert(session: Session, encoding: _Encoding, batch: list[Pending]) -> DataLayerError | None:
    """Insert ``batch`` in a savepoint; the database's refusal, if any, rolled back.

    On PostgreSQL it goes by ``COPY`` of the lines made with the rows; a refused batch
    names no row, so the caller retries it row by row."""
    table = encoding.table
    try:
        with session.begin_nested():
            if encoding.encode is not None:
                columns, _ = _layout(table, issubclass(encoding.model, Versioned))
                copy_lines(session, table, columns, [entry.line or "" for entry in batch])
            else:
                insert_rows(session, table, [entry.values or {} for entry in batch])
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
    mark_written(session, None)
    note_inserted(session, model, [entry.values for entry in written if entry.values is not None])
    trail = trail_of(session)
    if trail is not None:
        trail.changes.extend(
            ReadyEvent(None, entry.event)
            if isinstance(entry.event, str)
            else ReadyEvent(entry.event, None)
            for entry in written
            if entry.event is not None
        )


def record_created(session: Session, model: type[Entity], rows: list[dict[str, Any]]) -> None:
    """What a flush records of the new rows it wrote (given as their column values),
    beyond their cache keys: an audit event each, and that the transaction wrote."""
    mark_written(session, None)
    trail = trail_of(session)
    if trail is None:
        return
    now = utcnow()
    trail.changes.extend(_created(model.__tablename__, row, now) for row in rows)


def _created(table: str, values: dict[str, Any], now: datetime) -> Change:
    """The audit trail's change for a new row of ``table`` written with ``values``."""
    return Change("create", table, str(values["id"]), written_fields(values), now)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
