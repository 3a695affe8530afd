"""The caching policy: every cached read, where it lives, and which writes drop it.

``POLICY`` is the one place caching is declared. Each entry is one read: its key's kind,
its region (a ``CACHE_TTL_*`` of the store), its model and the attributes of a row of that
model that name its key. A flushed insert, update or delete of a row of the model drops
the key its attributes name, before and after the write (an appointment moved to another
doctor or day drops both days: ``invalidation.py``); an insert, no key of its own id, which
no read can have cached (``CachedEntity``). Repositories read through the
entries: a model with a :class:`CachedEntity` has ``get`` and ``get_many`` cached, a list
or a count is read through its entry. Adding a cached read is one entry (and its test).

A hit runs no SQL and yields session-attached entities (``rows.py``), or for a list
read as views (``CachedList.views``), frozen views decoded from the same entries
(``views.py``). The shared cache is bypassed, neither read nor written, while the store
cannot hear other processes' invalidations (``cache/outbox.py``), by a session that has
written since its last commit or holds unflushed changes (its view includes uncommitted
data), by a session that may read from a lagging replica (its row may predate an
invalidation already delivered, so must not be stored under the new generation), and for
rows the session already holds (they are returned as the session knows them).

A timeline caches rows of its own table only and finds each ``.doctor`` through the user
cache (a doctor's edit would otherwise drop every timeline the doctor appears in). A
doctor's day is read far more often than its patients change, so its entry holds its
appointments *and* their patients (``CachedList.embeds``): a cached day is one GET. A write
of a patient therefore drops, besides the patient's own key, the day of each appointment
the patient has (any status: a cancelled one may be restored), found by one indexed query
in the writing transaction (``keys_embedding``), so the days are owed, recorded in the
outbox and delivered with the rest of the commit's keys.

Every other model is not cached, on purpose: ``NOT_CACHED`` names each with its reason, so
a new model is a decision one way or the other (a test checks every model has one). The
problem list, the allergy rows and the vital signs (``models/chart.py``) are each read once
per chart opening in one indexed query, so a cache would save little, and a stale problem
or allergy list is a safety defect rather than a slow page. The allergies that matter at a
glance are cached all the same, with the patient: ``Patient.allergies``, the names of the
active ones, is a column of the patient row, kept in step with the rows in the same flush
(``allergy_list.py``), so any allergy write is a patient write and drops ``PATIENTS`` (and
the schedules and views that hold the patient) after its commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from itertools import chain, product
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import get_history, set_committed_value

from ...cache.reads import read_many, read_through
from ...cache.store import CacheStore
from ...session_context import context_of
from ..base import Entity
from ..connection.replicas import reads_from_replica
from ..models import (
    Alert,
    Allergy,
    Appointment,
    Condition,
    Encounter,
    Order,
    OrderItem,
    Patient,
    Prescription,
    PrescriptionItem,
    Task,
    User,
    VitalSign,
)
from .rows import Row, codec_for
from .views import view_from_columns, view_from_row, view_of

E = TypeVar("E", bound=Entity)
T = TypeVar("T")
Parts = tuple[uuid.UUID | date, ...]
"""A key's parts: an id (its hash tag), then qualifiers such as a day."""


@dataclass(frozen=True)
class LocalDay:
    """A key part: the clinic's local date of a moment attribute."""

    attribute: str


KeyPart = str | LocalDay


@dataclass(frozen=True)
class CachedRead:
    """One cached read: its key is ``<kind>:<model's schema tag>:{<parts>}``, the parts
    named by ``key``, the first an id (the Redis Cluster hash tag)."""

    kind: str
    region: str
    model: type[Entity]
    key: tuple[KeyPart, ...]

    def name(self, store: CacheStore, *parts: uuid.UUID | date) -> str:
        return store.keys.read(self.kind, self.model.__table__, *parts)

    def keys_written(self, store: CacheStore, row: object) -> Iterator[str]:
        """The keys whose value may change when ``row`` (of ``model``) is written."""
        zone = ZoneInfo(store.settings.clinic_timezone)
        for parts in product(*(_part_values(row, part, zone) for part in self.key)):
            yield self.name(store, *parts)

    @property
    def names_its_row(self) -> bool:
        """Its key is the row's own id: a row just inserted is in no such key (only rows
        found are cached, ``CachedEntity``)."""
        return self.key == ("id",)


