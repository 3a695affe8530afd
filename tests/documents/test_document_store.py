"""The document store's connection: lazy, per layer, fork safe, translated failures."""

from __future__ import annotations

import os
import uuid

import pytest

from dr_assistant_data import BackendUnavailableError, DataLayer, DataLayerError
from dr_assistant_data.documents.store import DocumentStore
from tests.helpers.layers import settings_for


def test_health_reports_the_embedded_store(layer):
    report = layer.health()["mongodb"]
    assert report["ok"] is True
    assert report["embedded"] is True


def test_an_unreachable_server_is_backend_unavailable_in_reads_and_health(dl, database_url):
    settings = settings_for(
        database_url, mongodb_uri="mongodb://127.0.0.1:9/dr_assistant", mongodb_timeout_ms=200
    )
    with DataLayer(settings) as layer:
        report = layer.health()["mongodb"]
        assert (report["ok"], report["error"]) == (False, "BackendUnavailableError")
        with pytest.raises(BackendUnavailableError) as raised, layer.unit_of_work() as uow:
            uow.clinical_notes.get(uuid.uuid4())
    assert raised.value.backend == "mongodb"


def test_a_forked_child_never_uses_the_parents_client(database_url):
    store = DocumentStore(settings_for(database_url))
    parent_client = store.db.client
    pid = os.fork()
    if pid == 0:  # the child: a client of its own, the parent's left untouched
        os._exit(0 if store.db.client is not parent_client else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.db.client is parent_client
    store.close()


def test_close_is_idempotent_and_final(database_url):
    store = DocumentStore(settings_for(database_url))
    store.db  # noqa: B018 - connects
    store.close()
    store.close()
    with pytest.raises(DataLayerError):
        store.db  # noqa: B018


def test_the_database_name_comes_from_the_uri(database_url):
    store = DocumentStore(settings_for(database_url, mongodb_uri="mongodb://h:27017/clinic_a"))
    assert store.database_name == "clinic_a"


def test_a_store_closed_while_it_connects_keeps_no_client(database_url, monkeypatch):
    store = DocumentStore(settings_for(database_url))
    connect = DocumentStore._connect

    def interrupted_by_close(self):
        client = connect(self)
        self.close()  # what a signal handler running here would do
        return client

    monkeypatch.setattr(DocumentStore, "_connect", interrupted_by_close)
    with pytest.raises(DataLayerError):
        store.db  # noqa: B018
    assert store._client is None
