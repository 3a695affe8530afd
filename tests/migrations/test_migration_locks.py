"""Specifications of migrations on a busy PostgreSQL database: bounded lock waits.

A long transaction holds a lock on ``appointments`` while revision 0011, which needs an
ACCESS EXCLUSIVE lock on it, is applied. Application requests arriving meanwhile go
through the layer's unit of work, from threads of their own, and each one's wait is
measured on the server (``tests/helpers/lock_waits.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer, DataLayerError
from dr_assistant_data.migrations import relational as relational_migrations
from dr_assistant_data.settings import Settings
from tests.helpers.layers import scratch_database, settings_for
from tests.helpers.lock_waits import SAMPLE_EVERY, SAMPLING_SLACK, LockWaits, lock_waits

LOCK_TIMEOUT = 0.2
"""Seconds a migration's statement may wait for a lock in these tests."""
HELD_FOR = 3.0
"""Seconds the long transaction keeps its lock: fifteen lock timeouts, and well past the
timeout and slack (a request queued behind the migration would wait about this long)."""
BEFORE_EXAMPLE = "0010"
READERS = 4


def layer_at(url: str, revision: str, **settings: object) -> DataLayer:
    layer = DataLayer(
        settings_for(url, migration_lock_timeout=LOCK_TIMEOUT, **settings)  # type: ignore[arg-type]
    )
    relational_migrations.upgrade(layer.engine, revision)
    return layer


@pytest.fixture
def url() -> Iterator[str]:
    with scratch_database("dr_assistant_migration_locks") as url:
        yield url


@dataclass
class Run:
    requests: int
    lock_waits: LockWaits
    migration_error: BaseException | None
    migrated_after: float


def migrate_behind_a_long_transaction(layer: DataLayer) -> Run:
    """Hold ACCESS SHARE on ``appointments`` for ``HELD_FOR`` seconds; meanwhile migrate
    to head and count appointments from ``READERS`` threads, sampling lock waits."""
    requests = 0
    errors: list[BaseException] = []
    stop = threading.Event()
    started = time.monotonic()

    def read() -> None:
        nonlocal requests
        while not stop.is_set():
            with layer.unit_of_work(actor="test") as uow:
                uow.appointments.count()
            requests += 1
            time.sleep(0.02)

    def migrate() -> None:
        try:
            layer.migrate()
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    with (
        lock_waits(layer.engine) as waits,
        layer.engine.connect() as holder,
        ThreadPoolExecutor(READERS + 1) as pool,
    ):
        holder.execute(text("SELECT count(*) FROM appointments"))
        migration = pool.submit(migrate)
        readers = [pool.submit(read) for _ in range(READERS)]
        time.sleep(HELD_FOR)
        holder.commit()
        migration.result(timeout=60)
        stop.set()
        for reader in readers:
            reader.result(timeout=60)
    return Run(requests, waits, errors[0] if errors else None, time.monotonic() - started)


@pytest.fixture
def run(url: str) -> Iterator[Run]:
    layer = layer_at(url, BEFORE_EXAMPLE, migration_retries=20)
    try:
        yield migrate_behind_a_long_transaction(layer)
    finally:
        layer.close()


def test_requests_behind_a_blocked_migration_wait_no_longer_than_the_lock_timeout(run):
    assert run.requests > READERS * 10, "the readers kept running during the migration"
    assert run.lock_waits.samples > HELD_FOR / (SAMPLE_EVERY + SAMPLING_SLACK)
    assert run.lock_waits.longest < LOCK_TIMEOUT + SAMPLING_SLACK


def test_a_migration_blocked_by_a_long_transaction_succeeds_once_it_ends(run, url):
    assert run.migration_error is None
    assert run.migrated_after > HELD_FOR
    with DataLayer(settings_for(url)) as layer:
        status = layer.migration_status()
    assert status.pending == ()
    assert status.current == (status.head,)


def test_a_migration_locked_out_on_every_attempt_fails_saying_so_and_applies_nothing(url):
    layer = layer_at(url, BEFORE_EXAMPLE, migration_retries=2)
    try:
        with layer.engine.connect() as holder:
            holder.execute(text("SELECT count(*) FROM appointments"))
            with pytest.raises(DataLayerError) as raised:
                layer.migrate()
            holder.rollback()
        assert "MIGRATION_LOCK_TIMEOUT" in str(raised.value)
        assert "3" in str(raised.value)
        assert layer.migration_status().current == (BEFORE_EXAMPLE,)
    finally:
        layer.close()


def test_a_migration_leaves_no_lock_timeout_on_the_pooled_connection(url):
    layer = layer_at(url, BEFORE_EXAMPLE)
    try:
        layer.migrate()
        with layer.engine.connect() as connection:
            assert connection.scalar(text("SHOW lock_timeout")) == "0"
    finally:
        layer.close()


def test_migration_lock_settings_come_from_their_variables():
    settings = Settings.from_env({"MIGRATION_LOCK_TIMEOUT": "750", "MIGRATION_RETRIES": "0"})
    assert settings.migration_lock_timeout == 0.75
    assert settings.migration_retries == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MIGRATION_LOCK_TIMEOUT", "0"),
        ("MIGRATION_LOCK_TIMEOUT", "soon"),
        ("MIGRATION_RETRIES", "-1"),
    ],
)
def test_a_bad_migration_lock_setting_names_its_variable(variable, value):
    with pytest.raises(DataLayerError, match=variable):
        Settings.from_env({variable: value})
