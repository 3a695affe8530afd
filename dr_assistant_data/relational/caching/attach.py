"""The one place the layer uses SQLAlchemy's private API: attaching a row read elsewhere
(the cache) to a session exactly as its loader attaches a row it read, and a row inserted
without a flush (``repositories/inserted.py``) as a flush inserts and leaves one.

``tests/relational/test_attach.py`` checks every private name used here and its effect, so a
SQLAlchemy release that changes them fails there, by name, before anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state


def attach_as_loaded(
    session: Session, mapper: Mapper[Any], identity: Any, values: Mapping[str, Any]
) -> Any:
    """A new instance of ``mapper``'s class holding ``values`` (its column attributes),
    persistent in ``session`` under ``identity``, not dirty, with the ORM ``load`` event
    fired (JSON columns track in-place changes), lazy loads working; no SQL runs.

    As SQLAlchemy's loader does it (``orm/loading.py``, ``_instance``): a keyed state added
    to the identity map, the ``load`` and ``loaded_as_persistent`` events, nothing
    pending. ``make_transient_to_detached`` + ``add`` would do the same through the
    save-update cascade, at twice the cost. The caller makes sure ``session`` does not
    already hold ``identity``.
    """
    manager = mapper.class_manager
    row = manager.new_instance()
    state = instance_state(row)
    state.key = identity
    state.identity_token = None
    row.__dict__.update(values)
    state.session_id = session.hash_key
    session.identity_map._add_unpresent(state, identity)
    manager.dispatch.load(state, None)
    if session.dispatch.loaded_as_persistent:
        session.dispatch.loaded_as_persistent(session, state)
    if state.modified:
        state._commit_all(state.dict, session.identity_map)
    return row


def attach_as_inserted(
    session: Session, mapper: Mapper[Any], identity: Any, values: Mapping[str, Any]
) -> Any:
    """:func:`attach_as_loaded` for a row the session's transaction has just inserted
    without a flush: also recorded, as a flush records a row it inserts, as new in the
    current transaction (``SessionTransaction._new``), so that the transaction's (or
    savepoint's) rollback makes it transient again, its attributes readable, rather than
    leaving it in the session expired. The caller makes sure a transaction is open."""
    row = attach_as_loaded(session, mapper, identity, values)
    transaction = session._transaction
    assert transaction is not None, "the INSERT began it"
    transaction._new[instance_state(row)] = True
    return row


@contextmanager
def as_flushed(session: Session) -> Iterator[None]:
    """Run the block as SQLAlchemy runs a flush's SQL (``Session._flush``): in a
    subtransaction of the session's, so that a failure rolls the session's transaction back
    and leaves it spent (each later use refused until the unit of work ends, as after a
    refused flush) rather than open on an aborted database transaction."""
    transaction = session._autobegin_t()._begin()
    try:
        yield
    except BaseException:
        transaction.rollback(_capture_exception=True)
        raise
    transaction.commit()
