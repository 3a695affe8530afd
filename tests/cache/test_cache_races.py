"""Races: no stale set, no stampede, and a crashed lock holder blocks nobody for long."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from dr_assistant_data import DataLayer
from dr_assistant_data.cache.keys import LOCK_SUFFIX
from dr_assistant_data.cache.reads import read_through
from dr_assistant_data.relational.models import Patient
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import settings_for


@contextmanager
def patient_selects(engine, *, pause=None, delay=0.0):
    """Count SELECTs of patients; optionally hold the first one's thread after it ran."""
    seen = []
    paused = threading.Event()

    def after(_conn, _cursor, statement, *_args):
        if statement.lstrip().startswith("SELECT") and "FROM patients" in statement:
            seen.append(statement)
            time.sleep(delay)
            if pause is not None and not paused.is_set():
                paused.set()
                pause.wait(10)

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen, paused
    finally:
        event.remove(engine, "after_cursor_execute", after)


@pytest.fixture
def second_layer(dl):
    """Another process's layer: same database and Redis, its own locks and connections."""
    other = DataLayer(settings_for(dl.settings.database_url))
    yield other
    other.close()


def commit_while_reading(layer, patient_id, reader) -> None:
    """Run ``reader()`` in a thread, hold it once its SELECT of patients has run (it has the
    old row and has not cached it yet), commit a new last name, then let it go on."""
    resume = threading.Event()
    with patient_selects(layer.engine, pause=resume) as (_seen, selected):
        thread = threading.Thread(target=reader)
        thread.start()
        assert selected.wait(10)
        with layer.unit_of_work(actor="writer") as uow:
            uow.patients.update(patient_id, last_name="Sharma")
        resume.set()
        thread.join(10)


def test_a_reader_that_loaded_before_a_commit_cannot_cache_the_old_row(cache_layer):
    patient = new_patient(cache_layer)
    commit_while_reading(cache_layer, patient.id, lambda: read_patient(cache_layer, patient.id))
    assert read_patient(cache_layer, patient.id).last_name == "Sharma"


def test_a_get_many_that_loaded_before_a_commit_cannot_cache_the_old_row(cache_layer):
    patient = new_patient(cache_layer)

    def read_many():
        with cache_layer.unit_of_work(actor="test") as uow:
            uow.patients.get_many([patient.id])

    commit_while_reading(cache_layer, patient.id, read_many)
    assert read_patient(cache_layer, patient.id).last_name == "Sharma"


def test_concurrent_misses_of_one_key_cause_one_load_across_processes(dl, second_layer):
    patient = new_patient(dl)
    layers = [dl, second_layer] * 10
    start = threading.Barrier(len(layers))
    results = []

    def miss(layer):
        start.wait()
        results.append(read_patient(layer, patient.id).first_name)

    with (
        patient_selects(dl.engine, delay=0.2) as (first, _),
        patient_selects(second_layer.engine, delay=0.2) as (second, _),
    ):
        threads = [threading.Thread(target=miss, args=(layer,)) for layer in layers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert results == ["Ananya"] * len(layers)
    assert len(first) + len(second) == 1


def test_a_lock_left_by_a_crashed_holder_expires(dl, database_url):
    crashed = DataLayer(settings_for(database_url, cache_lock_timeout=1.0))
    survivor = DataLayer(settings_for(database_url, cache_lock_timeout=1.0))
    try:
        patient = new_patient(dl)
        store = crashed.cache_store
        key = store.keys.entity(type(patient).__table__, patient.id)
        assert store.region("entities").backend.get_mutex(key).acquire()  # never released
        started = time.monotonic()
        reader = threading.Thread(target=read_patient, args=(survivor, patient.id))
        reader.start()
        reader.join(10)
        waited = time.monotonic() - started
    finally:
        crashed.close()
        survivor.close()
    assert not reader.is_alive()
    assert 0.5 < waited < 5


def test_a_miss_is_one_get_one_claim_and_one_guarded_set_and_leaves_no_lock(
    cache_layer, monkeypatch
):
    warm, patient = new_patient(cache_layer), new_patient(cache_layer)
    read_patient(cache_layer, warm.id)  # the scripts are loaded
    store = cache_layer.cache_store
    key = store.keys.entity(type(patient).__table__, patient.id)
    client, sent = store.client, []
    send = client.execute_command

    def counted(*args, **options):
        if key in args:  # this key's commands only (the janitor shares the client)
            sent.append(args[0])
        return send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    read_patient(cache_layer, patient.id)
    assert sent == ["GET", "EVALSHA", "EVALSHA"]  # the value, the claim, the guarded set
    assert client.exists(key)
    assert not client.exists(key + LOCK_SUFFIX)
    sent.clear()
    assert read_patient(cache_layer, patient.id).id == patient.id
    assert sent == ["GET"]


def test_a_load_that_fails_releases_its_lock_at_once(cache_layer):
    store = cache_layer.cache_store
    key = store.keys.entity(Patient.__table__, uuid.uuid4())

    def failing():
        raise RuntimeError("the load failed")

    with pytest.raises(RuntimeError):
        read_through(store, "entities", key, failing)
    assert not store.client.exists(key + LOCK_SUFFIX)
    assert read_through(store, "entities", key, lambda: ["loaded"]) == ["loaded"]