@dataclass(frozen=True)
class CachedEntity(CachedRead):
    """Rows of ``model`` by id, in the ``entities`` region. Only a row found is cached:
    an id with no row (or a soft-deleted one) is loaded again by every read, so the id of
    a row being inserted, read before its commit, holds nothing the insert must drop."""

    @classmethod
    def of(cls, model: type[Entity]) -> CachedEntity:
        return cls(model.__tablename__, "entities", model, ("id",))

    def get(
        self, session: Session, id: uuid.UUID, load: Callable[[uuid.UUID], E | None]
    ) -> E | None:
        """``load(id)`` through the cache."""
        store = shared_store(session)
        if store is None or _in_session(session, self.model, id):
            return load(id)
        values = read_through(
            store, self.region, self.name(store, id), lambda: _encode_or_none(load(id))
        )
        return None if values is None else codec_for(self.model).restore(session, values)

    def get_many(
        self,
        session: Session,
        ids: Sequence[uuid.UUID],
        load: Callable[[list[uuid.UUID]], Sequence[E]],
    ) -> list[E]:
        """The rows of ``ids`` found, in their order: one multi-get, then one load of the
        misses (stored under their captured generations)."""
        codec = codec_for(self.model)
        return self._many(session, ids, load, partial(codec.restore, session), _same)

    def views_many(
        self,
        session: Session,
        ids: Sequence[uuid.UUID],
        load: Callable[[list[uuid.UUID]], Sequence[Entity]],
    ) -> list[Any]:
        """As ``get_many``, the rows' frozen views (``views.py``): no entity is built for a
        row the cache holds."""
        return self._many(session, ids, load, partial(view_from_row, self.model), view_of)

    def _many(
        self,
        session: Session,
        ids: Sequence[uuid.UUID],
        load: Callable[[list[uuid.UUID]], Sequence[E]],
        from_cache: Callable[[Row], T],
        from_load: Callable[[E], T],
    ) -> list[T]:
        store = shared_store(session)
        if store is None:
            return [from_load(row) for row in load(list(ids))]
        codec = codec_for(self.model)
        wanted = list(dict.fromkeys(ids))
        outside = [id for id in wanted if not _in_session(session, self.model, id)]
        keys = {id: self.name(store, id) for id in outside}
        cached = read_many(
            store,
            self.region,
            keys,
            lambda missing: {row.id: codec.encode(row) for row in load(missing)},
        )
        in_session = [id for id in wanted if id not in keys]
        found = {row.id: from_load(row) for row in load(in_session)} if in_session else {}
        for id, values in cached.items():
            found[id] = from_cache(values)
        return [found[id] for id in ids if id in found]


