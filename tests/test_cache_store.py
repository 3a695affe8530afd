"""The cache component: the in-process back end, fork safety, closing."""

from __future__ import annotations

import multiprocessing

import pytest
from cache_helpers import new_patient, read_patient
from conftest import settings_for

from dr_assistant_data import DataLayer, DataLayerError


@pytest.fixture
def in_process(dl):
    layer = DataLayer(settings_for(dl.settings.database_url, redis_url="memory://"))
    yield layer
    layer.close()


def test_the_memory_back_end_serves_hits_without_sql_and_drops_them_on_commit(
    in_process, count_queries
):
    patient = new_patient(in_process)
    read_patient(in_process, patient.id)
    with count_queries() as queries:
        assert read_patient(in_process, patient.id).last_name == "Rao"
    assert queries.count == 0
    with in_process.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")
    assert read_patient(in_process, patient.id).last_name == "Sharma"


def test_the_memory_back_end_reports_itself_healthy(in_process):
    assert in_process.health()["redis"]["embedded"] is True


def _read_in_child(layer, patient_id, inherited, results):
    name = read_patient(layer, patient_id).last_name
    results.put((name, layer.cache_store.client is not inherited))


def test_a_forked_child_connects_afresh_and_the_parent_keeps_working(dl):
    patient = new_patient(dl)
    read_patient(dl, patient.id)  # the parent's client is connected
    parent_client = dl.cache_store.client
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_read_in_child, args=(dl, patient.id, parent_client, results))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=5) == ("Rao", True)  # read through a client of its own
    assert dl.cache_store.client is parent_client
    assert read_patient(dl, patient.id).last_name == "Rao"


def test_close_is_idempotent_and_final(dl):
    layer = DataLayer(settings_for(dl.settings.database_url))
    layer.cache.set("k", 1)
    layer.close()
    layer.close()
    with pytest.raises(DataLayerError):
        layer.cache  # noqa: B018
