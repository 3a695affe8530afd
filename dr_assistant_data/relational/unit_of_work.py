"""The relational part of a unit of work: its session, opened with the unit's audit trail
and replica routing, and closed without letting a lost connection hide the real error.

The public ``UnitOfWork`` (``dr_assistant_data/unit_of_work.py``) holds the repositories
and owns the commit (``dr_assistant_data/commit.py``); these functions are what it asks of
the relational store, usable on their own wherever the layer needs one session with the
unit of work's rules.

Leaving a unit of work normally flushes (validating every changed row), writes the audit
events and commits. An exception rolls back and is re-raised unchanged. Once the database
has refused a write (a duplicate, a lost race) the transaction is spent: start a new unit
of work to try again.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session, sessionmaker

from ..errors import BackendUnavailableError, ValidationError
from ..session_context import context_of
from .audit.trail import AuditTrail, trail_of
from .caching.policy import has_unflushed_changes
from .driver.translate import translated

WAL_POSITION = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")

_close = translated(Session.close)
"""``Session.close`` behind the error boundary, wrapped once rather than at every close."""


def checked_lsn(after_lsn: str | None) -> str | None:
    """``after_lsn`` if it is a WAL position (or ``None``); else ``ValidationError``."""
    if after_lsn is not None and not WAL_POSITION.fullmatch(str(after_lsn)):
        raise ValidationError("after_lsn", "is not a WAL position such as 0/16B3748")
    return after_lsn


def open_session(
    factory: sessionmaker[Session], audit: AuditTrail, *, read_only: bool, after_lsn: str | None
) -> Session:
    """A new session of ``factory`` whose writes are audited by ``audit`` and whose reads
    may go to a replica (``read_only``) that has replayed past ``after_lsn``."""
    session = factory()
    context = context_of(session)
    context.audit = audit
    context.read_only = read_only
    context.after_lsn = after_lsn
    return session


def trail(session: Session) -> AuditTrail:
    """The audit trail ``open_session`` gave ``session``."""
    found = trail_of(session)
    assert found is not None, "set when the unit of work is entered"
    return found


def untouched(session: Session) -> bool:
    """No transaction began (no SQL ran), no change is pending and no audit event is owed:
    a commit would flush nothing, write nothing and send nothing."""
    if session.get_transaction() is not None or trail(session).changes:
        return False
    return not has_unflushed_changes(session)


def rollback(session: Session) -> None:
    """Discard every change since the last commit, including pending audit events."""
    session.rollback()
    trail(session).changes.clear()


def close(session: Session, *, failed: bool) -> None:
    """``close()`` detaches the entities, then rolls back whatever was not committed:
    unlike ``rollback()`` it leaves their loaded attributes readable. A rollback that cannot
    reach the server (the connection is gone, and the server rolls back by itself) is the
    contract's ``BackendUnavailableError``; after a failure it is dropped, so the exception
    the caller's block or the commit raised is the one that propagates."""
    try:
        _close(session)
    except BackendUnavailableError:
        if not failed:
            raise
