"""Declarative base and the columns every table shares."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Enum, Index, MetaData, String, Table, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from ..values.clock import utcnow
from .types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid(), str: String()}

    if TYPE_CHECKING:  # every class here maps one declared table, not any FROM clause
        __table__: ClassVar[Table]


SECRET = "credential"  # noqa: S105 - an info flag's name, not a password
"""Set in a column's ``info`` (``{SECRET: True}``): a credential no other store may hold
(the cache leaves it out of the rows it keeps)."""


def choice(name: str, values: tuple[str, ...]) -> Enum:
    """A constrained string: ``VARCHAR`` plus a ``CHECK`` listing ``values`` (no native enum,
    so adding a value is a one-line migration)."""
    return Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
        validate_strings=True,
    )


def partial_index(name: str, *columns: str, unique: bool = False) -> Index:
    """An index of the rows whose first column is set: optional references and optional
    identifiers cost nothing while they are empty (and stay unique only when present)."""
    condition = text(f"{columns[0]} IS NOT NULL")
    return Index(name, *columns, unique=unique, postgresql_where=condition, sqlite_where=condition)


def trigram_index(name: str, column: str) -> Index:
    """A GIN trigram index (``pg_trgm``) on PostgreSQL, serving prefix, infix and
    similarity matches of ``column``; a plain index on SQLite."""
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})


class Entity(Base):
    """A table with an application-generated UUID key and layer-maintained timestamps."""

    __abstract__ = True

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=1)

    def __repr__(self) -> str:
        # Identity only: a repr ends up in logs and tracebacks, attribute values are PHI.
        return f"<{type(self).__name__} id={self.id}>"


class Versioned:
    """Optimistic locking: every UPDATE carries ``WHERE version = <loaded version>`` and
    bumps it; an UPDATE that matches no row is a lost race (``ConflictError``)."""

    version: Mapped[int] = mapped_column(nullable=False, sort_order=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, object]:
        # a mixin has no table of its own: it is the mapped class's, unknown to the checker
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class SoftDeleted:
    """Rows are never dropped by the application: ``delete`` stamps ``deleted_at`` and the
    row disappears from every top-level read (see ``unit_of_work``)."""

    deleted_at: Mapped[datetime | None] = mapped_column(default=None, sort_order=1)
