"""A single create as one INSERT compiled once, instead of a flush.

``Repository.create`` of a row that only its own rules apply to (its column values: no
child rows, no rule reading other rows; the repository says, ``_inserts_alone``) skips the
unit-of-work flush and what it costs per call (building the flush plan, the INSERT's
statement and cache key): :func:`insert_new` applies what the flush's listeners
(``commit.py``) would, in their order, then sends the INSERT compiled once per table and
set of columns (``copy_rows.insert_row``):

1. the actor is required where the trail requires one, the row's values are checked and
   normalized (``rules.validate_new``: the checks a flush applies to a new row), its
   blind indexes and column defaults filled (``bulk.new_row``); a refusal is
   ``ValidationError(field)`` before any SQL and the session is left as it was;
2. the INSERT, in the unit's transaction (``copy_rows.insert_row``): when it sets a
   column another row can refuse it for (a foreign key, a unique or exclusion constraint:
   a taken MRN, a missing patient, an overlap), sent at once (begun with the transaction
   in one round trip, as a flush's INSERT is: ``round_trips.py``), so the refusal is the
   contract's error from this call, and leaves the unit of work spent, as a refused flush
   does; otherwise, under its new id, nothing but a rule the validation already applied
   could refuse it, and it goes with the unit's next statement (which sees it) or its
   COMMIT: a create and its commit are one round trip;
3. the entity, persistent in the session as if the flush had inserted it
   (``caching/attach.py``): edits to it are flushed, audited and version-checked as to
   any entity, ``get`` returns it from the identity map, and a rollback makes it transient;
4. its owed cache keys, as a flush owes them (``caching/invalidation.py``: the reads it
   joins, in the transaction's outbox row, delivered after the commit; not its own key,
   which no read holds: absence is not cached), and
   its audit event (``bulk.record_created``), written and signed at commit with the others.

Sending an INSERT that sets such a column at once, not with the COMMIT, keeps the contract
that a taken unique value or an overlap surfaces from the call that caused it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Mapper, Session

from .. import bulk
from ..audit.trail import trail_of
from ..base import Entity
from ..caching.attach import as_flushed, attach_as_inserted
from ..caching.invalidation import note_written
from ..driver.copy_rows import insert_row
from ..encryption import blind_indexes, session_keyring

M = TypeVar("M", bound=Entity)


def insert_new(session: Session, model: type[M], fields: dict[str, Any]) -> M:
    """Insert a new row of ``model`` with ``fields`` (column fields only) and return it as
    a persistent entity (see the module)."""
    trail = trail_of(session)
    if trail is not None:
        trail.check_actor()
    session.flush()  # what is pending goes first, as the create's own flush would send it
    keyring = session_keyring(session) if blind_indexes(model) else None
    values = bulk.new_row(model, keyring, dict(fields))
    # sent now, a refusal leaves the unit spent, as a refused flush does
    insert_row(session, model.__table__, values, as_flushed)
    mapper: Mapper[M] = model.__mapper__
    identity = mapper.identity_key_from_primary_key((values["id"],))
    entity: M = attach_as_inserted(session, mapper, identity, values)
    note_written(session, (entity,), inserted=True)
    bulk.record_created(session, model, [values])
    return entity
