"""The cache on a Sentinel-watched master and replica: a failover keeps it correct."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import redis
from sqlalchemy import text

from dr_assistant_data.cache.topology import MASTER_CHECK_INTERVAL
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.testing.servers.ports import eventually, free_port
from dr_assistant_data.testing.servers.redis_servers import sentinel_deployment
from tests.cache.test_cache_service import producer_calls_for_concurrent_misses
from tests.helpers.cache_helpers import new_patient, read_patient, write_and_read_back
from tests.helpers.layers import CACHE_PREFIX, layer_with
from tests.helpers.process_steps import read_every_10_ms, spawned

pytestmark = pytest.mark.servers

MASTER = "clinic"


@pytest.fixture
def sentinels():
    with sentinel_deployment(MASTER) as ports:
        yield ports


@pytest.fixture
def layer(dl, sentinels):
    nodes = tuple(f"127.0.0.1:{port}" for port in sentinels)
    with layer_with(
        dl, redis_sentinels=nodes, redis_sentinel_master=MASTER, cache_breaker_backoff=0.1
    ) as layer:
        yield layer


def master_port(sentinel_port: int) -> int:
    sentinel = redis.Redis(port=sentinel_port)
    try:
        return int(sentinel.sentinel_get_master_addr_by_name(MASTER)[1])
    finally:
        sentinel.close()


def fail_over(sentinel_port: int) -> None:
    """Promote the replica, and wait until it serves as the master."""
    before = master_port(sentinel_port)
    sentinel = redis.Redis(port=sentinel_port)
    sentinel.sentinel_failover(MASTER)
    sentinel.close()
    eventually(lambda: master_port(sentinel_port) != before, "the sentinels to promote")
    promoted = redis.Redis(port=master_port(sentinel_port))
    eventually(lambda: promoted.role()[0] == b"master", "the replica to become master")
    promoted.close()


def test_reads_are_cached_on_the_master_the_sentinels_name(layer):
    patient = new_patient(layer)
    read_patient(layer, patient.id)

    with counting_queries(layer.engine) as queries:
        assert read_patient(layer, patient.id).id == patient.id
    assert queries.count == 0


def test_no_value_cached_before_a_failover_is_served_after_it(layer, sentinels):
    patient = new_patient(layer)
    assert read_patient(layer, patient.id).last_name == "Rao"  # cached, and replicated
    # an invalidation the old master acknowledged and the promoted replica never received
    with layer.engine.begin() as connection:
        connection.execute(
            text("UPDATE patients SET last_name = 'Sharma' WHERE id = :id"), {"id": patient.id}
        )

    fail_over(sentinels[0])
    time.sleep(MASTER_CHECK_INTERVAL)  # the longest a process keeps reading the old master

    assert [read_patient(layer, patient.id).last_name for _ in range(6)] == ["Sharma"] * 6


def test_a_commit_after_a_failover_invalidates_on_the_new_master(layer, sentinels):
    patient = new_patient(layer)
    fail_over(sentinels[0])
    for _ in range(3):  # the connection to the old master fails; then the new one is used
        read_patient(layer, patient.id)

    with layer.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")

    assert read_patient(layer, patient.id).last_name == "Sharma"
    assert layer.health()["redis"]["owed_invalidations"] == 0


def test_get_or_set_calls_the_producer_once_for_concurrent_misses(layer):
    assert producer_calls_for_concurrent_misses(layer.cache, "report:sentinel") == 1


def test_reads_and_writes_succeed_with_every_sentinel_down(dl):
    nodes = (f"127.0.0.1:{free_port()}",)
    with layer_with(dl, redis_sentinels=nodes, redis_sentinel_master=MASTER) as layer:
        assert write_and_read_back(layer) == "Sharma"
        assert layer.health()["redis"]["ok"] is False


def test_no_process_serves_the_old_master_s_value_after_a_write_that_followed_a_failover(
    dl, sentinels
):
    """A reader in another process reads every 10 ms through the failover (so its periodic
    check of the sentinels is never due); a write committed after the switch is seen by
    every read that starts after the commit returned."""
    nodes = tuple(f"127.0.0.1:{port}" for port in sentinels)
    settings = {
        "cache_prefix": CACHE_PREFIX,
        "redis_sentinels": nodes,
        "redis_sentinel_master": MASTER,
        "cache_breaker_backoff": 0.1,
    }
    patient = new_patient(dl)
    receiving, sending = multiprocessing.get_context("spawn").Pipe(duplex=False)
    reader = spawned(read_every_10_ms, dl.settings.database_url, settings, patient.id, 8.0, sending)
    time.sleep(2.0)  # the reader has cached the patient on the first master

    fail_over(sentinels[0])
    with layer_with(dl, **settings) as writer:
        assert write_and_read_back_existing(writer, patient.id) == "Sharma"
        committed = time.time()

    reads = receiving.recv()
    reader.join(30)
    assert any(name == "Rao" for _, _, name in reads)  # it did cache before the failover
    late = [(started, name) for started, _, name in reads if started > committed]
    assert late, "the reader stopped before the write"
    assert [name for _, name in late] == ["Sharma"] * len(late)


def write_and_read_back_existing(layer, patient_id) -> str:
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.update(patient_id, last_name="Sharma")
    return read_patient(layer, patient_id).last_name
