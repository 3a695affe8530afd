"""The generic repository: the contract's CRUD methods for one mapped table.

Validation happens in the session's ``before_flush`` (see ``session.py``), so every method
that writes flushes at once: a bad value, a taken unique value or a lost race surfaces from
the call that caused it, and nothing of it reaches the database. Filters and ordering are
accepted only on the fields a repository names; anything else is a ``ValidationError``,
never SQL.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, Result, Row, ScalarResult, Select, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import QueryableAttribute, Session

from ... import telemetry
from ...errors import ConflictError, NotFoundError, ValidationError, schema_field
from ...session_context import context_of
from ...values.batches import check_batch_size
from ...values.clock import utcnow
from ...values.fields import as_uuid
from ...values.pages import check_page
from .. import bulk
from ..audit.trail import trail_of
from ..base import SECRET, Entity, SoftDeleted, Versioned
from ..caching.policy import entity_read
from ..driver.translate import translated
from ..encryption import blind_indexes, index_value, session_keyring
from ..rules import validation as rules
from . import keyset
from .by_id import read_by_id
from .inserted import insert_new

M = TypeVar("M", bound=Entity)

MAX_IDS = 1000


class Repository(Generic[M]):
    """CRUD over ``model`` inside one unit of work's session."""

    model: type[M]
    filterable: ClassVar[frozenset[str]] = frozenset()
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "updated_at"})
    default_order: ClassVar[str] = "-created_at"
    chart_part: ClassVar[str | None] = None
    """The part of a patient's chart this table holds, as its audited reads name it
    (``record_chart_read``); the table's name when ``None``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every public method is a span (``telemetry.trace_methods``)."""
        super().__init_subclass__(**kwargs)
        telemetry.trace_methods(cls, "repository", _table)

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reads -------------------------------------------------------------------------

    def get(self, id: Any) -> M | None:
        """The entity with this id, or ``None`` (also for soft-deleted rows)."""
        return self._find(id)

    def _find(self, id: Any) -> M | None:
        key = as_uuid(id)
        cached = entity_read(self.model)  # the policy (``caching/policy.py``)
        if cached is not None:
            return cached.get(self.session, key, self._load)
        return self._load(key)

    def _load(self, key: uuid.UUID) -> M | None:
        row = read_by_id(self.session, self.model, key)
        return None if row is None or self._is_deleted(row) else row

    def get_many(self, ids: Iterable[Any]) -> list[M]:
        """The entities found, in the order of ``ids``, in one query."""
        wanted = [as_uuid(value, "ids") for value in ids]
        if len(wanted) > MAX_IDS:
            raise ValidationError("ids", f"must name at most {MAX_IDS} records")
        if not wanted:
            return []
        cached = entity_read(self.model)
        if cached is not None:
            return cached.get_many(self.session, wanted, self._load_many)
        return self._load_many(wanted)

    def _load_many(self, wanted: list[uuid.UUID]) -> list[M]:
        statement = select(self.model).where(self.model.id.in_(set(wanted)))
        found = {row.id: row for row in self.session.scalars(statement)}
        return [found[key] for key in wanted if key in found]

    def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[M]:
        """A page of entities matching ``filters`` (equality, ``None`` or a list of values)."""
        check_page(limit, offset)
        statement = self._filtered(select(self.model), filters)
        statement = statement.order_by(*self._ordering(order_by)).limit(limit).offset(offset)
        return list(self.session.scalars(statement))

    def list_page(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> keyset.Page[M]:
        """A keyset page: like ``list``, resumed after the ``next_cursor`` of the page
        before (``keyset.py``); one query at any depth. Sort fields must be non-null."""
        check_page(limit, 0)
        terms = self._terms(order_by)
        for column, _ in terms:
            if column.nullable:
                raise ValidationError("order_by", f"{column.key} may be empty; page by offset")
        return self._page(self._filtered(select(self.model), filters), terms, limit, after)

    def _page(
        self,
        statement: Select[Any],
        terms: builtins.list[keyset.Term],
        limit: int,
        after: str | None,
    ) -> keyset.Page[Any]:
        """The keyset page of ``statement`` ordered by ``terms``: one query."""
        if after is not None:
            statement = statement.where(keyset.after(terms, after))
        statement = statement.order_by(*keyset.order(terms)).limit(limit + 1)
        return keyset.page(terms, list(self.session.scalars(statement)), limit)

    def iterate(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[M]:
        """Every matching entity, streamed from a server-side cursor ``batch_size`` rows
        at a time: memory stays flat however many match, as long as the caller keeps no
        references (the unit of work does not hold streamed rows, unlike other reads: keep
        a reference to an entity edited in place, ``row.allergies.append(...)``, until the
        commit). Filters, ordering and the soft-delete rule are those of ``list``;
        failures are the contract's errors."""
        check_batch_size(batch_size)
        statement = self._filtered(select(self.model), filters).order_by(*self._ordering(order_by))
        context = context_of(self.session)
        for row in _streamed(
            self.session.scalars(statement.execution_options(yield_per=batch_size)), batch_size
        ):
            context.let_go((row,))
            yield row

    def export(
        self,
        fields: Sequence[str],
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Row[Any]]:
        """The ``fields`` of every matching row, as tuples (also readable by name), streamed
        like ``iterate``: decoded as an entity's would be (decrypted, JSON parsed, UTC), but
        without building entities, which an export does not need and which cost most of
        its time. Credentials are never exported (``ValidationError("fields")``)."""
        check_batch_size(batch_size)
        if isinstance(fields, str) or not isinstance(fields, Sequence):
            raise ValidationError("fields", "must be a list of field names")
        columns = [self._exported(name) for name in fields]
        if not columns:
            raise ValidationError("fields", "must name at least one field")
        statement = self._filtered(select(*columns), filters).order_by(*self._ordering(order_by))
        yield from _streamed(
            self.session.execute(statement.execution_options(yield_per=batch_size)), batch_size
        )

    def _exported(self, name: str) -> ColumnElement[Any]:
        attribute = sa_inspect(self.model).column_attrs.get(name) if isinstance(name, str) else None
        if attribute is None or attribute.columns[0].info.get(SECRET):
            raise ValidationError("fields", "names a field this record cannot export")
        column: ColumnElement[Any] = getattr(self.model, name)
        return column

    def count(self, *, filters: Mapping[str, Any] | None = None) -> int:
        statement = self._filtered(select(func.count()).select_from(self.model), filters)
        return int(self.session.scalar(statement) or 0)

    def record_chart_read(self, patient_id: Any) -> None:
        """Record a read of this part of a patient's chart made other than through the
        repository's own chart reads (an export streamed with ``iterate``), audited as
        those are when reads are audited."""
        part = self.chart_part or self.model.__tablename__
        self._audit_chart_read(as_uuid(patient_id, "patient_id"), part)

    # -- writes ------------------------------------------------------------------------

    def create(self, **fields: Any) -> M:
        """Validate and insert; returns the entity with its id assigned."""
        self._check_writable(fields)
        prepared = self._prepare(fields)
        if self._inserts_alone(prepared):
            return insert_new(self.session, self.model, prepared)  # ``inserted.py``
        row = self.model(**prepared)
        self.session.add(row)
        try:
            self.session.flush()
        except ValidationError:
            if self.session.is_active:  # refused before SQL: forget the row, keep the session
                self.session.expunge(row)
            raise
        return row

    def create_many(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        all_or_nothing: bool = False,
        progress: Callable[[bulk.Progress], None] | None = None,
    ) -> bulk.BulkResult:
        """Validate and insert many rows in multi-row INSERTs (``relational/bulk.py``):
        refused rows are reported by position and field and the others kept, or, with
        ``all_or_nothing``, the first refusal raises ``ValidationError`` and nothing is
        written. ``progress`` is called after each batch."""
        return bulk.create_many(
            self.session,
            self.model,
            rows,
            batch_size=batch_size,
            all_or_nothing=all_or_nothing,
            progress=progress,
        )

    def update(self, id: Any, *, expected_version: int | None = None, **fields: Any) -> M:
        """Validate and apply ``fields``.

        ``expected_version`` is the version the caller read; if the row has moved on since,
        ``ConflictError`` is raised and nothing is changed. Without it the update still
        loses to a concurrent commit (the UPDATE is guarded by the loaded version).
        """
        self._check_writable(fields)
        row = self._require(id)
        if expected_version is not None and cast(Versioned, row).version != expected_version:
            raise ConflictError("the record was changed by someone else; reload it and retry")
        for key, value in self._prepare(fields).items():
            setattr(row, key, value)
        try:
            self.session.flush()
        except ValidationError:
            if self.session.is_active:  # refused before SQL: drop the refused values
                self.session.expire(row, list(fields))
            raise
        return row

    def delete(self, id: Any) -> None:
        """Remove the entity: soft for patients and users (hidden, never dropped)."""
        row = self._require(id)
        if isinstance(row, SoftDeleted):
            row.deleted_at = utcnow()
        else:
            self.session.delete(row)
        self.session.flush()

    # -- helpers for subclasses --------------------------------------------------------

    def _require(self, id: Any) -> M:
        row = self._find(id)
        if row is None:
            raise NotFoundError(f"no {self.model.__tablename__} record with that id")
        return row

    def _audit_chart_read(self, patient_id: uuid.UUID, part: str) -> None:
        """Record a read of ``part`` of a patient's chart (when reads are audited)."""
        trail = trail_of(self.session)
        if trail is not None:
            trail.record_read("patients", patient_id, part)

    def _prepare(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Turn caller input into attribute values (subclasses build child rows here)."""
        return fields

    def _inserts_alone(self, fields: Mapping[str, Any]) -> bool:
        """Whether a new row with ``fields`` is written by an INSERT of its own
        (``inserted.py``) rather than a flush: it sets column values only (no child rows),
        and no rule reads other rows for it (a subclass says when one does)."""
        return fields.keys() <= rules.columns_of(self.model).keys()

    def _check_writable(self, fields: Mapping[str, Any]) -> None:
        writable = rules.columns_of(self.model).keys() | self._extra_fields()
        for key in fields:
            if key not in writable:
                field = schema_field(key, rules.field_names(self.model), "fields")
                raise ValidationError(field, "is not a writable field of this record")

    def _extra_fields(self) -> frozenset[str]:
        return frozenset()

    def _is_deleted(self, row: object) -> bool:
        return isinstance(row, SoftDeleted) and row.deleted_at is not None

    def _filtered(self, statement: Select[Any], filters: Mapping[str, Any] | None) -> Select[Any]:
        if filters is None:
            return statement
        if not isinstance(filters, Mapping):
            raise ValidationError("filters", "must be a mapping of field names to values")
        return statement.where(*(self._condition(key, value) for key, value in filters.items()))

    def _condition(self, key: str, value: Any) -> ColumnElement[bool]:
        if key not in self.filterable:
            raise ValidationError(
                schema_field(key, rules.field_names(self.model), "filters"), "cannot be filtered on"
            )
        if value is None:
            return self._column(key).is_(None)
        if isinstance(value, list | tuple | set | frozenset):
            if not value or len(value) > MAX_IDS:
                raise ValidationError(key, f"must list 1 to {MAX_IDS} values")
            return self._column(key).in_([self._comparable(key, item) for item in value])
        return self._equals(key, value)

    def _equals(self, key: str, value: Any) -> ColumnElement[bool]:
        """``key = value`` for a lookup: the value is required, checked and normalized."""
        if value is None:
            raise ValidationError(key, "is required")
        return self._column(key) == self._comparable(key, value)

    def _column(self, key: str) -> QueryableAttribute[Any]:
        """The column compared for ``key``: an encrypted field's blind index."""
        column: QueryableAttribute[Any] = getattr(
            self.model, blind_indexes(self.model).get(key, key)
        )
        return column

    def _comparable(self, key: str, value: Any) -> object:
        cleaned = rules.clean(self.model, key, value)
        if key not in blind_indexes(self.model):
            return cleaned
        return index_value(session_keyring(self.session), self.model, key, cleaned)

    def _ordering(self, order_by: str | Sequence[str] | None) -> builtins.list[Any]:
        return keyset.order(self._terms(order_by))

    def _terms(self, order_by: str | Sequence[str] | None) -> builtins.list[keyset.Term]:
        """The sort columns named by ``order_by``, then ``id``: a total order, so pages
        never overlap."""
        terms = [order_by or self.default_order] if isinstance(order_by, str | None) else order_by
        if not isinstance(terms, Sequence) or not terms:
            raise ValidationError("order_by", "must be a field name or a list of them")
        result: builtins.list[keyset.Term] = []
        for term in terms:
            if not isinstance(term, str):
                raise ValidationError("order_by", "must be a field name or a list of them")
            name = term.removeprefix("-")
            if name not in self.sortable:
                raise ValidationError(
                    "order_by", "can only sort on " + ", ".join(sorted(self.sortable))
                )
            result.append((getattr(self.model, name), term.startswith("-")))
        result.append((self.model.id, False))
        return result


def _table(repository: Repository[Any]) -> dict[str, str]:
    return {"table": repository.model.__tablename__}


telemetry.trace_methods(Repository, "repository", _table)


def _streamed(result: Result[Any] | ScalarResult[Any], batch_size: int) -> Iterator[Any]:
    """The rows of a streamed ``result``, fetched ``batch_size`` at a time; failures are
    the contract's errors."""
    fetch = translated(result.fetchmany)
    while batch := fetch(batch_size):
        yield from batch
