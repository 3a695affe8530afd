"""``relational/caching/attach.py`` is the layer's one use of SQLAlchemy's private API. These tests
name each private attribute it relies on and check its effect, so a SQLAlchemy release that
changes one fails here, by name, rather than as a wrong cached entity somewhere else."""

import pytest
from sqlalchemy import ForeignKey, create_engine, event, inspect
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.types import JSON

from dr_assistant_data.relational.caching.attach import (
    as_flushed,
    attach_as_inserted,
    attach_as_loaded,
)


class Base(DeclarativeBase):
    pass


class Doctor(Base):
    __tablename__ = "doctors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Visit(Base):
    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.id"))
    notes: Mapped[dict] = mapped_column(MutableDict.as_mutable(JSON))
    doctor: Mapped[Doctor] = relationship()


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Doctor(id=1, name="Rao"))
        session.add(Visit(id=7, doctor_id=1, notes={"bp": "120/80"}))
        session.commit()
        session.expunge_all()
        yield session
    engine.dispose()


def attach(session):
    mapper = inspect(Visit)
    identity = mapper.identity_key_from_primary_key([7])
    values = {"id": 7, "doctor_id": 1, "notes": {"bp": "120/80"}}
    return identity, attach_as_loaded(session, mapper, identity, values)


def test_the_private_names_it_uses_still_exist(session):
    for name in ("key", "identity_token", "session_id", "modified", "_commit_all", "dict"):
        assert hasattr(InstanceState, name), f"InstanceState.{name} is gone"
    identity_map = type(session.identity_map)
    assert callable(getattr(identity_map, "_add_unpresent", None)), (
        f"{identity_map.__name__}._add_unpresent is gone"
    )
    assert hasattr(inspect(Visit).class_manager.dispatch, "load")
    assert isinstance(session.hash_key, int)


def test_the_row_is_persistent_in_the_identity_map_and_clean(session):
    identity, visit = attach(session)
    state = instance_state(visit)
    assert session.identity_map.get(identity) is visit
    assert state.persistent
    assert not state.pending
    assert not state.detached
    assert state.key == identity
    assert visit not in session.dirty
    assert visit not in session.new
    assert not state.modified


def test_no_sql_runs_to_attach_it(session):
    statements = []
    event.listen(session.bind, "before_cursor_execute", lambda *a: statements.append(a[2]))
    attach(session)
    assert statements == []


def test_the_load_event_fires_so_json_changes_are_tracked(session):
    loaded = []
    event.listen(Visit, "load", lambda target, _context: loaded.append(target))
    _identity, visit = attach(session)
    assert loaded == [visit]
    visit.notes["pulse"] = "72"  # in place: seen only because MutableDict heard the load
    assert visit in session.dirty
    session.commit()
    session.expunge_all()
    assert session.get(Visit, 7).notes == {"bp": "120/80", "pulse": "72"}


def test_lazy_loads_and_edits_work_like_a_loaded_row(session):
    _identity, visit = attach(session)
    assert visit.doctor.name == "Rao"
    visit.doctor_id = 1
    visit.notes = {"bp": "110/70"}
    session.commit()
    session.expunge_all()
    assert session.get(Visit, 7).notes == {"bp": "110/70"}


def test_a_row_attached_as_inserted_is_transient_again_once_its_transaction_rolls_back(session):
    session.execute(Visit.__table__.insert(), {"id": 8, "doctor_id": 1, "notes": {}})
    transaction = session._transaction
    assert hasattr(transaction, "_new"), "SessionTransaction._new is gone"
    mapper = inspect(Visit)
    identity = mapper.identity_key_from_primary_key([8])
    visit = attach_as_inserted(session, mapper, identity, {"id": 8, "doctor_id": 1, "notes": {}})
    assert instance_state(visit).persistent
    session.rollback()
    assert instance_state(visit).transient
    assert visit.notes == {}
    assert session.get(Visit, 8) is None


def test_a_statement_failing_as_flushed_leaves_the_session_spent_as_a_failed_flush_does(session):
    with pytest.raises(IntegrityError), as_flushed(session):
        session.execute(Visit.__table__.insert(), {"id": 7, "doctor_id": 1, "notes": {}})
    with pytest.raises(PendingRollbackError):
        session.get(Visit, 7)