@dataclass(frozen=True)
class CachedList(CachedRead):
    """Rows of ``model`` a statement selects, each with ``relation`` set from the
    ``related`` cache; only the first ``size`` when given (pages beyond go to SQL)."""

    relation: str
    related: CachedEntity
    size: int | None = None
    embeds: bool = False
    """The entry holds the related rows too (one GET for the list and its relations); a
    write of a related row then drops the entries of the rows that name it
    (``keys_embedding``)."""

    def rows(
        self,
        session: Session,
        parts: Parts,
        statement: Callable[[], Select[Any]],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Any]:
        """``statement()``'s rows (``limit`` of them from ``offset``), ``relation``
        loaded. The statement is built only when SQL runs: a hit never builds it."""
        store = shared_store(session)
        end = None if limit is None else offset + limit
        beyond = self.size is not None and (end is None or end > self.size)
        if store is None or beyond:
            return self._loaded(session, statement, limit, offset)
        codec = codec_for(self.model)
        cached, embedded = self._cached(session, store, parts, statement)
        rows = [codec.restore(session, values) for values in cached[offset:end]]
        ids = [getattr(row, self._column) for row in rows]
        if embedded is None:
            found = self.related.get_many(session, ids, self._load_related(session))
        else:
            restore = codec_for(self.related.model).restore
            found = [restore(session, values) for values in embedded]
        related = {row.id: row for row in found}
        for row in rows:  # as an eager load sets it
            set_committed_value(row, self.relation, related.get(getattr(row, self._column)))
        return rows

    def views(
        self,
        session: Session,
        parts: Parts,
        statement: Callable[[], Select[Any]],
        *,
        cached: bool = True,
    ) -> tuple[Any, ...]:
        """``statement()``'s rows as frozen views (``views.py``), ``relation`` a view too:
        read through the same entries as ``rows``, no entity built for a cached row; from
        SQL alone unless ``cached`` (a statement the entry does not hold), and for a list
        cached in part (``size``)."""
        store = shared_store(session) if cached else None
        if store is None or self.size is not None:
            return tuple(
                view_of(row, **{self.relation: _view_or_none(getattr(row, self.relation))})
                for row in self._loaded(session, statement, None, 0)
            )
        codec = codec_for(self.model)
        entry, embedded = self._cached(session, store, parts, statement)
        columns = [codec.decode(values) for values in entry]
        ids = [each[self._column] for each in columns]
        if embedded is None:
            views = self.related.views_many(session, ids, self._load_related(session))
        else:
            views = [view_from_row(self.related.model, values) for values in embedded]
        related = {view.id: view for view in views}
        return tuple(
            view_from_columns(self.model, each, **{self.relation: related.get(each[self._column])})
            for each in columns
        )

    @property
    def _column(self) -> str:
        return f"{self.relation}_id"

    def _loaded(
        self,
        session: Session,
        statement: Callable[[], Select[Any]],
        limit: int | None,
        offset: int,
    ) -> list[Any]:
        """The rows from SQL, ``relation`` loaded in the same query."""
        uncached = statement().options(joinedload(getattr(self.model, self.relation)))
        if limit is not None:
            uncached = uncached.limit(limit).offset(offset)
        return list(session.scalars(uncached))

    def _cached(
        self,
        session: Session,
        store: CacheStore,
        parts: Parts,
        statement: Callable[[], Select[Any]],
    ) -> tuple[list[Row], list[Row] | None]:
        """The encoded rows of the list's entry, read through, and the encoded related rows
        it embeds (``None``: it does not)."""
        codec = codec_for(self.model)

        def load() -> list[Any]:
            # The session is clean (shared_store), so refreshing rows it holds loses nothing
            # and keeps an older copy in its identity map from being cached under a newer
            # generation.
            limited = statement() if self.size is None else statement().limit(self.size)
            if self.embeds:
                limited = limited.options(joinedload(getattr(self.model, self.relation)))
            fresh = limited.execution_options(populate_existing=True)
            rows = list(session.scalars(fresh))
            encoded = [codec.encode(row) for row in rows]
            if not self.embeds:
                return encoded
            related = {each.id: each for row in rows if (each := getattr(row, self.relation))}
            encode = codec_for(self.related.model).encode
            return [encoded, [encode(each) for each in related.values()]]

        entry = read_through(store, self.region, self.name(store, *parts), load)
        return (entry[0], entry[1]) if self.embeds else (entry, None)

    def keys_embedding(self, store: CacheStore, connection: Connection, ids: set[Any]) -> set[str]:
        """The keys of the entries that may hold the related rows ``ids``: those of every
        row of ``model`` naming one of them, whatever its status (one indexed query)."""
        foreign = getattr(self.model, self._column)
        found = select(*(getattr(self.model, _attribute(part)) for part in self.key))
        zone = ZoneInfo(store.settings.clinic_timezone)
        keys = set()
        for parts in connection.execute(found.where(foreign.in_(ids))):
            values = (
                _local_day(value, zone) if isinstance(part, LocalDay) else value
                for part, value in zip(self.key, parts, strict=True)
            )
            keys.add(self.name(store, *values))
        return keys

    def _load_related(self, session: Session) -> Callable[[list[uuid.UUID]], Sequence[Any]]:
        model = self.related.model
        return lambda wanted: session.scalars(select(model).where(model.id.in_(wanted))).all()


@dataclass(frozen=True)
class CachedCount(CachedRead):
    """A number computed from rows of ``model``."""

    def count(self, session: Session, parts: Parts, load: Callable[[], int]) -> int:
        store = shared_store(session)
        if store is None:
            return load()
        return read_through(store, self.region, self.name(store, *parts), load)


