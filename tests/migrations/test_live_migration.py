"""Revision 0011 applied under a concurrent write workload on PostgreSQL.

``appointments`` holds tens of thousands of rows, so validating the new constraint takes
a scan; meanwhile writer threads book appointments through the layer's unit of work,
timing every request. The revision is written for a live database (``NOT VALID``, then
``VALIDATE CONSTRAINT`` in a transaction of its own), so no request may fail, and none
may wait on a lock longer than the migration's lock timeout.
(read from PostgreSQL: ``tests/helpers/lock_waits.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer
from dr_assistant_data.migrations import relational as relational_migrations
from tests.helpers.layers import scratch_database, settings_for
from tests.helpers.lock_waits import SAMPLE_EVERY, SAMPLING_SLACK, LockWaits, lock_waits

LOCK_TIMEOUT = 0.5
WRITERS = 4
STORED_APPOINTMENTS = 60_000
WORKLOAD_AROUND_MIGRATION = 0.5
"""Seconds of workload before and after the migration."""


@dataclass
class Workload:
    started: float
    waits: list[tuple[float, float]] = field(default_factory=list)
    """(start, duration) of each successful request."""
    failures: list[BaseException] = field(default_factory=list)
    migration: tuple[float, float] = (0.0, 0.0)
    lock_waits: LockWaits = field(default_factory=LockWaits)


def seed(layer: DataLayer) -> list[tuple[object, object]]:
    """A doctor and a patient per writer, and ``STORED_APPOINTMENTS`` past appointments."""
    parties = []
    with layer.unit_of_work(actor="test") as uow:
        for n in range(WRITERS):
            doctor = uow.users.create(
                username=f"doctor{n}",
                email=f"doctor{n}@clinic.in",
                full_name=f"Dr {n}",
                role="doctor",
                password_hash="x",
            )
            patient = uow.patients.create(
                first_name="Ravi", last_name="Kumar", date_of_birth=date(1980, 5, 1), gender="male"
            )
            parties.append((doctor.id, patient.id))
    with layer.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO appointments (id, doctor_id, patient_id, start_time, end_time, "
                "status, appointment_type, check_in_time, check_out_time, version, "
                "created_at, updated_at) "
                "SELECT gen_random_uuid(), :doctor, :patient, "
                "  timestamptz '2020-01-01' + n * interval '1 hour', "
                "  timestamptz '2020-01-01' + n * interval '1 hour' + interval '30 minutes', "
                "  'completed', 'in_person', "
                "  timestamptz '2020-01-01' + n * interval '1 hour', "
                "  timestamptz '2020-01-01' + n * interval '1 hour' + interval '25 minutes', "
                "  1, now(), now() "
                "FROM generate_series(1, :count) AS n"
            ),
            {"doctor": parties[0][0], "patient": parties[0][1], "count": STORED_APPOINTMENTS},
        )
    return parties


def book_until(
    layer: DataLayer, parties: tuple[object, object], stop: threading.Event, workload: Workload
) -> None:
    doctor_id, patient_id = parties
    start = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
    slot = 0
    while not stop.is_set():
        slot += 1
        begun = time.monotonic()
        try:
            with layer.unit_of_work(actor="test") as uow:
                booked = start + timedelta(hours=slot)
                uow.appointments.create(
                    doctor_id=doctor_id,
                    patient_id=patient_id,
                    start_time=booked,
                    end_time=booked + timedelta(minutes=30),
                )
        except Exception as error:  # counted: the test expects none
            workload.failures.append(error)
            continue
        workload.waits.append((begun - workload.started, time.monotonic() - begun))


@pytest.fixture(scope="module")
def workload() -> Iterator[Workload]:
    with scratch_database("dr_assistant_live_migration") as url:
        layer = DataLayer(settings_for(url, migration_lock_timeout=LOCK_TIMEOUT))
        try:
            relational_migrations.upgrade(layer.engine, "0010")
            parties = seed(layer)
            run = Workload(started=time.monotonic())
            stop = threading.Event()
            with lock_waits(layer.engine) as run.lock_waits, ThreadPoolExecutor(WRITERS) as pool:
                writers = [pool.submit(book_until, layer, p, stop, run) for p in parties]
                time.sleep(WORKLOAD_AROUND_MIGRATION)
                begun = time.monotonic() - run.started
                layer.migrate()
                run.migration = (begun, time.monotonic() - run.started)
                time.sleep(WORKLOAD_AROUND_MIGRATION)
                stop.set()
                for writer in writers:
                    writer.result(timeout=60)
            with layer.engine.connect() as connection:
                assert connection.scalar(
                    text(
                        "SELECT convalidated FROM pg_constraint "
                        "WHERE conname = 'ck_appointments_check_out_after_check_in'"
                    )
                )
            yield run
        finally:
            layer.close()


def during_migration(workload: Workload) -> list[float]:
    start, end = workload.migration
    return [wait for begun, wait in workload.waits if begun + wait >= start and begun <= end]


def test_the_workload_ran_while_the_migration_ran(workload):
    assert len(during_migration(workload)) >= WRITERS


def test_no_request_fails_while_the_example_revision_runs(workload):
    assert workload.failures == []


def test_the_lock_waits_were_sampled_throughout_the_migration(workload):
    start, end = workload.migration
    assert workload.lock_waits.samples >= (end - start) / (SAMPLE_EVERY + SAMPLING_SLACK)


def test_no_request_waits_on_a_lock_past_the_lock_timeout_while_the_example_revision_runs(
    workload,
):
    assert workload.lock_waits.longest < LOCK_TIMEOUT + SAMPLING_SLACK
