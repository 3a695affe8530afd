"""The cache component: the in-process Redis (memory://), fork safety, closing."""

from __future__ import annotations

import multiprocessing

import pytest

from dr_assistant_data import DataLayer, DataLayerError
from dr_assistant_data.testing.queries import counting_queries
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import layer_with, settings_for


@pytest.fixture
def in_process(dl):
    with layer_with(dl, redis_url="memory://") as layer:
        yield layer


def test_the_in_process_cache_serves_hits_without_sql_and_drops_them_on_commit(in_process):
    patient = new_patient(in_process)
    read_patient(in_process, patient.id)
    with counting_queries(in_process.engine) as queries:
        assert read_patient(in_process, patient.id).last_name == "Rao"
    assert queries.count == 0
    with in_process.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")
    assert read_patient(in_process, patient.id).last_name == "Sharma"


def test_the_in_process_cache_reports_itself_healthy_and_embedded(in_process):
    report = in_process.health()["redis"]
    assert (report["ok"], report["embedded"]) == (True, True)


def test_two_layers_on_the_in_process_cache_do_not_share_values(dl, in_process):
    in_process.cache.set("prefs:1", "mine")
    with layer_with(dl, redis_url="memory://") as other:
        assert other.cache.get("prefs:1") is None
        other.cache.set("prefs:1", "theirs")
    assert in_process.cache.get("prefs:1") == "mine"


def in_child(target, *args):
    """What ``target(*args)`` returns in a forked child process."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=lambda: results.put(target(*args)))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    return results.get(timeout=5)


def _read_with_own_client(layer, patient_id, inherited):
    return read_patient(layer, patient_id).last_name, layer.cache_store.client is not inherited


def test_a_forked_child_connects_afresh_and_the_parent_keeps_working(dl):
    patient = new_patient(dl)
    read_patient(dl, patient.id)  # the parent's client is connected
    parent_client = dl.cache_store.client
    assert in_child(_read_with_own_client, dl, patient.id, parent_client) == ("Rao", True)
    assert dl.cache_store.client is parent_client
    assert read_patient(dl, patient.id).last_name == "Rao"


def _get_then_set(layer):
    return layer.cache.get("prefs:1"), layer.cache.set("prefs:1", "child's")


def test_a_forked_child_of_the_in_process_cache_starts_with_an_empty_one(in_process):
    in_process.cache.set("prefs:1", "parent's")
    assert in_child(_get_then_set, in_process) == (None, True)
    assert in_process.cache.get("prefs:1") == "parent's"


def test_close_is_idempotent_and_final(dl):
    layer = DataLayer(settings_for(dl.settings.database_url))
    layer.cache.set("k", 1)
    layer.close()
    layer.close()
    with pytest.raises(DataLayerError):
        layer.cache  # noqa: B018
