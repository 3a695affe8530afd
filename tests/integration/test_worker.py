"""Worker tasks: their own unit of work with no web framework, and prefork pools whose
children never use the parent's connections."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import uuid

import pytest
from flask import has_app_context
from sqlalchemy import text

from dr_assistant_data import DataLayer, Settings, UnitOfWork
from dr_assistant_data.documents.store import DocumentStore
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


EMBEDDED_LOGGER = "dr_assistant_data.documents.in_process"
HOLD_A_STORE = """
import sys

from dr_assistant_data import Settings
from dr_assistant_data.documents.store import DocumentStore

store = DocumentStore(Settings(mongodb_uri=sys.argv[1]))
store.db
print("ready", flush=True)
sys.stdin.read()
store.close()
"""


def embedded_uri() -> str:
    return f"mongomock://localhost/worker_{uuid.uuid4().hex[:10]}"


def embedded_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == EMBEDDED_LOGGER]


def test_a_forked_worker_using_the_embedded_document_store_is_warned():
    store = DocumentStore(Settings(mongodb_uri=embedded_uri()))
    store.db  # noqa: B018 - the parent uses it before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: its own documents, and a warning saying so
        warned: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = warned.append  # type: ignore[method-assign]
        logging.getLogger(EMBEDDED_LOGGER).addHandler(handler)
        store.db  # noqa: B018
        os.write(write, b"1" if warned else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    store.close()

    assert os.read(read, 1) == b"1"


def test_two_processes_using_embedded_stores_of_one_name_are_warned(caplog):
    uri = embedded_uri()
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_STORE, uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline() == "ready\n"
        with caplog.at_level("WARNING", logger=EMBEDDED_LOGGER):
            store = DocumentStore(Settings(mongodb_uri=uri))
            store.db  # noqa: B018
            store.close()
    finally:
        other.communicate("", timeout=60)

    [warning] = embedded_warnings(caplog)
    assert "another process uses one of the same name" in warning.getMessage()
    assert uri not in warning.getMessage()


def test_one_process_with_two_embedded_stores_of_one_name_is_not_warned(caplog):
    uri = embedded_uri()
    subprocess.run(
        [sys.executable, "-c", HOLD_A_STORE, uri], input="", text=True, timeout=60, check=True
    )  # an earlier process, gone

    with caplog.at_level("WARNING", logger=EMBEDDED_LOGGER):
        first, second = (DocumentStore(Settings(mongodb_uri=uri)) for _ in range(2))
        first.db  # noqa: B018
        second.db  # noqa: B018
        first.close()
        second.close()

    assert embedded_warnings(caplog) == []
