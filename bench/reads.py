"""Hot reads: ``patients.get`` against the raw drivers, the doctor's day cached and not,
the patient timeline at a short and a long history."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.models import (
    Order,
    OrderItem,
    Patient,
    Prescription,
    PrescriptionItem,
)
from dr_assistant_data.relational.repositories.clinical import (
    EncounterRepository,
    OrderRepository,
    PrescriptionRepository,
)
from dr_assistant_data.relational.repositories.people import PatientRepository
from dr_assistant_data.relational.repositories.scheduling import AppointmentRepository
from dr_assistant_data.relational.session import build_session_factory
from dr_assistant_data.testing.queries import counting_queries

from .scratch import raw_postgres, raw_redis
from .timing import compare, median_us, nothing

DAY = date(2030, 6, 3)
FIRST_SLOT = datetime(2030, 6, 3, 3, 30, tzinfo=UTC)  # 9:00 in Kolkata


def doctor_and_day(dl: DataLayer, appointments: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A doctor with ``appointments`` patients booked on DAY, 15 minutes apart."""
    with dl.unit_of_work(actor="bench") as uow:
        doctor = uow.users.create(
            username="bench.doctor",
            email="bench.doctor@clinic.example.in",
            full_name="Dr Bench",
            role="doctor",
            password_hash="x" * 20,
        )
        patients = uow.patients.create_many(
            {
                "first_name": "Asha",
                "last_name": f"Rao{n}",
                "date_of_birth": date(1980, 1, 1),
                "gender": "female",
                "phone": f"+9198000{n:05d}",
                "allergies": ["latex"],
                "address": {"city": "Pune"},
            }
            for n in range(appointments)
        ).created
        uow.appointments.create_many(
            {
                "doctor_id": doctor.id,
                "patient_id": patient,
                "start_time": FIRST_SLOT + timedelta(minutes=15 * n),
                "end_time": FIRST_SLOT + timedelta(minutes=15 * n + 10),
                "reason": "Follow-up visit",
            }
            for n, patient in enumerate(patients)
        )
    return doctor.id, patients[0]


def get_and_day(dl: DataLayer, *, appointments: int, calls: int, runs: int) -> dict[str, Any]:
    doctor_id, patient_id = doctor_and_day(dl, appointments)
    cached_session = dl.session_factory()
    plain_session = build_session_factory(dl.engine)()  # the same rules, no cache
    cached_patients, plain_patients = (
        PatientRepository(cached_session),
        PatientRepository(plain_session),
    )
    zone = ZoneInfo(dl.settings.clinic_timezone)
    cached_days = AppointmentRepository(cached_session, zone)
    plain_days = AppointmentRepository(plain_session, zone)
    cached_patients.get(patient_id)
    cached_days.schedule_for(doctor_id, DAY)  # warms the day and its patients

    client = raw_redis()
    key = dl.cache_store.keys.entity(Patient.__table__, patient_id)
    sealer = dl.cache_store.sealer
    unsealed = key + ":unsealed"  # the same envelope in clear: the baseline of the target
    client.set(unsealed, sealer.open(key, client.get(key)))
    connection = raw_postgres(dl)
    cursor = connection.cursor()

    def raw_get() -> object:
        return json.loads(client.get(unsealed).partition(b"|")[2])  # dogpile's envelope|payload

    def raw_sealed_get() -> object:
        return json.loads(sealer.open(key, client.get(key)).partition(b"|")[2])

    def raw_select() -> object:
        cursor.execute("SELECT * FROM patients WHERE id = %s", (str(patient_id),))
        return cursor.fetchone()

    cached = compare(
        (lambda: cached_patients.get(patient_id), cached_session.expunge_all),
        (raw_get, nothing),
        calls=calls,
        runs=runs,
    )
    sealing = compare((raw_sealed_get, nothing), (raw_get, nothing), calls=calls, runs=runs)
    uncached = compare(
        (lambda: plain_patients.get(patient_id), plain_session.expunge_all),
        (raw_select, nothing),
        calls=calls,
        runs=runs,
    )
    day = compare(
        (lambda: cached_days.schedule_for(doctor_id, DAY), cached_session.expunge_all),
        (lambda: plain_days.schedule_for(doctor_id, DAY), plain_session.expunge_all),
        calls=calls,
        runs=runs,
    )
    queries = {}
    for label, days, session in (
        ("cached", cached_days, cached_session),
        ("uncached", plain_days, plain_session),
    ):
        session.expunge_all()
        with counting_queries(dl.engine) as log:
            loaded = days.schedule_for(doctor_id, DAY)
        queries[label] = log.count
        assert len(loaded) == appointments
        assert all(a.patient is not None for a in loaded)
    for closing in (cached_session.close, plain_session.close, connection.close, client.close):
        closing()
    return {
        "get_cached_us": cached.first_us,
        "raw_redis_get_decode_us": cached.second_us,
        "get_cached_ratio": cached.ratio,
        "raw_redis_get_open_decode_us": sealing.first_us,
        "sealing_ratio": sealing.ratio,
        "get_uncached_us": uncached.first_us,
        "raw_psycopg2_select_us": uncached.second_us,
        "get_uncached_ratio": uncached.ratio,
        "schedule_appointments": appointments,
        "schedule_cached_us": day.first_us,
        "schedule_uncached_us": day.second_us,
        "schedule_cached_speedup": day.second_us / day.first_us,
        "schedule_cached_queries": queries["cached"],
        "schedule_uncached_queries": queries["uncached"],
    }


