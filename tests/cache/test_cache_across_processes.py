"""No process serves a cached value from before a committed write, whatever happened to the
writer's own delivery: Redis unreachable from it, the writer killed after its COMMIT, Redis
restarted from an older snapshot. Writers and readers are separate OS processes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from dogpile.cache.api import NO_VALUE
from sqlalchemy import text

from dr_assistant_data.cache.backends import expecting
from dr_assistant_data.cache.outbox import JANITOR_GRACE, JANITOR_INTERVAL
from dr_assistant_data.relational.caching.outbox import ID_BLOCK, OutboxIds
from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.testing.servers.ports import eventually, free_port
from dr_assistant_data.testing.servers.redis_servers import Proxy
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.layers import CACHE_PREFIX, REDIS_URL, layer_with, patient_fields
from tests.helpers.process_steps import (
    in_process,
    last_name,
    listening,
    rename,
    rename_and_die_after_commit,
    spawned,
)

pytestmark = pytest.mark.servers

MAIN_REDIS = urlsplit(REDIS_URL)


@pytest.fixture
def proxy():
    line = Proxy(MAIN_REDIS.port or 6379, MAIN_REDIS.hostname or "127.0.0.1")
    yield line
    line.close()


@pytest.fixture
def reader(dl):
    with layer_with(dl, redis_socket_timeout=0.2, cache_breaker_backoff=0.5) as layer:
        yield listening(layer)


def shared(**settings: object) -> dict[str, object]:
    """Settings for another process: the cache namespace of this one."""
    return {"cache_prefix": CACHE_PREFIX, **settings}


def cached(layer, patient_id) -> str:
    """Read the patient twice; the second read must be a cache hit."""
    read_patient(layer, patient_id)
    with counting_queries(layer.engine) as queries:
        name = read_patient(layer, patient_id).last_name
    assert queries.count == 0
    return name


def test_a_patient_another_process_read_before_its_create_committed_is_read_there_after(dl, reader):
    with reader.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields(last_name="Rao"))
        assert in_process(last_name, dl.settings.database_url, shared(), patient.id) is None
    assert in_process(last_name, dl.settings.database_url, shared(), patient.id) == "Rao"


def test_an_invalidation_the_writer_could_not_deliver_reaches_every_other_process(
    dl, reader, proxy
):
    patient = new_patient(reader)
    assert cached(reader, patient.id) == "Rao"
    proxy.cut()  # Redis is unreachable from the writer only

    writer = shared(redis_url=f"redis://127.0.0.1:{proxy.port}/0", redis_socket_timeout=0.2)
    in_process(rename, dl.settings.database_url, writer, patient.id, "Sharma")

    assert read_patient(reader, patient.id).last_name == "Sharma"
    assert in_process(last_name, dl.settings.database_url, shared(), patient.id) == "Sharma"


def test_a_writer_killed_between_commit_and_delivery_leaves_the_old_value_under_a_second(
    dl, reader
):
    patient = new_patient(reader)
    assert cached(reader, patient.id) == "Rao"

    process = spawned(
        rename_and_die_after_commit, dl.settings.database_url, shared(), patient.id, "Sharma"
    )
    process.join(60)
    died = time.monotonic()  # a little after the death: the window measured is not wider
    assert process.exitcode == -signal.SIGKILL
    with dl.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT last_name FROM patients WHERE id = :id"), {"id": patient.id}
        ).scalar_one()
    assert stored == "Sharma"  # committed, and never invalidated by its writer

    eventually(lambda: read_patient(reader, patient.id).last_name == "Sharma", "the janitor", 10)
    assert JANITOR_GRACE + JANITOR_INTERVAL < 0.5  # the bound; the rest is this test's polling
    assert time.monotonic() - died < 1.0


def test_invalidations_owed_when_every_writer_has_exited_are_still_delivered(dl, proxy):
    patient = new_patient(dl)
    assert in_process(last_name, dl.settings.database_url, shared(), patient.id) == "Rao"  # cached
    proxy.cut()
    writer = shared(redis_url=f"redis://127.0.0.1:{proxy.port}/0", redis_socket_timeout=0.2)
    in_process(rename, dl.settings.database_url, writer, patient.id, "Sharma")

    eventually(
        lambda: in_process(last_name, dl.settings.database_url, shared(), patient.id) == "Sharma",
        "a later process to deliver the outbox",
        10,
    )
    with dl.engine.connect() as connection:
        eventually(
            lambda: (
                connection.execute(text("SELECT count(*) FROM cache_invalidations")).scalar() == 0
            ),
            "the outbox to be emptied",
            10,
        )


@pytest.fixture
def snapshotting_redis(tmp_path: Path):
    """A redis-server writing RDB snapshots into ``tmp_path``; ``restart(rdb)`` kills it
    (SIGKILL) and starts it again on the same port from ``rdb``."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
        command += ["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        eventually(lambda: redis.Redis(port=port).ping(), f"redis on port {port}")

    def restart(rdb: Path) -> None:
        processes[-1].kill()
        processes[-1].wait(10)
        shutil.copy(rdb, tmp_path / "dump.rdb")
        start()

    start()
    yield port, restart
    for process in processes:
        process.kill()
        process.wait(10)


def test_a_redis_restarted_from_an_older_snapshot_serves_nothing_cached_before_it(
    dl, snapshotting_redis, tmp_path
):
    port, restart = snapshotting_redis
    settings = shared(redis_url=f"redis://127.0.0.1:{port}/0")
    patient = new_patient(dl)
    assert in_process(last_name, dl.settings.database_url, settings, patient.id) == "Rao"
    server = redis.Redis(port=port)
    server.save()  # the snapshot holds the cached row and its generation
    shutil.copy(tmp_path / "dump.rdb", tmp_path / "older.rdb")
    server.close()
    in_process(rename, dl.settings.database_url, settings, patient.id, "Sharma")

    restart(tmp_path / "older.rdb")

    restored = redis.Redis(port=port)
    assert any(key.startswith(CACHE_PREFIX.encode()) for key in restored.scan_iter())  # it is back
    restored.close()
    assert in_process(last_name, dl.settings.database_url, settings, patient.id) == "Sharma"
    assert in_process(last_name, dl.settings.database_url, settings, patient.id) == "Sharma"


def test_a_load_whose_generation_predates_a_new_epoch_stores_nothing(reader):
    store = reader.cache_store
    key = store.keys.entity(Patient.__table__, "00000000-0000-0000-0000-000000000001")
    region = store.region("entities")

    captured = store.generations("entities", [key])
    store.guard.new_epoch()  # e.g. a connection met a restarted server meanwhile
    with expecting(captured):
        region.set(key, ["stale"])
    assert region.get(key) is NO_VALUE

    captured = store.generations("entities", [key])
    with expecting(captured):
        region.set(key, ["fresh"])
    assert region.get(key) == ["fresh"]


def test_a_writes_outbox_row_goes_with_its_commit_not_in_a_round_trip_of_its_own(dl):
    patient = new_patient(dl)
    with dl.unit_of_work(actor="test") as uow:  # this process takes its block of outbox ids
        uow.patients.update(patient.id, last_name="Sharma")
    with counting_queries(dl.engine) as queries, dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Kumar")
    assert any(statement.startswith("BEGIN; UPDATE patients") for statement in queries.statements)
    assert not any("cache_invalidations" in statement for statement in queries.statements)


def test_outbox_ids_are_taken_a_block_at_a_time_and_never_reused_by_a_forked_child(dl):
    ids = OutboxIds()
    with dl.engine.connect() as connection:
        parent = [ids.take(connection) for _ in range(3)]
        ids._pid = -1  # as the child of a fork sees the parent's allocator
        child = ids.take(connection)
    assert parent == [parent[0], parent[0] + 1, parent[0] + 2]
    assert child >= parent[0] + ID_BLOCK  # a block of its own, none of the parent's
