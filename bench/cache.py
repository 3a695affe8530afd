"""Cache benchmark: ``python -m bench.cache`` (needs PostgreSQL and Redis, see README).

Creates a scratch database and a key prefix of its own, removes both at the end, and
prints each figure with its ratio to the raw driver doing the least the same read needs.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg2
import redis
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.cache.store import delete_matching
from dr_assistant_data.relational.models import Patient
from dr_assistant_data.relational.repositories.people import PatientRepository
from dr_assistant_data.relational.repositories.scheduling import AppointmentRepository
from dr_assistant_data.relational.session import build_session_factory

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ROUNDS = 2000
DAY = date(2030, 6, 3)
THREADS = 50


@contextmanager
def scratch_layer() -> Iterator[DataLayer]:
    name = f"dr_assistant_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    prefix = f"dr_assistant_bench:{uuid.uuid4().hex[:10]}:"
    dl = DataLayer(Settings(database_url=url, redis_url=REDIS_URL, cache_prefix=prefix))
    try:
        dl.migrate()
        yield dl
    finally:
        dl.close()
        client = redis.Redis.from_url(REDIS_URL)
        delete_matching(client, prefix + "*")
        client.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


Call = tuple[Callable[[], object], Callable[[], object]]
"""A call to time, and one to run untimed before each round (e.g. emptying the session)."""


def compare(first: Call, second: Call) -> tuple[float, float]:
    """Median microseconds of each call over ROUNDS, alternating the two so that noise from
    other processes on the machine falls on both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(ROUNDS):
        for (call, before), timings in zip((first, second), samples, strict=True):
            before()
            started = time.perf_counter()
            call()
            timings.append(time.perf_counter() - started)
    return statistics.median(samples[0]) * 1e6, statistics.median(samples[1]) * 1e6


def nothing() -> None:
    return None


def clinic(dl: DataLayer) -> tuple[uuid.UUID, uuid.UUID]:
    start = datetime(2030, 6, 3, 3, 30, tzinfo=UTC)
    with dl.unit_of_work(actor="bench") as uow:
        doctor = uow.users.create(
            username="bench.doctor",
            email="bench.doctor@clinic.example.in",
            full_name="Dr Bench",
            role="doctor",
            password_hash="x" * 20,
        )
        patients = [
            uow.patients.create(
                first_name="Asha",
                last_name=f"Rao{n}",
                date_of_birth=date(1980, 1, 1),
                gender="female",
                phone=f"+9198000{n:05d}",
                allergies=["latex"],
                address={"city": "Pune"},
            )
            for n in range(20)
        ]
        for n, patient in enumerate(patients):
            uow.appointments.create(
                doctor_id=doctor.id,
                patient_id=patient.id,
                start_time=start + timedelta(minutes=20 * n),
                end_time=start + timedelta(minutes=20 * n + 15),
                reason="Follow-up visit",
            )
    return doctor.id, patients[0].id


def row(label: str, micros: float, against: str, base: float, verdict: str) -> None:
    print(f"{label:<40} {micros:8.1f} us | {against:<32} {base:8.1f} us | {verdict}")


def main() -> None:
    with scratch_layer() as dl:
        doctor_id, patient_id = clinic(dl)
        cached_session = dl.session_factory()
        plain_session = build_session_factory(dl.engine)()  # the same rules, no cache
        cached_patients = PatientRepository(cached_session)
        plain_patients = PatientRepository(plain_session)
        tz = ZoneInfo(dl.settings.clinic_timezone)
        cached_days = AppointmentRepository(cached_session, tz)
        plain_days = AppointmentRepository(plain_session, tz)

        cached_patients.get(patient_id)
        cached_days.schedule_for(doctor_id, DAY)
        cached_session.expunge_all()
        cached_days.schedule_for(doctor_id, DAY)  # the patients of the day are cached too

        client = redis.Redis.from_url(REDIS_URL)
        key = dl.cache_store.keys.entity(Patient.__table__, patient_id)

        def raw_get() -> object:
            return json.loads(client.get(key).partition(b"|")[2])

        raw_pg = psycopg2.connect(
            make_url(dl.settings.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        cursor = raw_pg.cursor()

        def raw_select() -> object:
            cursor.execute("SELECT * FROM patients WHERE id = %s", (str(patient_id),))
            return cursor.fetchone()

        print(f"median of {ROUNDS} calls each; PostgreSQL and Redis on this machine\n")
        cached, raw = compare(
            (lambda: cached_patients.get(patient_id), cached_session.expunge_all),
            (raw_get, nothing),
        )
        row(
            "patients.get, cached",
            cached,
            "redis-py GET + json.loads",
            raw,
            f"x{cached / raw:.2f} (target <= 1.5)",
        )
        uncached, select = compare(
            (lambda: plain_patients.get(patient_id), plain_session.expunge_all),
            (raw_select, nothing),
        )
        row(
            "patients.get, uncached",
            uncached,
            "psycopg2 SELECT by primary key",
            select,
            f"x{uncached / select:.2f}",
        )
        day_cached, day_plain = compare(
            (lambda: cached_days.schedule_for(doctor_id, DAY), cached_session.expunge_all),
            (lambda: plain_days.schedule_for(doctor_id, DAY), plain_session.expunge_all),
        )
        row(
            "schedule_for (20 appointments), cached",
            day_cached,
            "schedule_for, uncached",
            day_plain,
            f"{day_plain / day_cached:.1f}x faster cached (target >= 5)",
        )
        print(f"{THREADS} threads miss one patient: {stampede(dl)} database load(s) (target 1)")
        cached_session.close()
        plain_session.close()
        raw_pg.close()
        client.close()


def stampede(dl: DataLayer) -> int:
    with dl.unit_of_work(actor="bench") as uow:
        patient = uow.patients.create(
            first_name="Ravi", last_name="Kumar", date_of_birth=date(1980, 5, 1), gender="male"
        )
    loads = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("SELECT") and "FROM patients" in statement:
            loads.append(statement)

    start = threading.Barrier(THREADS)

    def read() -> None:
        start.wait()
        with dl.unit_of_work(actor="bench") as uow:
            uow.patients.get(patient.id)

    event.listen(dl.engine, "after_cursor_execute", count)
    threads = [threading.Thread(target=read) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    event.remove(dl.engine, "after_cursor_execute", count)
    return len(loads)


if __name__ == "__main__":
    main()
