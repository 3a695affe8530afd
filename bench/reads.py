"""Hot reads: ``patients.get`` against the raw drivers, the doctor's day cached and not (as
entities and as views), the patient timeline at a short and a long history."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dr_assistant_data import DataLayer
from dr_assistant_data.commit import Participants, session_factory
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
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.unit_of_work import UnitOfWork

from . import peers
from .round_trips import Counter, trips_of
from .scratch import raw_postgres, raw_redis
from .timing import median_us, nothing, race

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


def get_and_day(
    dl: DataLayer, counter: Counter, *, appointments: int, calls: int, runs: int
) -> dict[str, Any]:
    """Each layer read in a fresh unit of work, as a request makes it, alternated with the
    raw drivers doing the same work and with the peers (see ``peers.py``)."""
    doctor_id, patient_id = doctor_and_day(dl, appointments)
    uncached = uncached_units(dl)

    def layer_get() -> object:
        with dl.unit_of_work(actor="bench") as uow:
            return uow.patients.get(patient_id)

    def uncached_get() -> object:
        with uncached() as uow:
            return uow.patients.get(patient_id)

    def cached_day() -> object:
        with dl.unit_of_work(actor="bench") as uow:
            return uow.appointments.schedule_for(doctor_id, DAY)

    def uncached_day() -> object:
        with uncached() as uow:
            return uow.appointments.schedule_for(doctor_id, DAY)

    def cached_view() -> object:
        with dl.unit_of_work(actor="bench") as uow:
            return uow.appointments.schedule_view(doctor_id, DAY)

    def uncached_view() -> object:
        with uncached() as uow:
            return uow.appointments.schedule_view(doctor_id, DAY)

    layer_get()
    cached_day()  # warms the day and its patients

    client = raw_redis()
    key = dl.cache_store.keys.entity(Patient.__table__, patient_id)
    sealer = dl.cache_store.sealer
    unsealed = key + ":unsealed"  # the same JSON in clear: the baseline of the target
    client.set(unsealed, sealer.open(key, client.get(key)))
    raw_key = key + ":raw"
    connection = raw_postgres(dl)
    connection.autocommit = True
    cursor = connection.cursor()
    engine = peers.plain_engine(dl)
    counter.watch(engine)
    region = peers.recipe_region(dl.settings.cache_prefix + "recipe:")
    recipe_session = peers.recipe_sessions(engine, region)
    by_id = select(Patient).where(Patient.id == patient_id)

    def raw_get() -> object:
        return json.loads(client.get(unsealed))

    def raw_sealed_get() -> object:
        return json.loads(sealer.open(key, client.get(key)))

    def raw_select() -> object:
        cursor.execute("SELECT * FROM patients WHERE id = %s", (str(patient_id),))
        return cursor.fetchone()

    def raw_miss() -> object:
        row = raw_select()
        if client.get(raw_key) is None:
            client.set(raw_key, json.dumps(row, default=str), px=300_000)
        return row

    def orm_get() -> object:
        with Session(engine) as session:
            return session.get(Patient, patient_id)

    def recipe_get() -> object:
        with recipe_session(engine) as session:
            return session.scalars(by_id.options(peers.FromCache())).one()

    def forget_raw() -> None:
        client.delete(raw_key)

    def forget_layer() -> None:
        client.delete(key)

    contenders = {
        "get_uncached": (uncached_get, nothing),
        "raw_psycopg2_select": (raw_select, nothing),
        "orm_get": (orm_get, nothing),
        "get_cached": (layer_get, nothing),
        "raw_redis_get_decode": (raw_get, nothing),
        "raw_redis_get_open_decode": (raw_sealed_get, nothing),
        "recipe_get": (recipe_get, nothing),
        "get_miss": (layer_get, forget_layer),
        "raw_miss": (raw_miss, forget_raw),
        "schedule_cached": (cached_day, nothing),
        "schedule_uncached": (uncached_day, nothing),
        "schedule_view_cached": (cached_view, nothing),
        "schedule_view_uncached": (uncached_view, nothing),
    }
    figures: dict[str, Any] = {"schedule_appointments": appointments}
    groups = (
        ("get_uncached", "raw_psycopg2_select", "orm_get"),
        ("get_cached", "raw_redis_get_decode", "raw_redis_get_open_decode", "recipe_get"),
        ("get_miss", "raw_miss"),
        ("schedule_cached", "schedule_uncached", "schedule_view_cached", "schedule_view_uncached"),
    )
    races = {}
    for group in groups:
        timed = race({name: contenders[name] for name in group}, calls=calls, runs=runs)
        races.update(dict.fromkeys(group, timed))
        for name in group:
            figures[f"{name}_us"] = timed.us(name)
            call, before = contenders[name]
            before()
            figures[f"{name}_round_trips"] = str(trips_of(counter, name, call))
    for figure, first, second in (
        ("get_uncached_ratio", "get_uncached", "raw_psycopg2_select"),
        ("orm_get_ratio", "orm_get", "raw_psycopg2_select"),
        ("get_cached_ratio", "get_cached", "raw_redis_get_decode"),
        ("sealing_ratio", "raw_redis_get_open_decode", "raw_redis_get_decode"),
        ("recipe_get_ratio", "recipe_get", "raw_redis_get_decode"),
        ("recipe_vs_layer", "recipe_get", "get_cached"),
        ("get_miss_ratio", "get_miss", "raw_miss"),
        ("schedule_cached_speedup", "schedule_uncached", "schedule_cached"),
        ("schedule_view_speedup", "schedule_uncached", "schedule_view_cached"),
        ("schedule_view_cached_speedup", "schedule_view_uncached", "schedule_view_cached"),
    ):
        ratio = races[first].ratio(first, second)
        figures[figure] = ratio.median
        figures[f"{figure}_p10"], figures[f"{figure}_p90"] = ratio.p10, ratio.p90
    assert len(cached_day()) == appointments
    with uncached() as uow:
        with counting_queries(dl.engine) as log:
            loaded = uow.appointments.schedule_for(doctor_id, DAY)
        assert all(a.patient is not None for a in loaded)
    figures["schedule_uncached_queries"] = log.count
    with dl.unit_of_work(actor="bench") as uow, counting_queries(dl.engine) as log:
        uow.appointments.schedule_for(doctor_id, DAY)
    figures["schedule_cached_queries"] = log.count
    with dl.unit_of_work(actor="bench") as uow, counting_queries(dl.engine) as log:
        assert len(uow.appointments.schedule_view(doctor_id, DAY)) == appointments
    figures["schedule_view_cached_queries"] = log.count
    for closing in (connection.close, client.close, engine.dispose):
        closing()
    return figures


def uncached_units(dl: DataLayer) -> Callable[[], UnitOfWork]:
    """Units of work with the layer's rules and no cache: what a miss costs in SQL."""
    factory = session_factory(dl.engine, Participants())
    zone = ZoneInfo(dl.settings.clinic_timezone)
    return lambda: UnitOfWork(factory, dl.documents, dl.engine, actor="bench", clinic_timezone=zone)


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
    session: Session = session_factory(dl.engine, Participants())()
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
