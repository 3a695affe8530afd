"""Worker tasks: their own unit of work with no web framework, and prefork pools whose
children never use the parent's connections."""

from __future__ import annotations

import multiprocessing

import pytest
from flask import has_app_context
from sqlalchemy import text

from dr_assistant_data import DataLayer, UnitOfWork
from dr_assistant_data.worker import after_fork, task_unit_of_work
from tests.helpers.layers import patient_fields

_prefork_layer: DataLayer | None = None  # inherited by the pool's children


def register_patient(uow: UnitOfWork, mrn: str) -> int:
    """A prefork task: writes a patient, reports the server process it talked to."""
    uow.patients.create(**patient_fields(mrn=mrn))
    return int(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def run_in_pool_child(mrn: str) -> int:
    assert _prefork_layer is not None
    return task_unit_of_work(_prefork_layer, actor="pool")(register_patient)(mrn)


def mrns(dl: DataLayer) -> set[str]:
    with dl.unit_of_work(actor="test") as uow:
        return {patient.mrn for patient in uow.patients.list()}


def test_a_task_commits_its_writes_with_no_flask_app_context(dl):
    @task_unit_of_work(dl, actor="reminder-worker")
    def task(uow: UnitOfWork) -> bool:
        uow.patients.create(**patient_fields(mrn="MRN-TASK-1"))
        return has_app_context()

    assert task() is False
    assert mrns(dl) == {"MRN-TASK-1"}


def test_a_task_that_raises_rolls_back_and_the_exception_propagates(dl):
    @task_unit_of_work(dl, actor="reminder-worker")
    def task(uow: UnitOfWork) -> None:
        uow.patients.create(**patient_fields(mrn="MRN-TASK-2"))
        raise TimeoutError("the SMS gateway did not answer")

    with pytest.raises(TimeoutError):
        task()
    assert mrns(dl) == set()


def test_the_correlation_id_given_to_a_task_reaches_the_audit_trail(dl):
    @task_unit_of_work(dl, actor="reminder-worker")
    def task(uow: UnitOfWork) -> str:
        return str(uow.patients.create(**patient_fields()).id)

    patient_id = task(correlation_id="req-from-web")

    with dl.unit_of_work(actor="test") as uow:
        [event] = uow.audit.for_entity("patients", patient_id)
    assert (event.actor, event.correlation_id) == ("reminder-worker", "req-from-web")


def test_prefork_pool_children_use_their_own_connections_and_the_parent_keeps_its_own(dl):
    global _prefork_layer
    _prefork_layer = dl
    with dl.unit_of_work(actor="test") as uow:
        parent_pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()

    with multiprocessing.get_context("fork").Pool(2, initializer=after_fork) as pool:
        child_pids = pool.map(run_in_pool_child, ["MRN-POOL-1", "MRN-POOL-2", "MRN-POOL-3"])

    assert parent_pid not in child_pids
    assert mrns(dl) == {"MRN-POOL-1", "MRN-POOL-2", "MRN-POOL-3"}
    with dl.unit_of_work(actor="test") as uow:
        assert uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one() == parent_pid
