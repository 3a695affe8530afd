"""The cache on a three-master Redis Cluster: keys, invalidation, multi-key operations and
pattern deletion across slots, and the stale-set guard whose script spans two keys."""

from __future__ import annotations

import uuid

import pytest
import redis

from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.testing.servers.ports import free_port
from dr_assistant_data.testing.servers.redis_servers import cluster_deployment
from tests.cache.test_cache_races import commit_while_reading
from tests.cache.test_cache_service import producer_calls_for_concurrent_misses
from tests.helpers.cache_helpers import new_patient, read, read_patient, write_and_read_back
from tests.helpers.layers import layer_with
from tests.helpers.process_steps import in_process, last_name, rename

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def cluster():
    with cluster_deployment(3) as deployment:
        yield deployment


@pytest.fixture
def cluster_ports(cluster):
    return cluster.ports


@pytest.fixture
def layer(dl, cluster_ports):
    nodes = tuple(f"127.0.0.1:{port}" for port in cluster_ports)
    with layer_with(dl, redis_cluster_nodes=nodes) as layer:
        yield layer


def keys_per_node(cluster_ports, pattern: str) -> list[int]:
    counts = []
    for port in cluster_ports:
        node = redis.Redis(port=port)
        counts.append(sum(1 for _ in node.scan_iter(match=pattern)))
        node.close()
    return counts


def test_patients_spread_over_every_master_are_cached_and_read_without_sql(layer, cluster_ports):
    patients = [new_patient(layer) for _ in range(40)]  # all three masters: 1 - 3e-7
    ids = [patient.id for patient in patients]
    read(layer, lambda uow: uow.patients.get_many(ids))  # one multi-get, one multi-set

    with counting_queries(layer.engine) as queries:
        found = read(layer, lambda uow: uow.patients.get_many(ids))

    assert [patient.id for patient in found] == ids
    assert queries.count == 0
    assert all(keys_per_node(cluster_ports, layer.cache_store.keys.namespace + "patients:*"))


def test_a_commit_invalidates_the_cached_row_on_its_node(layer):
    patient = new_patient(layer)
    read_patient(layer, patient.id)

    with layer.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Sharma")

    assert read_patient(layer, patient.id).last_name == "Sharma"


def test_a_reader_that_loaded_before_a_commit_cannot_cache_the_old_row(layer):
    patient = new_patient(layer)

    commit_while_reading(layer, patient.id, lambda: read_patient(layer, patient.id))

    assert read_patient(layer, patient.id).last_name == "Sharma"
    with counting_queries(layer.engine) as queries:  # and the fresh row is cached
        read_patient(layer, patient.id)
    assert queries.count == 0


def test_delete_pattern_removes_matching_keys_on_every_master(layer, cluster_ports):
    run = uuid.uuid4().hex[:8]
    for number in range(60):
        layer.cache.set(f"report:{run}:{number}", number)
    layer.cache.set(f"other:{run}", 1)
    pattern = f"{layer.cache_store.keys.prefix}kv:report:{run}:*"
    assert all(keys_per_node(cluster_ports, pattern))

    assert layer.cache.delete_pattern(f"report:{run}:*") == 60

    assert keys_per_node(cluster_ports, pattern) == [0, 0, 0]
    assert layer.cache.get(f"other:{run}") == 1


def test_delete_many_removes_keys_of_many_slots(layer):
    names = [f"slot-{uuid.uuid4().hex}" for _ in range(20)]
    for name in names:
        layer.cache.set(name, 1)

    layer.cache.delete_many(names)

    assert not any(layer.cache.exists(name) for name in names)


def test_get_or_set_calls_the_producer_once_for_concurrent_misses(layer):
    assert producer_calls_for_concurrent_misses(layer.cache, f"slow-{uuid.uuid4().hex}") == 1


def test_revoke_all_ends_every_session_of_a_user_across_slots(layer):
    user = str(uuid.uuid4())
    sessions = [layer.sessions.create(user) for _ in range(5)]

    assert layer.sessions.revoke_all(user) == 5

    assert [layer.sessions.get(session) for session in sessions] == [None] * 5


def test_reads_and_writes_succeed_with_every_cluster_node_down(dl):
    with layer_with(dl, redis_cluster_nodes=(f"127.0.0.1:{free_port()}",)) as layer:
        assert write_and_read_back(layer) == "Sharma"
        assert layer.health()["redis"]["ok"] is False


def test_a_node_restored_from_an_older_snapshot_serves_nothing_cached_before_it(dl, layer, cluster):
    settings = {
        "redis_cluster_nodes": layer.settings.redis_cluster_nodes,
        "cache_prefix": layer.settings.cache_prefix,
    }
    patient = new_patient(dl)
    assert in_process(last_name, dl.settings.database_url, settings, patient.id) == "Rao"
    key = layer.cache_store.keys.entity(Patient.__table__, patient.id)
    holding = keys_per_node(cluster.ports, key)
    (port,) = [port for port, count in zip(cluster.ports, holding, strict=True) if count]
    older = cluster.snapshot(port)  # holds the cached row and its generation
    in_process(rename, dl.settings.database_url, settings, patient.id, "Sharma")

    cluster.restart(port, older)

    node = redis.Redis(port=port)
    assert node.exists(key)  # it is back
    node.close()
    assert in_process(last_name, dl.settings.database_url, settings, patient.id) == "Sharma"
    assert read_patient(layer, patient.id).last_name == "Sharma"
