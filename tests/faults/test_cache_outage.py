"""Redis trouble never breaks the clinic, and never brings back a value from before it."""

from __future__ import annotations

import time

import pytest
from redis import exceptions

from dr_assistant_data import DataLayer
from dr_assistant_data.testing.servers.ports import free_port
from dr_assistant_data.testing.servers.redis_servers import Proxy, throwaway_redis
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import settings_for

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def redis_port():
    with throwaway_redis() as port:
        yield port


@pytest.fixture
def proxy(redis_port):
    line = Proxy(redis_port)
    yield line
    line.close()


def layer_through(database_url, port, **overrides):
    overrides.setdefault("redis_socket_timeout", 0.2)
    overrides.setdefault("cache_breaker_backoff", 0.5)
    return DataLayer(
        settings_for(database_url, redis_url=f"redis://127.0.0.1:{port}/0", **overrides)
    )


@pytest.fixture
def through_proxy(dl, proxy):
    layer = layer_through(dl.settings.database_url, proxy.port)
    yield layer
    layer.close()


def test_reads_and_writes_succeed_with_redis_down(dl):
    layer = layer_through(dl.settings.database_url, free_port())
    try:
        patient = new_patient(layer)
        with layer.unit_of_work(actor="test") as uow:
            uow.patients.update(patient.id, last_name="Sharma")
        assert read_patient(layer, patient.id).last_name == "Sharma"
        with layer.unit_of_work(actor="test") as uow:
            assert uow.appointments.schedule_for(patient.id, "2030-06-03") == []
        assert layer.cache_stats()["entities"]["error"] >= 1
        with pytest.raises(exceptions.ConnectionError):
            layer.cache_store.health()
    finally:
        layer.close()


def test_a_hung_redis_costs_a_few_timeouts_then_none_until_the_back_off_ends(
    dl, proxy, through_proxy
):
    patient = new_patient(through_proxy)
    proxy.black_hole()
    started = time.monotonic()
    for _ in range(20):
        assert read_patient(through_proxy, patient.id).id == patient.id
    elapsed = time.monotonic() - started
    # Three timeouts of 0.2 s open the breaker; without it, every read would pay several.
    assert elapsed < 1.5
    assert through_proxy.cache_store.guard.breaker.is_open


def test_a_value_cached_before_an_outage_is_not_served_after_it(dl, proxy, through_proxy):
    patient = new_patient(through_proxy)
    read_patient(through_proxy, patient.id)  # cached in Redis, which keeps it through the cut
    proxy.cut()
    with through_proxy.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, allergies=["penicillin"])
    assert through_proxy.cache_store.guard.owed == 1
    proxy.restore()
    time.sleep(0.6)  # the breaker's back-off
    assert read_patient(through_proxy, patient.id).allergies == ["penicillin"]
    assert through_proxy.cache_store.guard.owed == 0


def test_owed_invalidations_reach_other_processes_reading_the_same_redis(
    dl, proxy, redis_port, through_proxy
):
    direct = layer_through(dl.settings.database_url, redis_port)
    try:
        patient = new_patient(through_proxy)
        read_patient(direct, patient.id)  # another process cached it
        proxy.cut()
        with through_proxy.unit_of_work(actor="test") as uow:
            uow.patients.update(patient.id, allergies=["penicillin"])
        proxy.restore()
        time.sleep(0.6)
        through_proxy.cache_store.health()  # the next use of Redis delivers what is owed first
        assert read_patient(direct, patient.id).allergies == ["penicillin"]
    finally:
        direct.close()