PATIENTS = CachedEntity.of(Patient)
USERS = CachedEntity.of(User)
SCHEDULES = CachedList(
    "schedule",
    "schedules",
    Appointment,
    ("doctor_id", LocalDay("start_time")),
    relation="patient",
    related=PATIENTS,
    embeds=True,
)
"""A doctor's day: its active appointments, each with ``.patient``, in one entry."""
TIMELINES = CachedList(
    "encounters", "timelines", Encounter, ("patient_id",), relation="doctor", related=USERS, size=50
)
"""A patient's newest encounters, each with ``.doctor``."""
UNREAD_ALERTS = CachedCount("unread", "counts", Alert, ("user_id",))
"""How many alerts a user has not read."""

POLICY: tuple[CachedRead, ...] = (PATIENTS, USERS, SCHEDULES, TIMELINES, UNREAD_ALERTS)

NOT_CACHED: tuple[tuple[type[Entity], str], ...] = (
    (Condition, "read once per chart opening, in one indexed query; stale would be unsafe"),
    (Allergy, "as conditions; the active allergies' names are cached with the patient"),
    (VitalSign, "read once per chart opening, in one indexed query"),
    (Prescription, "read when one is worked on, not on every page; a stale dose is unsafe"),
    (PrescriptionItem, "read and written with its prescription"),
    (Order, "read when one is worked on, not on every page; a stale status misleads"),
    (OrderItem, "read and written with its order"),
    (Task, "its status changes about as often as it is read: a cache would be dropped"),
)
"""The models no read caches, each with why: with ``POLICY``, a decision for every model."""

_ENTITIES = {read.model: read for read in POLICY if isinstance(read, CachedEntity)}
_WRITTEN_BY = {read.model: [each for each in POLICY if each.model is read.model] for read in POLICY}
_EMBEDDING = [read for read in POLICY if isinstance(read, CachedList) and read.embeds]
_EMBEDDED_IN = {
    read.related.model: [each for each in _EMBEDDING if each.related.model is read.related.model]
    for read in _EMBEDDING
}


def entity_read(model: type[Entity]) -> CachedEntity | None:
    """The cache of ``model``'s rows by id, if they are cached."""
    return _ENTITIES.get(model)


def reads_written_by(model: type) -> list[CachedRead]:
    """The cached reads a write of a row of ``model`` may change."""
    return _WRITTEN_BY.get(model, [])


def lists_embedding(model: type) -> list[CachedList]:
    """The cached lists whose entries embed rows of ``model``."""
    return _EMBEDDED_IN.get(model, [])


def regions_by_kind() -> dict[str, str]:
    """The region of each kind of key, for the store's counts."""
    return {read.kind: read.region for read in POLICY}


def shared_store(session: Session) -> CacheStore | None:
    """The store, unless this session must not use the shared cache right now."""
    context = context_of(session)
    store = context.cache_store
    if store is None or context.owed is not None or reads_from_replica(session):
        return None
    if not store.trusted():  # it could miss another process's invalidation (outbox.py)
        return None
    if has_unflushed_changes(session):
        return None
    return store


def has_unflushed_changes(session: Session) -> bool:
    """A row added, deleted or modified and not yet flushed: ``session.new``,
    ``session.deleted`` or ``session.dirty``, the last asked of the identity map
    (``check_modified``) rather than built into a set only to be tested for emptiness."""
    return bool(session.new or session.deleted or session.identity_map.check_modified())


def _in_session(session: Session, model: type[Entity], id: uuid.UUID) -> bool:
    identity = codec_for(model).mapper.identity_key_from_primary_key((id,))
    return identity in session.identity_map


def _encode_or_none(row: Entity | None) -> list[Any] | None:
    return None if row is None else codec_for(type(row)).encode(row)


def _view_or_none(row: Entity | None) -> Any:
    return None if row is None else view_of(row)


def _same(row: T) -> T:
    return row


def _attribute(part: KeyPart) -> str:
    return part.attribute if isinstance(part, LocalDay) else part


def _part_values(row: object, part: KeyPart, zone: ZoneInfo) -> set[Any]:
    """The key part's values before and after the flush (both, when it changed)."""
    attribute = _attribute(part)
    history = get_history(row, attribute)
    values = {
        value
        for value in chain(history.added, history.unchanged, history.deleted)
        if value is not None
    }
    if isinstance(part, LocalDay):
        return {_local_day(value, zone) for value in values}
    return values


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).date()
