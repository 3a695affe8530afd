"""Read-through caching of the clinic's hot reads, for the repositories.

A hit runs no SQL and yields session-attached entities (see ``entities.py``). The shared
cache is bypassed — neither read nor written — while the store cannot hear other processes'
invalidations (``outbox.py``), by a session that has written since its last
commit or holds unflushed changes (its view includes uncommitted data), by a session that
may read from a lagging replica (its row may predate an invalidation already delivered, so
must not be stored under the new generation), and for rows the
session already holds (they are returned as the session knows them). A miss captures the
key's generation before loading (``backends.py``: no stale set) and goes through dogpile's
lock, so concurrent misses of one key cause one load.

Composite reads cache ids and rows of their own table only: a doctor's day stores its
appointments and finds each ``.patient`` through the patient cache, a timeline finds each
``.doctor`` through the user cache; a patient edit therefore invalidates one key, not every
schedule the patient appears in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar

from dogpile.cache.api import NO_VALUE
from dogpile.cache.region import CacheRegion
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from .. import telemetry
from ..relational.base import Entity
from ..relational.models import Appointment, Encounter, Patient, User
from ..relational.replicas import reads_from_replica
from .backends import Generations, expecting
from .entities import codec_for
from .store import CacheStore

E = TypeVar("E", bound=Entity)
T = TypeVar("T")

STORE_KEY = "cache_store"
WRITTEN_KEY = "cache_invalidations"
"""In ``session.info``: the store, and the keys owed since the session last committed."""

TIMELINE_SIZE = 50
"""A patient's cached timeline holds the newest encounters; pages beyond go to SQL."""


def shared_store(session: Session) -> CacheStore | None:
    """The store, unless this session must not use the shared cache right now."""
    store: CacheStore | None = session.info.get(STORE_KEY)
    if store is None or WRITTEN_KEY in session.info or reads_from_replica(session):
        return None
    if not store.trusted():  # it could miss another process's invalidation (outbox.py)
        return None
    if session.new or session.deleted or session.dirty:
        return None
    return store


def read_through(store: CacheStore, region_name: str, key: str, create: Callable[[], T]) -> T:
    """The cached value of ``key``, or ``create()``'s, stored only if the key was not
    invalidated between the capture of its generation and the store."""
    region = store.region(region_name)
    with telemetry.Span("cache", **{"cache.region": region_name, "operation": "read"}) as span:
        value, span.outcome = _read_through(store, region, region_name, key, create)
    return value


def _read_through(
    store: CacheStore, region: CacheRegion, region_name: str, key: str, create: Callable[[], T]
) -> tuple[T, str]:
    cached = region.get(key)  # the hit path: one GET, no lock
    if cached is not NO_VALUE:
        store.stats.count(region_name, "hit")
        return cached, "hit"
    generations = Generations()
    loaded = False

    def creator() -> T:
        nonlocal loaded
        captured = store.generations(region_name, [key])
        generations.update(captured)
        generations.epoch = captured.epoch
        loaded = True
        store.stats.count(region_name, "load")
        return create()

    with expecting(generations):
        value: T = region.get_or_create(key, creator)
    outcome = "miss" if loaded else "hit"
    store.stats.count(region_name, outcome)
    return value, outcome


def entity(
    session: Session, model: type[E], id: uuid.UUID, load: Callable[[uuid.UUID], E | None]
) -> E | None:
    """``load(id)`` through the cache (a missing row is cached as absent)."""
    store = shared_store(session)
    codec = codec_for(model)
    if store is None or _in_session(session, model, id):
        return load(id)
    values = read_through(
        store,
        "entities",
        store.keys.entity(model.__table__, id),
        lambda: _encode_or_none(load(id)),
    )
    return None if values is None else codec.restore(session, values)


def entities(
    session: Session,
    model: type[E],
    ids: Sequence[uuid.UUID],
    load: Callable[[list[uuid.UUID]], Sequence[E]],
) -> list[E]:
    """The rows of ``ids`` found, in their order: one multi-get, then one load of the
    misses (stored under their captured generations)."""
    store = shared_store(session)
    if store is None:
        return list(load(list(ids)))
    codec = codec_for(model)
    wanted = list(dict.fromkeys(ids))
    outside = [id for id in wanted if not _in_session(session, model, id)]
    keys = {id: store.keys.entity(model.__table__, id) for id in outside}
    with telemetry.Span("cache", **{"cache.region": "entities", "operation": "read_many"}) as span:
        cached, misses = _read_many(store, keys, load)
        span.outcome = "miss" if misses else "hit"
        span.attributes = {"cache.hits": len(cached) - misses, "cache.misses": misses}
    in_session = [id for id in wanted if id not in keys]
    found = {row.id: row for row in load(in_session)} if in_session else {}
    for id, values in cached.items():
        if values is not None:
            found[id] = codec.restore(session, values)
    return [found[id] for id in ids if id in found]


