"""The listeners of the layer's sessions are the ones ``commit.listeners`` declares, each
registered once, in the declared order, and nowhere else."""

from __future__ import annotations

from sqlalchemy import event

from dr_assistant_data.commit import Participants, listeners, session_factory
from dr_assistant_data.relational.session import hold

EVENTS = (
    "before_flush",
    "after_flush",
    "after_begin",
    "do_orm_execute",
    "before_commit",
    "after_commit",
    "after_transaction_end",
)
"""Every event but ``loaded_as_persistent``, whose listeners SQLAlchemy wraps."""


def test_a_layer_session_carries_exactly_the_declared_listeners_in_their_order(dl):
    participants = Participants(cache_store=dl.cache_store)
    factory = session_factory(dl.engine, participants)
    session = factory()
    try:
        for name in EVENTS:
            declared = [listener for event, listener in listeners(participants) if event == name]
            assert list(getattr(session.dispatch, name)) == declared, name
        assert len(session.dispatch.loaded_as_persistent) == 1
        assert event.contains(factory, "loaded_as_persistent", hold)
    finally:
        session.close()