def doctor_id(dl: DataLayer) -> uuid.UUID:
    with dl.unit_of_work(actor="bench") as uow:
        doctor = uow.users.get_by_username("bench.doctor")
        assert doctor is not None
        return doctor.id


def patient_with_history(dl: DataLayer, encounters: int) -> uuid.UUID:
    """A patient with ``encounters`` visits, each with a prescription of two items and an
    order of one item."""
    start = datetime(2020, 1, 1, 4, tzinfo=UTC)
    with dl.unit_of_work(actor="bench") as uow:
        doctor = uow.users.get_by_username("bench.doctor")
        assert doctor is not None
        patient = uow.patients.create(
            first_name="Long", last_name="History", date_of_birth=date(1950, 1, 1), gender="male"
        )
        visits = uow.encounters.create_many(
            {
                "doctor_id": doctor.id,
                "patient_id": patient.id,
                "encounter_type": "office_visit",
                "start_time": start + timedelta(days=n),
            }
            for n in range(encounters)
        ).created
        for visit in visits:
            uow.session.add(
                Prescription(
                    encounter_id=visit,
                    patient_id=patient.id,
                    doctor_id=doctor.id,
                    items=[
                        PrescriptionItem(
                            medication_name=name, dosage="500 mg", frequency="twice a day"
                        )
                        for name in ("Paracetamol", "Cetirizine")
                    ],
                )
            )
            uow.session.add(
                Order(
                    encounter_id=visit,
                    patient_id=patient.id,
                    doctor_id=doctor.id,
                    order_type="lab",
                    items=[OrderItem(item_name="Complete blood count")],
                )
            )
    return patient.id


def timeline(dl: DataLayer, *, sizes: tuple[int, ...], calls: int) -> dict[str, Any]:
    """The first page of each part of the timeline (uncached: the SQL cost), and a keyset
    page at the far end of the longest history. The page is as long as the shortest
    history, so every history fills it: what differs is only the history behind it."""
    page_size = min(sizes)
    session: Session = build_session_factory(dl.engine)()
    encounters, prescriptions, orders = (
        EncounterRepository(session),
        PrescriptionRepository(session),
        OrderRepository(session),
    )

    def first_page(patient: uuid.UUID) -> None:
        for reader in (encounters, prescriptions, orders):
            for row in reader.for_patient(patient, limit=page_size):
                row.doctor.full_name  # noqa: B018 - loaded with the page
                getattr(row, "items", None)

    figures: dict[str, Any] = {"timeline_page": page_size}
    patients = {size: patient_with_history(dl, size) for size in sizes}
    with dl.engine.begin() as connection:
        connection.execute(text("ANALYZE"))  # as autovacuum would after the loads
    for size, patient in patients.items():
        session.expunge_all()
        with counting_queries(dl.engine) as log:
            first_page(patient)
        figures[f"timeline_{size}_queries"] = log.count
        figures[f"timeline_{size}_us"] = median_us(
            lambda patient=patient: first_page(patient), session.expunge_all, calls=calls
        )
    deepest = max(sizes)
    patient = patients[deepest]
    cursor = None
    for _ in range(deepest // page_size - 1):
        cursor = encounters.for_patient_page(patient, limit=page_size, after=cursor).next_cursor
    session.expunge_all()
    with counting_queries(dl.engine) as log:
        encounters.for_patient_page(patient, limit=page_size, after=cursor)
    figures["timeline_last_keyset_page_queries"] = log.count
    figures["timeline_last_keyset_page_us"] = median_us(
        lambda: encounters.for_patient_page(patient, limit=page_size, after=cursor),
        session.expunge_all,
        calls=calls,
    )
    figures["timeline_growth"] = (
        figures[f"timeline_{deepest}_us"] / figures[f"timeline_{min(sizes)}_us"]
    )
    session.close()
    return figures
