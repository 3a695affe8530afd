"""The unit of work: commit on success, rollback on error, entities usable afterwards."""

from __future__ import annotations

import gc
import inspect
import threading

import pytest
from sqlalchemy.orm.exc import DetachedInstanceError

from dr_assistant_data import ConflictError, DataLayer, DataLayerError, UnitOfWork, ValidationError
from dr_assistant_data.testing import PatientFactory, bind_factories
from dr_assistant_data.testing.queries import counting_queries
from tests.helpers.layers import patient_fields


class Boom(Exception):
    pass


def new_patient(uow, **fields):
    return uow.patients.create(**patient_fields(**fields))


def test_leaving_the_block_commits(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id) is not None


def test_an_exception_rolls_everything_back_and_propagates(dl):
    with pytest.raises(Boom), dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
        raise Boom
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id) is None
        assert uow.audit.for_entity("patients", patient.id) == []


def test_an_attribute_change_is_saved_like_an_update(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
    with dl.unit_of_work(actor="test") as uow:
        loaded = uow.patients.get(patient.id)
        loaded.allergies.append("penicillin")
        loaded.last_name = "Sharma"
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.patients.get(patient.id)
        assert saved.allergies == ["penicillin"]
        assert saved.last_name == "Sharma"
        assert saved.version == 2


def test_an_attribute_change_is_validated_like_an_update(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id).phone = "call me"
    assert raised.value.field == "phone"
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id).phone is None


def test_loaded_attributes_stay_readable_after_the_block(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
    with dl.unit_of_work(actor="test") as uow:
        loaded = uow.patients.get(patient.id)
    assert loaded.first_name == "Ananya"
    assert loaded.version == 1
    assert loaded.created_at.tzinfo is not None


def test_relations_not_loaded_in_the_block_are_not_fetched_after_it(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        from dr_assistant_data.testing import AppointmentFactory

        appointment_id = AppointmentFactory().id
    with dl.unit_of_work(actor="test") as uow:
        appointment = uow.appointments.get(appointment_id)
    with pytest.raises(DetachedInstanceError):
        _ = appointment.patient


def test_explicit_commit_keeps_the_unit_of_work_open(dl):
    with pytest.raises(Boom), dl.unit_of_work(actor="test") as uow:
        first = new_patient(uow, mrn="MRN-1")
        uow.commit()
        second = new_patient(uow, mrn="MRN-2")
        raise Boom
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(first.id) is not None
        assert uow.patients.get(second.id) is None


def test_rollback_discards_changes_since_the_last_commit(dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
        uow.rollback()
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id) is None
        assert uow.audit.for_entity("patients", patient.id) == []


def test_a_unit_of_work_cannot_be_used_outside_its_block(dl):
    uow = dl.unit_of_work(actor="test")
    with pytest.raises(DataLayerError, match="not open"):
        _ = uow.session


def test_each_repository_is_built_on_first_use_as_its_annotated_class(dl):
    annotated = inspect.get_annotations(UnitOfWork, eval_str=True)  # its repositories
    assert len(annotated) == 14
    uow = dl.unit_of_work(actor="test")
    with pytest.raises(DataLayerError, match="not open"):
        _ = uow.patients
    with uow:
        assert not vars(uow).keys() & annotated.keys()  # none built on entering
        patients = uow.patients
        assert uow.patients is patients
        assert vars(uow)["patients"] is patients
        for name, kind in annotated.items():
            assert isinstance(getattr(uow, name), kind), name
        with pytest.raises(AttributeError):
            _ = uow.no_such_repository
    unopened = dl.unit_of_work(actor="test")
    assert not set(dir(unopened)) & annotated.keys()  # not open: none it could build
    with unopened:
        assert set(dir(unopened)) >= annotated.keys()  # in the block: every one, unbuilt
    with uow:  # entered again: its repositories are those of the new session
        assert uow.patients is not patients
        assert uow.patients.session is uow.session


def test_two_writers_of_one_row_one_wins_the_other_conflicts(dl):
    """Both read version 1; the second commit's UPDATE finds the version moved on."""
    with dl.unit_of_work(actor="test") as uow:
        patient = new_patient(uow)
    both_loaded = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def edit(name: str, allergy: str) -> None:
        try:
            with dl.unit_of_work(actor=name) as uow:
                loaded = uow.patients.get(patient.id)
                both_loaded.wait(timeout=10)
                loaded.allergies = [allergy]
                if name == "second":
                    first_done.wait(timeout=10)
            outcomes[name] = "committed"
        except ConflictError as error:
            outcomes[name] = error
        finally:
            if name == "first":
                first_done.set()

    first_done = threading.Event()
    threads = [
        threading.Thread(target=edit, args=("first", "penicillin")),
        threading.Thread(target=edit, args=("second", "sulfa")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes["first"] == "committed"
    assert isinstance(outcomes["second"], ConflictError)
    with dl.unit_of_work(actor="test") as uow:
        saved = uow.patients.get(patient.id)
        assert saved.allergies == ["penicillin"]
        assert saved.version == 2


def test_factories_write_into_the_bound_unit_of_work(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory(allergies=["latex"])
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id).allergies == ["latex"]


def test_factories_bound_in_one_thread_never_write_into_anothers_unit_of_work(dl):
    bound = threading.Barrier(2)
    counts: dict[str, int] = {}

    def write(name: str, how_many: int) -> None:
        with dl.unit_of_work(actor=name) as uow, bind_factories(uow):
            bound.wait(timeout=10)
            PatientFactory.create_batch(how_many)
            counts[name] = uow.patients.count()
            uow.rollback()

    threads = [
        threading.Thread(target=write, args=("a", 2)),
        threading.Thread(target=write, args=("b", 5)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert counts == {"a": 2, "b": 5}


def test_unbound_factories_say_how_to_bind_them():
    with pytest.raises(DataLayerError, match="bind_factories"):
        PatientFactory()


@pytest.mark.parametrize("opener", [UnitOfWork, DataLayer.unit_of_work])
def test_every_option_of_a_unit_of_work_is_a_named_keyword(opener):
    parameters = inspect.signature(opener).parameters
    assert {"actor", "correlation_id", "read_only", "after_lsn"} <= parameters.keys()
    kinds = {parameter.kind for parameter in parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds


def test_an_edit_of_an_entity_nobody_holds_is_saved(cache_layer):
    """The session's identity map holds entities weakly: an entity read and edited in place
    in one expression (``get(id).allergies.append(...)``) is gone before the unit commits
    unless the unit of work holds what it loaded: one read by SQL, then one attached from
    the cache."""
    with cache_layer.unit_of_work(actor="test") as uow:
        patient_id = uow.patients.create(**patient_fields()).id
    with cache_layer.unit_of_work(actor="test") as uow:
        uow.patients.get(patient_id).allergies.append("penicillin")  # a miss: SQL
        gc.collect()
    with cache_layer.unit_of_work(actor="test") as uow:
        uow.patients.get(patient_id)  # fills the cache
    with counting_queries(cache_layer.engine) as log, cache_layer.unit_of_work(actor="t") as uow:
        uow.patients.get(patient_id).allergies.append("sulfa")  # a hit: attached
        assert log.statements == []
        gc.collect()
    with cache_layer.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient_id).allergies == ["penicillin", "sulfa"]