def _read_many(
    store: CacheStore,
    keys: dict[uuid.UUID, str],
    load: Callable[[list[uuid.UUID]], Sequence[E]],
) -> tuple[dict[uuid.UUID, Any], int]:
    """The cached values of ``keys``' ids, the missing ones loaded and stored under their
    captured generations; and how many were missing."""
    region = store.region("entities")
    cached = dict(zip(keys, region.get_multi(list(keys.values())), strict=True))
    missing = [id for id, value in cached.items() if value is NO_VALUE]
    store.stats.count("entities", "hit", len(keys) - len(missing))
    if missing:
        store.stats.count("entities", "miss", len(missing))
        store.stats.count("entities", "load")
        generations = store.generations("entities", [keys[id] for id in missing])
        rows = {row.id: row for row in load(missing)}
        fresh = {id: _encode_or_none(rows.get(id)) for id in missing}
        with expecting(generations):
            region.set_multi({keys[id]: values for id, values in fresh.items()})
        cached.update(fresh)
    return cached, len(missing)


def schedule(
    session: Session, doctor_id: uuid.UUID, day: date, statement: Select[Any]
) -> list[Appointment]:
    """A doctor's day (``statement``), each appointment with ``.patient`` loaded."""
    store = shared_store(session)
    if store is None:
        return list(session.scalars(statement.options(joinedload(Appointment.patient))))
    rows = _rows(session, store, "schedules", store.keys.schedule(doctor_id, day), statement)
    _attach(session, rows, "patient", Patient)
    return rows


def timeline(
    session: Session,
    patient_id: uuid.UUID,
    statement: Select[Any],
    limit: int,
    offset: int,
) -> list[Encounter]:
    """A page of the patient's encounters (``statement``, newest first), with ``.doctor``."""
    store = shared_store(session)
    if store is None or offset + limit > TIMELINE_SIZE:
        page = statement.options(joinedload(Encounter.doctor)).limit(limit).offset(offset)
        return list(session.scalars(page))
    recent = statement.limit(TIMELINE_SIZE)
    rows = _rows(session, store, "timelines", store.keys.timeline(patient_id), recent)
    page_rows = rows[offset : offset + limit]
    _attach(session, page_rows, "doctor", User)
    return page_rows


def count(
    session: Session, region: str, key: Callable[[CacheStore], str], load: Callable[[], int]
) -> int:
    """A count through the cache."""
    store = shared_store(session)
    if store is None:
        return load()
    return read_through(store, region, key(store), load)


def _rows(
    session: Session, store: CacheStore, region: str, key: str, statement: Select[Any]
) -> list[Any]:
    model = statement.column_descriptions[0]["entity"]
    codec = codec_for(model)
    # The session is clean (shared_store), so refreshing rows it holds loses nothing and
    # keeps an older copy in its identity map from being cached under a newer generation.
    fresh = statement.execution_options(populate_existing=True)
    values = read_through(
        store, region, key, lambda: [codec.encode(row) for row in session.scalars(fresh)]
    )
    return [codec.restore(session, row) for row in values]


def _attach(session: Session, rows: Sequence[Any], relation: str, model: type[Entity]) -> None:
    """Set ``row.<relation>`` from the ``model`` cache, as an eager load would."""
    column = f"{relation}_id"
    ids = [getattr(row, column) for row in rows]
    found = {
        row.id: row
        for row in entities(
            session,
            model,
            ids,
            lambda wanted: session.scalars(select(model).where(model.id.in_(wanted))).all(),
        )
    }
    for row in rows:
        set_committed_value(row, relation, found.get(getattr(row, column)))


def _in_session(session: Session, model: type[Entity], id: uuid.UUID) -> bool:
    identity = codec_for(model).mapper.identity_key_from_primary_key((id,))
    return identity in session.identity_map


def _encode_or_none(row: Entity | None) -> list[Any] | None:
    return None if row is None else codec_for(type(row)).encode(row)
